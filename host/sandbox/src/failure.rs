//! Why a run failed, in one line, classified by its root cause.
//!
//! Wasmtime reports a failed call as an error chain (a trap, a backtrace, a memory fault, the
//! host function's own error). The operator needs the cause, not the chain: a budget, a denial,
//! a guest fault named plainly (`stack overflow`, `unknown handle`), the guest's panic message,
//! or a fault of the host. [`classify`] decides which, once.

use std::fmt;
use std::time::Duration;

use wasmtime::component::ResourceTableError;
use wasmtime::{Trap, WasmBacktrace};
use wasmtime_wasi::I32Exit;

use crate::gate::Denied;
use crate::interrupt::Interrupted;
use crate::output::LogLine;
use sluice_budget::{Budget, Limit, LimitExceeded};
use sluice_text::{GuestText, cut};

/// Longest guest-written message (a failure or a panic) kept in a failure; the rest is cut.
pub const MAX_GUEST_MESSAGE_BYTES: usize = 1024;

/// Why a run failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RunFailure {
    /// The gate denied a call and the transform gave up: the gate's own decision.
    Denied(Denied),
    /// A budget ran out.
    Limit(LimitExceeded),
    /// What the guest handed back broke a bound of the sandbox (too many figures, ...).
    Refused(String),
    /// The guest broke the machine's rules: a stack overflow, a bad handle, a bad memory
    /// access. Worded by the host.
    Fault(String),
    /// A Rust guest panicked; its message, as it wrote it.
    Panic(GuestText),
    /// The guest called `exit`.
    Exit(i32),
    /// The transform returned its own error.
    Guest(GuestText),
    /// The run was stopped from outside (Ctrl-C, SIGTERM).
    Interrupted,
    /// The run outlived its deadline and the watchdog's grace: it is stuck in a host call and
    /// was left behind.
    Abandoned {
        wall_time: Duration,
        grace: Duration,
    },
    /// The host failed (a broken dataset store, an exhausted instance pool).
    Host(String),
}

impl fmt::Display for RunFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RunFailure::Denied(d) => write!(f, "denied: {d}"),
            RunFailure::Limit(l) => write!(f, "{l}"),
            RunFailure::Refused(why) => write!(f, "refused: {why}"),
            RunFailure::Fault(cause) => write!(f, "guest fault: {cause}"),
            RunFailure::Panic(msg) => write!(f, "guest panicked: {msg}"),
            RunFailure::Exit(code) => write!(f, "guest exited with code {code}"),
            RunFailure::Guest(msg) => write!(f, "transform failed: {msg}"),
            RunFailure::Interrupted => {
                f.write_str("interrupted: the run was stopped before it finished")
            }
            RunFailure::Abandoned { wall_time, grace } => write!(
                f,
                "abandoned: still running {} ms after its {} limit of {} ms, stuck in a host call",
                grace.as_millis(),
                Limit::WallTime.name(),
                wall_time.as_millis()
            ),
            RunFailure::Host(msg) => write!(f, "host error: {msg}"),
        }
    }
}

/// Wasmtime's message when a guest hands the host more than the store's hostcall fuel in one
/// call (`Store::set_hostcall_fuel`); its error type is private.
const HOSTCALL_FUEL_MESSAGE: &str = "too much data is being copied between the host and the guest";

/// Wasmtime's handle-table errors, worded for the operator.
const HANDLE_FAULTS: &[(&str, &str)] = &[
    ("unknown handle index", "unknown handle"),
    ("mismatched resource types", "handle of the wrong type"),
    ("resource type mismatch", "handle of the wrong type"),
    ("is not a resource", "handle of the wrong type"),
    ("is not an own resource", "handle of the wrong type"),
    ("used with the wrong type", "handle of the wrong type"),
    ("host resource already consumed", "stale handle"),
    ("was already de-allocated", "stale handle"),
    (
        "cannot remove owned resource while borrowed",
        "handle dropped while borrowed",
    ),
];

/// A Rust guest's stack lives at the bottom of its linear memory; running past it wraps the
/// address around to just below 4 GiB. A fault that high is a stack overflow.
const SHADOW_STACK_WRAP: u64 = 0xFF00_0000;

/// Names the root cause of a failed call into the guest.
pub(crate) fn classify(error: wasmtime::Error, budget: &Budget, logs: &[LogLine]) -> RunFailure {
    if let Some(limit) = error.downcast_ref::<LimitExceeded>() {
        return RunFailure::Limit(limit.clone());
    }
    if error.downcast_ref::<Interrupted>().is_some() {
        return RunFailure::Interrupted;
    }
    if let Some(exit) = error.downcast_ref::<I32Exit>() {
        return RunFailure::Exit(exit.0);
    }
    match error.downcast_ref::<ResourceTableError>() {
        Some(ResourceTableError::Full) => {
            return RunFailure::Limit(LimitExceeded::new(
                Limit::Handles,
                budget.handles,
                Some(budget.handles + 1),
            ));
        }
        Some(ResourceTableError::NotPresent) => return fault("unknown handle"),
        Some(ResourceTableError::WrongType) => return fault("handle of the wrong type"),
        Some(ResourceTableError::HasChildren) => return fault("handle dropped while in use"),
        None => {}
    }
    let messages: Vec<String> = error.chain().map(|e| e.to_string()).collect();
    let says = |needle: &str| messages.iter().any(|m| m.contains(needle));
    if says(HOSTCALL_FUEL_MESSAGE) {
        return RunFailure::Limit(LimitExceeded::new(
            Limit::CallBytes,
            budget.call_bytes,
            None,
        ));
    }
    if says("store handle limit exceeded") {
        return RunFailure::Limit(LimitExceeded::new(
            Limit::Handles,
            budget.handles,
            Some(budget.handles + 1),
        ));
    }
    if let Some((_, cause)) = HANDLE_FAULTS.iter().find(|(needle, _)| says(needle)) {
        return fault(cause);
    }
    let Some(trap) = error.downcast_ref::<Trap>() else {
        // Not the guest's doing: say what the host hit (the root cause), on one line.
        let root = messages.last().map_or("unknown error", String::as_str);
        return RunFailure::Host(root.lines().next().unwrap_or_default().to_string());
    };
    match trap {
        Trap::StackOverflow => fault("stack overflow"),
        Trap::MemoryOutOfBounds if runaway_recursion(&error) => fault("stack overflow"),
        Trap::MemoryOutOfBounds => match fault_address(&messages) {
            Some(address) if address >= SHADOW_STACK_WRAP => fault("stack overflow"),
            Some(address) => fault(&format!(
                "out-of-bounds memory access at address {address:#x}"
            )),
            None => fault("out-of-bounds memory access"),
        },
        Trap::UnreachableCodeReached => match panic_message(logs) {
            Some(message) => RunFailure::Panic(GuestText::new(message)),
            None => fault("unreachable instruction executed"),
        },
        Trap::Interrupt => RunFailure::Limit(LimitExceeded::new(
            Limit::WallTime,
            budget.wall_time.as_millis() as u64,
            None,
        )),
        other => {
            let text = other.to_string();
            fault(text.strip_prefix("wasm trap: ").unwrap_or(&text))
        }
    }
}

fn fault(cause: &str) -> RunFailure {
    RunFailure::Fault(cause.to_string())
}

/// Whether the guest's call stack at the trap is one function, or a few, deeper than any real
/// transform goes: a Rust guest that recurses without end runs out of its stack in linear memory,
/// which traps as an out-of-bounds access, not as Wasmtime's stack overflow.
fn runaway_recursion(error: &wasmtime::Error) -> bool {
    let Some(backtrace) = error.downcast_ref::<WasmBacktrace>() else {
        return false;
    };
    let frames = backtrace.frames();
    if frames.len() < RUNAWAY_DEPTH {
        return false;
    }
    let mut counts = std::collections::HashMap::new();
    for frame in frames {
        *counts.entry(frame.func_index()).or_insert(0usize) += 1;
    }
    let most = counts.values().copied().max().unwrap_or(0);
    most * 10 >= frames.len() * 9
}

/// Call depth past which a trap in self-recursion is called a stack overflow.
const RUNAWAY_DEPTH: usize = 100;
/// Frames of a trapping guest's stack that Wasmtime captures: a few more than [`RUNAWAY_DEPTH`].
pub(crate) const BACKTRACE_FRAMES: usize = 128;

/// The linear-memory address of a memory fault, from Wasmtime's context
/// "memory fault at wasm address 0x... in linear memory of size 0x...".
fn fault_address(messages: &[String]) -> Option<u64> {
    messages.iter().find_map(|m| {
        let rest = m.strip_prefix("memory fault at wasm address 0x")?;
        let hex = rest.split_whitespace().next()?;
        u64::from_str_radix(hex, 16).ok()
    })
}

/// A Rust panic's message from the guest's stderr: the lines after `panicked at <location>:`,
/// without the location (it is in the log) or the backtrace note.
fn panic_message(logs: &[LogLine]) -> Option<String> {
    let stderr: Vec<&str> = logs
        .iter()
        .filter(|l| l.source == "stderr")
        .map(|l| l.message.as_raw())
        .collect();
    let start = stderr.iter().rposition(|l| l.contains(" panicked at "))?;
    let message: Vec<&str> = stderr[start + 1..]
        .iter()
        .map(|l| l.trim())
        .filter(|l| !l.is_empty() && !l.starts_with("note: run with"))
        .collect();
    let message = message.join(" ");
    Some(cut(&message, MAX_GUEST_MESSAGE_BYTES).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::output::LogLevel;

    fn stderr(lines: &[&str]) -> Vec<LogLine> {
        lines
            .iter()
            .map(|l| LogLine {
                level: LogLevel::Warn,
                source: "stderr",
                message: GuestText::new(*l),
            })
            .collect()
    }

    #[test]
    fn a_panic_is_its_message_without_location_or_note() {
        let logs = stderr(&[
            "thread '<unnamed>' (1) panicked at guests/hostile/src/lib.rs:72:5:",
            "transform crashed",
            "note: run with `RUST_BACKTRACE=1` environment variable to display a backtrace",
        ]);
        assert_eq!(panic_message(&logs).as_deref(), Some("transform crashed"));
    }

    #[test]
    fn fault_addresses_are_read_from_wasmtimes_context() {
        let messages = vec![
            "error while executing at wasm backtrace: ...".to_string(),
            "memory fault at wasm address 0xfffffff0 in linear memory of size 0x110000".to_string(),
        ];
        assert_eq!(fault_address(&messages), Some(0xffff_fff0));
    }
}

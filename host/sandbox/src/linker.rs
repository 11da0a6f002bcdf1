//! The guest's entire surface, in one function: the `transform` world plus the few WASI
//! interfaces Rust's `wasm32-wasip2` std imports whatever the program does.
//!
//! Deny by default means *not linked*: there is no `wasi:filesystem`, `wasi:sockets` or
//! `wasi:http` here at all, so a component importing any of them fails to instantiate with an
//! error naming the import, instead of loading and finding a capability that says no.
//!
//! What is linked and why:
//! - `wasi:io/{error,poll,streams}`: the stream types of stdout/stderr.
//! - `wasi:cli/{environment,exit,stdin,stdout,stderr,terminal-*}`: std's startup and panic path.
//!   The environment and arguments are empty, stdin is closed, stdout/stderr go to the run's
//!   capped log, no terminal is attached.
//! - `wasi:clocks/{wall-clock,monotonic-clock}`: real clocks. They carry no tenant data, and a
//!   transform may time its own work; reports must not depend on them (the tenant transforms
//!   don't, which is why runs are byte-for-byte reproducible). The monotonic clock is Sluice's
//!   own (`host/clocks.rs`): a guest waiting on it wakes at the run's deadline.
//! - `wasi:random/{random,insecure,insecure-seed}`: std's `HashMap` seeds itself from here. Real
//!   randomness carries no data either.

use wasmtime::Engine;
use wasmtime::component::{Component, HasData, HasSelf, Linker, ResourceTable};
use wasmtime_wasi::cli::{WasiCli, WasiCliCtxView, WasiCliView};
use wasmtime_wasi::clocks::{WasiClocks, WasiClocksCtxView, WasiClocksView};
use wasmtime_wasi::p2::bindings::{cli, clocks, random, sync};
use wasmtime_wasi::random::{WasiRandom, WasiRandomCtx, WasiRandomView};

use crate::bindings::Transform;
use crate::host::clocks::{RunClockView, RunClocks};
use crate::state::HostState;

/// The interface namespaces [`linker`] provides: used only to name, in an error, the imports a
/// rejected component asked for. The linker itself is the authority.
const PROVIDED: &[&str] = &[
    "wasi:io/",
    "wasi:cli/",
    "wasi:clocks/",
    "wasi:random/",
    "sluice:etl/",
];

/// The imports of `component` that Sluice does not provide, e.g. `wasi:filesystem/types@0.2.6`.
pub(crate) fn unprovided_imports(component: &Component, engine: &Engine) -> Vec<String> {
    component
        .component_type()
        .imports(engine)
        .map(|(name, _)| name.to_string())
        .filter(|name| !PROVIDED.iter().any(|p| name.starts_with(p)))
        .collect()
}

struct HasIo;

impl HasData for HasIo {
    type Data<'a> = &'a mut ResourceTable;
}

/// The views WASI's functions see. Each is asked for once per call, so each counts that call
/// against the run's host-call budget on its way: WASI calls are budgeted like Sluice's own.
fn io(s: &mut HostState) -> &mut ResourceTable {
    s.count_wasi_call();
    &mut s.table
}

fn cli(s: &mut HostState) -> WasiCliCtxView<'_> {
    s.count_wasi_call();
    s.cli()
}

fn wall_clock(s: &mut HostState) -> WasiClocksCtxView<'_> {
    s.count_wasi_call();
    s.clocks()
}

fn monotonic_clock(s: &mut HostState) -> RunClockView<'_> {
    s.count_wasi_call();
    RunClockView {
        table: &mut s.table,
        clock: &s.clock,
    }
}

fn random(s: &mut HostState) -> &mut WasiRandomCtx {
    s.count_wasi_call();
    s.random()
}

pub(crate) fn linker(engine: &Engine) -> wasmtime::Result<Linker<HostState>> {
    let mut linker = Linker::new(engine);
    let l = &mut linker;

    wasmtime_wasi_io::bindings::wasi::io::error::add_to_linker::<HostState, HasIo>(l, io)?;
    sync::io::poll::add_to_linker::<HostState, HasIo>(l, io)?;
    sync::io::streams::add_to_linker::<HostState, HasIo>(l, io)?;

    cli::environment::add_to_linker::<HostState, WasiCli>(l, self::cli)?;
    cli::exit::add_to_linker::<HostState, WasiCli>(l, self::cli)?;
    cli::stdin::add_to_linker::<HostState, WasiCli>(l, self::cli)?;
    cli::stdout::add_to_linker::<HostState, WasiCli>(l, self::cli)?;
    cli::stderr::add_to_linker::<HostState, WasiCli>(l, self::cli)?;
    cli::terminal_input::add_to_linker::<HostState, WasiCli>(l, self::cli)?;
    cli::terminal_output::add_to_linker::<HostState, WasiCli>(l, self::cli)?;
    cli::terminal_stdin::add_to_linker::<HostState, WasiCli>(l, self::cli)?;
    cli::terminal_stdout::add_to_linker::<HostState, WasiCli>(l, self::cli)?;
    cli::terminal_stderr::add_to_linker::<HostState, WasiCli>(l, self::cli)?;

    clocks::wall_clock::add_to_linker::<HostState, WasiClocks>(l, wall_clock)?;
    clocks::monotonic_clock::add_to_linker::<HostState, RunClocks>(l, monotonic_clock)?;

    random::random::add_to_linker::<HostState, WasiRandom>(l, self::random)?;
    random::insecure::add_to_linker::<HostState, WasiRandom>(l, self::random)?;
    random::insecure_seed::add_to_linker::<HostState, WasiRandom>(l, self::random)?;

    Transform::add_to_linker::<HostState, HasSelf<HostState>>(l, |s| s)?;
    Ok(linker)
}

//! The engine, compiled transforms and one run of a transform.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use wasmtime::component::Component;
use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig, Store};

use crate::bindings::TransformPre;
use crate::bounds::{Summary, check_summary, guest_message};
use crate::failure::{RunFailure, classify};
use crate::gate::{Gate, GateEvent, GateOverflow, Writ};
use crate::host::tables::StagedTable;
use crate::interrupt::Interrupt;
use crate::linker::WasiSurface;
use crate::output::{LogBuffer, LogLine};
use crate::source::{DatasetSource, NoDatasets, ReadContext};
use crate::state::{HostState, StagedReport};
use sluice_budget::{Budget, Usage};
use sluice_compiled_cache::{CacheError, CodeOrigin, CompiledCache, Lookup};

/// How often the epoch advances: how soon a computing guest notices its deadline or an
/// interrupt.
const EPOCH_TICK: Duration = Duration::from_millis(10);

/// What one tenant may take of the engine that all tenants share. The pooling allocator
/// reserves exactly this per concurrent run, and refuses, when it loads, a plugin that needs
/// more, so a plugin built of many instances cannot take another tenant's slots.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TenantShare {
    /// Core module instances in one component. A Rust transform has a handful; an interpreter
    /// (Python, JS) a few dozen.
    pub core_instances: u32,
    /// Linear memories in one component.
    pub memories: u32,
    /// Tables in one component.
    pub tables: u32,
}

impl Default for TenantShare {
    fn default() -> Self {
        TenantShare {
            core_instances: 32,
            memories: 2,
            tables: 32,
        }
    }
}

/// Engine-wide settings. Per-run limits are in [`Budget`].
#[derive(Clone, Debug)]
pub struct SandboxOptions {
    /// Runs that may be live at once with the pooling allocator (instantiation drops from ~40 µs
    /// to ~16 µs); each gets a full [`TenantShare`]. A run beyond it fails to instantiate, so
    /// size it to the pipeline's concurrency. `None` allocates on demand.
    pub pooling_slots: Option<u32>,
    /// The largest linear memory any run may have; a run's own budget may be lower.
    pub max_memory_bytes: u64,
    pub share: TenantShare,
}

impl Default for SandboxOptions {
    fn default() -> Self {
        SandboxOptions {
            pooling_slots: Some(32),
            max_memory_bytes: Budget::default().memory_bytes,
            share: TenantShare::default(),
        }
    }
}

/// A Wasmtime engine configured for tenant transforms, with the epoch ticker that runs' deadlines
/// and interrupts are checked on.
pub struct Sandbox {
    engine: Engine,
    basic: wasmtime::component::Linker<HostState>,
    interpreter: wasmtime::component::Linker<HostState>,
    options: SandboxOptions,
    cache: Option<CompiledCache>,
    ticker: Option<JoinHandle<()>>,
    stop: Arc<AtomicBool>,
}

impl Sandbox {
    pub fn new(options: SandboxOptions) -> anyhow::Result<Sandbox> {
        let mut config = Config::new();
        config.epoch_interruption(true);
        // Deep enough to tell runaway recursion (see `failure.rs`) from an ordinary trap; frames
        // are captured only when a guest traps.
        config.wasm_backtrace_max_frames(std::num::NonZeroUsize::new(
            crate::failure::BACKTRACE_FRAMES,
        ));
        // Transforms are synchronous; concurrency support doubles the cost of every host call.
        config.concurrency_support(false);
        if let Some(slots) = options.pooling_slots {
            let share = options.share;
            let mut pool = PoolingAllocationConfig::default();
            pool.total_component_instances(slots)
                .max_core_instances_per_component(share.core_instances)
                .max_memories_per_component(share.memories)
                .max_tables_per_component(share.tables)
                .max_memories_per_module(share.memories)
                .max_tables_per_module(share.tables)
                .total_core_instances(slots * share.core_instances)
                .total_memories(slots * share.memories)
                .total_tables(slots * share.tables)
                .max_memory_size(options.max_memory_bytes as usize)
                // Reset freed slots 16 at a time: one madvise pass instead of one per tenant
                // (a syscall that costs ~10 µs in a VM). Measured 27 -> 17 µs per instantiation.
                .decommit_batch_size(16);
            config.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
        }
        let engine = Engine::new(&config)
            .map_err(anyhow::Error::from)
            .context("configuring the Wasmtime engine")?;
        let basic =
            crate::linker::linker(&engine, WasiSurface::Basic).map_err(anyhow::Error::from)?;
        let interpreter = crate::linker::linker(&engine, WasiSurface::Interpreter)
            .map_err(anyhow::Error::from)?;
        let stop = Arc::new(AtomicBool::new(false));
        let ticker = {
            let engine = engine.clone();
            let stop = Arc::clone(&stop);
            std::thread::Builder::new()
                .name("sluice-epoch".into())
                .spawn(move || {
                    let clock = crate::gate::TickClock::start();
                    while !stop.load(Ordering::Relaxed) {
                        std::thread::sleep(EPOCH_TICK);
                        engine.increment_epoch();
                        clock.tick();
                    }
                })
                .context("starting the epoch thread")?
        };
        Ok(Sandbox {
            engine,
            basic,
            interpreter,
            options,
            cache: None,
            ticker: Some(ticker),
            stop,
        })
    }

    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// Keeps compiled plugins in `dir` (see [`CompiledCache`]): each plugin is compiled once per
    /// (SHA-256, engine configuration), later loads take milliseconds.
    pub fn use_compiled_cache(&mut self, dir: &Path) -> Result<(), CacheError> {
        self.cache = Some(CompiledCache::open(dir, &self.engine)?);
        Ok(())
    }

    /// The compiled-plugin cache, if one is in use.
    pub fn compiled_cache(&self) -> Option<&CompiledCache> {
        self.cache.as_ref()
    }

    /// Compiles the component at `path` and links it against the host's basic WASI surface,
    /// failing if it imports anything else or needs more than a tenant's share of the engine.
    pub fn load_file(&self, path: &Path) -> anyhow::Result<Transform> {
        self.load_file_as(path, WasiSurface::Basic)
    }

    /// [`load_file`](Self::load_file) for a plugin of `surface`.
    pub fn load_file_as(&self, path: &Path, surface: WasiSurface) -> anyhow::Result<Transform> {
        let bytes = std::fs::read(path).with_context(|| {
            format!(
                "reading transform '{}'{}",
                path.display(),
                missing_plugin_hint(path)
            )
        })?;
        self.load_as(&bytes, &path.display().to_string(), surface)
    }

    /// Like [`load_file`](Self::load_file), from bytes; `name` is used in errors.
    pub fn load(&self, bytes: &[u8], name: &str) -> anyhow::Result<Transform> {
        self.load_as(bytes, name, WasiSurface::Basic)
    }

    /// [`load`](Self::load) for a plugin of `surface`.
    pub fn load_as(
        &self,
        bytes: &[u8],
        name: &str,
        surface: WasiSurface,
    ) -> anyhow::Result<Transform> {
        let sha256 = match self.cache {
            Some(_) => hex_sha256(bytes),
            None => String::new(),
        };
        self.load_pinned(bytes, &sha256, name, surface)
    }

    /// [`load_as`](Self::load_as) for bytes whose SHA-256 (lowercase hex) the caller has
    /// already checked: the compiled-plugin cache is keyed by it.
    pub fn load_pinned(
        &self,
        bytes: &[u8],
        sha256: &str,
        name: &str,
        surface: WasiSurface,
    ) -> anyhow::Result<Transform> {
        let start = Instant::now();
        let (component, origin) = match &self.cache {
            None => (self.compile(bytes, name)?, CodeOrigin::Uncached),
            Some(cache) => match cache.get(&self.engine, sha256) {
                Lookup::Hit(component) => (component, CodeOrigin::Cached),
                Lookup::Miss => {
                    let component = self.compile(bytes, name)?;
                    let stored = cache.put(sha256, &component);
                    (component, CodeOrigin::Compiled { stored })
                }
                Lookup::Rejected(reason) => {
                    let component = self.compile(bytes, name)?;
                    let stored = cache.put(sha256, &component);
                    (component, CodeOrigin::Recompiled { reason, stored })
                }
            },
        };
        let mut transform = self.link(component, name, surface)?;
        transform.origin = origin;
        transform.load_time = start.elapsed();
        Ok(transform)
    }

    /// The engine's compilation of `bytes`, with errors a plugin author can act on.
    pub(crate) fn compile(&self, bytes: &[u8], name: &str) -> anyhow::Result<Component> {
        if let Some(what) = not_a_component(bytes) {
            anyhow::bail!("'{name}' {what}");
        }
        Component::new(&self.engine, bytes).map_err(|e| {
            let e = anyhow::Error::from(e);
            // The pooling allocator's verdict on a plugin that needs too much of the engine.
            let needs_more = e.chain().any(|c| {
                let text = c.to_string();
                text.contains("exceeds the configured maximum")
                    && text.contains("in the pooling allocator")
            });
            if needs_more {
                let share = self.options.share;
                e.context(format!(
                    "'{name}' is refused: it needs more than a tenant's share of the engine \
                     ({} core instances, {} memories, {} tables; [limits] core_instances, \
                     memories, tables)",
                    share.core_instances, share.memories, share.tables
                ))
            } else {
                e.context(format!("'{name}' is not a valid WebAssembly component"))
            }
        })
    }

    /// Links a compiled component against the host functions of `surface`.
    pub(crate) fn link(
        &self,
        component: Component,
        name: &str,
        surface: WasiSurface,
    ) -> anyhow::Result<Transform> {
        let unprovided = crate::linker::unprovided_imports(&component, &self.engine, surface);
        if !unprovided.is_empty() {
            let allowed = match surface {
                WasiSurface::Basic => {
                    "sluice:etl/* and the WASI basics of Rust's std (io, cli, clocks, random), \
                     never files, sockets or HTTP"
                }
                WasiSurface::Interpreter => {
                    "sluice:etl/*, the WASI basics, and a filesystem and sockets that grant \
                     nothing; never HTTP"
                }
            };
            anyhow::bail!(
                "'{name}' imports {}, which Sluice does not provide: transforms may import {allowed}",
                unprovided.join(", ")
            );
        }
        let linker = match surface {
            WasiSurface::Basic => &self.basic,
            WasiSurface::Interpreter => &self.interpreter,
        };
        let pre = linker
            .instantiate_pre(&component)
            .map_err(anyhow::Error::from)
            .with_context(|| {
                format!("'{name}' cannot be linked against Sluice's host functions")
            })?;
        let pre = TransformPre::new(pre)
            .map_err(anyhow::Error::from)
            .with_context(|| format!("'{name}' does not export the sluice:etl/transform world"))?;
        Ok(Transform {
            pre,
            name: name.to_string(),
            max_memory_bytes: self.options.max_memory_bytes,
            share: self.options.share,
            origin: CodeOrigin::Uncached,
            load_time: Duration::ZERO,
        })
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(ticker) = self.ticker.take() {
            let _ = ticker.join();
        }
    }
}

/// What a run needs besides the component.
pub struct RunRequest {
    pub writ: Writ,
    pub budget: Budget,
    pub datasets: Arc<dyn DatasetSource>,
    /// The tenant's parameters, passed to `run`.
    pub params: Vec<(String, String)>,
    /// Stops the run from outside; share one among the runs of a night.
    pub interrupt: Interrupt,
}

impl RunRequest {
    /// A run under `writ` over `datasets` with the default budget, no parameters and its own
    /// interrupt.
    pub fn new(writ: Writ, datasets: Arc<dyn DatasetSource>) -> RunRequest {
        RunRequest {
            writ,
            budget: Budget::default(),
            datasets,
            params: Vec::new(),
            interrupt: Interrupt::new(),
        }
    }
}

/// Everything one run produced. `staged` is empty unless the run succeeded.
#[derive(Debug)]
pub struct RunOutcome {
    pub result: Result<Summary, RunFailure>,
    pub staged: Vec<StagedReport>,
    /// Output tables the run committed; empty unless it succeeded.
    pub tables: Vec<StagedTable>,
    pub writ: Writ,
    pub events: Vec<GateEvent>,
    /// Gate decisions past the budget's `audit_entries` distinct kinds, counted.
    pub overflow: GateOverflow,
    pub usage: Usage,
    pub logs: Vec<LogLine>,
    pub log_bytes_dropped: u64,
    pub elapsed: Duration,
}

impl RunOutcome {
    pub fn is_ok(&self) -> bool {
        self.result.is_ok()
    }

    /// The outcome of a run that produced nothing: `failure` before or instead of the guest.
    pub(crate) fn failed(writ: Writ, failure: RunFailure, elapsed: Duration) -> RunOutcome {
        RunOutcome {
            result: Err(failure),
            staged: Vec::new(),
            tables: Vec::new(),
            writ,
            events: Vec::new(),
            overflow: GateOverflow::default(),
            usage: Usage::default(),
            logs: Vec::new(),
            log_bytes_dropped: 0,
            elapsed,
        }
    }
}

/// A compiled, linked transform: instantiating it is cheap (`InstancePre`).
#[derive(Clone)]
pub struct Transform {
    pre: TransformPre<HostState>,
    name: String,
    max_memory_bytes: u64,
    share: TenantShare,
    origin: CodeOrigin,
    load_time: Duration,
}

impl Transform {
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Whether its code was compiled or came from the compiled-plugin cache.
    pub fn origin(&self) -> &CodeOrigin {
        &self.origin
    }

    /// How long loading it took: compiling (or loading compiled code) and linking.
    pub fn load_time(&self) -> Duration {
        self.load_time
    }

    /// `budget` as this engine can honour it: memory no larger than the engine's slots.
    fn effective(&self, mut budget: Budget) -> Budget {
        budget.memory_bytes = budget.memory_bytes.min(self.max_memory_bytes);
        budget
    }

    /// A store for one run, with every guard of the sandbox set: memory and share limits, the
    /// per-call transfer cap, the handle cap, and the deadline, interrupt and tripped budgets
    /// checked at every epoch tick. Host calls are counted by the host functions themselves
    /// (Wasmtime's call hook would cost ~17 ns on every call).
    fn store(&self, state: HostState) -> Store<HostState> {
        let call_bytes = state.budget.call_bytes;
        let handles = state.budget.handles;
        let mut store = Store::new(self.pre.engine(), state);
        store.limiter(|s| &mut s.limits);
        store.set_hostcall_fuel(usize::try_from(call_bytes).unwrap_or(usize::MAX));
        store.set_max_component_handles(usize::try_from(handles).unwrap_or(usize::MAX));
        store.epoch_deadline_callback(|mut cx| cx.data_mut().on_epoch());
        store.set_epoch_deadline(1);
        store
    }

    /// Instantiates the component in a fresh store and drops it without running anything: the
    /// measure of per-tenant instantiation cost.
    pub fn instantiate_once(&self) -> anyhow::Result<()> {
        let state = HostState::new(
            self.pre.engine().clone(),
            Writ::default(),
            self.effective(Budget::default()),
            self.share,
            Arc::new(NoDatasets),
            LogBuffer::new(0),
            ReadContext::unbounded(),
        );
        let mut store = self.store(state);
        self.pre
            .instantiate(&mut store)
            .map_err(anyhow::Error::from)?;
        Ok(())
    }

    /// Runs the transform once in a fresh instance, on this thread. Never panics on guest
    /// behaviour: every failure is in `result`. The deadline holds unless a host call never
    /// returns; [`spawn`](Self::spawn) adds a watchdog for that.
    pub fn run(&self, request: RunRequest) -> RunOutcome {
        let read = self.read_context(&request);
        self.run_reading(request, read)
    }

    /// The run's sources' context: its budget's data bounds, its deadline and interrupt.
    pub(crate) fn read_context(&self, request: &RunRequest) -> ReadContext {
        let now = Instant::now();
        let deadline = now
            .checked_add(request.budget.wall_time)
            .unwrap_or(now + Duration::from_secs(365 * 86_400));
        ReadContext::new(
            &self.effective(request.budget.clone()),
            request.interrupt.clone(),
            deadline,
        )
    }

    /// [`run`](Self::run) with its sources' context made by the caller (the watchdog keeps a
    /// copy, to stop the sources of a run it gives up on).
    pub(crate) fn run_reading(&self, request: RunRequest, read: ReadContext) -> RunOutcome {
        let started = Instant::now();
        let RunRequest {
            writ,
            budget,
            datasets,
            params,
            interrupt: _,
        } = request;
        let budget = self.effective(budget);
        let log = LogBuffer::new(budget.log_bytes);
        let state = HostState::new(
            self.pre.engine().clone(),
            writ,
            budget.clone(),
            self.share,
            datasets,
            log.clone(),
            read.clone(),
        );
        let mut store = self.store(state);
        let called = self
            .pre
            .instantiate(&mut store)
            .and_then(|instance| instance.call_run(&mut store, &params));
        let mut state = store.into_data();
        // Whatever a source still reads (a reader thread ahead of the guest) stops now.
        read.stop();
        state.usage.bytes_read = read.bytes_read();
        // Linear memory never shrinks: what it grew to is its peak.
        state.usage.memory_peak = state.limits.memory_bytes().max(read.held_peak());
        let (logs, log_bytes_dropped) = log.finish();

        let result = match (called, state.tripped) {
            (Err(error), _) => Err(classify(error, &budget, &logs)),
            // A limit the guest was told about ends the run whatever the guest returned.
            (Ok(_), Some(limit)) => Err(RunFailure::Limit(limit)),
            (Ok(Ok(summary)), None) => check_summary(summary),
            (Ok(Err(error)), None) => Err(guest_failure(error, &state.gate)),
        };
        let (staged, tables) = if result.is_ok() {
            (state.staged, state.staged_tables)
        } else {
            (Vec::new(), Vec::new())
        };
        let (writ, events, overflow) = state.gate.into_parts();
        RunOutcome {
            result,
            staged,
            tables,
            writ,
            events,
            overflow,
            usage: state.usage,
            logs,
            log_bytes_dropped,
            elapsed: started.elapsed(),
        }
    }
}

/// The transform's own error, told apart from what it claims: a denial is reported as the gate
/// made it, and a guest cannot pass off its own words as the gate's or a budget's.
fn guest_failure(error: crate::bindings::RunError, gate: &Gate) -> RunFailure {
    use crate::bindings::RunError;
    use crate::bindings::sluice::etl::types::Error;
    match error {
        RunError::Host(Error::Denied(_)) => match gate.last_denial() {
            Some(denied) => RunFailure::Denied(denied.clone()),
            None => RunFailure::Guest(guest_message("gave up on a denial the gate never made")),
        },
        RunError::Host(Error::Limit(l)) => RunFailure::Guest(guest_message(&format!(
            "gave up on limit {} ({}) the host never reported",
            l.name, l.limit
        ))),
        RunError::Host(Error::NotFound(what)) => {
            RunFailure::Guest(guest_message(&format!("not found: {what}")))
        }
        RunError::Host(Error::Invalid(what)) => {
            RunFailure::Guest(guest_message(&format!("invalid call: {what}")))
        }
        RunError::Failed(message) => RunFailure::Guest(guest_message(&message)),
    }
}

/// What `bytes` are if they are not a WebAssembly component at all, said so a plugin author can
/// act on it (the parser's own words are a byte array: `expected=[0x0, 0x61, 0x73, 0x6d]`).
fn not_a_component(bytes: &[u8]) -> Option<&'static str> {
    const COMPONENT: [u8; 4] = [0x0d, 0x00, 0x01, 0x00];
    const MODULE: [u8; 4] = [0x01, 0x00, 0x00, 0x00];
    if bytes.len() < 8 || &bytes[..4] != b"\0asm" {
        return Some(
            "is not a WebAssembly file (it does not begin with \\0asm): give the path of the \
             built component (`.wasm`)",
        );
    }
    match [bytes[4], bytes[5], bytes[6], bytes[7]] {
        COMPONENT => None,
        MODULE => Some(
            "is a core WebAssembly module, not a component: build it for wasm32-wasip2, or wrap \
             it with `wasm-tools component new`",
        ),
        _ => Some("is WebAssembly of a version this Wasmtime does not read"),
    }
}

/// What to do about a plugin file that cannot be read: the examples' guests are built by
/// `cargo xtask guests`; any other path is the user's to check.
pub fn missing_plugin_hint(path: &Path) -> &'static str {
    let under_guests = path
        .parent()
        .is_some_and(|dir| dir.ends_with("target/guests"));
    if under_guests {
        ": build the example guests with `cargo xtask guests`"
    } else {
        ": check the path"
    }
}

/// The lowercase hex SHA-256 of `bytes`, as plugins are pinned.
fn hex_sha256(bytes: &[u8]) -> String {
    use sha2::Digest as _;
    sha2::Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn files_that_are_not_components_are_named_for_what_they_are() {
        use super::not_a_component;
        let script = not_a_component(b"#!/bin/sh\necho").unwrap();
        assert!(script.starts_with("is not a WebAssembly file"), "{script}");
        let module = not_a_component(b"\0asm\x01\0\0\0").unwrap();
        assert!(
            module.starts_with("is a core WebAssembly module"),
            "{module}"
        );
        assert_eq!(not_a_component(b"\0asm\x0d\0\x01\0"), None);
        let hint = |p: &str| super::missing_plugin_hint(std::path::Path::new(p));
        assert!(hint("../target/guests/bank.wasm").contains("cargo xtask guests"));
        assert_eq!(hint("/opt/plugins/bank.wasm"), ": check the path");
    }
}

//! The engine, compiled transforms and one run of a transform.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use wasmtime::component::{Component, ResourceTable};
use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig, Store, Trap};
use wasmtime_wasi::{I32Exit, WasiCtxBuilder};

use crate::bindings::{Summary, TransformPre};
use crate::budget::{Budget, Limit, LimitExceeded, Usage};
use crate::gate::{Denied, Gate, GateEvent, Writ};
use crate::output::{LogBuffer, LogLine};
use crate::source::DatasetSource;
use crate::state::{HostState, MemoryLimiter, StagedReport};

/// How often the epoch advances: the granularity of the CPU-time limit.
const EPOCH_TICK: Duration = Duration::from_millis(10);

/// Engine-wide settings. Per-run limits are in [`Budget`].
#[derive(Clone, Debug)]
pub struct SandboxOptions {
    /// Pre-reserve this many instance slots (Wasmtime's pooling allocator): instantiation drops
    /// from ~40 µs to ~16 µs. `None` allocates on demand. Runs beyond the slot count wait for
    /// nothing: they fail to instantiate, so size it to the pipeline's concurrency.
    pub pooling_slots: Option<u32>,
    /// The largest linear memory any run may have; a run's own budget may be lower.
    pub max_memory_bytes: u64,
}

impl Default for SandboxOptions {
    fn default() -> Self {
        SandboxOptions {
            pooling_slots: Some(32),
            max_memory_bytes: Budget::default().memory_bytes,
        }
    }
}

/// A Wasmtime engine configured for tenant transforms, with the epoch ticker that enforces CPU
/// time.
pub struct Sandbox {
    engine: Engine,
    linker: wasmtime::component::Linker<HostState>,
    options: SandboxOptions,
    ticker: Option<JoinHandle<()>>,
    stop: Arc<AtomicBool>,
}

impl Sandbox {
    pub fn new(options: SandboxOptions) -> anyhow::Result<Sandbox> {
        let mut config = Config::new();
        config.epoch_interruption(true);
        // Transforms are synchronous; concurrency support doubles the cost of every host call.
        config.concurrency_support(false);
        if let Some(slots) = options.pooling_slots {
            let mut pool = PoolingAllocationConfig::default();
            // A Rust wasip2 component is a handful of core instances (the program plus
            // wit-component's shims), one memory and a few tables.
            pool.total_component_instances(slots)
                .total_core_instances(slots * 8)
                .total_memories(slots * 2)
                .total_tables(slots * 8)
                .max_memory_size(options.max_memory_bytes as usize)
                // Reset freed slots 16 at a time: one madvise pass instead of one per tenant
                // (a syscall that costs ~10 µs in a VM). Measured 27 -> 17 µs per instantiation.
                .decommit_batch_size(16);
            config.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
        }
        let engine = Engine::new(&config)
            .map_err(anyhow::Error::from)
            .context("configuring the Wasmtime engine")?;
        let linker = crate::linker::linker(&engine).map_err(anyhow::Error::from)?;
        let stop = Arc::new(AtomicBool::new(false));
        let ticker = {
            let engine = engine.clone();
            let stop = Arc::clone(&stop);
            std::thread::Builder::new()
                .name("sluice-epoch".into())
                .spawn(move || {
                    while !stop.load(Ordering::Relaxed) {
                        std::thread::sleep(EPOCH_TICK);
                        engine.increment_epoch();
                    }
                })
                .context("starting the epoch thread")?
        };
        Ok(Sandbox {
            engine,
            linker,
            options,
            ticker: Some(ticker),
            stop,
        })
    }

    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// Compiles the component at `path` and links it against the host, failing if it imports
    /// anything Sluice does not provide.
    pub fn load_file(&self, path: &Path) -> anyhow::Result<Transform> {
        let bytes = std::fs::read(path).with_context(|| {
            format!(
                "reading transform '{}': build guests with `cargo xtask guests`",
                path.display()
            )
        })?;
        self.load(&bytes, &path.display().to_string())
    }

    /// Like [`load_file`](Self::load_file), from bytes; `name` is used in errors.
    pub fn load(&self, bytes: &[u8], name: &str) -> anyhow::Result<Transform> {
        let component = Component::new(&self.engine, bytes)
            .map_err(anyhow::Error::from)
            .with_context(|| format!("'{name}' is not a valid WebAssembly component"))?;
        let unprovided = crate::linker::unprovided_imports(&component, &self.engine);
        if !unprovided.is_empty() {
            anyhow::bail!(
                "'{name}' imports {}, which Sluice does not provide: transforms may import \
                 sluice:etl/* and the WASI basics of Rust's std (io, cli, clocks, random), never \
                 files, sockets or HTTP",
                unprovided.join(", ")
            );
        }
        let pre = self
            .linker
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
}

/// Why a run failed, in one line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RunFailure {
    /// The gate denied a call and the transform gave up.
    Denied(Denied),
    /// A budget ran out.
    Limit(LimitExceeded),
    /// The guest trapped: a panic, `unreachable`, a bad memory access...
    Trap(String),
    /// The guest called `exit`.
    Exit(i32),
    /// The transform returned its own error.
    Guest(String),
    /// The host failed (a broken dataset store, an exhausted instance pool).
    Host(String),
}

impl std::fmt::Display for RunFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RunFailure::Denied(d) => write!(f, "denied: {d}"),
            RunFailure::Limit(l) => write!(f, "{l}"),
            RunFailure::Trap(t) => write!(f, "guest trapped: {t}"),
            RunFailure::Exit(code) => write!(f, "guest exited with code {code}"),
            RunFailure::Guest(msg) => write!(f, "transform failed: {msg}"),
            RunFailure::Host(msg) => write!(f, "host error: {msg}"),
        }
    }
}

/// Everything one run produced. `staged` is empty unless the run succeeded.
#[derive(Debug)]
pub struct RunOutcome {
    pub result: Result<Summary, RunFailure>,
    pub staged: Vec<StagedReport>,
    pub writ: Writ,
    pub events: Vec<GateEvent>,
    pub usage: Usage,
    pub logs: Vec<LogLine>,
    pub log_bytes_dropped: u64,
    pub elapsed: Duration,
}

impl RunOutcome {
    pub fn is_ok(&self) -> bool {
        self.result.is_ok()
    }
}

/// A compiled, linked transform: instantiating it is cheap (`InstancePre`).
#[derive(Clone)]
pub struct Transform {
    pre: TransformPre<HostState>,
    name: String,
    max_memory_bytes: u64,
}

impl Transform {
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Instantiates the component in a fresh store and drops it without running anything: the
    /// measure of per-tenant instantiation cost.
    pub fn instantiate_once(&self) -> anyhow::Result<()> {
        let state = HostState {
            wasi: WasiCtxBuilder::new().build(),
            table: ResourceTable::new(),
            gate: Gate::new(Writ::default()),
            memory: MemoryLimiter {
                max_bytes: self.max_memory_bytes,
            },
            budget: Budget::default(),
            usage: Usage::default(),
            tripped: None,
            datasets: Arc::new(crate::source::NoDatasets),
            staged: Vec::new(),
            log: LogBuffer::new(0),
            open_datasets: 0,
        };
        let mut store = Store::new(self.pre.engine(), state);
        store.limiter(|s| &mut s.memory);
        store.set_epoch_deadline(Budget::default().epoch_ticks(EPOCH_TICK));
        self.pre
            .instantiate(&mut store)
            .map_err(anyhow::Error::from)?;
        Ok(())
    }

    /// Runs the transform once in a fresh instance. Never panics on guest behaviour: every
    /// failure is in `result`.
    pub fn run(&self, request: RunRequest) -> RunOutcome {
        let started = Instant::now();
        let RunRequest {
            writ,
            budget,
            datasets,
            params,
        } = request;
        let log = LogBuffer::new(budget.log_bytes);
        let wasi = WasiCtxBuilder::new()
            .stdout(log.pipe("stdout"))
            .stderr(log.pipe("stderr"))
            .build();
        let state = HostState {
            wasi,
            table: ResourceTable::new(),
            gate: Gate::new(writ),
            memory: MemoryLimiter {
                max_bytes: budget.memory_bytes.min(self.max_memory_bytes),
            },
            budget: budget.clone(),
            usage: Usage::default(),
            tripped: None,
            datasets,
            staged: Vec::new(),
            log: log.clone(),
            open_datasets: 0,
        };
        let engine = self.pre.engine();
        let mut store = Store::new(engine, state);
        store.limiter(|s| &mut s.memory);
        store.set_epoch_deadline(budget.epoch_ticks(EPOCH_TICK));

        let called = self
            .pre
            .instantiate(&mut store)
            .and_then(|instance| instance.call_run(&mut store, &params));
        let state = store.into_data();
        let (logs, log_bytes_dropped) = log.finish();

        let result = match (called, state.tripped) {
            (Err(trap), _) => Err(classify(trap, &budget, &logs)),
            // A limit the guest was told about ends the run whatever the guest returned.
            (Ok(_), Some(limit)) => Err(RunFailure::Limit(limit)),
            (Ok(Ok(summary)), None) => Ok(summary),
            (Ok(Err(error)), None) => Err(guest_failure(error)),
        };
        // The guest only learns "denied"; the gate knows whether it was a revoked agent.
        let result = match result {
            Err(RunFailure::Denied(mut d)) => {
                d.revoked = state.gate.events().iter().any(|e| {
                    e.decision == crate::gate::Decision::Revoked
                        && e.required.as_str() == d.required
                });
                Err(RunFailure::Denied(d))
            }
            other => other,
        };
        let staged = if result.is_ok() {
            state.staged
        } else {
            Vec::new()
        };
        let (writ, events) = state.gate.into_parts();
        RunOutcome {
            result,
            staged,
            writ,
            events,
            usage: state.usage,
            logs,
            log_bytes_dropped,
            elapsed: started.elapsed(),
        }
    }
}

fn guest_failure(error: crate::bindings::RunError) -> RunFailure {
    use crate::bindings::RunError;
    use crate::bindings::sluice::etl::types::Error;
    match error {
        RunError::Host(Error::Denied(d)) => RunFailure::Denied(Denied {
            required: d.required,
            held: d.held,
            revoked: false,
        }),
        RunError::Host(Error::Limit(l)) => {
            RunFailure::Guest(format!("gave up on limit {} ({})", l.name, l.limit))
        }
        RunError::Host(Error::NotFound(what)) => RunFailure::Guest(format!("not found: {what}")),
        RunError::Host(Error::Invalid(what)) => RunFailure::Guest(format!("invalid call: {what}")),
        RunError::Failed(msg) => RunFailure::Guest(msg),
    }
}

/// Names the root cause of a failed call: a budget, the guest's own trap, or the host.
fn classify(error: wasmtime::Error, budget: &Budget, logs: &[LogLine]) -> RunFailure {
    if let Some(limit) = error.downcast_ref::<LimitExceeded>() {
        return RunFailure::Limit(limit.clone());
    }
    if let Some(exit) = error.downcast_ref::<I32Exit>() {
        return RunFailure::Exit(exit.0);
    }
    match error.downcast_ref::<Trap>() {
        Some(Trap::Interrupt) => RunFailure::Limit(LimitExceeded {
            limit: Limit::CpuTime,
            value: budget.cpu_time.as_millis() as u64,
            requested: budget.cpu_time.as_millis() as u64 + EPOCH_TICK.as_millis() as u64,
        }),
        Some(trap) => {
            // A Rust guest's panic message is on stderr just before the `unreachable` trap.
            let panic: Vec<&str> = logs
                .iter()
                .filter(|l| l.source == "stderr")
                .map(|l| l.message.trim())
                .filter(|m| !m.is_empty() && !m.starts_with("note: run with"))
                .collect();
            if panic.is_empty() {
                RunFailure::Trap(trap.to_string())
            } else {
                RunFailure::Trap(format!("{trap}; guest stderr: {}", panic.join(" ")))
            }
        }
        None => RunFailure::Host(format!("{error:#}")),
    }
}

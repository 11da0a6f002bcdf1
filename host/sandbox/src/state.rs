//! The one store-data struct of a run: everything a guest's host calls can reach, built in one
//! place ([`HostState::new`]).

use std::sync::Arc;
use std::time::Instant;

use wasmtime::component::{Resource, ResourceTable};
use wasmtime::{Engine, ResourceLimiter, UpdateDeadline};
use wasmtime_wasi::{WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};

use crate::error::HostError;
use crate::gate::{Gate, Writ};
use crate::host::clocks::RunClock;
use crate::interrupt::Interrupted;
use crate::output::LogBuffer;
use crate::runtime::TenantShare;
use crate::source::{DatasetSource, ReadContext, SourceError};
use sluice_budget::{Budget, Counter, Limit, LimitExceeded, Usage};

/// A report the guest committed; published by the caller only if the run succeeds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StagedReport {
    pub tenant: String,
    pub bytes: Vec<u8>,
}

pub struct HostState {
    /// The engine, to bump its epoch when a WASI call trips a budget.
    pub(crate) engine: Engine,
    pub(crate) wasi: WasiCtx,
    pub(crate) table: ResourceTable,
    pub(crate) gate: Gate,
    pub(crate) budget: Budget,
    pub(crate) usage: Usage,
    pub(crate) limits: StoreLimits,
    /// The first budget that ran out; once set, every host call traps.
    pub(crate) tripped: Option<LimitExceeded>,
    pub(crate) datasets: Arc<dyn DatasetSource>,
    /// The tenant's data bounds, the meter its sources charge, and the run's end.
    pub(crate) read: ReadContext,
    pub(crate) staged: Vec<StagedReport>,
    pub(crate) staged_tables: Vec<crate::host::tables::StagedTable>,
    /// (resource, name) of every output table committed: a repeat is refused in O(1).
    pub(crate) committed_tables: std::collections::HashSet<(String, String)>,
    /// Output tables created so far (bounded by `budget.output_tables`).
    pub(crate) tables_created: u64,
    pub(crate) log: LogBuffer,
    /// Dataset handles currently open (bounded by `budget.open_datasets`).
    pub(crate) open_datasets: u64,
    pub(crate) clock: RunClock,
}

impl HostState {
    /// The state of a run starting now: the guest's WASI is empty (no environment, arguments or
    /// stdin; stdout and stderr go to `log`), its resource table holds at most `budget.handles`.
    pub(crate) fn new(
        engine: Engine,
        writ: Writ,
        budget: Budget,
        share: TenantShare,
        datasets: Arc<dyn DatasetSource>,
        log: LogBuffer,
        read: ReadContext,
    ) -> HostState {
        let interrupt = read.interrupt().clone();
        // Empty by default (no environment, arguments, preopens; stdin closed; every socket
        // address denied, name lookup off); TCP and UDP refused outright on top.
        let wasi = WasiCtxBuilder::new()
            .stdout(log.pipe("stdout"))
            .stderr(log.pipe("stderr"))
            // Spelled out, not left to defaults: interpreters link sockets and name lookup, and
            // a changed upstream default must not grant a tenant the network.
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false)
            .socket_addr_check(|_, _| Box::pin(async { false }))
            .build();
        let mut table = ResourceTable::new();
        table.set_max_capacity(budget.handles as usize);
        let start = Instant::now();
        let writ_revoked = writ.revoked.clone();
        HostState {
            engine,
            wasi,
            table,
            gate: Gate::new(writ, budget.audit_entries as usize),
            limits: StoreLimits {
                max_memory_bytes: budget.memory_bytes,
                memory_bytes: 0,
                share,
            },
            clock: RunClock {
                start,
                // The reads' deadline, so a read stopped by it and the epoch agree on why.
                deadline: read.deadline(),
                interrupt,
                revoked: writ_revoked,
            },
            budget,
            usage: Usage::default(),
            tripped: None,
            datasets,
            read,
            staged: Vec::new(),
            staged_tables: Vec::new(),
            committed_tables: std::collections::HashSet::new(),
            tables_created: 0,
            log,
            open_datasets: 0,
        }
    }

    /// Opens every `sluice:etl` host function: counts the call against `host-calls`, and traps
    /// when the run was interrupted or an earlier limit ended it.
    #[inline]
    pub(crate) fn enter(&mut self) -> wasmtime::Result<()> {
        if let Some(limit) = &self.tripped {
            return Err(wasmtime::Error::new(limit.clone()));
        }
        if self.clock.interrupt.is_triggered() {
            return Err(wasmtime::Error::new(Interrupted));
        }
        if let Err(limit) = self.usage.charge(&self.budget, Counter::HostCalls, 1) {
            return Err(self.trip(limit));
        }
        Ok(())
    }

    /// Counts a WASI call (its view is asked for once per call). WASI functions have no error
    /// of ours to return, so a spent budget trips the run and bumps the engine's epoch: the guest
    /// traps at its next epoch check, as soon as it is back in its own code.
    #[inline]
    pub(crate) fn count_wasi_call(&mut self) {
        if self.tripped.is_some() {
            return;
        }
        if let Err(limit) = self.usage.charge(&self.budget, Counter::HostCalls, 1) {
            self.tripped = Some(limit);
            self.engine.increment_epoch();
        }
    }

    /// Runs at every epoch tick while the guest computes: ends the run at its deadline, when it
    /// is interrupted or when a budget tripped, and otherwise lets it run one more tick.
    pub(crate) fn on_epoch(&mut self) -> wasmtime::Result<UpdateDeadline> {
        if let Some(limit) = &self.tripped {
            return Err(wasmtime::Error::new(limit.clone()));
        }
        // Interrupted, or given up on by the watchdog (whose verdict the caller already has).
        if self.clock.interrupt.is_triggered() || self.read.is_stopped() {
            return Err(wasmtime::Error::new(Interrupted));
        }
        if Instant::now() >= self.clock.deadline {
            return Err(wasmtime::Error::new(LimitExceeded::new(
                Limit::WallTime,
                self.budget.wall_time.as_millis() as u64,
                None,
            )));
        }
        Ok(UpdateDeadline::Continue(1))
    }

    /// Charges `amount` to `counter`, ending the run if the budget is spent.
    pub(crate) fn charge(&mut self, counter: Counter, amount: u64) -> Result<(), HostError> {
        self.usage
            .charge(&self.budget, counter, amount)
            .map_err(HostError::Limit)
    }

    /// A source's error as a host function's: its limits end the run like any other, a stopped
    /// read traps as what stopped it, and a store fault traps.
    pub(crate) fn source_error(&mut self, e: SourceError) -> HostError {
        match e {
            SourceError::NotFound(what) => HostError::NotFound(what),
            SourceError::Invalid(what) => HostError::Invalid(what),
            SourceError::Limit(limit) => HostError::Limit(limit),
            SourceError::Stopped => HostError::Host(self.stopped()),
            SourceError::Store(e) => HostError::Host(wasmtime::Error::msg(format!("{e:#}"))),
        }
    }

    /// The trap for a run whose reads were stopped: its deadline, or an interrupt.
    fn stopped(&self) -> wasmtime::Error {
        if !self.clock.interrupt.is_triggered() && Instant::now() >= self.clock.deadline {
            return wasmtime::Error::new(LimitExceeded::new(
                Limit::WallTime,
                self.budget.wall_time.as_millis() as u64,
                None,
            ));
        }
        wasmtime::Error::new(Interrupted)
    }

    /// Records that `limit` ended the run and returns the trap that says so.
    pub(crate) fn trip(&mut self, limit: LimitExceeded) -> wasmtime::Error {
        self.tripped.get_or_insert(limit.clone());
        wasmtime::Error::new(limit)
    }

    /// Puts a host resource in the table; a full table is the `handles` limit.
    pub(crate) fn push<T: Send + 'static>(&mut self, value: T) -> Result<Resource<T>, HostError> {
        self.table.push(value).map_err(|e| match e {
            wasmtime::component::ResourceTableError::Full => HostError::Limit(LimitExceeded::new(
                Limit::Handles,
                self.budget.handles,
                Some(self.budget.handles + 1),
            )),
            other => HostError::from(other),
        })
    }
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

/// What a run's store may allocate: linear memory across all the guest's memories, and the
/// tenant's share of instances, memories and tables (the pooling allocator checks those when a
/// plugin loads; this checks them when it allocates on demand).
pub(crate) struct StoreLimits {
    max_memory_bytes: u64,
    memory_bytes: u64,
    share: TenantShare,
}

impl StoreLimits {
    /// Linear memory the guest grew to, across its memories (it never shrinks: its peak).
    pub(crate) fn memory_bytes(&self) -> u64 {
        self.memory_bytes
    }
}

/// Table elements a guest may grow one table to: far beyond what a Rust guest needs, finite for
/// an evil one.
const MAX_TABLE_ELEMENTS: usize = 1 << 20;

impl ResourceLimiter for StoreLimits {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let total = self
            .memory_bytes
            .saturating_add(desired.saturating_sub(current) as u64);
        if total > self.max_memory_bytes {
            return Err(wasmtime::Error::new(LimitExceeded::new(
                Limit::Memory,
                self.max_memory_bytes,
                Some(total),
            )));
        }
        self.memory_bytes = total;
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= MAX_TABLE_ELEMENTS)
    }

    fn instances(&self) -> usize {
        self.share.core_instances as usize
    }

    fn memories(&self) -> usize {
        self.share.memories as usize
    }

    fn tables(&self) -> usize {
        self.share.tables as usize
    }
}

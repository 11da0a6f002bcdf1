//! The one store-data struct of a run: everything a guest's host calls can reach.

use std::sync::Arc;

use wasmtime::ResourceLimiter;
use wasmtime::component::ResourceTable;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use crate::budget::{Budget, Counter, Limit, LimitExceeded, Usage};
use crate::error::HostError;
use crate::gate::Gate;
use crate::output::LogBuffer;
use crate::source::DatasetSource;

/// A report the guest committed; published by the caller only if the run succeeds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StagedReport {
    pub tenant: String,
    pub bytes: Vec<u8>,
}

pub struct HostState {
    pub(crate) wasi: WasiCtx,
    pub(crate) table: ResourceTable,
    pub(crate) gate: Gate,
    pub(crate) budget: Budget,
    pub(crate) usage: Usage,
    pub(crate) memory: MemoryLimiter,
    /// The first budget that ran out; once set, every host call traps.
    pub(crate) tripped: Option<LimitExceeded>,
    pub(crate) datasets: Arc<dyn DatasetSource>,
    pub(crate) staged: Vec<StagedReport>,
    pub(crate) log: LogBuffer,
    /// Dataset handles currently open (bounded by `budget.open_datasets`).
    pub(crate) open_datasets: u64,
}

impl HostState {
    /// Counts one host call; fails with the typed limit when the budget is spent, or with a trap
    /// when an earlier limit already ended the run.
    pub(crate) fn enter(&mut self) -> Result<(), HostError> {
        if let Some(limit) = &self.tripped {
            return Err(HostError::Host(wasmtime::Error::new(limit.clone())));
        }
        self.usage
            .charge(&self.budget, Counter::HostCalls, 1)
            .map_err(HostError::Limit)
    }

    /// [`enter`](Self::enter) for functions with no error channel: every failure traps.
    pub(crate) fn enter_or_trap(&mut self) -> wasmtime::Result<()> {
        self.enter().map_err(|e| match e {
            HostError::Limit(limit) => self.trip(limit),
            HostError::Host(e) => e,
            other => wasmtime::format_err!("unexpected host error: {other:?}"),
        })
    }

    /// Charges `amount` to `counter`, ending the run if the budget is spent.
    pub(crate) fn charge(&mut self, counter: Counter, amount: u64) -> Result<(), HostError> {
        self.usage
            .charge(&self.budget, counter, amount)
            .map_err(HostError::Limit)
    }

    /// Records that `limit` ended the run and returns the trap that says so.
    pub(crate) fn trip(&mut self, limit: LimitExceeded) -> wasmtime::Error {
        self.tripped.get_or_insert(limit.clone());
        wasmtime::Error::new(limit)
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

/// Caps linear memory at the run's budget; exceeding it traps with [`LimitExceeded`].
pub(crate) struct MemoryLimiter {
    pub(crate) max_bytes: u64,
}

/// Table elements a guest may grow to: far beyond what a Rust guest needs, finite for an evil one.
const MAX_TABLE_ELEMENTS: usize = 1 << 20;

impl ResourceLimiter for MemoryLimiter {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired as u64 > self.max_bytes {
            return Err(wasmtime::Error::new(LimitExceeded {
                limit: Limit::Memory,
                value: self.max_bytes,
                requested: desired as u64,
            }));
        }
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
}

impl Budget {
    pub(crate) fn epoch_ticks(&self, tick: std::time::Duration) -> u64 {
        (self.cpu_time.as_nanos() / tick.as_nanos().max(1)).max(1) as u64
    }
}

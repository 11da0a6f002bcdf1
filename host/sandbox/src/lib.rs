//! Runs tenant transforms as Wasmtime components whose only powers are Sluice's host functions,
//! every data call passing one scope gate.
//!
//! Flow: [`Sandbox::load_file`] compiles and links a component once ([`Transform`]); each
//! [`Transform::run`] instantiates it under a [`Writ`] (the agent's scopes) and a [`Budget`],
//! reads through a [`DatasetSource`], and returns a [`RunOutcome`] whose staged reports the caller
//! publishes only if the run succeeded. [`Transform::spawn`] does the same on a thread of its own
//! behind a watchdog.
//!
//! Everything a guest hands the host is bounded ([`bounds`], `call-bytes`), every guest string
//! shown to a person is a [`GuestText`], and every way a run ends is one [`RunFailure`].

mod bindings;
pub mod bounds;
pub mod columns;
mod error;
mod failure;
mod gate;
mod host;
mod interrupt;
mod linker;
pub mod lowered;
mod output;
pub mod panics;
pub mod report_json;
mod runtime;
mod source;
mod state;
mod watchdog;

pub use bindings::sluice::etl::columns::{
    Batch, Column, ColumnData, ColumnType, ColumnValues, DecimalType,
};
pub use bounds::{Figure, Summary, is_plain_name};
pub use failure::RunFailure;
pub use gate::{AuditSink, Decision, Denied, Gate, GateEvent, GateOverflow, HostCall, Writ};
pub use host::datasets::MAX_BATCH_ROWS;
pub use host::tables::StagedTable;
pub use interrupt::{Interrupt, Interrupted};
pub use linker::WasiSurface;
pub use output::{LogLevel, LogLine, MAX_MESSAGE_BYTES};
pub use runtime::{
    RunOutcome, RunRequest, Sandbox, SandboxOptions, TenantShare, Transform, missing_plugin_hint,
};
pub use sluice_budget::{
    Budget, Counter, LIMITS, Limit, LimitExceeded, LimitSpec, Usage, limits_table,
};
pub use sluice_compiled_cache::{
    CacheEntry, CacheError, CacheStats, CodeOrigin, CompiledCache, NotStored,
};
pub use sluice_text::{GuestText, cut, escape};
pub use source::{
    BATCH_BYTES, BATCH_CELLS, BATCH_ROWS, DataType, DatasetCursor, DatasetRef, DatasetSource,
    Field, Held, NoDatasets, ReadBounds, ReadContext, RecordBatch, Schema, SchemaRef, SourceError,
    TimeUnit, batch_rows, projection,
};
pub use state::StagedReport;
pub use watchdog::{RunTicket, WATCHDOG_GRACE};

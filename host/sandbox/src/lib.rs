//! Runs tenant transforms as Wasmtime components whose only powers are Sluice's host functions,
//! every data call passing one scope gate.
//!
//! Flow: [`Sandbox::load_file`] compiles and links a component once ([`Transform`]); each
//! [`Transform::run`] instantiates it under a [`Writ`] (the agent's scopes) and a [`Budget`],
//! reads through a [`DatasetSource`], and returns a [`RunOutcome`] whose staged reports the caller
//! publishes only if the run succeeded.

mod bindings;
mod budget;
mod error;
mod gate;
mod host;
mod linker;
mod output;
mod runtime;
mod source;
mod state;

pub use bindings::{Figure, Summary};
pub use budget::{Budget, Counter, Limit, LimitExceeded, Usage};
pub use gate::{AuditSink, Decision, Denied, Gate, GateEvent, HostCall, Writ};
pub use host::datasets::MAX_BATCH_ROWS;
pub use output::{LogLevel, LogLine, MAX_MESSAGE_BYTES};
pub use runtime::{RunFailure, RunOutcome, RunRequest, Sandbox, SandboxOptions, Transform};
pub use source::{
    Batch, Column, ColumnData, ColumnType, ColumnValues, DatasetCursor, DatasetSource, NoDatasets,
    SourceError, batch_bytes,
};
pub use state::StagedReport;

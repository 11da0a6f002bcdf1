//! The night: tenants' configuration, one session per tenant (agent, sandbox run, publish,
//! release), the keeper that renews and watches agents, the isolation proof, shards of a night
//! and their summaries. The data plane is `sluice-data`, the audit chain `sluice-audit`.

mod agents;
pub mod broker;
pub mod config;
mod isolation;
pub mod keeper;
pub mod local_run;
pub mod lock;
pub mod locker;
pub mod metrics;
pub mod nightly;
pub mod outcome;
pub mod plugin_source;
pub mod plugins;
pub mod record;
mod run_logins;
pub mod session;
pub mod shadow;
pub mod shards;
pub mod vet;

pub use local_run::{LocalRun, LocalRunResult, run_local};

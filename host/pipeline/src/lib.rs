//! Sluice's data side and the nightly pipeline: tenant datasets in SQLite, atomic report files,
//! the hash-chained audit trail, demo data, and the runs that tie them to the sandbox.

pub mod audit;
pub mod broker;
pub mod config;
mod isolation;
pub mod keeper;
pub mod local_run;
pub mod metrics;
pub mod nightly;
pub mod outcome;
pub mod outputs;
pub mod plugins;
pub mod rate_limit;
pub mod report_dir;
pub mod seed;
pub mod session;
pub mod shards;
pub mod sources;
pub mod storage;

pub use audit::{AuditLog, Verdict};
pub use local_run::{LocalRun, LocalRunResult, run_local};
pub use report_dir::ReportDir;
pub use seed::{
    DEMO_TENANTS, DemoTenant, SEED_SCALE, SeedScale, seed_demo, seed_demo_files, seed_demo_postgres,
};
pub use sources::SqliteSource;
pub use sources::export::FileFormat;
pub use storage::Location;

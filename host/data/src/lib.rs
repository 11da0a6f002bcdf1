//! Sluice's data plane: where tenants keep their data ([`sources`], each a bounded
//! `DatasetSource`), where their reports go ([`report_dir`]), and how a run's outputs are
//! published, all of them or none ([`outputs`]); how Sluice logs in to a tenant's PostgreSQL
//! ([`pg_login`]), with logins minted per run where the tenant asks ([`logins`]).

pub mod logins;
pub mod outputs;
pub mod pg_login;
pub mod report_dir;
pub mod sources;

pub use outputs::files::FileFormat;
pub use pg_login::{PgLogin, RunLogin};
pub use report_dir::ReportDir;
pub use sources::SqliteSource;

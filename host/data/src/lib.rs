//! Sluice's data plane: where tenants keep their data ([`sources`], each a bounded
//! `DatasetSource`), where their reports go ([`report_dir`]), and how a run's outputs are
//! published, all of them or none ([`outputs`]).

pub mod outputs;
pub mod report_dir;
pub mod sources;

pub use outputs::files::FileFormat;
pub use report_dir::ReportDir;
pub use sources::SqliteSource;

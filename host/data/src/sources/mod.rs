//! Where tenants keep their data, each behind the sandbox's one `DatasetSource` trait and each
//! yielding Arrow record batches of only the columns a transform named: SQLite databases,
//! PostgreSQL schemas, Parquet and CSV files. [`CatalogSource`] routes a tenant's datasets to
//! the source its configuration names.

mod builder;
pub mod catalog;
mod csv;
pub mod csv_types;
pub mod files;
pub mod layout;
mod parquet;
mod parquet_ahead;
pub mod postgres;
pub mod sqlite;
mod thrift;
pub mod typed;

pub use catalog::CatalogSource;
pub use layout::LayoutSource;
pub use sqlite::SqliteSource;

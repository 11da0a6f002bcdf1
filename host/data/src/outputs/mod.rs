//! Publishing a run's outputs, all of them or none: its output tables (Parquet files beside its
//! reports, or tables in its PostgreSQL schema) and its report.
//!
//! Everything that can fail because of what the run wrote happens before anything is visible:
//! every table is encoded and every file written in full (on disk synced under a temporary name
//! beside its target, on object storage held in memory). Then PostgreSQL tables are swapped in in
//! one transaction, then files are renamed (or PUT) over their targets, tables first and the
//! report last, so a visible report is never ahead of its tables. What can still fail after the
//! first file is visible is the machine or the network (a rename, a PUT); then
//! [`PublishFailure::published`] says exactly what was published, and the caller's `--json` and
//! audit say the same.

pub mod files;
pub mod postgres_tables;

use sluice_sandbox::{StagedReport, StagedTable};
use sluice_storage::Location;

use crate::pg_login::PgLogin;
use crate::report_dir::{ReportDir, StagedFile};
use postgres_tables::replace_tables;

/// Where a tenant's output tables are published.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum OutputStore {
    /// `<reports>/<tenant>/<resource>/<name>.parquet`.
    #[default]
    Parquet,
    /// Table `<resource>_<name>` of `schema`, written with `login`.
    Postgres { login: PgLogin, schema: String },
}

impl OutputStore {
    /// This store as a run that logs in with `login` writes it (its minted login, where the
    /// tenant's is minted per run).
    pub fn with_login(&self, login: Option<&PgLogin>) -> OutputStore {
        match (self, login) {
            (OutputStore::Postgres { schema, .. }, Some(login)) => OutputStore::Postgres {
                login: login.clone(),
                schema: schema.clone(),
            },
            _ => self.clone(),
        }
    }
}

/// An output table a run published.
#[derive(Clone, Debug, serde::Serialize)]
pub struct PublishedTable {
    /// `<resource>/<name>`.
    pub name: String,
    /// Where it went: a file path, or `postgres <schema>.<table>`.
    pub location: String,
    pub rows: u64,
}

/// One output made visible.
#[derive(Clone, Debug)]
pub enum Published {
    Table(PublishedTable),
    Report { location: Location, bytes: u64 },
}

/// Publishing stopped part way (or before anything): what was published, and why it stopped.
#[derive(Debug)]
pub struct PublishFailure {
    pub published: Vec<Published>,
    pub error: anyhow::Error,
}

/// Publishes a run's `tables` (to `store`) and `reports` (to `reports`), all or none as the
/// module documentation says; `on_published` hears of each as it becomes visible. Blocking:
/// call off the async runtime.
pub fn publish_run(
    store: &OutputStore,
    reports: &ReportDir,
    tables: &[StagedTable],
    staged_reports: &[StagedReport],
    mut on_published: impl FnMut(&Published),
) -> Result<Vec<Published>, PublishFailure> {
    let nothing = |error: anyhow::Error| PublishFailure {
        published: Vec::new(),
        error,
    };
    // Everything staged first: a failure here leaves every previous output as it was.
    let mut files: Vec<(StagedFile, Option<&StagedTable>, u64)> = Vec::new();
    if let OutputStore::Parquet = store {
        for table in tables {
            let staged = reports.stage_table(table).map_err(nothing)?;
            files.push((staged, Some(table), 0));
        }
    }
    for report in staged_reports {
        let bytes = report.bytes.len() as u64;
        let staged = reports
            .stage_report(&report.tenant, report.bytes.clone())
            .map_err(nothing)?;
        files.push((staged, None, bytes));
    }
    let mut published = Vec::new();
    if let OutputStore::Postgres { login, schema } = store
        && !tables.is_empty()
    {
        let names: Vec<String> = tables
            .iter()
            .map(|t| format!("{}_{}", t.resource, t.name))
            .collect();
        let swapped = login.connect().and_then(|mut client| {
            replace_tables(
                &mut client,
                schema,
                tables
                    .iter()
                    .zip(&names)
                    .map(|(t, name)| (name.as_str(), &t.schema, t.batches.as_slice())),
            )
        });
        // Nothing is visible yet: the staged files are dropped, and removed with them.
        swapped.map_err(nothing)?;
        for (table, name) in tables.iter().zip(&names) {
            let item = Published::Table(PublishedTable {
                name: format!("{}/{}", table.resource, table.name),
                location: format!("postgres {schema}.{name}"),
                rows: table.rows() as u64,
            });
            on_published(&item);
            published.push(item);
        }
    }
    for (file, table, bytes) in files {
        let location = match file.publish() {
            Ok(location) => location,
            Err(error) => return Err(PublishFailure { published, error }),
        };
        let item = match table {
            Some(table) => Published::Table(PublishedTable {
                name: format!("{}/{}", table.resource, table.name),
                location: location.to_string(),
                rows: table.rows() as u64,
            }),
            None => Published::Report { location, bytes },
        };
        on_published(&item);
        published.push(item);
    }
    Ok(published)
}

//! Publishing a run's output tables where its tenant's configuration says: a Parquet file
//! beside its reports, or a table in its PostgreSQL schema; either way whole or not at all.

use sluice_sandbox::StagedTable;

use crate::config::OutputStore;
use crate::report_dir::ReportDir;
use crate::sources::postgres::connect;
use crate::sources::postgres_load::replace_table;

/// Publishes `table` to `store` (blocking: call off the async runtime); returns where it went,
/// for people: a file path, or `postgres <schema>.<table>`.
pub fn publish_table(
    store: &OutputStore,
    reports: &ReportDir,
    table: &StagedTable,
) -> anyhow::Result<String> {
    match store {
        OutputStore::Parquet => Ok(reports.publish_table(table)?.to_string()),
        OutputStore::Postgres { url_env, schema } => {
            let name = format!("{}_{}", table.resource, table.name);
            let mut client = connect(url_env).map_err(anyhow::Error::msg)?;
            replace_table(
                &mut client,
                schema,
                &name,
                &table.schema,
                table.batches.iter().cloned().map(Ok),
            )?;
            Ok(format!("postgres {schema}.{name}"))
        }
    }
}

//! Reports and output tables, on disk or in object storage, each replaced atomically:
//! `<root>/<tenant>/latest.json` and `<root>/<tenant>/<resource>/<name>.parquet`.
//!
//! A reader sees the old file or the new one, never a mix, and a failure at any point leaves the
//! previous file intact (see [`Location::put`]).

use anyhow::Context as _;

use sluice_sandbox::{StagedTable, is_plain_name};

use crate::sources::export::write_parquet;
use crate::storage::Location;

#[derive(Clone, Debug)]
pub struct ReportDir {
    root: Location,
}

impl ReportDir {
    pub fn new(root: impl Into<Location>) -> ReportDir {
        ReportDir { root: root.into() }
    }

    pub fn root(&self) -> &Location {
        &self.root
    }

    /// Where `tenant`'s latest report lives.
    pub fn report_path(&self, tenant: &str) -> Location {
        self.root.child(tenant).child("latest.json")
    }

    /// Where `tenant`'s output table `name` of `resource` lives.
    pub fn table_path(&self, tenant: &str, resource: &str, name: &str) -> Location {
        self.root
            .child(tenant)
            .child(resource)
            .child(&format!("{name}.parquet"))
    }

    /// Atomically replaces `tenant`'s latest report with `bytes`; returns its path.
    /// (An owned `Vec` is written without another copy.)
    pub fn publish(&self, tenant: &str, bytes: impl Into<Vec<u8>>) -> anyhow::Result<Location> {
        anyhow::ensure!(
            is_plain_name(tenant),
            "tenant name '{tenant}' cannot name a report directory"
        );
        let report = self.report_path(tenant);
        report.put(bytes.into())?;
        Ok(report)
    }

    /// Atomically replaces output table `table` with its rows as one Parquet file; returns its
    /// path.
    pub fn publish_table(&self, table: &StagedTable) -> anyhow::Result<Location> {
        for (kind, name) in [
            ("tenant", &table.tenant),
            ("resource", &table.resource),
            ("table", &table.name),
        ] {
            anyhow::ensure!(
                is_plain_name(name),
                "{kind} name '{name}' cannot name an output file"
            );
        }
        let bytes = parquet_bytes(table)
            .with_context(|| format!("encoding output table '{}' as Parquet", table.name))?;
        let file = self.table_path(&table.tenant, &table.resource, &table.name);
        file.put(bytes)?;
        Ok(file)
    }
}

/// `table`'s rows as a Parquet file: the same rows always give the same bytes.
pub fn parquet_bytes(table: &StagedTable) -> anyhow::Result<Vec<u8>> {
    write_parquet(
        Vec::new(),
        table.schema.clone(),
        table.batches.iter().cloned().map(Ok),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn publish_replaces_the_tenants_latest_report() {
        let dir = tempfile::tempdir().unwrap();
        let reports = ReportDir::new(dir.path());
        reports.publish("bank", b"{\"v\":1}").unwrap();
        let report = reports.publish("bank", b"{\"v\":2}").unwrap();
        assert_eq!(
            report.as_local(),
            Some(dir.path().join("bank/latest.json").as_path())
        );
        assert_eq!(report.get().unwrap().unwrap(), b"{\"v\":2}");
    }

    #[test]
    fn publish_refuses_path_like_tenants() {
        let dir = tempfile::tempdir().unwrap();
        let err = ReportDir::new(dir.path())
            .publish("../etc", b"{}")
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "tenant name '../etc' cannot name a report directory"
        );
    }
}

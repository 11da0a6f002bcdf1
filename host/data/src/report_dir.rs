//! Reports and output tables, on disk or in object storage, each replaced atomically:
//! `<root>/<tenant>/latest.json` and `<root>/<tenant>/<resource>/<name>.parquet`.
//!
//! A reader sees the old file or the new one, never a mix, and a failure at any point leaves the
//! previous file intact. On disk the root is the operator's and everything beneath it is
//! resolved through a [`Jail`]: a tenant directory or file that is a link (planted to overwrite
//! another tenant's report, or a file elsewhere) is replaced or refused, never followed.
//!
//! Writing is two steps, so a run can have several files ready before any becomes visible:
//! [`ReportDir::stage_report`] / [`ReportDir::stage_table`] write the whole file (on disk, synced
//! under a temporary name beside its target; on object storage, in memory), and
//! [`StagedFile::publish`] makes it visible (a rename, or one PUT).

use std::path::Path;

use anyhow::Context as _;

use sluice_jail::{Jail, Staged};
use sluice_sandbox::{StagedTable, is_plain_name};

use crate::outputs::files::write_parquet;
use sluice_storage::Location;

#[derive(Clone, Debug)]
pub struct ReportDir {
    root: Location,
}

/// A file written in full and not yet visible at its location.
#[derive(Debug)]
pub enum StagedFile {
    Local { staged: Staged, location: Location },
    Object { location: Location, bytes: Vec<u8> },
}

impl StagedFile {
    /// Where it becomes visible.
    pub fn location(&self) -> &Location {
        match self {
            StagedFile::Local { location, .. } | StagedFile::Object { location, .. } => location,
        }
    }

    /// Makes it visible, replacing what was there; returns where.
    pub fn publish(self) -> anyhow::Result<Location> {
        match self {
            StagedFile::Local { staged, location } => {
                staged
                    .publish()
                    .with_context(|| format!("writing {location}"))?;
                Ok(location)
            }
            StagedFile::Object { location, bytes } => {
                location.put(bytes)?;
                Ok(location)
            }
        }
    }
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

    /// `bytes` written as the file `name` in `dir` (a path beneath the root), to be published.
    fn stage(&self, dir: &Path, name: &str, bytes: Vec<u8>) -> anyhow::Result<StagedFile> {
        let mut location = self.root.clone();
        for part in dir.iter() {
            location = location.child(&part.to_string_lossy());
        }
        let location = location.child(name);
        match &self.root {
            Location::Local(root) => {
                let jail = Jail::create(root)
                    .with_context(|| format!("opening the reports directory {}", root.display()))?;
                let dir = jail
                    .create_sub(dir)
                    .with_context(|| format!("writing {location}"))?;
                let staged = dir
                    .stage(name, &bytes, 0o644)
                    .with_context(|| format!("writing {location}"))?;
                Ok(StagedFile::Local { staged, location })
            }
            Location::Object(_) => Ok(StagedFile::Object { location, bytes }),
        }
    }

    /// `tenant`'s report, staged to replace its latest report.
    pub fn stage_report(&self, tenant: &str, bytes: Vec<u8>) -> anyhow::Result<StagedFile> {
        anyhow::ensure!(
            is_plain_name(tenant),
            "tenant name '{tenant}' cannot name a report directory"
        );
        self.stage(Path::new(tenant), "latest.json", bytes)
    }

    /// Output table `table` as one Parquet file, staged to replace the previous one.
    pub fn stage_table(&self, table: &StagedTable) -> anyhow::Result<StagedFile> {
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
        let dir = Path::new(&table.tenant).join(&table.resource);
        self.stage(&dir, &format!("{}.parquet", table.name), bytes)
    }

    /// Atomically replaces `tenant`'s candidate report (a shadow run's, beside the latest
    /// report and never in its place) with `bytes`; returns its path.
    pub fn publish_candidate(&self, tenant: &str, bytes: Vec<u8>) -> anyhow::Result<Location> {
        anyhow::ensure!(
            is_plain_name(tenant),
            "tenant name '{tenant}' cannot name a report directory"
        );
        self.stage(Path::new(tenant), "candidate.json", bytes)?
            .publish()
    }

    /// Atomically replaces `tenant`'s latest report with `bytes`; returns its path.
    /// (An owned `Vec` is written without another copy.)
    pub fn publish(&self, tenant: &str, bytes: impl Into<Vec<u8>>) -> anyhow::Result<Location> {
        self.stage_report(tenant, bytes.into())?.publish()
    }

    /// Atomically replaces output table `table` with its rows as one Parquet file; returns its
    /// path.
    pub fn publish_table(&self, table: &StagedTable) -> anyhow::Result<Location> {
        self.stage_table(table)?.publish()
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
    fn a_tenant_directory_that_is_a_link_is_not_followed() {
        let dir = tempfile::tempdir().unwrap();
        let reports = ReportDir::new(dir.path());
        reports.publish("bank", b"{\"bank\":1}").unwrap();
        // Mallory's report directory points at the bank's.
        std::os::unix::fs::symlink(dir.path().join("bank"), dir.path().join("mallory")).unwrap();
        let err = reports.publish("mallory", b"{\"forged\":1}").unwrap_err();
        assert!(
            format!("{err:#}").contains("leads through a symbolic link"),
            "{err:#}"
        );
        assert_eq!(
            std::fs::read(dir.path().join("bank/latest.json")).unwrap(),
            b"{\"bank\":1}"
        );
    }

    #[test]
    fn a_staged_report_is_invisible_until_published_and_gone_if_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let reports = ReportDir::new(dir.path());
        reports.publish("bank", b"old").unwrap();
        let staged = reports.stage_report("bank", b"new".to_vec()).unwrap();
        assert_eq!(
            std::fs::read(dir.path().join("bank/latest.json")).unwrap(),
            b"old"
        );
        drop(staged);
        let names: Vec<_> = std::fs::read_dir(dir.path().join("bank"))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(names, ["latest.json"]);
        reports
            .stage_report("bank", b"new".to_vec())
            .unwrap()
            .publish()
            .unwrap();
        assert_eq!(
            std::fs::read(dir.path().join("bank/latest.json")).unwrap(),
            b"new"
        );
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

//! Reports and output tables on disk, replaced atomically: `<root>/<tenant>/latest.json` and
//! `<root>/<tenant>/<resource>/<name>.parquet`.
//!
//! Each file is written to a temporary file in the same directory, flushed to disk, renamed over
//! the old one, and the directory is flushed: a reader sees the old file or the new one, never a
//! mix, and a crash at any point leaves the previous file intact.

use std::fs::{self, File};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::Context as _;

use sluice_sandbox::{StagedTable, is_plain_name};

use crate::sources::export::write_parquet;

#[derive(Clone, Debug)]
pub struct ReportDir {
    root: PathBuf,
}

static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

impl ReportDir {
    pub fn new(root: impl Into<PathBuf>) -> ReportDir {
        ReportDir { root: root.into() }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Where `tenant`'s latest report lives.
    pub fn report_path(&self, tenant: &str) -> PathBuf {
        self.root.join(tenant).join("latest.json")
    }

    /// Where `tenant`'s output table `name` of `resource` lives.
    pub fn table_path(&self, tenant: &str, resource: &str, name: &str) -> PathBuf {
        self.root
            .join(tenant)
            .join(resource)
            .join(format!("{name}.parquet"))
    }

    /// Atomically replaces `tenant`'s latest report with `bytes`; returns its path.
    pub fn publish(&self, tenant: &str, bytes: &[u8]) -> anyhow::Result<PathBuf> {
        anyhow::ensure!(
            is_plain_name(tenant),
            "tenant name '{tenant}' cannot name a report directory"
        );
        write_atomically(&self.root.join(tenant), "latest.json", bytes)
    }

    /// Atomically replaces output table `table` with its rows as one Parquet file; returns its
    /// path.
    pub fn publish_table(&self, table: &StagedTable) -> anyhow::Result<PathBuf> {
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
        write_atomically(
            &self.root.join(&table.tenant).join(&table.resource),
            &format!("{}.parquet", table.name),
            &bytes,
        )
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

/// Writes `bytes` to `dir/name` through a temporary file, fsync and rename; returns the path.
pub(crate) fn write_atomically(dir: &Path, name: &str, bytes: &[u8]) -> anyhow::Result<PathBuf> {
    fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let dest = dir.join(name);
    let tmp = dir.join(format!(
        ".{name}.{}.{}.tmp",
        std::process::id(),
        TEMP_COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    let written = (|| -> std::io::Result<()> {
        let mut file = File::create(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        fs::rename(&tmp, &dest)?;
        File::open(dir)?.sync_all()
    })();
    if let Err(e) = written {
        let _ = fs::remove_file(&tmp);
        return Err(e).with_context(|| format!("writing {}", dest.display()));
    }
    Ok(dest)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn publish_replaces_and_leaves_no_temp_files() {
        let dir = tempfile::tempdir().unwrap();
        let reports = ReportDir::new(dir.path());
        reports.publish("bank", b"{\"v\":1}").unwrap();
        let path = reports.publish("bank", b"{\"v\":2}").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"{\"v\":2}");
        let names: Vec<_> = fs::read_dir(dir.path().join("bank"))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(names, ["latest.json"]);
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

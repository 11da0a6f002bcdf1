//! The conventional layout of one data directory, which `sluice data seed` writes and `sluice
//! try --data` reads: `<root>/<tenant>/<resource>.db` (SQLite, a table per dataset) and
//! `<root>/<tenant>/<resource>/<dataset>.parquet` or `.csv`.

use std::path::{Path, PathBuf};

use sluice_sandbox::{DatasetCursor, DatasetSource, SourceError};

use super::files::{open_csv, open_parquet};
use super::sqlite::SqliteSource;
use super::typed::check_name;

#[derive(Clone, Debug)]
pub struct LayoutSource {
    sqlite: SqliteSource,
}

impl LayoutSource {
    pub fn new(root: impl Into<PathBuf>) -> LayoutSource {
        LayoutSource {
            sqlite: SqliteSource::new(root),
        }
    }

    pub fn root(&self) -> &Path {
        self.sqlite.root()
    }

    /// The directory of `tenant`'s `resource` files.
    fn resource_dir(&self, tenant: &str, resource: &str) -> Result<PathBuf, SourceError> {
        check_name("tenant", tenant)?;
        check_name("resource", resource)?;
        Ok(self.root().join(tenant).join(resource))
    }
}

impl DatasetSource for LayoutSource {
    fn list(&self, tenant: &str, resource: &str) -> Result<Vec<String>, SourceError> {
        let mut names = self.sqlite.list(tenant, resource)?;
        if let Ok(entries) = std::fs::read_dir(self.resource_dir(tenant, resource)?) {
            for entry in entries.flatten() {
                let path = entry.path();
                let is_data = path
                    .extension()
                    .is_some_and(|e| e == "parquet" || e == "csv");
                let stem = path.file_stem().and_then(|s| s.to_str());
                if let (true, Some(stem)) = (is_data, stem)
                    && sluice_sandbox::is_plain_name(stem)
                {
                    names.push(stem.to_string());
                }
            }
        }
        names.sort();
        names.dedup();
        Ok(names)
    }

    fn open(
        &self,
        tenant: &str,
        resource: &str,
        name: &str,
        columns: Option<&[String]>,
    ) -> Result<Box<dyn DatasetCursor>, SourceError> {
        check_name("dataset", name)?;
        let dir = self.resource_dir(tenant, resource)?;
        let parquet = dir.join(format!("{name}.parquet"));
        if parquet.is_file() {
            return open_parquet(name, &parquet, columns);
        }
        let csv = dir.join(format!("{name}.csv"));
        if csv.is_file() {
            return open_csv(name, &csv, columns);
        }
        self.sqlite.open(tenant, resource, name, columns)
    }
}

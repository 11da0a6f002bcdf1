//! The conventional layout of one data directory, which `sluice data seed` writes and `sluice
//! try --data` reads: `<root>/<tenant>/<resource>.db` (SQLite, a table per dataset) and
//! `<root>/<tenant>/<resource>/<dataset>.parquet` or `.csv`.
//!
//! The root is the operator's; everything beneath it is the tenants', so every name is
//! resolved beneath the root as a [`Jail`]: a tenant's link (to another tenant's directory, to
//! `/proc`) is refused, never followed, and a listing shows only regular files.

use std::path::{Path, PathBuf};

use sluice_jail::Jail;
use sluice_sandbox::{DatasetCursor, DatasetRef, DatasetSource, ReadContext, SourceError};

use super::files::{FileKind, jail_error, open_file};
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

    /// The directory of `tenant`'s `resource` files, relative to the root.
    fn resource_dir(&self, tenant: &str, resource: &str) -> Result<PathBuf, SourceError> {
        check_name("tenant", tenant)?;
        check_name("resource", resource)?;
        Ok(Path::new(tenant).join(resource))
    }
}

impl DatasetSource for LayoutSource {
    fn list(&self, tenant: &str, resource: &str) -> Result<Vec<String>, SourceError> {
        let mut names = self.sqlite.list(tenant, resource)?;
        let dir = self.resource_dir(tenant, resource)?;
        let files = Jail::open(self.root())
            .ok()
            .and_then(|root| root.sub(&dir).ok())
            .and_then(|dir| dir.names().ok())
            .unwrap_or_default();
        // Listed whatever they are: a link or a FIFO named like data is refused, with its
        // reason, when it is opened, rather than silently missing.
        for (file, _regular) in files {
            let path = Path::new(&file);
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
        names.sort();
        names.dedup();
        Ok(names)
    }

    fn open(
        &self,
        dataset: &DatasetRef,
        columns: Option<&[String]>,
        cx: &ReadContext,
    ) -> Result<Box<dyn DatasetCursor>, SourceError> {
        let name = dataset.name();
        let dir = self.resource_dir(dataset.tenant(), dataset.resource())?;
        if let Ok(root) = Jail::open(self.root()) {
            for (kind, extension) in [(FileKind::Parquet, "parquet"), (FileKind::Csv, "csv")] {
                let rel = dir.join(format!("{name}.{extension}"));
                match root.open_file(&rel) {
                    Ok(_) => return open_file(kind, name, &root, &rel, columns, cx),
                    Err(e) if e.is_not_found() => {}
                    // There, but a link, a FIFO, a directory: refused, not skipped.
                    Err(e) => return Err(jail_error(name, &rel, e)),
                }
            }
        }
        self.sqlite.open(dataset, columns, cx)
    }
}

//! Tenant datasets in files (Parquet, CSV), opened through the tenant's directory as a
//! [`Jail`]: no symbolic link, `..`, hard link, FIFO or mount crossing leads a read anywhere
//! else. Errors name the dataset and its file, never where the host keeps it.
//!
//! Also the `.types` sidecar's grammar, which CSV files take their column types from.

use std::path::Path;

use sluice_jail::{Jail, JailError};
use sluice_sandbox::{DatasetCursor, ReadContext, SourceError};

use super::csv::open_csv;
use super::csv_types::types_path;
use super::parquet::open_parquet;

/// The file formats a dataset may be in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileKind {
    Parquet,
    Csv,
}

/// How a file is named in errors: its name, not where the host keeps it.
pub(crate) fn shown(path: &Path) -> String {
    path.file_name()
        .map(|n| sluice_sandbox::escape(&n.to_string_lossy()).into_owned())
        .unwrap_or_default()
}

/// `dataset 'orders' (orders.csv)`: how errors name a file-backed dataset.
pub(crate) fn labelled(dataset: &str, path: &Path) -> String {
    format!("dataset '{dataset}' ({})", shown(path))
}

/// A refusal or failure of the jail, worded for the dataset.
pub(crate) fn jail_error(dataset: &str, path: &Path, e: JailError) -> SourceError {
    SourceError::Invalid(format!("{}: {e}", labelled(dataset, path)))
}

/// Opens dataset `dataset`, the file `rel` beneath `jail`, as `kind`.
pub fn open_file(
    kind: FileKind,
    dataset: &str,
    jail: &Jail,
    rel: &Path,
    columns: Option<&[String]>,
    cx: &ReadContext,
) -> Result<Box<dyn DatasetCursor>, SourceError> {
    let label = labelled(dataset, rel);
    let file = jail
        .open_file(rel)
        .map_err(|e| jail_error(dataset, rel, e))?;
    match kind {
        FileKind::Parquet => open_parquet(&label, file, columns, cx),
        FileKind::Csv => {
            let sidecar_rel = types_path(rel);
            let sidecar = match jail.open_file(&sidecar_rel) {
                Ok(file) => Some((labelled(dataset, &sidecar_rel), file)),
                Err(e) if e.is_not_found() => None,
                Err(e) => return Err(jail_error(dataset, &sidecar_rel, e)),
            };
            open_csv(&label, file, sidecar, columns, cx)
        }
    }
}

/// A dataset file the configuration names: its directory is the jail, its name the file.
pub fn open_listed(
    kind: FileKind,
    dataset: &str,
    path: &Path,
    columns: Option<&[String]>,
    cx: &ReadContext,
) -> Result<Box<dyn DatasetCursor>, SourceError> {
    let (dir, name) = split(path);
    let jail = Jail::open(dir).map_err(|e| {
        SourceError::Invalid(format!("{}: its directory: {e}", labelled(dataset, path)))
    })?;
    open_file(kind, dataset, &jail, name, columns, cx)
}

/// `path` as (its directory, its file name).
pub(crate) fn split(path: &Path) -> (&Path, &Path) {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path.file_name().map_or(path, Path::new);
    (dir, name)
}

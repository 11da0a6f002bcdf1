//! Tenant datasets in files (Parquet, CSV), opened through the tenant's directory as a
//! [`Jail`]: no symbolic link, `..`, hard link, FIFO or mount crossing leads a read anywhere
//! else. Errors name the dataset and its file, never where the host keeps it.
//!
//! Also the `.types` sidecar's grammar, which CSV files take their column types from.

use std::path::{Path, PathBuf};

use sluice_jail::{Jail, JailError};
use sluice_sandbox::{DataType, DatasetCursor, ReadContext, SourceError, TimeUnit};

use super::csv::open_csv;
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

/// The sidecar that declares a CSV file's column types.
pub fn types_path(csv: &Path) -> PathBuf {
    let mut name = csv.as_os_str().to_owned();
    name.push(".types");
    PathBuf::from(name)
}

/// `int64`, `float64`, `boolean`, `text`, `binary`, `date`, `timestamp`, `timestamp(UTC)`,
/// `decimal(12,2)`: a type as the `.types` sidecar spells it.
pub fn parse_type(text: &str) -> Option<DataType> {
    let text = text.trim();
    Some(match text {
        "int64" => DataType::Int64,
        "float64" => DataType::Float64,
        "boolean" => DataType::Boolean,
        "text" => DataType::Utf8,
        "binary" => DataType::Binary,
        "date" => DataType::Date32,
        "timestamp" => DataType::Timestamp(TimeUnit::Microsecond, None),
        _ => {
            let (head, args) = text.strip_suffix(')')?.split_once('(')?;
            match head {
                "timestamp" => DataType::Timestamp(TimeUnit::Microsecond, Some(args.into())),
                "decimal" => {
                    let (p, s) = args.split_once(',')?;
                    let (p, s): (u8, i8) = (p.trim().parse().ok()?, s.trim().parse().ok()?);
                    ((1..=38).contains(&p) && s >= 0 && s as u8 <= p)
                        .then_some(DataType::Decimal128(p, s))?
                }
                _ => return None,
            }
        }
    })
}

/// A type as the `.types` sidecar spells it (the inverse of [`parse_type`]).
pub fn type_name(ty: &DataType) -> Option<String> {
    Some(match ty {
        DataType::Int64 => "int64".into(),
        DataType::Float64 => "float64".into(),
        DataType::Boolean => "boolean".into(),
        DataType::Utf8 => "text".into(),
        DataType::Binary => "binary".into(),
        DataType::Date32 => "date".into(),
        DataType::Timestamp(TimeUnit::Microsecond, None) => "timestamp".into(),
        DataType::Timestamp(TimeUnit::Microsecond, Some(tz)) => format!("timestamp({tz})"),
        DataType::Decimal128(p, s) => format!("decimal({p},{s})"),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sidecar_types_round_trip() {
        for ty in [
            DataType::Int64,
            DataType::Float64,
            DataType::Boolean,
            DataType::Utf8,
            DataType::Binary,
            DataType::Date32,
            DataType::Timestamp(TimeUnit::Microsecond, None),
            DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
            DataType::Decimal128(12, 2),
        ] {
            assert_eq!(parse_type(&type_name(&ty).unwrap()), Some(ty));
        }
        assert_eq!(parse_type("decimal(40,2)"), None);
        assert_eq!(parse_type("list<int>"), None);
    }
}

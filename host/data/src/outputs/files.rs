//! Datasets written out as files the file sources read back: Parquet, and CSV with its `.types`
//! sidecar. `sluice data seed --format parquet|csv` and output tables use these, so what Sluice
//! writes is exactly what it reads.

use std::fs::{self, File};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use parquet::arrow::ArrowWriter;
use parquet::basic::Compression;
use parquet::file::properties::WriterProperties;
use sluice_sandbox::{DatasetCursor, RecordBatch, SchemaRef};

use crate::sources::csv_types::{type_name, types_path};

/// Rows per batch when copying a dataset out.
const COPY_ROWS: usize = 65_536;

/// Writes `batches` of `schema` as one Parquet file into `out` (Snappy-compressed column
/// chunks, row groups of 1 Mi rows): the same rows always give the same bytes.
pub fn write_parquet<W: Write + Send>(
    out: W,
    schema: SchemaRef,
    batches: impl IntoIterator<Item = anyhow::Result<RecordBatch>>,
) -> anyhow::Result<W> {
    let properties = WriterProperties::builder()
        .set_compression(Compression::SNAPPY)
        .set_max_row_group_row_count(Some(1 << 20))
        .build();
    let mut writer = ArrowWriter::try_new(out, schema, Some(properties))?;
    for batch in batches {
        writer.write(&batch?)?;
    }
    Ok(writer.into_inner()?)
}

/// Writes `batches` of `schema` as CSV with a header row into `out`. Binary values are written
/// as hex, nulls as empty fields.
pub fn write_csv<W: Write>(
    out: W,
    batches: impl IntoIterator<Item = anyhow::Result<RecordBatch>>,
) -> anyhow::Result<W> {
    let mut writer = arrow_csv::WriterBuilder::new().with_header(true).build(out);
    for batch in batches {
        writer.write(&batch?)?;
    }
    Ok(writer.into_inner())
}

/// The `.types` sidecar of a CSV file of `schema`: one `column type` per line.
pub fn csv_types(schema: &SchemaRef) -> anyhow::Result<String> {
    let mut text = String::new();
    for field in schema.fields() {
        let ty = type_name(field.data_type()).with_context(|| {
            format!(
                "column '{}' has type {}, which CSV sidecars cannot declare",
                field.name(),
                field.data_type()
            )
        })?;
        text.push_str(&format!("{} {ty}\n", field.name()));
    }
    Ok(text)
}

/// A file format a dataset can be copied into.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileFormat {
    Parquet,
    Csv,
}

impl FileFormat {
    pub fn extension(self) -> &'static str {
        match self {
            FileFormat::Parquet => "parquet",
            FileFormat::Csv => "csv",
        }
    }
}

/// Copies every row of `cursor` into `path` (and, for CSV, its sidecar), replacing what was
/// there only once the copy is whole. Returns the rows copied.
pub fn copy_to_file(
    mut cursor: Box<dyn DatasetCursor>,
    path: &Path,
    format: FileFormat,
) -> anyhow::Result<u64> {
    let dir = path.parent().context("an output path needs a directory")?;
    fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let schema = cursor.schema().clone();
    let mut rows = 0u64;
    let batches = std::iter::from_fn(|| match cursor.next_batch(COPY_ROWS) {
        Ok(Some(batch)) => {
            rows += batch.num_rows() as u64;
            Some(Ok(batch))
        }
        Ok(None) => None,
        Err(e) => Some(Err(anyhow::Error::new(e))),
    });
    let tmp = with_suffix(path, ".writing");
    let file =
        BufWriter::new(File::create(&tmp).with_context(|| format!("creating {}", tmp.display()))?);
    let written = match format {
        FileFormat::Parquet => write_parquet(file, schema.clone(), batches),
        FileFormat::Csv => write_csv(file, batches),
    }
    .and_then(|out| Ok(out.into_inner().map_err(|e| e.into_error())?.sync_all()?));
    if let Err(e) = written {
        let _ = fs::remove_file(&tmp);
        return Err(e.context(format!("writing {}", path.display())));
    }
    if format == FileFormat::Csv {
        let types = types_path(path);
        fs::write(&types, csv_types(&schema)?)
            .with_context(|| format!("writing {}", types.display()))?;
    }
    fs::rename(&tmp, path).with_context(|| format!("moving {} into place", path.display()))?;
    Ok(rows)
}

fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

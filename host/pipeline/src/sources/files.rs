//! Tenant datasets in Parquet and CSV files, read into Arrow record batches of the columns a
//! transform named.
//!
//! Parquet reads only those columns' chunks (a projection mask), then puts them in the order the
//! transform asked. CSV has no types of its own: they come from `<file>.types` beside it (one
//! `column type` per line, as `sluice data seed` writes it), else are inferred from the first
//! 1,000 rows (decimals then read as floats: declare them). Errors name the dataset, the file,
//! and the row and column when there is one; never the host's full path.

use std::fs::File;
use std::io::{BufRead as _, BufReader, Seek as _};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow_csv::reader::Format;
use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::{ParquetRecordBatchReader, ParquetRecordBatchReaderBuilder};
use sluice_sandbox::{
    DataType, DatasetCursor, Field, RecordBatch, Schema, SchemaRef, SourceError, TimeUnit,
    projection,
};

/// Rows the file readers decode at a time; a guest's smaller batches are sliced from them.
const READ_ROWS: usize = 16_384;

/// How a file is named in errors: its name, not where the host keeps it.
fn shown(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// `dataset 'orders' (orders.csv)`: how errors name a file-backed dataset.
fn labelled(dataset: &str, path: &Path) -> String {
    format!("dataset '{dataset}' ({})", shown(path))
}

fn file_error(dataset: &str, path: &Path, what: impl std::fmt::Display) -> SourceError {
    SourceError::Invalid(format!("{}: {what}", labelled(dataset, path)))
}

/// Batches from `reader`, handed out at most `max_rows` at a time, columns reordered by
/// `order` (positions in what the reader yields).
struct Sliced<I> {
    reader: I,
    pending: Option<RecordBatch>,
    order: Option<Vec<usize>>,
    schema: SchemaRef,
}

impl<I: Iterator<Item = Result<RecordBatch, SourceError>>> Sliced<I> {
    fn next(&mut self, max_rows: usize) -> Result<Option<RecordBatch>, SourceError> {
        loop {
            if let Some(batch) = self.pending.take() {
                if batch.num_rows() == 0 {
                    continue;
                }
                let take = batch.num_rows().min(max_rows);
                if take < batch.num_rows() {
                    self.pending = Some(batch.slice(take, batch.num_rows() - take));
                }
                let head = batch.slice(0, take);
                let head = match &self.order {
                    Some(order) => head
                        .project(order)
                        .map_err(|e| SourceError::Invalid(format!("reordering columns: {e}")))?,
                    None => head,
                };
                // The declared schema (field names, nullability) is what the guest was told.
                let head = RecordBatch::try_new(self.schema.clone(), head.columns().to_vec())
                    .map_err(|e| SourceError::Invalid(e.to_string()))?;
                return Ok(Some(head));
            }
            match self.reader.next() {
                None => return Ok(None),
                Some(batch) => self.pending = Some(batch?),
            }
        }
    }
}

/// A Parquet file as a dataset.
pub fn open_parquet(
    dataset: &str,
    path: &Path,
    columns: Option<&[String]>,
) -> Result<Box<dyn DatasetCursor>, SourceError> {
    let file = File::open(path).map_err(|e| file_error(dataset, path, e))?;
    let builder = ParquetRecordBatchReaderBuilder::try_new(file)
        .map_err(|e| file_error(dataset, path, format!("not a readable Parquet file: {e}")))?;
    let full = builder.schema().clone();
    let wanted = projection(&labelled(dataset, path), &full, columns)?;
    // Parquet yields projected columns in file order; put them in the order asked.
    let mut sorted = wanted.clone();
    sorted.sort_unstable();
    let order: Vec<usize> = wanted
        .iter()
        .map(|i| sorted.binary_search(i).unwrap_or(0))
        .collect();
    let mask = ProjectionMask::roots(builder.parquet_schema(), sorted.iter().copied());
    let schema = Arc::new(
        full.project(&wanted)
            .map_err(|e| file_error(dataset, path, e))?,
    );
    let reader: ParquetRecordBatchReader = builder
        .with_projection(mask)
        .with_batch_size(READ_ROWS)
        .build()
        .map_err(|e| file_error(dataset, path, e))?;
    let (name, file) = (dataset.to_string(), path.to_path_buf());
    let reader = reader.map(move |b| b.map_err(|e| file_error(&name, &file, e)));
    let in_order = order.iter().enumerate().all(|(i, &o)| i == o);
    Ok(Box::new(FileCursor {
        rows: Sliced {
            reader: Box::new(reader) as Box<dyn Iterator<Item = _> + Send>,
            pending: None,
            order: (!in_order).then_some(order),
            schema: schema.clone(),
        },
        schema,
    }))
}

struct FileCursor {
    rows: Sliced<Box<dyn Iterator<Item = Result<RecordBatch, SourceError>> + Send>>,
    schema: SchemaRef,
}

impl DatasetCursor for FileCursor {
    fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    fn next_batch(&mut self, max_rows: usize) -> Result<Option<RecordBatch>, SourceError> {
        self.rows.next(max_rows)
    }
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

/// The schema of a CSV file: its header's columns, typed by the sidecar (or inferred).
fn csv_schema(dataset: &str, path: &Path, file: &mut File) -> Result<Schema, SourceError> {
    let format = Format::default().with_header(true);
    let sidecar = types_path(path);
    let mut header = String::new();
    BufReader::new(&mut *file)
        .read_line(&mut header)
        .map_err(|e| file_error(dataset, path, e))?;
    file.rewind().map_err(|e| file_error(dataset, path, e))?;
    if !sidecar.is_file() {
        let (schema, _) = format
            .infer_schema(&mut *file, Some(1_000))
            .map_err(|e| file_error(dataset, path, e))?;
        file.rewind().map_err(|e| file_error(dataset, path, e))?;
        return Ok(schema);
    }
    let declared =
        std::fs::read_to_string(&sidecar).map_err(|e| file_error(dataset, &sidecar, e))?;
    let mut types = std::collections::HashMap::new();
    for (n, line) in declared.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let parsed = line
            .split_once(char::is_whitespace)
            .and_then(|(name, ty)| Some((name.to_string(), parse_type(ty)?)));
        let Some((name, ty)) = parsed else {
            return Err(file_error(
                dataset,
                &sidecar,
                format!(
                    "line {}: expected `column type` (int64, float64, boolean, text, binary, \
                     date, timestamp[(zone)], decimal(p,s))",
                    n + 1
                ),
            ));
        };
        types.insert(name, ty);
    }
    let fields = header
        .trim_end_matches(['\r', '\n'])
        .split(',')
        .map(|name| {
            let name = name.trim_matches('"');
            let ty = types.get(name).cloned().ok_or_else(|| {
                file_error(
                    dataset,
                    &sidecar,
                    format!(
                        "declares no type for column '{}'",
                        sluice_sandbox::escape(name)
                    ),
                )
            })?;
            Ok(Field::new(name, ty, true))
        })
        .collect::<Result<Vec<_>, SourceError>>()?;
    Ok(Schema::new(fields))
}

/// A CSV file with a header row as a dataset.
pub fn open_csv(
    dataset: &str,
    path: &Path,
    columns: Option<&[String]>,
) -> Result<Box<dyn DatasetCursor>, SourceError> {
    let mut file = File::open(path).map_err(|e| file_error(dataset, path, e))?;
    let full = Arc::new(csv_schema(dataset, path, &mut file)?);
    let wanted = projection(&labelled(dataset, path), &full, columns)?;
    let schema = Arc::new(
        full.project(&wanted)
            .map_err(|e| file_error(dataset, path, e))?,
    );
    // CSV holds binary as hex (as arrow-csv writes it): read it as text, then decode.
    let as_text = Schema::new(
        full.fields()
            .iter()
            .map(|f| match f.data_type() {
                DataType::Binary => Field::new(f.name(), DataType::Utf8, f.is_nullable()),
                _ => f.as_ref().clone(),
            })
            .collect::<Vec<_>>(),
    );
    let reader = arrow_csv::ReaderBuilder::new(Arc::new(as_text))
        .with_header(true)
        .with_batch_size(READ_ROWS)
        .with_projection(wanted)
        .build(file)
        .map_err(|e| file_error(dataset, path, e))?;
    let (name, file_path, all, out) = (
        dataset.to_string(),
        path.to_path_buf(),
        full,
        schema.clone(),
    );
    let mut line = 1usize;
    let reader = reader.map(move |b| {
        let batch = b.map_err(|e| csv_error(&name, &file_path, &all, &e))?;
        let first = line + 1;
        line += batch.num_rows();
        unhex(batch, &out, first).map_err(|e| file_error(&name, &file_path, e))
    });
    Ok(Box::new(FileCursor {
        rows: Sliced {
            reader: Box::new(reader) as Box<dyn Iterator<Item = _> + Send>,
            pending: None,
            order: None,
            schema: schema.clone(),
        },
        schema,
    }))
}

/// `batch` with every column `schema` declares binary decoded from hex; `first` is the file line
/// of its first row, for errors.
fn unhex(batch: RecordBatch, schema: &SchemaRef, first: usize) -> Result<RecordBatch, String> {
    use arrow_array::{Array as _, ArrayRef, BinaryArray, StringArray};
    if !schema
        .fields()
        .iter()
        .any(|f| f.data_type() == &DataType::Binary)
    {
        return Ok(batch);
    }
    let mut columns: Vec<ArrayRef> = Vec::with_capacity(batch.num_columns());
    for (field, column) in schema.fields().iter().zip(batch.columns()) {
        if field.data_type() != &DataType::Binary {
            columns.push(column.clone());
            continue;
        }
        let text = column
            .as_any()
            .downcast_ref::<StringArray>()
            .ok_or("binary column read as something other than text")?;
        let mut values = Vec::with_capacity(text.len());
        for (row, value) in text.iter().enumerate() {
            values.push(match value {
                None => None,
                Some(hex_text) => Some(hex::decode(hex_text).map_err(|_| {
                    format!(
                        "line {} column '{}': '{}' is not hex-encoded binary",
                        first + row,
                        field.name(),
                        sluice_sandbox::escape(&sluice_sandbox::cut(hex_text, 32))
                    )
                })?),
            });
        }
        columns.push(std::sync::Arc::new(BinaryArray::from_iter(values)));
    }
    RecordBatch::try_new(schema.clone(), columns).map_err(|e| e.to_string())
}

/// arrow-csv's error with the column named: it reports columns by index.
fn csv_error(
    dataset: &str,
    path: &Path,
    schema: &Schema,
    e: &arrow_schema::ArrowError,
) -> SourceError {
    let mut text = e.to_string();
    // arrow's own prefixes say nothing a reader needs.
    for prefix in ["Csv error: ", "Parser error: "] {
        if let Some(rest) = text.strip_prefix(prefix) {
            text = rest.to_string();
        }
    }
    // The row's values are the tenant's data: errors go to logs and the audit trail.
    if let Some(at) = text.find(". Row data:") {
        text.truncate(at);
    }
    // arrow-csv counts data rows in value errors ("at line 77" is the file's line 78 after the
    // header) but file lines in field-count errors: say file lines in both.
    if text.starts_with("Error while parsing value")
        && let Some((head, tail)) = text.rsplit_once(" at line ")
        && let Ok(row) = tail.parse::<usize>()
    {
        text = format!("{head} at line {}", row + 1);
    }
    // "... for column 3 at line 17" -> "... for column 3 at line 17 (column 'total_cents')"
    let column = text
        .split_once("for column ")
        .and_then(|(_, rest)| rest.split(|c: char| !c.is_ascii_digit()).next())
        .and_then(|i| i.parse::<usize>().ok())
        .and_then(|i| schema.fields().get(i));
    let named = match column {
        Some(f) => format!("{text} (column '{}')", f.name()),
        None if text.contains("incorrect number of fields") => {
            let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
            format!("{text} (columns: {})", names.join(", "))
        }
        None => text,
    };
    file_error(dataset, path, named)
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

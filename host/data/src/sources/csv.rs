//! A CSV file as a dataset, read within the tenant's bounds.
//!
//! CSV has no types of its own: they come from `<file>.types` beside it (one `column type` per
//! line, as `sluice data seed` writes it), else are inferred from the first 1,000 rows (decimals
//! then read as floats: declare them). Binary columns are stored as hex.
//!
//! The file is read in chunks by Sluice, not by arrow-csv's reader: each chunk's bytes are
//! charged to `bytes-read` before they are parsed, the run's stop is checked, and a scanner that
//! follows CSV's quoting finds where records end, so no record (the header included) is held
//! past `row-bytes`, and arrow-csv is handed whole records only. A batch ends at
//! [`batch_rows`] rows for the file's width or at [`BATCH_BYTES`] of text, whichever comes
//! first; the header's width is checked against `columns` before anything is allocated per
//! column.

use std::fs::File;
use std::io::Read as _;
use std::sync::Arc;

use arrow_csv::reader::{Decoder, Format};
use sluice_sandbox::{
    BATCH_BYTES, DataType, DatasetCursor, Field, Held, Limit, ReadContext, RecordBatch, Schema,
    SchemaRef, SourceError, batch_rows, projection,
};

use super::csv_types::parse_type;

/// Bytes read from the file at a time.
const CHUNK: usize = 1 << 16;
/// Rows type inference reads when there is no `.types` sidecar.
const INFER_ROWS: usize = 1_000;

/// Where records end in CSV's default dialect (comma, `"` quotes doubled to escape, `\n`,
/// `\r` or `\r\n` line ends), whatever chunks the bytes arrive in, and on which line each
/// starts (counting `\n`s, as an editor does).
#[derive(Debug, Clone, Copy)]
struct Records {
    state: State,
    /// Bytes of the record being scanned.
    current: u64,
    /// Fields of the record being scanned, less one.
    commas: u64,
    /// `\n`s seen so far.
    newlines: u64,
    /// The line the record being scanned starts on.
    start_line: u64,
}

impl Default for Records {
    fn default() -> Self {
        Records {
            state: State::FieldStart,
            current: 0,
            commas: 0,
            newlines: 0,
            start_line: 1,
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
enum State {
    #[default]
    FieldStart,
    Unquoted,
    Quoted,
    /// A quote inside a quoted field: its end, or the first of a doubled quote.
    QuoteInQuoted,
}

/// A complete record found by [`Records::scan`]: where it ends and its width.
struct RecordEnd {
    /// Offset just past its line end.
    end: usize,
    fields: u64,
}

impl Records {
    /// The state after a record ends: nothing pending, the line count kept.
    fn next_record(&mut self) {
        *self = Records {
            newlines: self.newlines,
            start_line: self.start_line,
            ..Records::default()
        };
    }

    /// Scans `bytes` until the end of the current record, one byte at a time; `Ok(None)` if
    /// it does not end in them, `Err(bytes so far)` once the record is longer than `max`.
    fn scan(&mut self, bytes: &[u8], max: u64) -> Result<Option<RecordEnd>, u64> {
        for (i, &b) in bytes.iter().enumerate() {
            let line_end = b == b'\n' || b == b'\r';
            if self.current == 0 && !line_end {
                self.start_line = self.newlines + 1;
            }
            if b == b'\n' {
                self.newlines += 1;
            }
            self.current += 1;
            if self.current > max {
                return Err(self.current);
            }
            self.state = match (self.state, b) {
                (State::Quoted, b'"') => State::QuoteInQuoted,
                (State::Quoted, _) => State::Quoted,
                (State::QuoteInQuoted, b'"') => State::Quoted,
                (State::FieldStart, b'"') => State::Quoted,
                (_, b',') => {
                    self.commas += 1;
                    State::FieldStart
                }
                (_, _) if line_end => {
                    let fields = self.commas + 1;
                    let empty = self.current == 1;
                    self.next_record();
                    // A blank line (or the `\n` of a `\r\n`) is no record.
                    if empty {
                        continue;
                    }
                    return Ok(Some(RecordEnd { end: i + 1, fields }));
                }
                (_, _) => State::Unquoted,
            };
        }
        Ok(None)
    }

    /// Where the last record `bytes` completes ends (0 if none does), or `Err(bytes so far)`
    /// once a record is longer than `max`. Record by record through [`scan`](Self::scan) where
    /// a quote is involved or a record could be longer than `max` inside `bytes`; otherwise
    /// (the common case) from three searches: the first line end, which ends the record under
    /// way; the last, which ends the last complete one; and a count of `\n`s between. Lines
    /// between those two are shorter than `bytes`, so within `max`.
    fn scan_chunk(&mut self, bytes: &[u8], max: u64) -> Result<usize, u64> {
        let quoted = matches!(self.state, State::Quoted | State::QuoteInQuoted);
        if quoted || bytes.len() as u64 >= max || memchr::memchr(b'"', bytes).is_some() {
            let mut complete = 0;
            while let Some(end) = self.scan(&bytes[complete..], max)? {
                complete += end.end;
            }
            return Ok(complete);
        }
        let Some(first) = memchr::memchr2(b'\n', b'\r', bytes) else {
            if self.current == 0 && !bytes.is_empty() {
                self.start_line = self.newlines + 1;
            }
            self.current += bytes.len() as u64;
            self.state = mid_record(bytes, self.state);
            return if self.current > max {
                Err(self.current)
            } else {
                Ok(0)
            };
        };
        if self.current == 0 && first > 0 {
            self.start_line = self.newlines + 1;
        }
        if self.current + first as u64 + 1 > max {
            return Err(self.current + first as u64 + 1);
        }
        let last = memchr::memrchr2(b'\n', b'\r', bytes).unwrap_or(first);
        self.newlines += count_newlines(bytes);
        let tail = &bytes[last + 1..];
        self.next_record();
        if !tail.is_empty() {
            self.start_line = self.newlines + 1;
            self.current = tail.len() as u64;
            self.state = mid_record(tail, State::FieldStart);
        }
        Ok(last + 1)
    }
}

/// How many `\n`s `bytes` holds: counted in blocks of 128 with a byte per lane, which compiles
/// to wide compares (widening each byte to the total's width, as `filter().count()` does, ran
/// at a third of the speed and was a tenth of a CSV read).
fn count_newlines(bytes: &[u8]) -> u64 {
    bytes
        .chunks(128)
        .map(|block| {
            let found: u8 = block.iter().map(|&b| u8::from(b == b'\n')).sum();
            u64::from(found)
        })
        .sum()
}

/// The state after `bytes` of a record, none of them a quote or a line end: the last one says
/// whether the next byte starts a field (where a quote opens a quoted field) or not.
fn mid_record(bytes: &[u8], before: State) -> State {
    match bytes.last() {
        Some(b',') => State::FieldStart,
        Some(_) => State::Unquoted,
        None => before,
    }
}

/// The first line of `file` (its header), read no further than `row-bytes`, as text.
fn header(label: &str, file: &mut File, cx: &ReadContext) -> Result<(String, u64), SourceError> {
    let bounds = *cx.bounds();
    let mut records = Records::default();
    let mut line = Vec::new();
    let mut chunk = vec![0u8; CHUNK];
    loop {
        cx.check()?;
        let n = file
            .read(&mut chunk)
            .map_err(|e| SourceError::Invalid(format!("{label}: {e}")))?;
        if n == 0 {
            // A header without a line end is the whole file.
            let fields = records.commas + 1;
            return Ok((String::from_utf8_lossy(&line).into_owned(), fields));
        }
        cx.charge(n as u64, || label.to_string())?;
        match records.scan(&chunk[..n], bounds.row_bytes) {
            Ok(Some(end)) => {
                line.extend_from_slice(&chunk[..end.end]);
                let text = String::from_utf8_lossy(&line);
                return Ok((text.trim_end_matches(['\r', '\n']).to_string(), end.fields));
            }
            Ok(None) => line.extend_from_slice(&chunk[..n]),
            Err(_) => {
                return Err(bounds.exceeded(Limit::RowBytes, None, &format!("{label} line 1")));
            }
        }
    }
}

/// The schema of a CSV file: its header's columns, typed by the sidecar's text (or inferred).
fn csv_schema(
    label: &str,
    file: &mut File,
    sidecar: Option<(String, File)>,
    cx: &ReadContext,
) -> Result<Schema, SourceError> {
    let bounds = *cx.bounds();
    let (header, width) = header(label, file, cx)?;
    if width > bounds.columns {
        return Err(bounds.exceeded(Limit::Columns, Some(width), label));
    }
    let names = split_header(&header);
    let Some((sidecar_label, sidecar)) = sidecar else {
        return infer_schema(label, file, cx);
    };
    let mut declared = String::new();
    sidecar
        .take(bounds.row_bytes + 1)
        .read_to_string(&mut declared)
        .map_err(|e| SourceError::Invalid(format!("{sidecar_label}: {e}")))?;
    if declared.len() as u64 > bounds.row_bytes {
        return Err(bounds.exceeded(Limit::RowBytes, None, &sidecar_label));
    }
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
            return Err(SourceError::Invalid(format!(
                "{sidecar_label}: line {}: expected `column type` (int64, float64, boolean, \
                 text, binary, date, timestamp[(zone)], decimal(p,s))",
                n + 1
            )));
        };
        types.insert(name, ty);
    }
    let fields = names
        .iter()
        .map(|name| {
            let ty = types.get(name.as_str()).cloned().ok_or_else(|| {
                SourceError::Invalid(format!(
                    "{sidecar_label}: declares no type for column '{}'",
                    sluice_sandbox::escape(&sluice_sandbox::cut(name, 64))
                ))
            })?;
            Ok(Field::new(name, ty, true))
        })
        .collect::<Result<Vec<_>, SourceError>>()?;
    Ok(Schema::new(fields))
}

/// A header line's column names, unquoted.
fn split_header(line: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut name = String::new();
    let mut quoted = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, quoted) {
            ('"', true) if chars.peek() == Some(&'"') => {
                chars.next();
                name.push('"');
            }
            ('"', _) => quoted = !quoted,
            (',', false) => names.push(std::mem::take(&mut name)),
            (c, _) => name.push(c),
        }
    }
    names.push(name);
    names
}

/// Types inferred by arrow-csv from the first rows, read through the same bounds.
fn infer_schema(label: &str, file: &mut File, cx: &ReadContext) -> Result<Schema, SourceError> {
    let bounds = *cx.bounds();
    let sample = read_records(label, file, INFER_ROWS + 1, cx)?;
    let (schema, _) = Format::default()
        .with_header(true)
        .infer_schema(&sample[..], Some(INFER_ROWS))
        .map_err(|e| SourceError::Invalid(format!("{label}: {e}")))?;
    if schema.fields().len() as u64 > bounds.columns {
        return Err(bounds.exceeded(Limit::Columns, Some(schema.fields().len() as u64), label));
    }
    Ok(schema)
}

/// The file's first `count` records from its start, each within `row-bytes`.
fn read_records(
    label: &str,
    file: &mut File,
    count: usize,
    cx: &ReadContext,
) -> Result<Vec<u8>, SourceError> {
    use std::io::Seek as _;
    let bounds = *cx.bounds();
    file.rewind()
        .map_err(|e| SourceError::Invalid(format!("{label}: {e}")))?;
    let (mut records, mut found, mut out) = (Records::default(), 0usize, Vec::new());
    let mut chunk = vec![0u8; CHUNK];
    'read: loop {
        cx.check()?;
        let n = file
            .read(&mut chunk)
            .map_err(|e| SourceError::Invalid(format!("{label}: {e}")))?;
        if n == 0 {
            break;
        }
        cx.charge(n as u64, || label.to_string())?;
        let mut at = 0;
        while at < n {
            match records.scan(&chunk[at..n], bounds.row_bytes) {
                Ok(Some(end)) => {
                    out.extend_from_slice(&chunk[at..at + end.end]);
                    at += end.end;
                    found += 1;
                    if found == count {
                        break 'read;
                    }
                }
                Ok(None) => {
                    out.extend_from_slice(&chunk[at..n]);
                    break;
                }
                Err(_) => {
                    return Err(bounds.exceeded(
                        Limit::RowBytes,
                        None,
                        &format!("{label} line {}", records.start_line),
                    ));
                }
            }
        }
    }
    file.rewind()
        .map_err(|e| SourceError::Invalid(format!("{label}: {e}")))?;
    Ok(out)
}

/// A CSV file with a header row as a dataset; `sidecar` is its `.types` file if it has one,
/// with the label errors name it by.
pub fn open_csv(
    label: &str,
    mut file: File,
    sidecar: Option<(String, File)>,
    columns: Option<&[String]>,
    cx: &ReadContext,
) -> Result<Box<dyn DatasetCursor>, SourceError> {
    let full = Arc::new(csv_schema(label, &mut file, sidecar, cx)?);
    let wanted = projection(label, &full, columns)?;
    let schema = Arc::new(
        full.project(&wanted)
            .map_err(|e| SourceError::Invalid(format!("{label}: {e}")))?,
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
    let rows = batch_rows(full.fields().len());
    let decoder = arrow_csv::ReaderBuilder::new(Arc::new(as_text))
        .with_header(true)
        .with_batch_size(rows)
        .with_projection(wanted)
        .build_decoder();
    use std::io::Seek as _;
    file.rewind()
        .map_err(|e| SourceError::Invalid(format!("{label}: {e}")))?;
    Ok(Box::new(CsvCursor {
        file,
        decoder,
        records: Records::default(),
        buf: Vec::with_capacity(CHUNK),
        complete: 0,
        fed_since_flush: 0,
        eof: false,
        done: false,
        full,
        schema,
        pending: None,
        label: label.to_string(),
        cx: cx.clone(),
    }))
}

struct CsvCursor {
    file: File,
    decoder: Decoder,
    records: Records,
    /// Bytes read and not yet handed to the decoder; the first `complete` end a record.
    buf: Vec<u8>,
    complete: usize,
    fed_since_flush: usize,
    eof: bool,
    done: bool,
    full: SchemaRef,
    schema: SchemaRef,
    pending: Option<(RecordBatch, Held)>,
    label: String,
    cx: ReadContext,
}

impl CsvCursor {
    /// Reads a chunk and finds the records it completes, within `row-bytes`.
    fn fill(&mut self) -> Result<(), SourceError> {
        self.cx.check()?;
        let start = self.buf.len();
        self.buf.resize(start + CHUNK, 0);
        let n = self
            .file
            .read(&mut self.buf[start..])
            .map_err(|e| SourceError::Invalid(format!("{}: {e}", self.label)))?;
        self.buf.truncate(start + n);
        if n == 0 {
            self.eof = true;
            // A last record without a line end is complete at the end of the file.
            self.complete = self.buf.len();
            return Ok(());
        }
        let label = &self.label;
        self.cx.charge(n as u64, || label.clone())?;
        let bounds = *self.cx.bounds();
        match self
            .records
            .scan_chunk(&self.buf[start..], bounds.row_bytes)
        {
            Ok(0) => Ok(()),
            Ok(complete) => {
                self.complete = start + complete;
                Ok(())
            }
            Err(_) => Err(bounds.exceeded(
                Limit::RowBytes,
                None,
                &format!("{} line {}", self.label, self.records.start_line),
            )),
        }
    }

    /// The next batch the decoder makes, reading as needed.
    fn decode_next(&mut self) -> Result<Option<RecordBatch>, SourceError> {
        loop {
            if self.done {
                return Ok(None);
            }
            if self.complete > 0 {
                let consumed = self
                    .decoder
                    .decode(&self.buf[..self.complete])
                    .map_err(|e| csv_error(&self.label, &self.full, &e))?;
                self.buf.drain(..consumed);
                self.complete -= consumed;
                self.fed_since_flush += consumed;
            }
            let full = self.decoder.capacity() == 0 || self.fed_since_flush >= BATCH_BYTES;
            if full || (self.eof && self.complete == 0) {
                if self.eof && self.complete == 0 {
                    // Signal the end of the input, then take the last rows.
                    self.decoder
                        .decode(&[])
                        .map_err(|e| csv_error(&self.label, &self.full, &e))?;
                }
                self.fed_since_flush = 0;
                match self
                    .decoder
                    .flush()
                    .map_err(|e| csv_error(&self.label, &self.full, &e))?
                {
                    Some(batch) => return Ok(Some(batch)),
                    None if self.eof => {
                        self.done = true;
                        return Ok(None);
                    }
                    None => {}
                }
                continue;
            }
            self.fill()?;
        }
    }
}

impl DatasetCursor for CsvCursor {
    fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    fn next_batch(&mut self, max_rows: usize) -> Result<Option<RecordBatch>, SourceError> {
        loop {
            if let Some((batch, held)) = self.pending.take() {
                let rows = batch.num_rows();
                if rows == 0 {
                    continue;
                }
                let take = rows.min(max_rows);
                if take < rows {
                    self.pending = Some((batch.slice(take, rows - take), held));
                }
                return Ok(Some(batch.slice(0, take)));
            }
            let Some(batch) = self.decode_next()? else {
                return Ok(None);
            };
            let batch = unhex(batch, &self.schema, self.records.start_line)
                .map_err(|e| SourceError::Invalid(format!("{}: {e}", self.label)))?;
            let label = &self.label;
            let held = self
                .cx
                .hold(batch.get_array_memory_size() as u64, || label.clone())?;
            self.pending = Some((batch, held));
            // (Its bytes were charged as they were read: CSV decodes to about its own size.)
        }
    }
}

/// `batch` with every column `schema` declares binary decoded from hex.
fn unhex(batch: RecordBatch, schema: &SchemaRef, line: u64) -> Result<RecordBatch, String> {
    use arrow_array::{Array as _, ArrayRef, BinaryArray, StringArray};
    if !schema
        .fields()
        .iter()
        .any(|f| f.data_type() == &DataType::Binary)
    {
        return RecordBatch::try_new(schema.clone(), batch.columns().to_vec())
            .map_err(|e| e.to_string());
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
        for value in text.iter() {
            values.push(match value {
                None => None,
                Some(hex_text) => Some(hex::decode(hex_text).map_err(|_| {
                    format!(
                        "column '{}' near line {line}: '{}' is not hex-encoded binary",
                        field.name(),
                        sluice_sandbox::escape(&sluice_sandbox::cut(hex_text, 32))
                    )
                })?),
            });
        }
        columns.push(Arc::new(BinaryArray::from_iter(values)));
    }
    RecordBatch::try_new(schema.clone(), columns).map_err(|e| e.to_string())
}

/// arrow-csv's error with the column named: it reports columns by index.
fn csv_error(label: &str, schema: &Schema, e: &arrow_schema::ArrowError) -> SourceError {
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
            format!(
                "{text} (columns: {})",
                sluice_sandbox::cut(&names.join(", "), 512)
            )
        }
        None => text,
    };
    SourceError::Invalid(format!("{label}: {}", sluice_sandbox::escape(&named)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ends(text: &[u8], max: u64) -> Result<Vec<(usize, u64)>, u64> {
        let mut records = Records::default();
        let (mut at, mut out) = (0, Vec::new());
        while let Some(end) = records.scan(&text[at..], max)? {
            at += end.end;
            out.push((at, end.fields));
        }
        Ok(out)
    }

    #[test]
    fn records_end_at_line_ends_outside_quotes() {
        assert_eq!(
            ends(b"a,b\n\"x\ny\",\"q\"\"\"\r\n3,4", 100),
            Ok(vec![(4, 2), (16, 2)])
        );
        // A quote inside an unquoted field is just a character.
        assert_eq!(ends(b"ab\"c,d\ne,f\n", 100), Ok(vec![(7, 2), (11, 2)]));
        assert_eq!(ends(b"\n\n1\n", 100), Ok(vec![(4, 1)]));
    }

    #[test]
    fn a_chunk_at_a_time_ends_where_a_byte_at_a_time_does() {
        let text: &[u8] = b"a,b\n1,2\r\n\n3,\"x\ny\"\n4,5\nlast";
        assert_eq!(ends(text, 100).unwrap(), [(4, 2), (8, 2), (18, 2), (22, 2)]);
        for chunk in 1..text.len() {
            let mut whole = Records::default();
            let (mut last_end, mut base) = (0, 0);
            for piece in text.chunks(chunk) {
                let complete = whole.scan_chunk(piece, 100).unwrap();
                if complete > 0 {
                    last_end = base + complete;
                }
                base += piece.len();
            }
            // The last complete record ends at 22, or at a line end just before it.
            assert!(
                (21..=22).contains(&last_end),
                "chunks of {chunk}: {last_end}"
            );
            assert_eq!(whole.current, 4, "chunks of {chunk}: 'last' is under way");
            assert_eq!(whole.start_line, 7, "chunks of {chunk}");
        }
        // A record longer than the bound, on line 4, whether it is scanned fast or not.
        for text in [&b"ab\n\ncd\nefghij"[..], b"ab\n\ncd\n\"efghij"] {
            let mut records = Records::default();
            assert!(records.scan_chunk(text, 5).is_err());
            assert_eq!(records.start_line, 4);
        }
    }

    #[test]
    fn a_record_past_the_bound_stops_the_scan() {
        assert_eq!(ends(&[b'x'; 50], 10), Err(11));
        assert_eq!(ends(b"\"a\nb\nc\nd\ne\nf\"\n", 8), Err(9));
    }

    #[test]
    fn newlines_are_counted_in_blocks_exactly() {
        let text: Vec<u8> = (0..10_000u32)
            .map(|i| if i % 7 == 0 { b'\n' } else { b'x' })
            .collect();
        assert_eq!(count_newlines(&text), 1_429);
        assert_eq!(count_newlines(&[b'\n'; 300]), 300);
        assert_eq!(count_newlines(b""), 0);
    }

    #[test]
    fn headers_split_like_csv() {
        assert_eq!(split_header("a,\"b,c\",\"d\"\"e\""), ["a", "b,c", "d\"e"]);
    }
}

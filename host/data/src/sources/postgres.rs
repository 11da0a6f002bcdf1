//! Tenant datasets in PostgreSQL: table `<schema>.<dataset>` read through the tenant's own
//! database role, whose connection URL is in an environment variable the configuration names.
//!
//! The role is the second wall: the gate decides first, and a role that can read only its own
//! schema cannot hand the host another tenant's rows even if the host asked. Columns come from
//! `information_schema.columns` (which shows a role only what it may read), rows from one
//! `COPY (SELECT <named columns> ...) TO STDOUT (FORMAT binary)`, decoded straight into Arrow
//! builders on a reader thread that stays a couple of batches ahead of the guest. The thread
//! drives `tokio-postgres` in one loop on a runtime of its own: the server sends a message per
//! row, and waiting on each through a blocking client would double the cost of the read.
//!
//! A tenant's table is hostile input like its files: each message is charged to `bytes-read`
//! before it is decoded, a row longer than `row-bytes` is refused as soon as its field lengths
//! say so (before it arrives whole), a batch ends at [`batch_rows`] rows or [`BATCH_BYTES`] of
//! values (Arrow's 32-bit offsets cannot overflow), batches waiting for the guest are held
//! against its memory, and the reader stops when the run does. The data ends only with COPY's
//! trailer and the thread's explicit end: a reader that fails or panics is an error, never a
//! shorter dataset. (tokio-postgres does not expose COPY's command tag; the binary trailer,
//! which the server sends after the last row, is the check that every row arrived.)

use std::sync::Arc;
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};

use futures_util::StreamExt as _;
use postgres::Client;
use sluice_sandbox::{
    BATCH_BYTES, DataType, DatasetCursor, DatasetRef, DatasetSource, Field, Held, Limit,
    ReadBounds, ReadContext, RecordBatch, Schema, SchemaRef, SourceError, TimeUnit, batch_rows,
    projection,
};

use super::builder::ColumnBuilder;
use super::typed::check_name;
use crate::pg_login::PgLogin;

/// Days and microseconds from 1970-01-01 to PostgreSQL's epoch, 2000-01-01.
const PG_EPOCH_DAYS: i32 = 10_957;
const PG_EPOCH_MICROS: i64 = 946_684_800_000_000;

/// One tenant's PostgreSQL datasets: tables of `schema`, reached with `login`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PostgresTable {
    /// How to log in: the tenant role's URL in a variable, or a login minted for the run.
    pub login: PgLogin,
    pub schema: String,
    pub table: String,
}

/// Connects with the URL in environment variable `url_env`; errors name the variable, never
/// its value (it holds a password).
pub fn connect(url_env: &str) -> anyhow::Result<Client> {
    PgLogin::Env(url_env.to_string()).connect()
}

fn pg_error(what: &str, e: postgres::Error) -> SourceError {
    let why = e
        .as_db_error()
        .map_or(e.to_string(), |db| db.message().to_string());
    SourceError::Invalid(format!("{what}: {why}"))
}

/// How a PostgreSQL column is read: the Arrow type, and the cast that makes its binary COPY
/// form one this module decodes.
fn column_type(data_type: &str, precision: Option<i32>, scale: Option<i32>) -> (DataType, &str) {
    match data_type {
        "bigint" | "integer" | "smallint" => (DataType::Int64, "::int8"),
        "double precision" | "real" => (DataType::Float64, "::float8"),
        "boolean" => (DataType::Boolean, ""),
        "bytea" => (DataType::Binary, ""),
        "date" => (DataType::Date32, ""),
        "timestamp without time zone" => (DataType::Timestamp(TimeUnit::Microsecond, None), ""),
        "timestamp with time zone" => (
            DataType::Timestamp(TimeUnit::Microsecond, Some("+00:00".into())),
            "",
        ),
        "numeric" => match (precision, scale) {
            (Some(p @ 1..=38), Some(s @ 0..=38)) if s <= p => {
                (DataType::Decimal128(p as u8, s as i8), "")
            }
            // Unconstrained or wider than Decimal128: read as a float.
            _ => (DataType::Float64, "::float8"),
        },
        _ => (DataType::Utf8, "::text"),
    }
}

impl DatasetSource for PostgresTable {
    fn list(&self, _tenant: &str, _resource: &str) -> Result<Vec<String>, SourceError> {
        Ok(vec![self.table.clone()])
    }

    fn open(
        &self,
        dataset: &DatasetRef,
        columns: Option<&[String]>,
        cx: &ReadContext,
    ) -> Result<Box<dyn DatasetCursor>, SourceError> {
        let name = dataset.name();
        check_name("schema", &self.schema)?;
        check_name("table", &self.table)?;
        let label = format!("dataset '{name}' (table {}.{})", self.schema, self.table);
        let invalid = |why: String| SourceError::Invalid(format!("{label}: {why}"));
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| invalid(format!("starting a PostgreSQL client: {e}")))?;
        let config = self.login.config().map_err(invalid)?;
        let (client, described) = runtime.block_on(async {
            let (client, connection) = config
                .connect(tokio_postgres::NoTls)
                .await
                .map_err(|e| invalid(self.login.connect_error(&e)))?;
            // Driven whenever this runtime is: in this call, then on the reader thread.
            tokio::spawn(connection);
            let described = client
                .query(
                    "SELECT column_name::text, data_type::text, is_nullable::text, \
                     numeric_precision::int4, numeric_scale::int4 FROM information_schema.columns \
                     WHERE table_schema = $1 AND table_name = $2 ORDER BY ordinal_position",
                    &[&self.schema, &self.table],
                )
                .await
                .map_err(|e| pg_error(&label, e))?;
            Ok::<_, SourceError>((client, described))
        })?;
        if described.is_empty() {
            // Gone, or not this role's to see: the same answer either way.
            return Err(SourceError::not_found(dataset));
        }
        let bounds = cx.bounds();
        if described.len() as u64 > bounds.columns {
            return Err(bounds.exceeded(Limit::Columns, Some(described.len() as u64), &label));
        }
        let mut fields = Vec::new();
        let mut casts = Vec::new();
        for row in &described {
            let (ty, cast) = column_type(row.get(1), row.get(3), row.get(4));
            let column: String = row.get(0);
            fields.push(Field::new(&column, ty, row.get::<_, String>(2) == "YES"));
            casts.push(cast.to_string());
        }
        let full = Schema::new(fields);
        let wanted = projection(&label, &full, columns)?;
        let schema = Arc::new(
            full.project(&wanted)
                .map_err(|e| SourceError::Invalid(format!("{label}: {e}")))?,
        );
        let list = wanted
            .iter()
            .map(|&i| {
                let column = full.field(i).name().replace('"', "\"\"");
                format!("\"{column}\"{}", casts[i])
            })
            .collect::<Vec<_>>()
            .join(", ");
        let sql = format!(
            "COPY (SELECT {list} FROM \"{}\".\"{}\") TO STDOUT (FORMAT binary)",
            self.schema, self.table
        );
        // Read ahead at most a batch in the channel, one being sent and one the guest is taking,
        // each at most an eighth of the tenant's memory.
        let (tx, rx) = sync_channel(1);
        let decoder = CopyDecoder::new(schema.clone(), label.clone(), *bounds);
        let reader_cx = cx.clone();
        std::thread::Builder::new()
            .name(format!("pg-{}", self.table))
            .spawn(move || {
                let failed = tx.clone();
                let label = decoder.label.clone();
                let read = || runtime.block_on(read_copy(client, sql, decoder, tx, reader_cx));
                if let Err(message) = sluice_sandbox::panics::catch(read) {
                    let _ = failed.send(Read::Failed(SourceError::Invalid(format!(
                        "{label}: the reader failed ({})",
                        sluice_sandbox::escape(&message.to_string())
                    ))));
                }
            })
            .map_err(|e| SourceError::Invalid(format!("starting the PostgreSQL reader: {e}")))?;
        Ok(Box::new(PostgresCursor {
            rx,
            pending: None,
            ended: false,
            schema,
            label,
        }))
    }
}

/// What the reader thread sends: batches (with the memory they hold), then the end or a
/// failure. A channel that closes without either means the reader died.
enum Read {
    Batch(RecordBatch, Held),
    End,
    Failed(SourceError),
}

struct PostgresCursor {
    rx: Receiver<Read>,
    pending: Option<(RecordBatch, Held)>,
    ended: bool,
    schema: SchemaRef,
    label: String,
}

impl DatasetCursor for PostgresCursor {
    fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    fn next_batch(&mut self, max_rows: usize) -> Result<Option<RecordBatch>, SourceError> {
        let (batch, held) = match self.pending.take() {
            Some(pending) => pending,
            None if self.ended => return Ok(None),
            None => match self.rx.recv() {
                Ok(Read::Batch(batch, held)) => (batch, held),
                Ok(Read::End) => {
                    self.ended = true;
                    return Ok(None);
                }
                Ok(Read::Failed(e)) => return Err(e),
                Err(_) => {
                    return Err(SourceError::Invalid(format!(
                        "{}: the reader stopped before the end of the data",
                        self.label
                    )));
                }
            },
        };
        if batch.num_rows() > max_rows {
            let rest = batch.slice(max_rows, batch.num_rows() - max_rows);
            self.pending = Some((rest, held));
            return Ok(Some(batch.slice(0, max_rows)));
        }
        Ok(Some(batch))
    }
}

/// The reader thread's loop: charges and feeds each message of the COPY stream to the decoder
/// and sends batches as they fill, until the trailer, an error, the run's stop, or the cursor is
/// dropped (the send fails; dropping the client closes the connection, which ends the COPY).
async fn read_copy(
    client: tokio_postgres::Client,
    sql: String,
    mut decoder: CopyDecoder,
    tx: SyncSender<Read>,
    cx: ReadContext,
) {
    let failed = |e| {
        let _ = tx.send(Read::Failed(e));
    };
    let stream = match client.copy_out(sql.as_str()).await {
        Ok(stream) => stream,
        Err(e) => return failed(pg_error(&decoder.label, e)),
    };
    let mut stream = std::pin::pin!(stream);
    let send = |batch: RecordBatch, decoder: &CopyDecoder| -> Result<bool, SourceError> {
        let held = cx.hold(batch.get_array_memory_size() as u64, || {
            decoder.label.clone()
        })?;
        Ok(tx.send(Read::Batch(batch, held)).is_ok())
    };
    loop {
        let chunk = match stream.next().await {
            Some(Ok(chunk)) => chunk,
            Some(Err(e)) => return failed(pg_error(&decoder.label, e)),
            None => {
                match decoder.finish() {
                    Ok(Some(batch)) => match send(batch, &decoder) {
                        Ok(true) => {}
                        Ok(false) => return,
                        Err(e) => return failed(e),
                    },
                    Ok(None) => {}
                    Err(e) => return failed(e),
                }
                let _ = tx.send(Read::End);
                return;
            }
        };
        let label = &decoder.label;
        if let Err(e) = cx.charge(chunk.len() as u64, || label.clone()) {
            return failed(e);
        }
        decoder.feed(&chunk);
        loop {
            match decoder.next_batch() {
                Ok(Some(batch)) => match send(batch, &decoder) {
                    Ok(true) => {}
                    Ok(false) => return,
                    Err(e) => return failed(e),
                },
                Ok(None) => break,
                Err(e) => return failed(e),
            }
        }
    }
}

/// PostgreSQL's binary COPY format, decoded from the bytes fed so far: a signature and header,
/// then per row a field count and per field a length (-1 for null) and the value in network byte
/// order, then a trailer (a field count of -1). Rows may arrive split across messages.
struct CopyDecoder {
    schema: SchemaRef,
    label: String,
    bounds: ReadBounds,
    buf: Vec<u8>,
    pos: usize,
    header_read: bool,
    done: bool,
    columns: Vec<ColumnBuilder>,
    /// Rows per batch for this many columns.
    batch_rows: usize,
    /// Bytes of values that end a batch early.
    batch_bytes: usize,
    rows: usize,
    /// Bytes of values in the batch being built.
    bytes: usize,
    /// Rows decoded so far, for errors.
    row: u64,
}

/// Appends one binary COPY value to `column`, or says what is wrong with it.
fn push(column: &mut ColumnBuilder, v: &[u8]) -> Result<(), String> {
    use ColumnBuilder as Column;
    fn fixed<const N: usize>(v: &[u8]) -> Result<[u8; N], String> {
        v.try_into()
            .map_err(|_| format!("holds {} bytes where {N} were expected", v.len()))
    }
    match column {
        Column::Int64(b) => b.append_value(i64::from_be_bytes(fixed(v)?)),
        Column::Float64(b) => b.append_value(f64::from_be_bytes(fixed(v)?)),
        Column::Boolean(b) => b.append_value(fixed::<1>(v)?[0] != 0),
        Column::Text(b) => b.append_value(
            std::str::from_utf8(v).map_err(|_| "holds text that is not UTF-8".to_string())?,
        ),
        Column::Binary(b) => b.append_value(v),
        Column::Date(b) => {
            let days = i32::from_be_bytes(fixed(v)?);
            let days = days
                .checked_add(PG_EPOCH_DAYS)
                .ok_or("holds an infinite or out-of-range date")?;
            b.append_value(days)
        }
        Column::Timestamp(b, _) => {
            let micros = i64::from_be_bytes(fixed(v)?);
            let micros = micros
                .checked_add(PG_EPOCH_MICROS)
                .filter(|_| micros != i64::MAX && micros != i64::MIN)
                .ok_or("holds an infinite or out-of-range timestamp")?;
            b.append_value(micros)
        }
        Column::Decimal(b, p, s) => b.append_value(numeric(v, *p, *s)?),
    }
    Ok(())
}

/// A binary `numeric` as the unscaled value at `scale`: base-10000 digits with a weight.
fn numeric(v: &[u8], precision: u8, scale: i8) -> Result<i128, String> {
    let word = |i: usize| -> Result<u16, String> {
        v.get(i * 2..i * 2 + 2)
            .map(|b| u16::from_be_bytes([b[0], b[1]]))
            .ok_or_else(|| "holds a truncated numeric".to_string())
    };
    let (ndigits, weight, sign) = (word(0)? as usize, word(1)? as i16, word(2)?);
    if sign == 0xC000 || sign == 0xD000 || sign == 0xF000 {
        return Err("holds NaN or infinity, which a decimal cannot".into());
    }
    let overflow = || format!("holds a value wider than decimal({precision}, {scale})");
    let mut value: i128 = 0;
    for i in 0..ndigits {
        let digit = i128::from(word(4 + i)?);
        value = value
            .checked_mul(10_000)
            .and_then(|x| x.checked_add(digit))
            .ok_or_else(overflow)?;
    }
    // value × 10000^(weight - ndigits + 1) × 10^scale
    let exponent = 4 * (i32::from(weight) - ndigits as i32 + 1) + i32::from(scale);
    if exponent >= 0 {
        for _ in 0..exponent {
            value = value.checked_mul(10).ok_or_else(overflow)?;
        }
    } else {
        for _ in 0..-exponent {
            if value % 10 != 0 {
                return Err(format!("holds more digits than scale {scale}"));
            }
            value /= 10;
        }
    }
    if value.unsigned_abs() >= 10u128.pow(u32::from(precision)) {
        return Err(overflow());
    }
    Ok(if sign == 0x4000 { -value } else { value })
}

fn be_i16(b: &[u8]) -> i16 {
    i16::from_be_bytes([b[0], b[1]])
}

fn be_i32(b: &[u8]) -> i32 {
    i32::from_be_bytes([b[0], b[1], b[2], b[3]])
}

impl CopyDecoder {
    fn new(schema: SchemaRef, label: String, bounds: ReadBounds) -> CopyDecoder {
        let batch_rows = batch_rows(schema.fields().len());
        let columns = ColumnBuilder::for_schema(&schema, batch_rows);
        let batch_bytes =
            BATCH_BYTES.min(usize::try_from(bounds.memory_bytes / 8).unwrap_or(BATCH_BYTES));
        CopyDecoder {
            schema,
            label,
            bounds,
            batch_bytes: batch_bytes.max(1),
            buf: Vec::with_capacity(1 << 16),
            pos: 0,
            header_read: false,
            done: false,
            columns,
            batch_rows,
            rows: 0,
            bytes: 0,
            row: 0,
        }
    }

    fn builders(&self) -> Vec<ColumnBuilder> {
        ColumnBuilder::for_schema(&self.schema, self.batch_rows)
    }

    fn bad(&self, what: impl std::fmt::Display) -> SourceError {
        SourceError::Invalid(format!("{}: {what}", self.label))
    }

    fn feed(&mut self, chunk: &[u8]) {
        if self.pos == self.buf.len() {
            self.buf.clear();
            self.pos = 0;
        } else if self.pos > (1 << 16) {
            self.buf.drain(..self.pos);
            self.pos = 0;
        }
        self.buf.extend_from_slice(chunk);
    }

    /// A full batch if the bytes fed so far complete one, else `None` (feed more).
    fn next_batch(&mut self) -> Result<Option<RecordBatch>, SourceError> {
        if !self.header_read {
            let rest = &self.buf[self.pos..];
            if rest.len() < 19 {
                return Ok(None);
            }
            if &rest[..11] != b"PGCOPY\n\xff\r\n\0" {
                return Err(self.bad("the server's COPY stream is not in binary format"));
            }
            let extension = be_i32(&rest[15..19]).max(0) as usize;
            if rest.len() < 19 + extension {
                return Ok(None);
            }
            self.pos += 19 + extension;
            self.header_read = true;
        }
        while self.rows < self.batch_rows && self.bytes < self.batch_bytes && !self.done {
            match self.row_length()? {
                None => return Ok(None),
                Some(0) => {
                    self.pos += 2;
                    self.done = true;
                }
                Some(length) => {
                    self.push_row()?;
                    self.pos += length;
                    self.rows += 1;
                    self.bytes += length;
                }
            }
        }
        self.take_batch()
    }

    /// The bytes of the next row if all of them are here (0 for the trailer), else `None`.
    fn row_length(&self) -> Result<Option<usize>, SourceError> {
        let rest = &self.buf[self.pos..];
        if rest.len() < 2 {
            return Ok(None);
        }
        let count = be_i16(rest);
        if count == -1 {
            return Ok(Some(0));
        }
        if count as usize != self.columns.len() {
            return Err(self.bad(format!(
                "row {} has {count} fields, expected {}",
                self.row + 1,
                self.columns.len()
            )));
        }
        let mut at = 2;
        for _ in 0..count {
            if rest.len() < at + 4 {
                return Ok(None);
            }
            let len = be_i32(&rest[at..]);
            at += 4 + len.max(0) as usize;
            // Refused as soon as the lengths say so, before the row is waited for whole.
            if at as u64 > self.bounds.row_bytes {
                return Err(self.bounds.exceeded(
                    Limit::RowBytes,
                    Some(at as u64),
                    &format!("{} row {}", self.label, self.row + 1),
                ));
            }
        }
        Ok((rest.len() >= at).then_some(at))
    }

    /// Appends the (complete) row at `pos` to the builders.
    fn push_row(&mut self) -> Result<(), SourceError> {
        self.row += 1;
        let mut at = self.pos + 2;
        for i in 0..self.columns.len() {
            let len = be_i32(&self.buf[at..]);
            at += 4;
            if len < 0 {
                self.columns[i].push_null();
                continue;
            }
            let end = at + len as usize;
            let pushed = push(&mut self.columns[i], &self.buf[at..end]);
            if let Err(what) = pushed {
                let field = self.schema.field(i);
                return Err(self.bad(format!(
                    "row {} column '{}' {what} (declared {})",
                    self.row,
                    field.name(),
                    field.data_type()
                )));
            }
            at = end;
        }
        Ok(())
    }

    /// The rows decoded so far as a batch, if there are any and the batch is full or the stream
    /// is done.
    fn take_batch(&mut self) -> Result<Option<RecordBatch>, SourceError> {
        let full = self.rows >= self.batch_rows || self.bytes >= self.batch_bytes;
        if self.rows == 0 || (!full && !self.done) {
            return Ok(None);
        }
        let fresh = self.builders();
        let columns = std::mem::replace(&mut self.columns, fresh);
        self.rows = 0;
        self.bytes = 0;
        let arrays = columns
            .into_iter()
            .map(ColumnBuilder::finish)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| self.bad(e))?;
        RecordBatch::try_new(self.schema.clone(), arrays)
            .map(Some)
            .map_err(|e| self.bad(e))
    }

    /// At the end of the stream: the last rows, or an error if the trailer never came.
    fn finish(&mut self) -> Result<Option<RecordBatch>, SourceError> {
        if !self.done {
            return Err(self.bad(format!(
                "the COPY stream ended after row {} without its trailer",
                self.row
            )));
        }
        self.take_batch()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn numeric_bytes(ndigits: u16, weight: i16, sign: u16, dscale: u16, digits: &[u16]) -> Vec<u8> {
        let mut v = Vec::new();
        for w in [ndigits, weight as u16, sign, dscale] {
            v.extend_from_slice(&w.to_be_bytes());
        }
        for d in digits {
            v.extend_from_slice(&d.to_be_bytes());
        }
        v
    }

    /// A binary COPY stream of `(int8, text)` rows, trailer included.
    fn copy_stream(rows: &[(i64, Option<&str>)]) -> Vec<u8> {
        let mut out = b"PGCOPY\n\xff\r\n\0".to_vec();
        out.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 0]);
        for (n, text) in rows {
            out.extend_from_slice(&2i16.to_be_bytes());
            out.extend_from_slice(&8i32.to_be_bytes());
            out.extend_from_slice(&n.to_be_bytes());
            match text {
                Some(t) => {
                    out.extend_from_slice(&(t.len() as i32).to_be_bytes());
                    out.extend_from_slice(t.as_bytes());
                }
                None => out.extend_from_slice(&(-1i32).to_be_bytes()),
            }
        }
        out.extend_from_slice(&(-1i16).to_be_bytes());
        out
    }

    #[test]
    fn rows_split_anywhere_across_messages_decode_the_same() {
        use arrow_array::Array as _;
        use arrow_array::cast::AsArray as _;
        let rows = [(1, Some("a")), (-2, None), (i64::MAX, Some("héllo"))];
        let stream = copy_stream(&rows);
        let schema = Arc::new(Schema::new(vec![
            Field::new("n", DataType::Int64, false),
            Field::new("t", DataType::Utf8, true),
        ]));
        for chunk in 1..stream.len() {
            let mut decoder =
                CopyDecoder::new(schema.clone(), "test".into(), ReadBounds::default());
            let mut batches = Vec::new();
            for piece in stream.chunks(chunk) {
                decoder.feed(piece);
                while let Some(b) = decoder.next_batch().unwrap() {
                    batches.push(b);
                }
            }
            batches.extend(decoder.finish().unwrap());
            assert_eq!(batches.len(), 1, "chunk {chunk}");
            let b = &batches[0];
            let n = b.column(0).as_primitive::<arrow_array::types::Int64Type>();
            assert_eq!(n.values().to_vec(), vec![1, -2, i64::MAX]);
            let t = b.column(1).as_string::<i32>();
            assert_eq!((t.value(0), t.is_null(1), t.value(2)), ("a", true, "héllo"));
        }
        // Cut before the trailer: an error, not a short dataset.
        let mut decoder = CopyDecoder::new(schema.clone(), "test".into(), ReadBounds::default());
        decoder.feed(&stream[..stream.len() - 2]);
        while decoder.next_batch().unwrap().is_some() {}
        assert_eq!(
            decoder.finish().unwrap_err().to_string(),
            "test: the COPY stream ended after row 3 without its trailer"
        );
        // A row whose field lengths pass `row-bytes` is refused before it arrives whole.
        let bounds = ReadBounds {
            row_bytes: 1 << 20,
            ..ReadBounds::default()
        };
        let mut decoder = CopyDecoder::new(schema, "test".into(), bounds);
        let mut head = b"PGCOPY\n\xff\r\n\0".to_vec();
        head.extend_from_slice(&[0; 8]);
        head.extend_from_slice(&2i16.to_be_bytes());
        head.extend_from_slice(&8i32.to_be_bytes());
        head.extend_from_slice(&7i64.to_be_bytes());
        head.extend_from_slice(&(3i32 << 28).to_be_bytes());
        decoder.feed(&head);
        assert_eq!(
            decoder.next_batch().unwrap_err().to_string(),
            "limit row-bytes exceeded by test row 1: limit is 1048576, it needs 805306386"
        );
    }

    #[test]
    fn a_reader_that_dies_is_an_error_never_the_end_of_the_data() {
        let schema = Arc::new(Schema::new(vec![Field::new("n", DataType::Int64, false)]));
        let batch = RecordBatch::try_new(
            schema.clone(),
            vec![Arc::new(arrow_array::Int64Array::from(vec![1, 2]))],
        )
        .unwrap();
        let cx = ReadContext::unbounded();
        let (tx, rx) = sync_channel(2);
        tx.send(Read::Batch(batch, cx.hold(16, String::new).unwrap()))
            .unwrap();
        // The reader thread panics (or is killed) here: its sender is dropped with no `End`.
        drop(tx);
        let mut cursor = PostgresCursor {
            rx,
            pending: None,
            ended: false,
            schema,
            label: "dataset 'orders' (table retail.orders)".into(),
        };
        assert_eq!(cursor.next_batch(10).unwrap().unwrap().num_rows(), 2);
        assert_eq!(
            cursor.next_batch(10).unwrap_err().to_string(),
            "dataset 'orders' (table retail.orders): the reader stopped before the end of the data"
        );
        assert_eq!(cx.held(), 0, "the batch's memory was given back");
    }

    #[test]
    fn batches_end_by_bytes_so_text_offsets_cannot_overflow() {
        use arrow_array::Array as _;
        let schema = Arc::new(Schema::new(vec![
            Field::new("n", DataType::Int64, false),
            Field::new("t", DataType::Utf8, true),
        ]));
        let big = "x".repeat(1 << 20);
        let rows: Vec<(i64, Option<&str>)> = (0..40).map(|i| (i, Some(big.as_str()))).collect();
        let mut decoder = CopyDecoder::new(schema, "test".into(), ReadBounds::default());
        decoder.feed(&copy_stream(&rows));
        let mut sizes = Vec::new();
        while let Some(batch) = decoder.next_batch().unwrap() {
            sizes.push(batch.num_rows());
            assert!(batch.column(1).get_buffer_memory_size() < 2 * BATCH_BYTES);
        }
        sizes.extend(decoder.finish().unwrap().map(|b| b.num_rows()));
        assert_eq!(sizes.iter().sum::<usize>(), 40);
        assert!(sizes.len() >= 3, "{sizes:?}");
    }

    #[test]
    fn numerics_decode_exactly_at_the_columns_scale() {
        // 67.30 = 67 × 10000^0 + 3000 × 10000^-1
        let v = numeric_bytes(2, 0, 0, 2, &[67, 3000]);
        assert_eq!(numeric(&v, 12, 2), Ok(6_730));
        // -1234567.5 at scale 3
        let v = numeric_bytes(3, 1, 0x4000, 1, &[123, 4567, 5000]);
        assert_eq!(numeric(&v, 12, 3), Ok(-1_234_567_500));
        // 0
        assert_eq!(numeric(&numeric_bytes(0, 0, 0, 0, &[]), 5, 2), Ok(0));
        // 1.2345 does not fit scale 2; 10^6 does not fit precision 5.
        let v = numeric_bytes(2, 0, 0, 4, &[1, 2345]);
        assert!(numeric(&v, 12, 2).unwrap_err().contains("scale 2"));
        let v = numeric_bytes(1, 1, 0, 0, &[100]);
        assert!(numeric(&v, 5, 0).unwrap_err().contains("wider"));
    }
}

//! Tenant datasets in SQLite: `<root>/<tenant>/<resource>.db`, one table per dataset, read into
//! Arrow record batches of the columns a transform named (the query selects only those).
//!
//! Databases are opened read-only, and only once the tenant's directory, as a [`Jail`], accepts
//! the file (a regular file of one link, reached through no symbolic link; SQLite then opens it
//! with `SQLITE_OPEN_NOFOLLOW`). Names from the guest are checked to be plain identifiers before
//! they reach a path or a query, and rows are read by rowid ranges so a cursor holds no
//! statement between batches. The tenant's bounds hold here too: a value longer than `row-bytes`
//! is refused by SQLite itself (`SQLITE_LIMIT_LENGTH`), a row by the cursor, a batch ends at
//! [`batch_rows`] rows or [`BATCH_BYTES`], what is read is charged to `bytes-read`, and a query
//! stops when the run does (a progress handler checks every 10,000 steps). Declared types map to Arrow's: `INTEGER` to Int64, `REAL` to
//! Float64, `BOOLEAN`, `TEXT`, `BLOB`, `DATE` (stored as `YYYY-MM-DD`), `TIMESTAMP` (ISO-8601
//! text or integer microseconds, UTC: time zone `+00:00`) and `DECIMAL(p, s)` (text, integer, or the REAL SQLite's
//! NUMERIC affinity makes of decimal text: read from its shortest round-trip form).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context as _;
use rusqlite::types::ValueRef;
use rusqlite::{Connection, OpenFlags};
use sluice_jail::Jail;
use sluice_sandbox::{
    BATCH_BYTES, DataType, DatasetCursor, DatasetRef, DatasetSource, Field, Limit, ReadContext,
    RecordBatch, Schema, SchemaRef, SourceError, TimeUnit, batch_rows, projection,
};

use super::files::{jail_error, labelled, split};

use super::builder::ColumnBuilder;
use super::typed::{check_name, declared_decimal, parse_date, parse_decimal, parse_timestamp};

/// The directory holding every tenant's databases.
#[derive(Clone, Debug)]
pub struct SqliteSource {
    root: PathBuf,
}

impl SqliteSource {
    pub fn new(root: impl Into<PathBuf>) -> SqliteSource {
        SqliteSource { root: root.into() }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The database file of `tenant`'s `resource`.
    pub fn database_path(&self, tenant: &str, resource: &str) -> PathBuf {
        self.root.join(tenant).join(format!("{resource}.db"))
    }

    /// `tenant`'s `resource` database, if it has one, opened beneath the data directory.
    fn connect(
        &self,
        tenant: &str,
        resource: &str,
        cx: &ReadContext,
    ) -> Result<Option<Connection>, SourceError> {
        check_name("tenant", tenant)?;
        check_name("resource", resource)?;
        let Ok(jail) = Jail::open(&self.root) else {
            return Ok(None);
        };
        let rel = Path::new(tenant).join(format!("{resource}.db"));
        match open_in(&jail, &rel, resource, cx) {
            Ok(conn) => Ok(Some(conn)),
            Err(Missing) => Ok(None),
            Err(Refused(e)) => Err(e),
        }
    }
}

/// Why [`open_in`] has no connection.
pub(crate) enum NoDatabase {
    Missing,
    Refused(SourceError),
}
use NoDatabase::{Missing, Refused};

/// The database `rel` beneath `jail` (`dataset` names it in errors), read-only, once the jail
/// accepts it, with the run's bounds and stop set on the connection.
pub(crate) fn open_in(
    jail: &Jail,
    rel: &Path,
    dataset: &str,
    cx: &ReadContext,
) -> Result<Connection, NoDatabase> {
    match jail.open_file(rel) {
        Ok(_) => {}
        Err(e) if e.is_not_found() => return Err(Missing),
        Err(e) => return Err(Refused(jail_error(dataset, rel, e))),
    }
    let conn = Connection::open_with_flags(
        jail.root().join(rel),
        OpenFlags::SQLITE_OPEN_READ_ONLY
            | OpenFlags::SQLITE_OPEN_NO_MUTEX
            | OpenFlags::SQLITE_OPEN_NOFOLLOW,
    )
    .map_err(|e| {
        Refused(SourceError::Invalid(format!(
            "{}: not a readable SQLite database: {e}",
            labelled(dataset, rel)
        )))
    })?;
    bound(&conn, cx).map_err(Refused)?;
    Ok(conn)
}

/// Sets the run's bounds on `conn`: no value longer than `row-bytes`, and every statement
/// stopped when the run is.
fn bound(conn: &Connection, cx: &ReadContext) -> Result<(), SourceError> {
    let row_bytes = i32::try_from(cx.bounds().row_bytes).unwrap_or(i32::MAX);
    conn.set_limit(rusqlite::limits::Limit::SQLITE_LIMIT_LENGTH, row_bytes)
        .context("bounding the database's values")?;
    let stop = cx.clone();
    conn.progress_handler(10_000, Some(move || stop.check().is_err()));
    Ok(())
}

/// A database file the configuration names, opened within its directory as a jail.
pub(crate) fn open_listed(
    path: &Path,
    dataset: &str,
    cx: &ReadContext,
) -> Result<Option<Connection>, SourceError> {
    let (dir, name) = split(path);
    let jail = Jail::open(dir).map_err(|e| {
        SourceError::Invalid(format!("{}: its directory: {e}", labelled(dataset, path)))
    })?;
    match open_in(&jail, name, dataset, cx) {
        Ok(conn) => Ok(Some(conn)),
        Err(Missing) => Ok(None),
        Err(Refused(e)) => Err(e),
    }
}

/// Opens a database for writing: for tools and tests that prepare data, never for guests.
pub fn open_for_update(path: &Path) -> anyhow::Result<Connection> {
    Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_WRITE)
        .with_context(|| format!("opening {}", path.display()))
}

fn tables(conn: &Connection) -> anyhow::Result<Vec<String>> {
    let mut stmt = conn.prepare(
        "SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name",
    )?;
    let names = stmt
        .query_map([], |row| row.get::<_, String>(0))?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(names)
}

/// The Arrow type of a declared SQLite column type: SQLite's affinity rules, plus the types it
/// stores as something else (booleans as integers; dates, timestamps and decimals as text).
fn column_type(declared: &str) -> DataType {
    let upper = declared.to_ascii_uppercase();
    if let Some((precision, scale)) = declared_decimal(&upper) {
        DataType::Decimal128(precision, scale)
    } else if upper.contains("BOOL") {
        DataType::Boolean
    } else if upper.contains("TIMESTAMP") || upper.contains("DATETIME") {
        DataType::Timestamp(TimeUnit::Microsecond, Some("+00:00".into()))
    } else if upper == "DATE" {
        DataType::Date32
    } else if upper.contains("INT") {
        DataType::Int64
    } else if upper.contains("CHAR") || upper.contains("CLOB") || upper.contains("TEXT") {
        DataType::Utf8
    } else if upper.contains("BLOB") || upper.is_empty() {
        DataType::Binary
    } else {
        DataType::Float64
    }
}

impl DatasetSource for SqliteSource {
    fn list(&self, tenant: &str, resource: &str) -> Result<Vec<String>, SourceError> {
        match self.connect(tenant, resource, &ReadContext::unbounded())? {
            Some(conn) => Ok(tables(&conn)?),
            None => Ok(Vec::new()),
        }
    }

    fn open(
        &self,
        dataset: &DatasetRef,
        columns: Option<&[String]>,
        cx: &ReadContext,
    ) -> Result<Box<dyn DatasetCursor>, SourceError> {
        let conn = self
            .connect(dataset.tenant(), dataset.resource(), cx)?
            .ok_or_else(|| SourceError::not_found(dataset))?;
        open_table(conn, dataset, columns, cx)
    }
}

/// The Arrow schema of table `name`, from its declared column types.
pub fn table_schema(conn: &Connection, name: &str) -> Result<Schema, SourceError> {
    let mut fields = Vec::new();
    let mut stmt = conn
        .prepare(&format!("PRAGMA table_info(\"{name}\")"))
        .context("reading the table's columns")?;
    let mut rows = stmt.query([]).context("reading the table's columns")?;
    while let Some(row) = rows.next().context("reading the table's columns")? {
        let column: String = row.get(1).context("column name")?;
        let declared: String = row.get(2).context("column type")?;
        let not_null: bool = row.get(3).context("column nullability")?;
        fields.push(Field::new(column, column_type(&declared), !not_null));
    }
    Ok(Schema::new(fields))
}

/// A cursor over the `columns` of table `name` of an open database.
pub(crate) fn open_table(
    conn: Connection,
    dataset: &DatasetRef,
    columns: Option<&[String]>,
    cx: &ReadContext,
) -> Result<Box<dyn DatasetCursor>, SourceError> {
    let name = dataset.name();
    if !tables(&conn)?.iter().any(|t| t == name) {
        return Err(SourceError::not_found(dataset));
    }
    let full = table_schema(&conn, name)?;
    let bounds = cx.bounds();
    if full.fields().len() as u64 > bounds.columns {
        return Err(bounds.exceeded(
            Limit::Columns,
            Some(full.fields().len() as u64),
            &format!("dataset '{name}'"),
        ));
    }
    let schema = Arc::new(
        full.project(&projection(&format!("dataset '{name}'"), &full, columns)?)
            .map_err(|e| SourceError::Invalid(format!("dataset '{name}': {e}")))?,
    );
    let list = schema
        .fields()
        .iter()
        .map(|f| format!("\"{}\"", f.name().replace('"', "\"\"")))
        .collect::<Vec<_>>()
        .join(", ");
    let sql =
        format!("SELECT rowid, {list} FROM \"{name}\" WHERE rowid > ?1 ORDER BY rowid LIMIT ?2");
    // Fail at open, not mid-stream, if the table has no rowid.
    conn.prepare_cached(&sql)
        .with_context(|| format!("dataset '{name}' cannot be read by rowid"))?;
    Ok(Box::new(SqliteCursor {
        conn,
        sql,
        batch_rows: batch_rows(schema.fields().len()),
        schema,
        last_rowid: i64::MIN,
        done: false,
        name: name.to_string(),
        cx: cx.clone(),
    }))
}

struct SqliteCursor {
    conn: Connection,
    sql: String,
    schema: SchemaRef,
    batch_rows: usize,
    last_rowid: i64,
    done: bool,
    name: String,
    cx: ReadContext,
}

/// Bytes a SQLite value takes once read.
fn value_bytes(value: &ValueRef<'_>) -> u64 {
    match value {
        ValueRef::Null => 0,
        ValueRef::Integer(_) | ValueRef::Real(_) => 8,
        ValueRef::Text(t) | ValueRef::Blob(t) => t.len() as u64,
    }
}

fn text(bytes: &[u8]) -> Result<&str, String> {
    std::str::from_utf8(bytes).map_err(|_| "holds text that is not UTF-8".to_string())
}

/// Appends one SQLite value to `builder` (a null as null), or says what the cell holds instead.
fn push(builder: &mut ColumnBuilder, value: ValueRef<'_>) -> Result<(), String> {
    use ColumnBuilder as Builder;
    if let ValueRef::Null = value {
        builder.push_null();
        return Ok(());
    }
    match (builder, value) {
        (Builder::Int64(b), ValueRef::Integer(n)) => b.append_value(n),
        (Builder::Float64(b), ValueRef::Real(f)) => b.append_value(f),
        (Builder::Float64(b), ValueRef::Integer(n)) => b.append_value(n as f64),
        (Builder::Boolean(b), ValueRef::Integer(n)) => b.append_value(n != 0),
        (Builder::Text(b), ValueRef::Text(t)) => b.append_value(text(t)?),
        (Builder::Binary(b), ValueRef::Blob(t) | ValueRef::Text(t)) => b.append_value(t),
        (Builder::Date(b), ValueRef::Text(t)) => b.append_value(parse_date(text(t)?)?),
        (Builder::Date(b), ValueRef::Integer(n)) => {
            b.append_value(i32::try_from(n).map_err(|_| format!("holds day {n}, out of range"))?)
        }
        (Builder::Timestamp(b, _), ValueRef::Text(t)) => b.append_value(parse_timestamp(text(t)?)?),
        (Builder::Timestamp(b, _), ValueRef::Integer(n)) => b.append_value(n),
        (Builder::Decimal(b, p, s), ValueRef::Text(t)) => {
            b.append_value(parse_decimal(text(t)?, *p, *s)?)
        }
        (Builder::Decimal(b, p, s), ValueRef::Integer(n)) => {
            b.append_value(parse_decimal(&n.to_string(), *p, *s)?)
        }
        // SQLite's NUMERIC affinity stores decimal text such as "67.30" as a REAL; its
        // shortest round-trip form ("67.3") is the decimal that was written, exactly, for
        // up to 15 significant digits.
        (Builder::Decimal(b, p, s), ValueRef::Real(f)) => {
            b.append_value(parse_decimal(&f.to_string(), *p, *s)?)
        }
        (_, other) => return Err(format!("holds {:?}", other.data_type())),
    }
    Ok(())
}

impl DatasetCursor for SqliteCursor {
    fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    fn next_batch(&mut self, max_rows: usize) -> Result<Option<RecordBatch>, SourceError> {
        if self.done {
            return Ok(None);
        }
        self.cx.check()?;
        let max_rows = max_rows.clamp(1, self.batch_rows);
        let bounds = *self.cx.bounds();
        let mut builders = ColumnBuilder::for_schema(&self.schema, max_rows);
        let (mut count, mut bytes, mut cut_short) = (0usize, 0u64, false);
        let mut stmt = self
            .conn
            .prepare_cached(&self.sql)
            .map_err(|e| read_error(&self.name, &self.cx, e))?;
        let mut rows = stmt
            .query(rusqlite::params![self.last_rowid, max_rows as i64])
            .map_err(|e| read_error(&self.name, &self.cx, e))?;
        while let Some(row) = rows
            .next()
            .map_err(|e| read_error(&self.name, &self.cx, e))?
        {
            self.last_rowid = row.get(0).context("rowid")?;
            let mut row_bytes = 0u64;
            for (i, builder) in builders.iter_mut().enumerate() {
                let value = row.get_ref(i + 1).context("column value")?;
                row_bytes += value_bytes(&value);
                if row_bytes > bounds.row_bytes {
                    return Err(bounds.exceeded(
                        Limit::RowBytes,
                        Some(row_bytes),
                        &format!("dataset '{}' row {}", self.name, self.last_rowid),
                    ));
                }
                push(builder, value).map_err(|what| {
                    let field = &self.schema.fields()[i];
                    SourceError::Invalid(format!(
                        "dataset '{}' row {} column '{}' {what}, but the column is declared {}",
                        self.name,
                        self.last_rowid,
                        field.name(),
                        field.data_type()
                    ))
                })?;
            }
            count += 1;
            bytes += row_bytes;
            if bytes >= BATCH_BYTES as u64 {
                cut_short = true;
                break;
            }
        }
        if count < max_rows && !cut_short {
            self.done = true;
        }
        if count == 0 {
            return Ok(None);
        }
        let name = &self.name;
        self.cx.charge(bytes, || format!("dataset '{name}'"))?;
        let arrays = builders
            .into_iter()
            .map(ColumnBuilder::finish)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| SourceError::Invalid(format!("dataset '{}': {e}", self.name)))?;
        let batch = RecordBatch::try_new(self.schema.clone(), arrays)
            .with_context(|| format!("dataset '{}'", self.name))?;
        Ok(Some(batch))
    }
}

/// A failed step: the run's stop (the progress handler interrupted it), a value past
/// `row-bytes` (SQLite's length limit), or the database's own error.
fn read_error(name: &str, cx: &ReadContext, e: rusqlite::Error) -> SourceError {
    if cx.check().is_err() {
        return SourceError::Stopped;
    }
    let bounds = cx.bounds();
    match e.sqlite_error_code() {
        Some(rusqlite::ErrorCode::TooBig) => bounds.exceeded(
            Limit::RowBytes,
            None,
            &format!("dataset '{name}', a value longer than that"),
        ),
        _ => SourceError::Invalid(format!("reading dataset '{name}': {e}")),
    }
}

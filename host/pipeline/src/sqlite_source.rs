//! Tenant datasets in SQLite: `<root>/<tenant>/<resource>.db`, one table per dataset.
//!
//! Databases are opened read-only, names from the guest are checked to be plain identifiers
//! before they reach a path or a query, and rows are read by rowid ranges so a cursor holds no
//! statement between batches.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use rusqlite::types::ValueRef;
use rusqlite::{Connection, OpenFlags};
use sluice_sandbox::{
    Batch, Column, ColumnData, ColumnType, ColumnValues, DatasetCursor, DatasetSource, SourceError,
    cut, escape, is_plain_name,
};

/// The directory holding every tenant's databases.
#[derive(Clone, Debug)]
pub struct SqliteSource {
    root: PathBuf,
}

/// Names reach a path and a query here: checked again, whoever calls (the sandbox checks them
/// at its boundary first).
fn check_name(kind: &str, name: &str) -> Result<(), SourceError> {
    if is_plain_name(name) {
        Ok(())
    } else {
        Err(SourceError::Invalid(format!(
            "{kind} name '{}' must be 1-64 ASCII letters, digits, '_' or '-'",
            escape(&cut(name, 32))
        )))
    }
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

    fn connect(&self, tenant: &str, resource: &str) -> Result<Option<Connection>, SourceError> {
        check_name("tenant", tenant)?;
        check_name("resource", resource)?;
        let path = self.database_path(tenant, resource);
        if !path.is_file() {
            return Ok(None);
        }
        Ok(Some(open_read_only(&path)?))
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

/// Maps a declared SQLite column type to a batch column type, by SQLite's affinity rules plus
/// `BOOLEAN` (which SQLite itself stores as an integer).
fn column_type(declared: &str) -> ColumnType {
    let upper = declared.to_ascii_uppercase();
    if upper.contains("BOOL") {
        ColumnType::Boolean
    } else if upper.contains("INT") {
        ColumnType::Int64
    } else if upper.contains("CHAR") || upper.contains("CLOB") || upper.contains("TEXT") {
        ColumnType::Text
    } else {
        ColumnType::Float64
    }
}

impl DatasetSource for SqliteSource {
    fn list(&self, tenant: &str, resource: &str) -> Result<Vec<String>, SourceError> {
        match self.connect(tenant, resource)? {
            Some(conn) => Ok(tables(&conn)?),
            None => Ok(Vec::new()),
        }
    }

    fn open(
        &self,
        tenant: &str,
        resource: &str,
        name: &str,
    ) -> Result<Box<dyn DatasetCursor>, SourceError> {
        check_name("dataset", name)?;
        let conn = self
            .connect(tenant, resource)?
            .ok_or_else(|| SourceError::not_found(tenant, resource, name))?;
        open_table(conn, tenant, resource, name)
    }
}

fn open_read_only(path: &Path) -> Result<Connection, SourceError> {
    Ok(Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .with_context(|| format!("opening {}", path.display()))?)
}

/// A cursor over table `name` of an open database.
fn open_table(
    conn: Connection,
    tenant: &str,
    resource: &str,
    name: &str,
) -> Result<Box<dyn DatasetCursor>, SourceError> {
    if !tables(&conn)?.iter().any(|t| t == name) {
        return Err(SourceError::not_found(tenant, resource, name));
    }
    let mut schema = Vec::new();
    {
        let mut stmt = conn
            .prepare(&format!("PRAGMA table_info(\"{name}\")"))
            .context("reading the table's columns")?;
        let mut rows = stmt.query([]).context("reading the table's columns")?;
        while let Some(row) = rows.next().context("reading the table's columns")? {
            let column: String = row.get(1).context("column name")?;
            let declared: String = row.get(2).context("column type")?;
            schema.push(Column {
                name: column,
                ty: column_type(&declared),
            });
        }
    }
    let sql = select_sql(name, &schema);
    // Fail at open, not mid-stream, if the table has no rowid.
    conn.prepare_cached(&sql)
        .with_context(|| format!("dataset '{name}' cannot be read by rowid"))?;
    Ok(Box::new(SqliteCursor {
        conn,
        sql,
        schema,
        last_rowid: i64::MIN,
        done: false,
        name: name.to_string(),
    }))
}

/// Datasets a configuration lists explicitly (tenant, resource, name → database file), with the
/// conventional layout as the fallback for tenants that list none.
#[derive(Clone, Debug, Default)]
pub struct CatalogSource {
    listed: HashMap<String, Vec<(String, String, PathBuf)>>,
    fallback: Option<SqliteSource>,
}

impl CatalogSource {
    pub fn new(fallback: Option<SqliteSource>) -> CatalogSource {
        CatalogSource {
            listed: HashMap::new(),
            fallback,
        }
    }

    /// Adds dataset `name` of `tenant`'s `resource`, a table of the database at `path`.
    pub fn add(&mut self, tenant: &str, resource: &str, name: &str, path: PathBuf) {
        self.listed.entry(tenant.to_string()).or_default().push((
            resource.to_string(),
            name.to_string(),
            path,
        ));
    }
}

impl DatasetSource for CatalogSource {
    fn list(&self, tenant: &str, resource: &str) -> Result<Vec<String>, SourceError> {
        match (self.listed.get(tenant), &self.fallback) {
            (Some(entries), _) => Ok(entries
                .iter()
                .filter(|(r, _, _)| r == resource)
                .map(|(_, n, _)| n.clone())
                .collect()),
            (None, Some(fallback)) => fallback.list(tenant, resource),
            (None, None) => Ok(Vec::new()),
        }
    }

    fn open(
        &self,
        tenant: &str,
        resource: &str,
        name: &str,
    ) -> Result<Box<dyn DatasetCursor>, SourceError> {
        match (self.listed.get(tenant), &self.fallback) {
            (Some(entries), _) => {
                let (_, _, path) = entries
                    .iter()
                    .find(|(r, n, _)| r == resource && n == name)
                    .ok_or_else(|| SourceError::not_found(tenant, resource, name))?;
                open_table(open_read_only(path)?, tenant, resource, name)
            }
            (None, Some(fallback)) => fallback.open(tenant, resource, name),
            (None, None) => Err(SourceError::not_found(tenant, resource, name)),
        }
    }
}

/// The query of one batch of `schema`'s columns of table `name`, paged by rowid.
fn select_sql(name: &str, schema: &[Column]) -> String {
    let columns = schema
        .iter()
        .map(|c| format!("\"{}\"", c.name.replace('"', "\"\"")))
        .collect::<Vec<_>>()
        .join(", ");
    format!("SELECT rowid, {columns} FROM \"{name}\" WHERE rowid > ?1 ORDER BY rowid LIMIT ?2")
}

struct SqliteCursor {
    conn: Connection,
    sql: String,
    schema: Vec<Column>,
    last_rowid: i64,
    done: bool,
    name: String,
}

enum Builder {
    Int64(Vec<i64>),
    Float64(Vec<f64>),
    Boolean(Vec<u8>),
    Text(Vec<u8>, Vec<u32>),
}

impl Builder {
    fn new(ty: ColumnType, rows: usize) -> Builder {
        match ty {
            ColumnType::Int64 => Builder::Int64(Vec::with_capacity(rows)),
            ColumnType::Float64 => Builder::Float64(Vec::with_capacity(rows)),
            ColumnType::Boolean => Builder::Boolean(Vec::with_capacity(rows)),
            ColumnType::Text => {
                let mut offsets = Vec::with_capacity(rows + 1);
                offsets.push(0);
                Builder::Text(Vec::new(), offsets)
            }
        }
    }

    /// Appends one value; `false` if it is null (a default is appended instead).
    fn push(&mut self, value: ValueRef<'_>) -> Result<bool, String> {
        match (self, value) {
            (Builder::Int64(v), ValueRef::Null) => v.push(0),
            (Builder::Int64(v), ValueRef::Integer(n)) => v.push(n),
            (Builder::Float64(v), ValueRef::Null) => v.push(0.0),
            (Builder::Float64(v), ValueRef::Real(f)) => v.push(f),
            (Builder::Float64(v), ValueRef::Integer(n)) => v.push(n as f64),
            (Builder::Boolean(v), ValueRef::Null) => v.push(0),
            (Builder::Boolean(v), ValueRef::Integer(n)) => v.push(u8::from(n != 0)),
            (Builder::Text(data, offsets), ValueRef::Null) => offsets.push(data.len() as u32),
            (Builder::Text(data, offsets), ValueRef::Text(t)) => {
                data.extend_from_slice(t);
                offsets.push(data.len() as u32);
            }
            (_, other) => return Err(format!("holds {:?}", other.data_type())),
        }
        Ok(!matches!(value, ValueRef::Null))
    }

    fn finish(self) -> ColumnValues {
        match self {
            Builder::Int64(v) => ColumnValues::Int64(v),
            Builder::Float64(v) => ColumnValues::Float64(v),
            Builder::Boolean(v) => ColumnValues::Boolean(v),
            Builder::Text(data, offsets) => ColumnValues::Text((data, offsets)),
        }
    }
}

impl DatasetCursor for SqliteCursor {
    fn schema(&self) -> &[Column] {
        &self.schema
    }

    fn select(&mut self, columns: &[usize]) -> Result<(), SourceError> {
        let schema = columns
            .iter()
            .map(|&i| {
                self.schema.get(i).cloned().ok_or_else(|| {
                    SourceError::Invalid(format!("dataset '{}' has no column {i}", self.name))
                })
            })
            .collect::<Result<Vec<Column>, _>>()?;
        self.sql = select_sql(&self.name, &schema);
        self.schema = schema;
        Ok(())
    }

    fn next_batch(&mut self, max_rows: usize) -> Result<Option<Batch>, SourceError> {
        if self.done {
            return Ok(None);
        }
        let mut builders: Vec<Builder> = self
            .schema
            .iter()
            .map(|c| Builder::new(c.ty, max_rows))
            .collect();
        let mut nulls: Vec<Vec<u32>> = vec![Vec::new(); self.schema.len()];
        let mut count = 0u32;
        let mut stmt = self
            .conn
            .prepare_cached(&self.sql)
            .with_context(|| format!("reading dataset '{}'", self.name))?;
        let mut rows = stmt
            .query(rusqlite::params![self.last_rowid, max_rows as i64])
            .with_context(|| format!("reading dataset '{}'", self.name))?;
        while let Some(row) = rows
            .next()
            .with_context(|| format!("reading dataset '{}'", self.name))?
        {
            self.last_rowid = row.get(0).context("rowid")?;
            for (i, builder) in builders.iter_mut().enumerate() {
                let value = row.get_ref(i + 1).context("column value")?;
                let present = builder.push(value).map_err(|what| {
                    anyhow::anyhow!(
                        "dataset '{}' row {} column '{}' {what}, but the column is declared {:?}",
                        self.name,
                        self.last_rowid,
                        self.schema[i].name,
                        self.schema[i].ty
                    )
                })?;
                if !present {
                    nulls[i].push(count);
                }
            }
            count += 1;
        }
        if (count as usize) < max_rows {
            self.done = true;
        }
        if count == 0 {
            return Ok(None);
        }
        Ok(Some(Batch {
            rows: count,
            columns: builders
                .into_iter()
                .zip(nulls)
                .map(|(b, nulls)| ColumnData {
                    values: b.finish(),
                    nulls,
                })
                .collect(),
        }))
    }
}

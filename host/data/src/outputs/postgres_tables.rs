//! Rows written into PostgreSQL, replacing a table in one transaction: output tables published
//! to a tenant's schema, and `sluice data seed --format postgres`.
//!
//! The rows go to a staging table under a temporary name (`COPY ... FROM STDIN` in CSV, which
//! arrow-csv writes and PostgreSQL parses exactly for every type Sluice maps), then the old
//! table is dropped and the staging table renamed, all in one transaction: a reader sees the
//! old table or the new one, and a failure anywhere leaves the old one as it was.
//! [`replace_tables`] does that for several tables in one transaction: all of them, or none.

use std::io::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::Context as _;
use postgres::Client;
use sluice_sandbox::{DataType, RecordBatch, SchemaRef, TimeUnit, is_plain_name};

static STAGING: AtomicU64 = AtomicU64::new(0);

/// The column type a PostgreSQL table gets for an Arrow type; binary is staged as hex text.
fn sql_type(ty: &DataType) -> anyhow::Result<String> {
    Ok(match ty {
        DataType::Int64 => "bigint".into(),
        DataType::Float64 => "double precision".into(),
        DataType::Boolean => "boolean".into(),
        DataType::Utf8 | DataType::Binary => "text".into(),
        DataType::Date32 => "date".into(),
        DataType::Timestamp(TimeUnit::Microsecond, None) => "timestamp".into(),
        DataType::Timestamp(TimeUnit::Microsecond, Some(_)) => "timestamptz".into(),
        DataType::Decimal128(p, s) => format!("numeric({p}, {s})"),
        other => anyhow::bail!("type {other} has no PostgreSQL column type here"),
    })
}

fn quoted(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// Replaces `schema`.`table` with `batches` (of `columns`) in one transaction; returns the rows
/// written. The schema must exist and the role must be allowed to create tables in it.
pub fn replace_table(
    client: &mut Client,
    schema: &str,
    table: &str,
    columns: &SchemaRef,
    batches: impl IntoIterator<Item = anyhow::Result<RecordBatch>>,
) -> anyhow::Result<u64> {
    let mut tx = client.transaction()?;
    let rows = replace_in(&mut tx, schema, table, columns, batches)?;
    tx.commit()
        .with_context(|| format!("committing {schema}.{table}"))?;
    Ok(rows)
}

/// Replaces every (table, columns, batches) of `tables` in `schema`, in one transaction: all of
/// them, or (on any error) none.
pub fn replace_tables<'a>(
    client: &mut Client,
    schema: &str,
    tables: impl IntoIterator<Item = (&'a str, &'a SchemaRef, &'a [RecordBatch])>,
) -> anyhow::Result<()> {
    let mut tx = client.transaction()?;
    for (table, columns, batches) in tables {
        replace_in(
            &mut tx,
            schema,
            table,
            columns,
            batches.iter().cloned().map(Ok),
        )?;
    }
    tx.commit()
        .with_context(|| format!("committing the output tables of schema {schema}"))?;
    Ok(())
}

/// [`replace_table`] inside the caller's transaction.
fn replace_in(
    tx: &mut postgres::Transaction<'_>,
    schema: &str,
    table: &str,
    columns: &SchemaRef,
    batches: impl IntoIterator<Item = anyhow::Result<RecordBatch>>,
) -> anyhow::Result<u64> {
    anyhow::ensure!(
        is_plain_name(schema) && is_plain_name(table),
        "'{schema}.{table}' cannot name a PostgreSQL table"
    );
    let target = format!("{}.{}", quoted(schema), quoted(table));
    let staging_name = format!(
        "sluice_staging_{}_{}",
        std::process::id(),
        STAGING.fetch_add(1, Ordering::Relaxed)
    );
    let staging = format!("{}.{}", quoted(schema), quoted(&staging_name));
    let definition = columns
        .fields()
        .iter()
        .map(|f| {
            let null = if f.is_nullable() { "" } else { " NOT NULL" };
            Ok(format!(
                "{} {}{null}",
                quoted(f.name()),
                sql_type(f.data_type())?
            ))
        })
        .collect::<anyhow::Result<Vec<_>>>()?
        .join(", ");
    tx.batch_execute(&format!("CREATE TABLE {staging} ({definition})"))
        .with_context(|| format!("creating a staging table for {schema}.{table}"))?;
    let mut rows = 0u64;
    {
        let sink = tx
            .copy_in(&format!(
                "COPY {staging} FROM STDIN (FORMAT csv, HEADER true)"
            ))
            .with_context(|| format!("copying rows into {schema}.{table}"))?;
        let mut writer = arrow_csv::WriterBuilder::new()
            .with_header(true)
            .build(std::io::BufWriter::with_capacity(1 << 16, sink));
        for batch in batches {
            let batch = batch?;
            rows += batch.num_rows() as u64;
            writer.write(&batch)?;
        }
        let mut buffered = writer.into_inner();
        buffered.flush()?;
        let sink = buffered.into_inner().map_err(|e| e.into_error())?;
        sink.finish()
            .with_context(|| format!("copying rows into {schema}.{table}"))?;
    }
    for field in columns.fields() {
        if field.data_type() == &DataType::Binary {
            let column = quoted(field.name());
            tx.batch_execute(&format!(
                "ALTER TABLE {staging} ALTER COLUMN {column} TYPE bytea USING decode({column}, 'hex')"
            ))?;
        }
    }
    tx.batch_execute(&format!(
        "DROP TABLE IF EXISTS {target}; ALTER TABLE {staging} RENAME TO {}",
        quoted(table)
    ))
    .with_context(|| format!("swapping in {schema}.{table}"))?;
    Ok(rows)
}

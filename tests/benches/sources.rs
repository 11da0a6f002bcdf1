//! Data sources, each side measured in the same process in interleaved rounds (A, B, A, B, ...);
//! the median of the per-round ratios is the number to read (this VM is noisy).
//!
//! - the bank transform over 2.4 M rows from SQLite, Parquet, CSV and PostgreSQL: the
//!   WebAssembly guest vs the same aggregation compiled natively over the same source, and each
//!   source's guest end to end against SQLite's;
//! - projection: reading 2 of 10 int64 columns vs all 10 (1 M rows), per source;
//! - PostgreSQL: Sluice's binary COPY into Arrow vs `psql \copy` of the same columns to /dev/null;
//! - nulls: what the validity bitmap and a null-index list cost to build and to send.
//!
//! Run: `cargo xtask bench sources` (starts a throwaway PostgreSQL as `cargo xtask test` does;
//! or set `SLUICE_TEST_PG_URL` and run `cargo bench -p sluice-tests --bench sources`).
//! `SLUICE_BENCH=bank|decode|projection|copy|nulls` runs one part, `SLUICE_BENCH_SOURCE=parquet` (etc.)
//! one source; `SLUICE_BENCH_ROUNDS` (default 5).

#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use arrow_array::cast::AsArray as _;
use arrow_array::types::Int64Type;
use arrow_array::{Array as _, ArrayRef, Int64Array, RecordBatch};
use sluice_data::FileFormat;
use sluice_data::outputs::files::copy_to_file;
use sluice_data::outputs::postgres_tables::replace_table;
use sluice_data::sources::{LayoutSource, SqliteSource};
use sluice_demo::copy_demo_to_postgres;
use sluice_demo::{SEED_SCALE, seed_demo_files};
use sluice_pipeline::config::PostgresTable;
use sluice_sandbox::{
    Budget, DataType, DatasetSource, Field, Interrupt, RunRequest, Sandbox, SandboxOptions, Schema,
};
use sluice_tests::bench::{bank_native, median, rounds, verdict};
use sluice_tests::{demo_data, guest, writ};

const PG_ENV: &str = "SLUICE_BENCH_PG_URL";
const WIDE_ROWS: i64 = 1_000_000;

/// Runs `a` then `b`, `rounds` times; prints both medians and the median of the ratios b/a;
/// returns (median a, median b, median ratio).
fn interleaved(
    label_a: &str,
    label_b: &str,
    mut a: impl FnMut() -> f64,
    mut b: impl FnMut() -> f64,
) -> (f64, f64, f64) {
    let (mut xs, mut ys, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..rounds(5) {
        let (x, y) = (a(), b());
        xs.push(x);
        ys.push(y);
        ratios.push(y / x);
    }
    let (ma, mb, r) = (median(xs), median(ys), median(ratios));
    println!(
        "  {label_a:>28}: {ma:8.1} ms | {label_b:>28}: {mb:8.1} ms | {label_b} / {label_a} = {r:.2} \
         (median of {} paired rounds)",
        rounds(5)
    );
    (ma, mb, r)
}

fn ms(f: impl FnOnce()) -> f64 {
    let start = Instant::now();
    f();
    start.elapsed().as_secs_f64() * 1e3
}

struct Sources {
    _dirs: Vec<tempfile::TempDir>,
    list: Vec<(&'static str, Arc<dyn DatasetSource>)>,
    pg_url: Option<String>,
}

/// The seed's data in every store (and the wide table when `wide`), built before any timing.
fn sources(wide: bool) -> Sources {
    let parquet = tempfile::tempdir().unwrap();
    let csv = tempfile::tempdir().unwrap();
    let wide_dir = tempfile::tempdir().unwrap();
    seed_demo_files(parquet.path(), SEED_SCALE, FileFormat::Parquet).unwrap();
    seed_demo_files(csv.path(), SEED_SCALE, FileFormat::Csv).unwrap();
    if wide {
        seed_wide(demo_data(), parquet.path(), csv.path());
    }
    let mut list: Vec<(&'static str, Arc<dyn DatasetSource>)> = vec![
        ("sqlite", Arc::new(SqliteSource::new(demo_data()))),
        ("parquet", Arc::new(LayoutSource::new(parquet.path()))),
        ("csv", Arc::new(LayoutSource::new(csv.path()))),
    ];
    let pg_url = std::env::var("SLUICE_TEST_PG_URL").ok();
    match &pg_url {
        Some(url) => {
            // SAFETY: set before this benchmark starts any thread that reads the environment.
            unsafe { std::env::set_var(PG_ENV, url) };
            let mut client = postgres::Client::connect(url, postgres::NoTls).unwrap();
            copy_demo_to_postgres(demo_data(), &mut client).unwrap();
            if wide {
                client
                    .batch_execute("CREATE SCHEMA IF NOT EXISTS wide")
                    .unwrap();
                let (schema, batches) = wide_batches();
                replace_table(
                    &mut client,
                    "wide",
                    "wide",
                    &schema,
                    batches.into_iter().map(Ok),
                )
                .unwrap();
            }
            list.push(("postgres", Arc::new(PgByTenant)));
        }
        None => println!("(SLUICE_TEST_PG_URL is not set: PostgreSQL is left out)"),
    }
    if let Ok(only) = std::env::var("SLUICE_BENCH_SOURCE") {
        list.retain(|(name, _)| *name == only || *name == "sqlite");
    }
    Sources {
        _dirs: vec![parquet, csv, wide_dir],
        list,
        pg_url,
    }
}

/// PostgreSQL: `<tenant>.<dataset>` through the benchmark's URL.
struct PgByTenant;

impl DatasetSource for PgByTenant {
    fn list(&self, _t: &str, _r: &str) -> Result<Vec<String>, sluice_sandbox::SourceError> {
        Ok(Vec::new())
    }

    fn open(
        &self,
        dataset: &sluice_sandbox::DatasetRef,
        columns: Option<&[String]>,
        cx: &sluice_sandbox::ReadContext,
    ) -> Result<Box<dyn sluice_sandbox::DatasetCursor>, sluice_sandbox::SourceError> {
        PostgresTable {
            login: sluice_data::PgLogin::Env(PG_ENV.into()),
            schema: dataset.tenant().into(),
            table: dataset.name().into(),
        }
        .open(dataset, columns, cx)
    }
}

/// Ten int64 columns `c0..c9` of `WIDE_ROWS` rows, in batches.
fn wide_batches() -> (Arc<Schema>, Vec<RecordBatch>) {
    let schema = Arc::new(Schema::new(
        (0..10)
            .map(|i| Field::new(format!("c{i}"), DataType::Int64, false))
            .collect::<Vec<_>>(),
    ));
    let mut batches = Vec::new();
    let mut start = 0i64;
    while start < WIDE_ROWS {
        let end = (start + 65_536).min(WIDE_ROWS);
        let columns: Vec<ArrayRef> = (0..10i64)
            .map(|c| {
                Arc::new(Int64Array::from_iter_values(
                    (start..end).map(|r| r.wrapping_mul(2_654_435_761 + c) % 1_000_003),
                )) as ArrayRef
            })
            .collect();
        batches.push(RecordBatch::try_new(schema.clone(), columns).unwrap());
        start = end;
    }
    (schema, batches)
}

/// The wide table as `wide/analytics.db` (SQLite, under the demo data) and as Parquet and CSV.
fn seed_wide(sqlite_root: &Path, parquet: &Path, csv: &Path) {
    let db = sqlite_root.join("wide").join("analytics.db");
    if !db.is_file() {
        std::fs::create_dir_all(db.parent().unwrap()).unwrap();
        let mut conn = rusqlite::Connection::open(&db).unwrap();
        let cols: Vec<String> = (0..10).map(|i| format!("c{i} INTEGER NOT NULL")).collect();
        conn.execute_batch(&format!(
            "PRAGMA journal_mode = OFF; CREATE TABLE wide ({})",
            cols.join(", ")
        ))
        .unwrap();
        let tx = conn.transaction().unwrap();
        {
            let mut insert = tx
                .prepare("INSERT INTO wide VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)")
                .unwrap();
            for batch in &wide_batches().1 {
                let cols: Vec<&Int64Array> = (0..10)
                    .map(|c| batch.column(c).as_primitive::<Int64Type>())
                    .collect();
                for r in 0..batch.num_rows() {
                    let v: Vec<i64> = cols.iter().map(|c| c.value(r)).collect();
                    insert.execute(rusqlite::params_from_iter(v)).unwrap();
                }
            }
        }
        tx.commit().unwrap();
    }
    for (root, format) in [(parquet, FileFormat::Parquet), (csv, FileFormat::Csv)] {
        let cursor = SqliteSource::new(sqlite_root)
            .open(
                &sluice_sandbox::DatasetRef::new("wide", "analytics", "wide").unwrap(),
                None,
                &sluice_sandbox::ReadContext::unbounded(),
            )
            .unwrap();
        let path: PathBuf = root
            .join("wide")
            .join("analytics")
            .join(format!("wide.{}", format.extension()));
        copy_to_file(cursor, &path, format).unwrap();
    }
}

fn bank(sources: &Sources) {
    println!(
        "## Bank transform over 2.4 M rows, source read included: native vs guest, per source"
    );
    let transform = Sandbox::new(SandboxOptions::default())
        .and_then(|s| s.load_file(&guest("bank")))
        .expect("load bank");
    let guest_ms = |source: &Arc<dyn DatasetSource>| {
        let outcome = transform.run(RunRequest {
            writ: writ("bank", &["read:analytics:bank", "write:reports:bank"]),
            budget: Budget::default(),
            datasets: source.clone(),
            params: vec![],
            interrupt: Interrupt::new(),
        });
        assert!(outcome.is_ok(), "{:?}", outcome.result);
        outcome.elapsed.as_secs_f64() * 1e3
    };
    let mut guest_medians = Vec::new();
    for (name, source) in &sources.list {
        let native = || ms(|| assert_eq!(bank_native(source.as_ref()).transactions, 2_400_000));
        let (n, g, ratio) = interleaved(
            &format!("{name} native"),
            &format!("{name} guest"),
            native,
            || guest_ms(source),
        );
        println!(
            "  {name}: guest at {:.2}x native (median of paired ratios; target >= 0.95: {})",
            1.0 / ratio,
            verdict(1.0 / ratio >= 0.95)
        );
        let _ = (n, g);
        guest_medians.push((name, source.clone()));
    }
    println!("## The bank guest end to end: each source vs SQLite");
    let sqlite = sources.list[0].1.clone();
    for (name, source) in sources.list.iter().skip(1) {
        let (_, _, ratio) = interleaved(
            "sqlite guest",
            &format!("{name} guest"),
            || guest_ms(&sqlite),
            || guest_ms(source),
        );
        let speedup = 1.0 / ratio;
        if *name == "parquet" {
            println!(
                "  parquet is {speedup:.2}x faster than sqlite end to end (target >= 3: {})",
                verdict(speedup >= 3.0)
            );
        } else {
            println!("  {name} is {speedup:.2}x sqlite's speed end to end");
        }
    }
}

fn drain(source: &dyn DatasetSource, columns: Option<&[String]>) -> usize {
    let mut cursor = source
        .open(
            &sluice_sandbox::DatasetRef::new("wide", "analytics", "wide").unwrap(),
            columns,
            &sluice_sandbox::ReadContext::unbounded(),
        )
        .expect("open wide");
    let mut rows = 0;
    while let Some(b) = cursor.next_batch(16_384).expect("batch") {
        rows += b.num_rows();
    }
    rows
}

fn projection(sources: &Sources) {
    println!("## Projection: 2 of 10 int64 columns vs all 10, 1 M rows, host read into Arrow");
    let two = ["c3".to_string(), "c7".to_string()];
    for (name, source) in &sources.list {
        let (_, _, ratio) = interleaved(
            &format!("{name} all 10"),
            &format!("{name} 2 of 10"),
            || ms(|| assert_eq!(drain(source.as_ref(), None), WIDE_ROWS as usize)),
            || ms(|| assert_eq!(drain(source.as_ref(), Some(&two)), WIDE_ROWS as usize)),
        );
        println!("  {name}: 2 columns cost {ratio:.2} of 10 (ideal 0.20)");
    }
}

fn copy_vs_psql(sources: &Sources) {
    let Some(url) = &sources.pg_url else { return };
    println!("## PostgreSQL: Sluice's binary COPY into Arrow vs `psql \\copy` to /dev/null");
    let pg = sources
        .list
        .iter()
        .find(|(n, _)| *n == "postgres")
        .unwrap()
        .1
        .clone();
    let columns = ["balance_cents".to_string(), "is_fraud".to_string()];
    let psql = || {
        ms(|| {
            let status = std::process::Command::new("psql")
                .arg(url)
                .args([
                    "-q",
                    "-c",
                    "\\copy (SELECT balance_cents, is_fraud FROM bank.transactions) TO '/dev/null' WITH (FORMAT binary)",
                ])
                .status()
                .expect("running psql");
            assert!(status.success());
        })
    };
    let sluice = || {
        ms(|| {
            let mut cursor = pg
                .open(
                    &sluice_sandbox::DatasetRef::new("bank", "analytics", "transactions").unwrap(),
                    Some(&columns),
                    &sluice_sandbox::ReadContext::unbounded(),
                )
                .unwrap();
            let mut rows = 0;
            while let Some(b) = cursor.next_batch(16_384).unwrap() {
                rows += b.num_rows();
            }
            assert_eq!(rows, 2_400_000);
        })
    };
    let (_, _, ratio) = interleaved("psql \\copy", "sluice COPY->Arrow", psql, sluice);
    println!(
        "  sluice takes {ratio:.2}x psql's time (target <= 1.5: {})",
        verdict(ratio <= 1.5)
    );
}

/// What each null representation costs for one 16,384-row column: to build from the Arrow
/// array in the host, and in bytes sent to the guest.
fn nulls() {
    println!("## Nulls: validity bitmap vs null-index list, one 16,384-row int64 column");
    // No nulls, every 100th row null, every other row null.
    for every in [0usize, 100, 2] {
        let rows = 16_384usize;
        let array = Int64Array::from_iter(
            (0..rows).map(|i| (every == 0 || i % every != 0).then_some(i as i64)),
        );
        let iterations = 2_000u32;
        let bitmap = || {
            let start = Instant::now();
            let mut bytes = 0usize;
            for _ in 0..iterations {
                let v: Option<Vec<u8>> = array
                    .nulls()
                    .filter(|n| n.null_count() > 0)
                    .map(|n| n.buffer().as_slice().to_vec());
                bytes = v.map_or(0, |v| v.len());
            }
            (
                start.elapsed().as_secs_f64() * 1e6 / f64::from(iterations),
                bytes,
            )
        };
        let indices = || {
            let start = Instant::now();
            let mut bytes = 0usize;
            for _ in 0..iterations {
                let v: Vec<u32> = match array.nulls() {
                    Some(n) if n.null_count() > 0 => (0..rows)
                        .filter(|&i| n.is_null(i))
                        .map(|i| i as u32)
                        .collect(),
                    _ => Vec::new(),
                };
                bytes = v.len() * 4;
            }
            (
                start.elapsed().as_secs_f64() * 1e6 / f64::from(iterations),
                bytes,
            )
        };
        let (mut bt, mut it, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
        let (mut bb, mut ib) = (0, 0);
        for _ in 0..rounds(5) {
            let (b, bbytes) = bitmap();
            let (i, ibytes) = indices();
            bt.push(b);
            it.push(i);
            ratios.push(i / b.max(1e-9));
            (bb, ib) = (bbytes, ibytes);
        }
        let density = if every == 0 { 0.0 } else { 1.0 / every as f64 };
        println!(
            "  {:>4.0}% null ({} nulls): bitmap {:.2} µs, {bb} B | index list {:.2} µs, {ib} B | \
             index/bitmap time {:.1}",
            density * 100.0,
            array.null_count(),
            median(bt),
            median(it),
            median(ratios)
        );
    }
}

/// The bank's two columns of Parquet read into Arrow by the host alone, on `threads` decode
/// threads: the rows read.
fn drain_bank(source: &dyn DatasetSource, threads: u64) -> usize {
    let budget = Budget {
        decode_threads: threads,
        ..Budget::default()
    };
    let far = Instant::now() + std::time::Duration::from_secs(3600);
    let cx = sluice_sandbox::ReadContext::new(&budget, Interrupt::new(), far);
    let columns = ["balance_cents".to_string(), "is_fraud".to_string()];
    let mut cursor = source
        .open(
            &sluice_sandbox::DatasetRef::new("bank", "analytics", "transactions").unwrap(),
            Some(&columns),
            &cx,
        )
        .expect("open transactions");
    let mut rows = 0;
    while let Some(b) = cursor.next_batch(16_384).expect("batch") {
        rows += b.num_rows();
    }
    rows
}

fn decode(sources: &Sources) {
    println!("## Parquet decode, the bank's 2 columns of 2.4 M rows, host read into Arrow");
    let Some((_, parquet)) = sources.list.iter().find(|(name, _)| *name == "parquet") else {
        return;
    };
    let (_, _, ratio) = interleaved(
        "decode-threads 1",
        "decode-threads 2",
        || ms(|| assert_eq!(drain_bank(parquet.as_ref(), 1), 2_400_000)),
        || ms(|| assert_eq!(drain_bank(parquet.as_ref(), 2), 2_400_000)),
    );
    println!("  two decode threads take {ratio:.2} of one's time");
}

fn main() {
    let only = std::env::var("SLUICE_BENCH").unwrap_or_default();
    let run = |part: &str| only.is_empty() || only == part;
    if run("nulls") {
        nulls();
    }
    if !(run("bank") || run("projection") || run("copy") || run("decode")) {
        return;
    }
    demo_data();
    let sources = sources(run("projection"));
    if run("bank") {
        bank(&sources);
    }
    if run("decode") {
        decode(&sources);
    }
    if run("projection") {
        projection(&sources);
    }
    if run("copy") {
        copy_vs_psql(&sources);
    }
}

//! Tenant data where tenants keep it: the seed's reports come out byte-identical from SQLite,
//! Parquet and CSV; bad data fails only its own tenant, with an error naming the file or table,
//! the row and the column, and leaves that tenant's previous report and output table intact.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow_array::cast::AsArray as _;
use arrow_array::types::{Date32Type, Decimal128Type, Int64Type};
use sluice_data::FileFormat;
use sluice_data::outputs::files::copy_to_file;
use sluice_data::sources::{LayoutSource, SqliteSource};
use sluice_pipeline::config::{DatasetConfig, DatasetKind, DatasetLocation, TenantConfig};
use sluice_sandbox::{Budget, DatasetSource, Interrupt, RunOutcome, RunRequest};
use sluice_tests::night::{broker, demo_tenants, night_config, run};
use sluice_tests::{
    demo_data, demo_files, expected_report, own_scopes, pipeline_tenant, transform, writ,
};

fn run_over(guest: &str, tenant: &str, source: Arc<dyn DatasetSource>) -> RunOutcome {
    let scopes = own_scopes(tenant);
    let scopes: Vec<&str> = scopes.iter().map(String::as_str).collect();
    transform(guest).run(RunRequest {
        writ: writ(tenant, &scopes),
        budget: Budget::default(),
        datasets: source,
        params: vec![],
        interrupt: Interrupt::new(),
    })
}

fn report_of(outcome: &RunOutcome) -> String {
    assert!(outcome.result.is_ok(), "{:?}", outcome.result);
    String::from_utf8(outcome.staged[0].bytes.clone()).unwrap()
}

#[test]
fn the_seed_reports_are_byte_identical_from_sqlite_parquet_and_csv() {
    let sources: [(&str, Arc<dyn DatasetSource>); 3] = [
        ("sqlite", Arc::new(SqliteSource::new(demo_data()))),
        (
            "parquet",
            Arc::new(LayoutSource::new(demo_files(FileFormat::Parquet))),
        ),
        (
            "csv",
            Arc::new(LayoutSource::new(demo_files(FileFormat::Csv))),
        ),
    ];
    let mut daily_tables = Vec::new();
    for (kind, source) in &sources {
        for tenant in ["hospital", "bank", "retail"] {
            let outcome = run_over(tenant, tenant, source.clone());
            assert_eq!(
                report_of(&outcome),
                expected_report(tenant),
                "{tenant} from {kind}"
            );
        }
        let retail = run_over("retail", "retail", source.clone());
        assert_eq!(retail.tables.len(), 1, "retail's daily table from {kind}");
        daily_tables.push(retail.tables[0].batches.clone());
    }
    assert_eq!(daily_tables[0], daily_tables[1], "sqlite vs parquet");
    assert_eq!(daily_tables[0], daily_tables[2], "sqlite vs csv");

    // The table is the orders grouped by day: 28 days, every order counted once, revenue the
    // sum of the DECIMAL(12,2) totals (= the seed's $67.30 average).
    let batch = &daily_tables[0][0];
    assert_eq!(batch.num_rows(), 28);
    let days = batch.column(0).as_primitive::<Date32Type>();
    assert_eq!(days.value(0), 20_758, "2026-11-01");
    assert_eq!(days.value(27), 20_785, "2026-11-28");
    let orders: i64 = batch
        .column(1)
        .as_primitive::<Int64Type>()
        .values()
        .iter()
        .sum();
    assert_eq!(orders, 847_000);
    let revenue: i128 = batch
        .column(2)
        .as_primitive::<Decimal128Type>()
        .values()
        .iter()
        .sum();
    assert_eq!(revenue, 847_000 * 6_730);
    let returns: i64 = batch
        .column(3)
        .as_primitive::<Int64Type>()
        .values()
        .iter()
        .sum();
    assert_eq!(returns, 71_148, "8.4% of 847,000");
}

#[test]
fn every_type_reads_the_same_from_every_source() {
    // All nine columns of retail's orders, nulls included, batch for batch.
    let read_all = |source: &dyn DatasetSource| {
        let mut cursor = source
            .open(
                &sluice_sandbox::DatasetRef::new("retail", "analytics", "orders").unwrap(),
                None,
                &sluice_sandbox::ReadContext::unbounded(),
            )
            .unwrap();
        let mut batches = Vec::new();
        while let Some(b) = cursor.next_batch(16_384).unwrap() {
            batches.push(b);
        }
        batches
    };
    let sqlite = read_all(&SqliteSource::new(demo_data()));
    let parquet = read_all(&LayoutSource::new(demo_files(FileFormat::Parquet)));
    let csv = read_all(&LayoutSource::new(demo_files(FileFormat::Csv)));
    assert_eq!(sqlite[0].num_columns(), 9);
    assert_eq!(sqlite.iter().map(|b| b.num_rows()).sum::<usize>(), 847_000);
    assert!(sqlite[0].column(8).null_count() > 0, "receipts have nulls");
    // Parquet and CSV may declare nullability differently; the values must not differ.
    for (kind, other) in [("parquet", &parquet), ("csv", &csv)] {
        assert_eq!(sqlite.len(), other.len(), "{kind}");
        for (a, b) in sqlite.iter().zip(other.iter()) {
            assert_eq!(a.columns(), b.columns(), "{kind}");
        }
    }
}

/// A small retailer `id` (`rows` orders) whose `orders` lives in `format` under `dir`.
fn shop(dir: &Path, id: &str, rows: u64, kind: DatasetKind) -> (TenantConfig, PathBuf) {
    let db_dir = dir.join("sqlite");
    sluice_demo::seed_orders(&db_dir, id, rows).unwrap();
    let path = match kind {
        DatasetKind::Sqlite => db_dir.join(id).join("analytics.db"),
        DatasetKind::Postgres => unreachable!("PostgreSQL tenants are in tests/postgres.rs"),
        DatasetKind::Parquet | DatasetKind::Csv => {
            let format = if kind == DatasetKind::Csv {
                FileFormat::Csv
            } else {
                FileFormat::Parquet
            };
            let path = dir
                .join("files")
                .join(id)
                .join(format!("orders.{}", format.extension()));
            let cursor = SqliteSource::new(&db_dir)
                .open(
                    &sluice_sandbox::DatasetRef::new(id, "analytics", "orders").unwrap(),
                    None,
                    &sluice_sandbox::ReadContext::unbounded(),
                )
                .unwrap();
            copy_to_file(cursor, &path, format).unwrap();
            path
        }
    };
    let mut tenant = pipeline_tenant(id, "retail", "orders", demo_data());
    tenant.datasets = vec![DatasetConfig {
        name: "orders".into(),
        resource: "analytics".into(),
        location: match kind {
            DatasetKind::Sqlite => DatasetLocation::Sqlite(path.clone()),
            DatasetKind::Parquet => DatasetLocation::Parquet(path.clone()),
            _ => DatasetLocation::Csv(path.clone()),
        },
    }];
    (tenant, path)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_data_fails_its_own_tenant_naming_file_row_and_column_and_keeps_its_outputs() {
    let dir = tempfile::tempdir().unwrap();
    let (_broker, creds) = broker().await;
    let data = dir.path().join("data");
    let (csv_shop, csv_path) = shop(&data, "shop-csv", 5_000, DatasetKind::Csv);
    let (value_shop, value_path) = shop(&data, "shop-value", 5_000, DatasetKind::Csv);
    let (parquet_shop, parquet_path) = shop(&data, "shop-parquet", 5_000, DatasetKind::Parquet);
    let (sqlite_shop, sqlite_path) = shop(&data, "shop-sqlite", 5_000, DatasetKind::Sqlite);
    let shops = [&csv_shop, &value_shop, &parquet_shop, &sqlite_shop];
    let mut tenants = demo_tenants();
    tenants.extend(shops.iter().map(|&t| t.clone()));
    let config = night_config(dir.path(), tenants);
    let reports = config.reports.as_local().unwrap().to_path_buf();

    // A good night first: every shop publishes a report and its daily table.
    let good = run(config.clone(), &creds, 2).await;
    assert_eq!(good.failed, 0, "{:?}", good.tenants);
    let outputs = |id: &str| {
        (
            std::fs::read(reports.join(id).join("latest.json")).unwrap(),
            std::fs::read(reports.join(id).join("reports").join("daily.parquet")).unwrap(),
        )
    };
    let before: Vec<_> = shops.iter().map(|t| outputs(&t.id)).collect();

    // Then the data goes bad, a different way for each shop.
    let csv = std::fs::read_to_string(&csv_path).unwrap();
    let mut lines: Vec<String> = csv.lines().map(str::to_string).collect();
    let short = lines[1234].rsplit_once(',').unwrap().0.to_string();
    lines[1234] = short; // line 1235 of the file: one field short
    std::fs::write(&csv_path, lines.join("\n") + "\n").unwrap();

    let csv = std::fs::read_to_string(&value_path).unwrap();
    let mut lines: Vec<String> = csv.lines().map(str::to_string).collect();
    let mut fields: Vec<&str> = lines[77].split(',').collect();
    fields[3] = "12x4"; // total_cents of line 78
    lines[77] = fields.join(",");
    std::fs::write(&value_path, lines.join("\n") + "\n").unwrap();

    // A Parquet file rewritten by an upstream job that renamed a column.
    std::fs::remove_file(&parquet_path).unwrap();
    std::fs::write(&parquet_path, renamed_column_parquet()).unwrap();

    // The table vanished from the database.
    let conn = sluice_data::sources::sqlite::open_for_update(&sqlite_path).unwrap();
    conn.execute_batch("DROP TABLE orders").unwrap();
    drop(conn);

    let bad = run(config, &creds, 2).await;
    assert_eq!(bad.failed, 4);
    let error = |id: &str| {
        bad.tenants
            .iter()
            .find(|t| t.id == id)
            .unwrap()
            .error_message()
            .unwrap_or_default()
            .to_string()
    };
    assert_eq!(
        error("shop-csv"),
        "transform failed: invalid call: dataset 'orders' (orders.csv): incorrect number of \
         fields for line 1235, expected 9 got 8 (columns: order_id, customer_id, region, \
         total_cents, returned, ordered_on, ordered_at, total, receipt)"
    );
    assert_eq!(
        error("shop-value"),
        "transform failed: invalid call: dataset 'orders' (orders.csv): Error while parsing value '12x4' as type 'Int64' for column 3 at line 78 (column \
         'total_cents')"
    );
    assert_eq!(
        error("shop-parquet"),
        "transform failed: invalid call: dataset 'orders' (orders.parquet) has no column \
         'total_cents'; it has: order_id, total_cents_v2, returned, ordered_on, total"
    );
    assert_eq!(
        error("shop-sqlite"),
        "transform failed: not found: tenant 'shop-sqlite' has no dataset 'orders' in resource \
         'analytics'"
    );
    // Their previous reports and tables are as they were, byte for byte, and nothing else
    // appeared beside them.
    for (t, before) in shops.iter().zip(&before) {
        assert_eq!(&outputs(&t.id), before, "{}", t.id);
    }
    // The other tenants are untouched: the seed's reports, committed.
    for id in ["hospital", "bank", "retail"] {
        let t = bad.tenants.iter().find(|t| t.id == id).unwrap();
        assert!(t.ok(), "{id}: {:?}", t.error);
        assert_eq!(
            std::fs::read_to_string(reports.join(id).join("latest.json")).unwrap(),
            expected_report(id)
        );
    }
}

/// An `orders.parquet` whose `total_cents` was renamed `total_cents_v2`.
fn renamed_column_parquet() -> Vec<u8> {
    use arrow_array::{ArrayRef, BooleanArray, Date32Array, Decimal128Array, Int64Array};
    use sluice_sandbox::{DataType, Field, RecordBatch, Schema};
    let schema = Arc::new(Schema::new(vec![
        Field::new("order_id", DataType::Int64, false),
        Field::new("total_cents_v2", DataType::Int64, false),
        Field::new("returned", DataType::Boolean, false),
        Field::new("ordered_on", DataType::Date32, false),
        Field::new("total", DataType::Decimal128(12, 2), false),
    ]));
    let columns: Vec<ArrayRef> = vec![
        Arc::new(Int64Array::from(vec![1, 2])),
        Arc::new(Int64Array::from(vec![500, 700])),
        Arc::new(BooleanArray::from(vec![false, true])),
        Arc::new(Date32Array::from(vec![20_758, 20_759])),
        Arc::new(
            Decimal128Array::from(vec![500, 700])
                .with_precision_and_scale(12, 2)
                .unwrap(),
        ),
    ];
    let batch = RecordBatch::try_new(schema.clone(), columns).unwrap();
    sluice_data::outputs::files::write_parquet(Vec::new(), schema, [Ok(batch)]).unwrap()
}

/// A read stops when its run does, in every file source: past the run's deadline, or once it is
/// interrupted, the next batch is `Stopped` (so a run the watchdog gave up on stops reading), and
/// what the source held for the tenant is given back.
#[test]
fn reads_stop_when_the_run_does_and_give_back_their_memory() {
    use sluice_sandbox::{ReadContext, SourceError};
    let layouts = [
        (demo_files(FileFormat::Parquet), "parquet"),
        (demo_files(FileFormat::Csv), "csv"),
        (demo_data(), "sqlite"),
    ];
    for (root, kind) in layouts {
        let source = LayoutSource::new(root);
        // Interrupted after the first batch.
        let interrupt = Interrupt::new();
        let far = std::time::Instant::now() + std::time::Duration::from_secs(3600);
        let cx = ReadContext::new(&Budget::default(), interrupt.clone(), far);
        let mut cursor = source
            .open(
                &sluice_sandbox::DatasetRef::new("bank", "analytics", "transactions").unwrap(),
                None,
                &cx,
            )
            .unwrap();
        assert!(cursor.next_batch(16_384).unwrap().is_some(), "{kind}");
        interrupt.trigger();
        assert!(
            matches!(cursor.next_batch(16_384), Err(SourceError::Stopped)),
            "{kind}: an interrupted read goes on"
        );
        drop(cursor);
        assert_eq!(cx.held(), 0, "{kind}: memory still held");
        // Past its deadline.
        let cx = ReadContext::new(
            &Budget::default(),
            Interrupt::new(),
            std::time::Instant::now(),
        );
        let stopped = source
            .open(
                &sluice_sandbox::DatasetRef::new("bank", "analytics", "transactions").unwrap(),
                None,
                &cx,
            )
            .and_then(|mut c| c.next_batch(16_384));
        assert!(
            matches!(stopped, Err(SourceError::Stopped)),
            "{kind}: a read past the deadline goes on"
        );
        // Given up on by the watchdog.
        let cx = ReadContext::new(&Budget::default(), Interrupt::new(), far);
        let mut cursor = source
            .open(
                &sluice_sandbox::DatasetRef::new("bank", "analytics", "transactions").unwrap(),
                None,
                &cx,
            )
            .unwrap();
        cx.stop();
        assert!(
            matches!(cursor.next_batch(16_384), Err(SourceError::Stopped)),
            "{kind}: an abandoned read goes on"
        );
    }
}

/// A tenant's Parquet row groups decoded on several threads reach it exactly as one thread
/// decodes them (same rows, same values, file order), everything the read-ahead held is charged
/// to the tenant's memory and within its limit, and a limit too small for read-ahead only turns
/// read-ahead off: the read still succeeds as a one-thread read would.
#[test]
fn parallel_decode_gives_the_same_batches_within_the_memory_limit() {
    use sluice_sandbox::ReadContext;
    let source = LayoutSource::new(demo_files(FileFormat::Parquet));
    let read = |threads: u64, memory_mib: u64| {
        let budget = Budget {
            decode_threads: threads,
            memory_bytes: memory_mib << 20,
            ..Budget::default()
        };
        let far = std::time::Instant::now() + std::time::Duration::from_secs(3600);
        let cx = ReadContext::new(&budget, Interrupt::new(), far);
        let columns = ["balance_cents".to_string(), "is_fraud".to_string()];
        let mut cursor = source
            .open(
                &sluice_sandbox::DatasetRef::new("bank", "analytics", "transactions").unwrap(),
                Some(&columns),
                &cx,
            )
            .unwrap();
        let (mut cents, mut frauds) = (Vec::new(), Vec::new());
        while let Some(batch) = cursor.next_batch(16_384).unwrap() {
            cents.extend_from_slice(batch.column(0).as_primitive::<Int64Type>().values());
            frauds.extend(batch.column(1).as_boolean().values().iter());
        }
        drop(cursor);
        assert_eq!(cx.held(), 0, "memory still held after the cursor is closed");
        (cents, frauds, cx.held_peak(), cx.bytes_read())
    };
    let (one_cents, one_frauds, one_peak, one_bytes) = read(1, 256);
    assert_eq!(one_cents.len(), 2_400_000);
    for (threads, memory_mib) in [(2, 256), (4, 256), (2, 24)] {
        let (cents, frauds, peak, bytes) = read(threads, memory_mib);
        assert!(
            cents == one_cents && frauds == one_frauds,
            "{threads} threads, {memory_mib} MiB: the rows differ from one thread's"
        );
        assert!(
            peak <= memory_mib << 20,
            "{threads} threads held {peak} bytes, over the {memory_mib} MiB limit"
        );
        // Read-ahead decodes what one thread would, charged once.
        assert_eq!(bytes, one_bytes, "{threads} threads, {memory_mib} MiB");
        if memory_mib == 256 {
            assert!(
                peak > one_peak,
                "{threads} threads held no more than one ({peak} vs {one_peak}): no read-ahead"
            );
        }
    }
}

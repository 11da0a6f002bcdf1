//! PostgreSQL as a tenant data store, against a real server on loopback (`cargo xtask test`
//! starts one and puts its superuser URL in `SLUICE_TEST_PG_URL`): the seed's reports from
//! PostgreSQL, output tables swapped in whole, and the database refusing, through the tenant's
//! own role, a cross-tenant read that a faulty gate allowed.

use std::sync::{Arc, Once};

use postgres::{Client, NoTls};
use sluice_data::sources::CatalogSource;
use sluice_demo::copy_demo_to_postgres;
use sluice_pipeline::config::{
    DatasetConfig, DatasetLocation, OutputStore, PgLogin, PostgresTable, TenantConfig,
};
use sluice_sandbox::{Budget, DatasetSource, Decision, Interrupt, RunRequest};
use sluice_tests::night::{broker, night_config, run};
use sluice_tests::{demo_data, expected_report, pipeline_tenant, transform, writ};

const TENANTS: [(&str, &str, &str); 3] = [
    ("hospital", "hospital", "visits"),
    ("bank", "bank", "transactions"),
    ("retail", "retail", "orders"),
];

fn admin_url() -> String {
    std::env::var("SLUICE_TEST_PG_URL").expect(
        "SLUICE_TEST_PG_URL is not set: run the tests with `cargo xtask test`, which starts a \
         PostgreSQL server on loopback",
    )
}

/// `SLUICE_PG_<TENANT>`: the variable holding tenant's role URL.
fn role_env(tenant: &str) -> String {
    format!("SLUICE_PG_{}", tenant.to_uppercase())
}

/// Loads the seed into schemas `hospital`, `bank`, `retail`, and gives each tenant a login role
/// `sluice_<tenant>` that may use (read, and create its output tables in) only its own schema;
/// its URL goes in `SLUICE_PG_<TENANT>`. Once per test binary, before any test does anything.
fn setup() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let url = admin_url();
        let mut admin = Client::connect(&url, NoTls).expect("connecting as the test superuser");
        copy_demo_to_postgres(demo_data(), &mut admin).expect("loading the seed");
        let server = url
            .split_once('@')
            .map(|(_, rest)| rest.to_string())
            .unwrap();
        for (tenant, _, _) in TENANTS {
            let role = format!("sluice_{tenant}");
            admin
                .batch_execute(&format!(
                    "DO $$ BEGIN CREATE ROLE {role} LOGIN; \
                     EXCEPTION WHEN duplicate_object THEN NULL; END $$;
                     ALTER ROLE {role} PASSWORD 'pw-{tenant}';
                     REVOKE ALL ON SCHEMA public FROM PUBLIC;
                     GRANT USAGE, CREATE ON SCHEMA \"{tenant}\" TO {role};
                     GRANT SELECT ON ALL TABLES IN SCHEMA \"{tenant}\" TO {role};"
                ))
                .expect("creating the tenant's role");
            let tenant_url = format!("postgres://{role}:pw-{tenant}@{server}");
            // SAFETY: every test calls `setup` before anything else, and `call_once` holds
            // them all until this returns: no other thread of this binary reads the
            // environment while it is written.
            unsafe { std::env::set_var(role_env(tenant), tenant_url) };
        }
    });
}

fn admin() -> Client {
    Client::connect(&admin_url(), NoTls).unwrap()
}

/// A seed tenant whose dataset is its schema's table, read (and outputs written) through its
/// own role.
fn pg_tenant(id: &str, plugin: &str, dataset: &str) -> TenantConfig {
    let mut t = pipeline_tenant(id, plugin, dataset, demo_data());
    t.datasets = vec![DatasetConfig {
        name: dataset.into(),
        resource: "analytics".into(),
        location: DatasetLocation::Postgres(PostgresTable {
            login: PgLogin::Env(role_env(id)),
            schema: id.into(),
            table: dataset.into(),
        }),
    }];
    t.outputs = OutputStore::Postgres {
        login: PgLogin::Env(role_env(id)),
        schema: id.into(),
    };
    t
}

/// `f` on a thread of its own: the synchronous client runs a runtime of its own, which cannot
/// be started (or dropped) on one of the async tests' runtime threads.
fn off_runtime<T: Send>(f: impl FnOnce() -> T + Send) -> T {
    std::thread::scope(|s| s.spawn(f).join().unwrap())
}

/// retail.reports_daily as text, its OID, and its row count.
fn daily_table() -> (String, u32, i64) {
    off_runtime(|| daily_table_with(&mut admin()))
}

fn daily_table_with(client: &mut Client) -> (String, u32, i64) {
    let rows = client
        .query(
            "SELECT day::text || ' ' || orders || ' ' || revenue::text || ' ' || returns \
             FROM retail.reports_daily ORDER BY day",
            &[],
        )
        .unwrap();
    let text: Vec<String> = rows.iter().map(|r| r.get(0)).collect();
    let oid: u32 = client
        .query_one("SELECT 'retail.reports_daily'::regclass::oid", &[])
        .unwrap()
        .get(0);
    (text.join("\n"), oid, rows.len() as i64)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_seed_reports_come_from_postgres_and_output_tables_swap_in_whole() {
    off_runtime(setup);
    let (_broker, creds) = broker().await;
    let dir = tempfile::tempdir().unwrap();
    let tenants = TENANTS
        .iter()
        .map(|(id, plugin, dataset)| pg_tenant(id, plugin, dataset))
        .collect();
    let config = night_config(dir.path(), tenants);
    let report = run(config.clone(), &creds, 2).await;
    assert_eq!(report.failed, 0, "{:?}", report.tenants);
    for (id, _, _) in TENANTS {
        assert_eq!(
            std::fs::read_to_string(
                config
                    .reports
                    .as_local()
                    .unwrap()
                    .join(id)
                    .join("latest.json")
            )
            .unwrap(),
            expected_report(id),
            "{id} from PostgreSQL"
        );
    }
    let retail = &report.tenants[2];
    assert_eq!(retail.tables.len(), 1);
    assert_eq!(retail.tables[0].location, "postgres retail.reports_daily");

    // The table is the same 28 days whatever the source: the totals of the seed.
    let (first, first_oid, days) = daily_table();
    assert_eq!(days, 28);
    let totals: (i64, String, i64, String) = off_runtime(|| {
        let row = admin()
            .query_one(
                "SELECT sum(orders)::int8, sum(revenue)::text, sum(returns)::int8, \
                 min(day)::text FROM retail.reports_daily",
                &[],
            )
            .unwrap();
        (row.get(0), row.get(1), row.get(2), row.get(3))
    });
    assert_eq!(
        totals,
        (
            847_000,
            "57003100.00".to_string(),
            71_148,
            "2026-11-01".to_string()
        ),
        "847,000 orders of $67.30 on average, 8.4% returned, from November 1st"
    );

    // A failed run (its row budget runs out) leaves the table as it was: same table, same rows.
    let mut failing = config.clone();
    failing.tenants.retain(|t| t.id == "retail");
    failing.tenants[0].budget.rows_read = 1_000;
    let failed = run(failing, &creds, 1).await;
    assert_eq!(failed.failed, 1);
    assert_eq!(daily_table(), (first.clone(), first_oid, 28));

    // A successful rerun swaps in a new table with the same rows.
    let mut again = config;
    again.tenants.retain(|t| t.id == "retail");
    let rerun = run(again, &creds, 1).await;
    assert_eq!(rerun.failed, 0, "{:?}", rerun.tenants[0].error);
    let (text, oid, _) = daily_table();
    assert_eq!(text, first);
    assert_ne!(oid, first_oid, "published as a new table, swapped in");
    // No staging table is left behind.
    let staging: i64 = off_runtime(|| {
        admin()
            .query_one(
                "SELECT count(*) FROM pg_tables WHERE tablename LIKE 'sluice_staging_%'",
                &[],
            )
            .unwrap()
            .get(0)
    });
    assert_eq!(staging, 0);
}

#[test]
fn the_database_refuses_a_cross_tenant_read_that_a_faulty_gate_allowed() {
    setup();
    let mut catalog = CatalogSource::new(None);
    for (id, _, dataset) in TENANTS {
        let t = pg_tenant(id, id, dataset);
        catalog.add(id, "analytics", dataset, t.datasets[0].location.clone());
    }
    let catalog = Arc::new(catalog);
    let hospitals_view = catalog.for_tenant(Some(PgLogin::Env(role_env("hospital"))));

    // The gate bypassed: the host asks the source directly for the bank's rows in the
    // hospital's run. The hospital's role cannot see the bank's schema.
    let err = hospitals_view
        .open(
            &sluice_sandbox::DatasetRef::new("bank", "analytics", "transactions").unwrap(),
            None,
            &sluice_sandbox::ReadContext::unbounded(),
        )
        .err()
        .expect("the bank's table must not open through the hospital's role");
    assert_eq!(
        err.to_string(),
        "tenant 'bank' has no dataset 'transactions' in resource 'analytics'"
    );
    // Its own data opens through the same view.
    let mut visits = hospitals_view
        .open(
            &sluice_sandbox::DatasetRef::new("hospital", "analytics", "visits").unwrap(),
            Some(&["ward".to_string()]),
            &sluice_sandbox::ReadContext::unbounded(),
        )
        .unwrap();
    assert_eq!(visits.next_batch(10).unwrap().unwrap().num_rows(), 10);

    // And in SQL: the role itself is refused, while the superuser reads the same table.
    let hospital_url = std::env::var(role_env("hospital")).unwrap();
    let mut hospital = Client::connect(&hospital_url, NoTls).unwrap();
    let denied = hospital
        .query_one("SELECT count(*) FROM bank.transactions", &[])
        .unwrap_err();
    assert_eq!(
        denied.as_db_error().unwrap().message(),
        "permission denied for schema bank"
    );
    let denied = hospital
        .batch_execute("CREATE TABLE bank.stolen (x int)")
        .unwrap_err();
    assert_eq!(
        denied.as_db_error().unwrap().message(),
        "permission denied for schema bank"
    );
    let count: i64 = admin()
        .query_one("SELECT count(*) FROM bank.transactions", &[])
        .unwrap()
        .get(0);
    assert_eq!(count, 2_400_000);

    // A whole run with the gate wrongly granting read:analytics:bank to the hospital's agent:
    // the gate says ALLOWED, the database still says no, and not one bank row is read.
    let outcome = transform("hostile").run(RunRequest {
        writ: writ(
            "hospital",
            &["read:analytics:hospital", "read:analytics:bank"],
        ),
        budget: Budget::default(),
        datasets: Arc::new(catalog.for_tenant(Some(PgLogin::Env(role_env("hospital"))))),
        params: vec![("attack".into(), "read_other_tenant".into())],
        interrupt: Interrupt::new(),
    });
    assert!(
        outcome
            .events
            .iter()
            .any(|e| e.required.to_string() == "read:analytics:bank"
                && e.decision == Decision::Allowed),
        "the gate allowed it: {:?}",
        outcome.events
    );
    assert_eq!(
        outcome.result.unwrap_err().to_string(),
        "transform failed: not found: tenant 'bank' has no dataset 'transactions' in resource \
         'analytics'"
    );
    assert_eq!(outcome.usage.rows_read, 0);
}

/// Schema `<tenant>` with a login role of its own (`SLUICE_PG_<TENANT>`) that may use only it,
/// and `<tenant>.visits`: `rows` rows of an id and `text_bytes` bytes of text each (stored
/// compressed, sent whole). Each test has a tenant of its own: tests run at once.
fn hostile_schema(tenant: &str, rows: i64, text_bytes: i64) {
    off_runtime(|| {
        let url = admin_url();
        let server = url.split_once('@').map(|(_, r)| r.to_string()).unwrap();
        admin()
            .batch_execute(&format!(
                "DROP SCHEMA IF EXISTS {tenant} CASCADE; CREATE SCHEMA {tenant};
                 DO $$ BEGIN CREATE ROLE sluice_{tenant} LOGIN; \
                 EXCEPTION WHEN duplicate_object THEN NULL; END $$;
                 ALTER ROLE sluice_{tenant} PASSWORD 'pw-{tenant}';
                 GRANT USAGE, CREATE ON SCHEMA {tenant} TO sluice_{tenant};
                 CREATE TABLE {tenant}.visits (id int8 NOT NULL, big text NOT NULL);
                 INSERT INTO {tenant}.visits
                   SELECT g, repeat('x', {text_bytes}) FROM generate_series(1, {rows}) g;
                 GRANT SELECT ON {tenant}.visits TO sluice_{tenant};"
            ))
            .expect("making mallory's schema");
        // SAFETY: set once, before any run of this test reads it; no other test reads it.
        unsafe {
            std::env::set_var(
                role_env(tenant),
                format!("postgres://sluice_{tenant}:pw-{tenant}@{server}"),
            )
        };
    });
}

/// A hostile tenant reading its PostgreSQL table with `hostile.wasm`'s `reader`.
fn mallory(id: &str, reader: &str, budget: Budget) -> TenantConfig {
    let mut t = pg_tenant(id, "hostile", "visits");
    t.params = vec![("reader".into(), reader.into())];
    t.budget = budget;
    t
}

/// A table whose text would fill a 16,384-row batch with 2.3 GiB (Arrow's 32-bit offsets then
/// overflowed, the reader panicked, and the report was published from half the rows): now read
/// in batches of at most 16 MiB, charged as it arrives, and refused whole by `row-bytes` when a
/// row is larger than it. The seed tenants behind it are untouched.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_table_of_huge_text_is_read_in_bounded_batches_or_refused_and_never_cut_short() {
    off_runtime(setup);
    hostile_schema("mallory", 20_000, 120_000);
    let (_broker, creds) = broker().await;
    let dir = tempfile::tempdir().unwrap();
    let small = Budget {
        bytes_read: 64 << 20,
        memory_bytes: 64 << 20,
        ..Budget::default()
    };
    let mut tenants = vec![mallory("mallory", "everything", small.clone())];
    tenants.extend(
        TENANTS
            .iter()
            .map(|(id, plugin, dataset)| pg_tenant(id, plugin, dataset)),
    );
    let mut config = night_config(dir.path(), tenants);
    config.tenants[0].budget = small.clone();
    let report = run(config.clone(), &creds, 1).await;
    let error = report.tenants[0].error_message().unwrap();
    assert!(
        error.starts_with(
            "limit bytes-read exceeded by dataset 'visits' (table mallory.visits): limit is \
             67108864, it needs "
        ),
        "{error}"
    );
    for (i, (id, _, _)) in TENANTS.iter().enumerate() {
        let tenant = &report.tenants[i + 1];
        assert!(tenant.error.is_none(), "{id}: {:?}", tenant.error);
        let path = config
            .reports
            .as_local()
            .unwrap()
            .join(id)
            .join("latest.json");
        assert_eq!(std::fs::read_to_string(path).unwrap(), expected_report(id));
    }
    assert!(!config.reports.as_local().unwrap().join("mallory").exists());

    // A row larger than `row-bytes` is refused from its field lengths, before it arrives.
    let mut config = night_config(
        dir.path(),
        vec![mallory("mallory", "everything", small.clone())],
    );
    config.tenants[0].budget = Budget {
        row_bytes: 100 << 10,
        ..small
    };
    let report = run(config, &creds, 1).await;
    assert_eq!(
        report.tenants[0].error_message(),
        Some(
            "limit row-bytes exceeded by dataset 'visits' (table mallory.visits) row 1: limit is \
             102400, it needs 120018"
        )
    );
}

/// Mallory's output tables go to PostgreSQL: a run whose second table PostgreSQL refuses (text
/// with a NUL byte) publishes nothing, its first table included (swapped in one transaction with
/// the second), and its report stays the previous one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn output_tables_in_postgres_are_swapped_in_all_or_none() {
    off_runtime(setup);
    hostile_schema("mallet", 10, 10);
    let (_broker, creds) = broker().await;
    let dir = tempfile::tempdir().unwrap();
    let config = night_config(
        dir.path(),
        vec![mallory("mallet", "two-tables", Budget::default())],
    );
    let report = run(config.clone(), &creds, 1).await;
    assert!(report.tenants[0].error.is_none(), "{:?}", report.tenants[0]);
    assert_eq!(report.tenants[0].tables.len(), 2);
    let table_oid = || -> u32 {
        off_runtime(|| {
            admin()
                .query_one("SELECT 'mallet.reports_first'::regclass::oid", &[])
                .unwrap()
                .get(0)
        })
    };
    let first = table_oid();
    let report_path = config
        .reports
        .as_local()
        .unwrap()
        .join("mallet/latest.json");
    let previous = std::fs::read(&report_path).unwrap();

    let mut failing = config;
    failing.tenants[0].params.push(("nul".into(), "1".into()));
    let failed = run(failing, &creds, 1).await;
    let mallory = &failed.tenants[0];
    let error = mallory.error_message().unwrap();
    assert!(
        error.starts_with("publishing the run's outputs failed: ")
            && error.ends_with("; nothing was published: the previous report and tables are kept")
            && error.contains("0x00"),
        "{error}"
    );
    assert!(mallory.tables.is_empty());
    assert_eq!(table_oid(), first, "the first table was not replaced");
    assert_eq!(std::fs::read(&report_path).unwrap(), previous);
}

//! The throwaway PostgreSQL server `cargo xtask test` starts, set up for logins minted per run:
//! the seed in schemas `hospital`, `bank`, `retail`; a group role per tenant (named as the
//! tenant, `NOLOGIN`, holding only its schema's grants); a provisioner that may only create
//! roles; and schema `retail_per_run` for the retailer's output tables.

use std::sync::Once;

use postgres::{Client, NoTls};

/// The variable holding the provisioner's URL.
pub const PROVISIONER_ENV: &str = "SLUICE_PG_PROVISIONER";
/// The provisioner role: `LOGIN CREATEROLE`, nothing else.
pub const PROVISIONER: &str = "sluice_provisioner";
/// Where the retailer's output tables go when its login is minted per run.
pub const RETAIL_OUTPUTS: &str = "retail_per_run";

/// A hospital table longer than the PostgreSQL reader reads ahead.
pub const LONG_TABLE: &str = "visits_long";

/// The test superuser's URL.
pub fn admin_url() -> String {
    std::env::var("SLUICE_TEST_PG_URL").expect(
        "SLUICE_TEST_PG_URL is not set: run the tests with `cargo xtask test`, which starts a \
         PostgreSQL server on loopback",
    )
}

pub fn admin() -> Client {
    Client::connect(&admin_url(), NoTls).expect("connecting as the test superuser")
}

/// Sets the server up as the module says, once per process, and puts the provisioner's URL
/// in [`PROVISIONER_ENV`].
pub fn per_run_setup() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // A thread of its own: the blocking client must not run on an async test's runtime.
        std::thread::spawn(|| {
            let url = admin_url();
            let mut admin = admin();
            sluice_demo::copy_demo_to_postgres(crate::demo_data(), &mut admin)
                .expect("loading the seed");
            let server = url
                .split_once('@')
                .map(|(_, rest)| rest.to_string())
                .unwrap();
            admin
                .batch_execute(&format!(
                    "DO $$ BEGIN CREATE ROLE {PROVISIONER} LOGIN CREATEROLE; \
                     EXCEPTION WHEN duplicate_object THEN NULL; END $$;
                     ALTER ROLE {PROVISIONER} PASSWORD 'pw-provisioner';
                     REVOKE ALL ON SCHEMA public FROM PUBLIC;
                     CREATE SCHEMA IF NOT EXISTS {RETAIL_OUTPUTS};"
                ))
                .expect("creating the provisioner");
            // More rows than the reader holds ahead (two batches of 16,384), so a slow guest
            // keeps its session open while it reads: what a revocation has to cut.
            admin
                .batch_execute(&format!(
                    "CREATE TABLE IF NOT EXISTS hospital.{LONG_TABLE} AS \
                     SELECT g AS visit_id, g % 97 AS ward FROM generate_series(1, 60000) g"
                ))
                .expect("creating the hospital's long table");
            for tenant in ["hospital", "bank", "retail"] {
                admin
                    .batch_execute(&format!(
                        "DO $$ BEGIN CREATE ROLE {tenant} NOLOGIN; \
                         EXCEPTION WHEN duplicate_object THEN NULL; END $$;
                         GRANT USAGE ON SCHEMA \"{tenant}\" TO {tenant};
                         GRANT SELECT ON ALL TABLES IN SCHEMA \"{tenant}\" TO {tenant};"
                    ))
                    .expect("creating the tenant's group role");
            }
            admin
                .batch_execute(&format!(
                    "GRANT USAGE, CREATE ON SCHEMA {RETAIL_OUTPUTS} TO retail"
                ))
                .expect("granting the retailer its output schema");
            let provisioner = format!("postgres://{PROVISIONER}:pw-provisioner@{server}");
            // SAFETY: `call_once` holds every caller until this returns, and every test of a
            // binary that uses the provisioner calls this before anything else: no other thread
            // of the process reads the environment while it is written.
            unsafe { std::env::set_var(PROVISIONER_ENV, provisioner) };
        })
        .join()
        .expect("setting PostgreSQL up for per-run logins");
    });
}

/// The minted logins (`sluice_run_…`) that exist now.
pub fn minted_logins() -> Vec<String> {
    std::thread::spawn(|| {
        admin()
            .query(
                "SELECT rolname::text FROM pg_roles WHERE starts_with(rolname, 'sluice_run_')",
                &[],
            )
            .unwrap()
            .iter()
            .map(|r| r.get(0))
            .collect()
    })
    .join()
    .unwrap()
}

/// Sessions logged in as `login` now.
pub fn sessions_of(client: &mut Client, login: &str) -> i64 {
    client
        .query_one(
            "SELECT count(*) FROM pg_stat_activity WHERE usename = $1",
            &[&login],
        )
        .unwrap()
        .get(0)
}

/// Seed tenant `id` (running `plugin`) reading table `<id>.<dataset>` through a login minted
/// for each run in group role `id`; the retailer publishes its tables to [`RETAIL_OUTPUTS`].
pub fn per_run_tenant(
    id: &str,
    plugin: &str,
    dataset: &str,
) -> sluice_pipeline::config::TenantConfig {
    use sluice_pipeline::config::{
        DatasetConfig, DatasetLocation, OutputStore, PgLogin, PostgresTable,
    };
    let login = PgLogin::PerRun {
        provisioner_env: PROVISIONER_ENV.into(),
        role: id.into(),
    };
    let mut t = crate::pipeline_tenant(id, plugin, dataset, crate::demo_data());
    t.datasets = vec![DatasetConfig {
        name: dataset.into(),
        resource: "analytics".into(),
        location: DatasetLocation::Postgres(PostgresTable {
            login: login.clone(),
            schema: id.into(),
            table: dataset.into(),
        }),
    }];
    if id == "retail" {
        t.outputs = OutputStore::Postgres {
            login,
            schema: RETAIL_OUTPUTS.into(),
        };
    }
    t
}

//! What a PostgreSQL login minted per run costs, against a standing role, in interleaved rounds
//! in one process (the median of per-round differences and ratios is the number to read):
//!
//! - the login's life alone: mint + connect + one query + disconnect + drop, against connect +
//!   one query + disconnect as a standing role of the same group;
//! - a night of the three seed tenants reading PostgreSQL through per-run logins, against the
//!   same night through standing roles.
//!
//! Run: `cargo xtask bench pg_logins` (starts the throwaway PostgreSQL); `SLUICE_BENCH_ROUNDS`
//! (default 9).

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use sluice_data::PgLogin;
use sluice_data::logins::Provisioner;
use sluice_pipeline::config::{DatasetLocation, OutputStore, PipelineConfig};
use sluice_pipeline::nightly::{Pipeline, RunOptions};
use sluice_tests::bench::{median, rounds};
use sluice_tests::pg::{PROVISIONER_ENV, admin, admin_url, per_run_setup, per_run_tenant};

const TENANTS: [(&str, &str, &str); 3] = [
    ("hospital", "hospital", "visits"),
    ("bank", "bank", "transactions"),
    ("retail", "retail", "orders"),
];

/// A standing login `sluice_static_<tenant>` in each group role; their URLs in
/// `SLUICE_STATIC_<TENANT>`.
fn static_roles() {
    let server = admin_url().split_once('@').unwrap().1.to_string();
    std::thread::spawn(move || {
        let mut admin = admin();
        for (t, _, _) in TENANTS {
            admin
                .batch_execute(&format!(
                    "DO $$ BEGIN CREATE ROLE sluice_static_{t} LOGIN PASSWORD 'pw' IN ROLE {t}; \
                     EXCEPTION WHEN duplicate_object THEN NULL; END $$;
                     ALTER ROLE sluice_static_{t} SET role = '{t}';"
                ))
                .unwrap();
            // SAFETY: set before any thread of this benchmark reads the environment.
            unsafe {
                std::env::set_var(
                    format!("SLUICE_STATIC_{}", t.to_uppercase()),
                    format!("postgres://sluice_static_{t}:pw@{server}"),
                )
            };
        }
    })
    .join()
    .unwrap();
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// Connect, one query, disconnect, as `login`.
async fn use_login(login: &PgLogin) {
    let (client, connection) = login
        .config()
        .unwrap()
        .connect(tokio_postgres::NoTls)
        .await
        .unwrap();
    let driver = tokio::spawn(connection);
    client
        .query_one("SELECT count(*) FROM hospital.visits", &[])
        .await
        .unwrap();
    drop(client);
    let _ = driver.await;
}

/// The night of the seed tenants from PostgreSQL, through per-run logins or standing roles.
fn night_config(dir: &std::path::Path, per_run: bool) -> PipelineConfig {
    let tenants = TENANTS
        .iter()
        .map(|(id, plugin, dataset)| {
            let mut t = per_run_tenant(id, plugin, dataset);
            if !per_run {
                let login = PgLogin::Env(format!("SLUICE_STATIC_{}", id.to_uppercase()));
                for d in &mut t.datasets {
                    if let DatasetLocation::Postgres(table) = &mut d.location {
                        table.login = login.clone();
                    }
                }
                if let OutputStore::Postgres { schema, .. } = &t.outputs {
                    t.outputs = OutputStore::Postgres {
                        login,
                        schema: schema.clone(),
                    };
                }
            }
            t
        })
        .collect();
    sluice_tests::pipeline_config(dir, tenants)
}

async fn night(config: PipelineConfig) -> Duration {
    let start = Instant::now();
    let (broker, _dev) = sluice_tests::night::embedded_broker().await;
    let pipeline = Arc::new(Pipeline::start(config, broker, Some(2)).await.unwrap());
    let report = pipeline.run(RunOptions::default()).await;
    assert_eq!(
        report.failed,
        0,
        "{:?}",
        report.tenants.iter().find(|t| !t.ok())
    );
    start.elapsed()
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    per_run_setup();
    static_roles();
    let rounds = rounds(9);
    let provisioner = Provisioner::connect(PROVISIONER_ENV).await.unwrap();
    let standing = PgLogin::Env("SLUICE_STATIC_HOSPITAL".into());

    let (mut a, mut b, mut extra) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..rounds * 4 {
        let start = Instant::now();
        use_login(&standing).await;
        let s = start.elapsed();
        let start = Instant::now();
        let login = provisioner
            .mint("hospital", SystemTime::now() + Duration::from_secs(300), 4)
            .await
            .unwrap();
        use_login(&PgLogin::Minted(login.clone())).await;
        provisioner.drop_login(&login).await.unwrap();
        let p = start.elapsed();
        a.push(ms(s));
        b.push(ms(p));
        extra.push(ms(p) - ms(s));
    }
    println!(
        "login life, {} interleaved rounds: standing role {:.2} ms | minted per run {:.2} ms | \
         cost of minting and dropping: {:.2} ms per tenant run (median of paired differences)",
        rounds * 4,
        median(a),
        median(b),
        median(extra)
    );

    let (mut a, mut b, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..rounds {
        let dir = tempfile::tempdir().unwrap();
        let s = night(night_config(&dir.path().join("static"), false)).await;
        let p = night(night_config(&dir.path().join("per-run"), true)).await;
        a.push(ms(s));
        b.push(ms(p));
        ratios.push(ms(p) / ms(s));
    }
    println!(
        "night of the 3 seed tenants from PostgreSQL, {rounds} interleaved rounds: standing \
         roles {:.0} ms | per-run logins {:.0} ms | per-run / standing = {:.3} (median of \
         paired ratios)",
        median(a),
        median(b),
        median(ratios)
    );
}

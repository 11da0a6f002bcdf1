//! End-to-end pipeline timings with the embedded broker: the three seed tenants at seed scale, and
//! 10 / 100 / 1,000 small tenants (1,000 orders each) to show the per-tenant cost stays flat;
//! then (`SLUICE_BENCH=shards`) 1,000 and 10,000 small tenants (100 orders each) as one process
//! vs split in 4 shards running at once against one broker, in interleaved rounds; then
//! (`SLUICE_BENCH=s3`) 1,000 small tenants with reports and audit on disk vs on S3-compatible
//! storage (the moto server `cargo xtask bench` starts).
//!
//! Run: `cargo xtask guests && cargo bench -p sluice-tests --bench pipeline`
//! (`SLUICE_BENCH=shards` or `SLUICE_BENCH=s3` runs that comparison instead, through
//! `cargo xtask bench pipeline` for s3; `SLUICE_BENCH_ROUNDS`, default 5).

use std::sync::Arc;
use std::time::{Duration, Instant};

use sluice_demo::seed_orders;
use sluice_pipeline::config::{PipelineConfig, TenantConfig};
use sluice_pipeline::nightly::{Pipeline, RunOptions};
use sluice_tests::{demo_data, pipeline_config as config, pipeline_tenant as tenant};

/// Broker start, tenants and isolation proof, as `sluice run` does them.
async fn night(config: PipelineConfig, concurrency: Option<usize>) -> Duration {
    let start = Instant::now();
    let (broker, _dev) = sluice_tests::night::embedded_broker().await;
    let pipeline = Arc::new(Pipeline::start(config, broker, concurrency).await.unwrap());
    let report = pipeline.run(RunOptions::default()).await;
    assert_eq!(
        report.failed,
        0,
        "{:?}",
        report.tenants.iter().find(|t| !t.ok())
    );
    assert!(!report.isolation_violated());
    start.elapsed()
}

/// `config`'s night split in `shards` shards running at once, each its own pipeline (as its own
/// process would be) against one shared broker; the wall time of the slowest.
async fn sharded_night(config: PipelineConfig, shards: u32) -> Duration {
    use agentwrit::AgentWritApp;
    use sluice_pipeline::broker::Broker;
    use sluice_pipeline::shards::Shard;
    let start = Instant::now();
    let mut broker_config = sluice_dev_broker::BrokerConfig::in_memory(
        agentwrit::AdminSecret::new(sluice_tests::night::ADMIN),
    );
    broker_config.rate_limits = false;
    let (_dev, creds) = sluice_tests::night::broker_with(broker_config).await;
    let runs = (0..shards).map(|index| {
        let mut config = config.clone();
        config.shard = Some(Shard::new(index, shards).unwrap());
        let audit = config.audit.as_local().unwrap();
        config.audit = audit.with_extension(format!("{index}.jsonl")).into();
        let app = AgentWritApp::new(
            &creds.broker_url,
            &creds.client_id,
            creds.client_secret.clone(),
        )
        .unwrap();
        async move {
            let pipeline = Arc::new(
                Pipeline::start(config, Broker::embedded(app), None)
                    .await
                    .unwrap(),
            );
            let report = pipeline.run(RunOptions::default()).await;
            assert_eq!(report.failed, 0);
            report.tenants.len()
        }
    });
    let ran: usize = futures_util::future::join_all(runs).await.into_iter().sum();
    assert_eq!(
        ran,
        config.tenants.len(),
        "every tenant ran in exactly one shard"
    );
    start.elapsed()
}

/// 1,000 and 10,000 small tenants: one process vs 4 shards at once.
fn shards(runtime: &tokio::runtime::Runtime) {
    use sluice_tests::bench::{median, rounds};
    let small = tempfile::tempdir().unwrap();
    let ids: Vec<String> = (0..10_000).map(|i| format!("t{i:05}")).collect();
    for id in &ids {
        seed_orders(small.path(), id, 100).unwrap();
    }
    for n in [1_000usize, 10_000] {
        println!(
            "## {n} small tenants (100 orders each), retail transform: one process vs 4 shards at \
             once, one broker"
        );
        let tenants: Vec<TenantConfig> = ids[..n]
            .iter()
            .map(|id| tenant(id, "retail", "orders", small.path()))
            .collect();
        let (mut one, mut four, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
        for _ in 0..rounds(5) {
            let out = tempfile::tempdir().unwrap();
            let a = runtime
                .block_on(night(config(out.path(), tenants.clone()), None))
                .as_secs_f64();
            let out = tempfile::tempdir().unwrap();
            let b = runtime
                .block_on(sharded_night(config(out.path(), tenants.clone()), 4))
                .as_secs_f64();
            one.push(a);
            four.push(b);
            ratios.push(b / a);
        }
        let (a, b) = (median(one), median(four));
        println!(
            "  one process: {a:.2} s ({:.2} ms per tenant) | 4 shards: {b:.2} s ({:.2} ms per \
             tenant) | 4 shards / one = {:.2} (median of {} paired rounds)",
            a * 1e3 / n as f64,
            b * 1e3 / n as f64,
            median(ratios),
            rounds(5)
        );
    }
}

/// 1,000 small tenants, reports and audit on disk vs on S3 (moto on loopback); then what the
/// S3 night's audit chain costs to read back.
fn object_storage(runtime: &tokio::runtime::Runtime) {
    use sluice_audit::{Verdict, verify};
    use sluice_storage::Location;
    use sluice_tests::bench::{median, rounds};
    let small = tempfile::tempdir().unwrap();
    let ids: Vec<String> = (0..1_000).map(|i| format!("t{i:05}")).collect();
    for id in &ids {
        seed_orders(small.path(), id, 100).unwrap();
    }
    let tenants: Vec<TenantConfig> = ids
        .iter()
        .map(|id| tenant(id, "retail", "orders", small.path()))
        .collect();
    println!(
        "## 1,000 small tenants (100 orders each), retail transform: reports and audit on disk vs \
         on S3 (moto on loopback)"
    );
    let (mut disk, mut s3, mut ratios, mut segments, mut reads) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for _ in 0..rounds(5) {
        let out = tempfile::tempdir().unwrap();
        let a = runtime
            .block_on(night(config(out.path(), tenants.clone()), None))
            .as_secs_f64();
        let mut on_s3 = config(out.path(), tenants.clone());
        let root = sluice_tests::s3::location("bench");
        on_s3.reports = root.child("reports");
        on_s3.audit = root.child("audit");
        let b = runtime.block_on(night(on_s3.clone(), None)).as_secs_f64();
        disk.push(a);
        s3.push(b);
        ratios.push(b / a);
        let Location::Object(chain) = &on_s3.audit else {
            unreachable!()
        };
        segments.push(chain.list().unwrap().len() as f64);
        let read = Instant::now();
        assert!(matches!(verify(&on_s3.audit).unwrap(), Verdict::Intact(_)));
        reads.push(read.elapsed().as_secs_f64());
    }
    let (a, b) = (median(disk), median(s3));
    println!(
        "  disk: {a:.2} s ({:.2} ms per tenant) | S3: {b:.2} s ({:.2} ms per tenant) | S3 / disk = \
         {:.2} (median of {} paired rounds)",
        a * 1e3 / 1_000.0,
        b * 1e3 / 1_000.0,
        median(ratios),
        rounds(5)
    );
    println!(
        "  the S3 night's audit chain: {:.0} segments (median), verified in {:.2} s",
        median(segments),
        median(reads)
    );
    // What one PUT costs against this server, to attribute the difference.
    let file = sluice_tests::s3::location("bench-put").child("latest.json");
    let puts = (0..rounds(5))
        .map(|_| {
            let start = Instant::now();
            for _ in 0..200 {
                file.put(vec![b'x'; 120]).unwrap();
            }
            start.elapsed().as_secs_f64() * 1e3 / 200.0
        })
        .collect();
    println!(
        "  one 120-byte report PUT, sequential: {:.2} ms (median of {} rounds of 200)",
        median(puts),
        rounds(5)
    );
}

/// What a night asks the broker while its tenants run: the 3 seed tenants and 100 small ones,
/// through a proxy that counts requests by path; per tenant-second of the tenants' own time.
fn liveness(runtime: &tokio::runtime::Runtime) {
    use agentwrit::AgentWritApp;
    use sluice_pipeline::broker::Broker;
    use sluice_tests::counting_proxy::CountingProxy;
    println!("## Broker requests per tenant-second: 3 seed tenants + 100 small ones, one night");
    let data = demo_data();
    let small = tempfile::tempdir().unwrap();
    let mut tenants: Vec<TenantConfig> = [
        ("hospital", "visits"),
        ("bank", "transactions"),
        ("retail", "orders"),
    ]
    .iter()
    .map(|(id, ds)| tenant(id, id, ds, data))
    .collect();
    for i in 0..100 {
        let id = format!("t{i:03}");
        seed_orders(small.path(), &id, 1_000).unwrap();
        tenants.push(tenant(&id, "retail", "orders", small.path()));
    }
    for round in 0..rounds_or(3) {
        runtime.block_on(async {
            let mut broker_config = sluice_dev_broker::BrokerConfig::in_memory(
                agentwrit::AdminSecret::new(sluice_tests::night::ADMIN),
            );
            broker_config.rate_limits = false;
            let (dev, creds) = sluice_tests::night::broker_with(broker_config).await;
            let proxy = CountingProxy::start(dev.addr()).await;
            let app = AgentWritApp::new(
                &format!("http://{}", proxy.addr),
                &creds.client_id,
                creds.client_secret.clone(),
            )
            .unwrap();
            let out = tempfile::tempdir().unwrap();
            let pipeline = Arc::new(
                Pipeline::start(
                    config(out.path(), tenants.clone()),
                    Broker::embedded(app),
                    None,
                )
                .await
                .unwrap(),
            );
            let report = pipeline.run(RunOptions::default()).await;
            assert_eq!(report.failed, 0);
            let tenant_s: f64 = report
                .tenants
                .iter()
                .map(|t| t.elapsed_ms as f64 / 1e3)
                .sum();
            let (counts, total) = proxy.snapshot();
            let of = |path: &str| counts.get(path).copied().unwrap_or(0);
            let (validate, renew) = (of("POST /v1/token/validate"), of("POST /v1/token/renew"));
            println!(
                "  round {round}: {} tenants, {tenant_s:.2} tenant-s; {total} requests \
                 ({:.2} per tenant), validate {validate} ({:.1} per tenant-s), renew {renew}",
                report.tenants.len(),
                total as f64 / report.tenants.len() as f64,
                validate as f64 / tenant_s,
            );
            if round == 0 {
                println!("    by path: {counts:?}");
            }
        });
    }
}

fn rounds_or(default: usize) -> usize {
    std::env::var("SLUICE_BENCH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() {
    let only = std::env::var("SLUICE_BENCH").unwrap_or_default();
    if only == "liveness" {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .unwrap();
        liveness(&runtime);
        return;
    }
    if only == "shards" || only == "s3" {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .unwrap();
        if only == "shards" {
            shards(&runtime);
        } else {
            object_storage(&runtime);
        }
        return;
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    let data = demo_data();

    println!(
        "## Nightly pipeline, 3 seed tenants at seed scale (3.26 M rows), embedded broker, concurrency {cores}"
    );
    let seed: Vec<TenantConfig> = [
        ("hospital", "visits"),
        ("bank", "transactions"),
        ("retail", "orders"),
    ]
    .iter()
    .map(|(id, ds)| tenant(id, id, ds, data))
    .collect();
    let times: Vec<Duration> = (0..3)
        .map(|_| {
            let out = tempfile::tempdir().unwrap();
            runtime.block_on(night(config(out.path(), seed.clone()), None))
        })
        .collect();
    let mut sorted = times.clone();
    sorted.sort();
    println!(
        "end to end: median {:.2} s (runs: {:?})\n",
        sorted[1].as_secs_f64(),
        times
    );

    let small = tempfile::tempdir().unwrap();
    let ids: Vec<String> = (0..1000).map(|i| format!("t{i:04}")).collect();
    for id in &ids {
        seed_orders(small.path(), id, 1_000).unwrap();
    }
    for concurrency in [None, Some(8)] {
        let label = concurrency.map_or(format!("{cores} (default: cores)"), |c| c.to_string());
        println!(
            "## Small tenants, 1,000 orders each, retail transform, embedded broker, concurrency {label}"
        );
        for n in [10usize, 100, 1000] {
            let tenants: Vec<TenantConfig> = ids[..n]
                .iter()
                .map(|id| tenant(id, "retail", "orders", small.path()))
                .collect();
            let out = tempfile::tempdir().unwrap();
            let t = runtime.block_on(night(config(out.path(), tenants), concurrency));
            println!(
                "{n:>5} tenants: {:>6.2} s total, {:>6.2} ms per tenant",
                t.as_secs_f64(),
                t.as_secs_f64() * 1e3 / n as f64
            );
        }
        println!();
    }
}

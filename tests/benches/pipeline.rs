//! End-to-end pipeline timings with the embedded broker: the three seed tenants at seed scale, and
//! 10 / 100 / 1,000 small tenants (1,000 orders each) to show the per-tenant cost stays flat.
//!
//! Run: `cargo xtask guests && cargo bench -p sluice-tests --bench pipeline`

use std::sync::Arc;
use std::time::{Duration, Instant};

use sluice_pipeline::config::{PipelineConfig, TenantConfig};
use sluice_pipeline::nightly::{Pipeline, RunOptions};
use sluice_pipeline::seed::seed_orders;
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

fn main() {
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

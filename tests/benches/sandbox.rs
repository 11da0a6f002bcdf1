//! Sandbox benchmarks, each against a baseline measured in the same process, in interleaved
//! rounds (A, B, A, B, ...): a noisy neighbour on this VM hits both sides of a round alike, so the
//! median of the per-round ratios is the number to read.
//!
//! - instantiation of a tenant (fresh store, gate and identity set up): pooling vs on demand;
//! - one gated guest→host call (`dataset.next-batch` on a drained cursor) vs the cheapest host
//!   call there is (a constant from the monotonic clock): the difference is Sluice's cost;
//! - the bank transform as a WebAssembly guest vs the same aggregation compiled natively, SQLite
//!   included.
//!
//! Run: `cargo xtask guests && cargo bench -p sluice-tests --bench sandbox`
//! (`SLUICE_BENCH=instantiation|gated|bank` runs one part, e.g. under a profiler;
//! `SLUICE_BENCH_ROUNDS` sets the rounds, default 9.)

use std::sync::Arc;
use std::time::Instant;

use sluice_data::SqliteSource;
use sluice_sandbox::{
    Budget, DatasetSource, Interrupt, RunRequest, Sandbox, SandboxOptions, Transform,
};
use sluice_tests::bench::{bank_native, median, rounds, verdict};
use sluice_tests::{demo_data, guest, writ};

/// Runs `a` then `b`, `rounds` times; prints both medians and the median of the ratios b/a.
fn interleaved(
    label_a: &str,
    label_b: &str,
    unit: &str,
    mut a: impl FnMut() -> f64,
    mut b: impl FnMut() -> f64,
) -> (f64, f64) {
    let (mut xs, mut ys, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..rounds(9) {
        let (x, y) = (a(), b());
        xs.push(x);
        ys.push(y);
        ratios.push(y / x);
    }
    let (ma, mb) = (median(xs), median(ys));
    println!("{label_a:>24}: median {ma:.1} {unit}");
    println!("{label_b:>24}: median {mb:.1} {unit}");
    println!(
        "{:>24}  {label_b} / {label_a} = {:.2} (median of {} paired rounds)",
        "",
        median(ratios),
        rounds(9)
    );
    (ma, mb)
}

fn micros_per(iterations: u32, mut f: impl FnMut()) -> f64 {
    let start = Instant::now();
    for _ in 0..iterations {
        f();
    }
    start.elapsed().as_nanos() as f64 / 1000.0 / f64::from(iterations)
}

fn instantiation() {
    println!("## Instantiation per tenant (bank.wasm, InstancePre, fresh store, gate, identity)");
    let load = |pooling| {
        Sandbox::new(SandboxOptions {
            pooling_slots: pooling,
            ..SandboxOptions::default()
        })
        .and_then(|s| s.load_file(&guest("bank")))
        .expect("load bank")
    };
    let (pooled, on_demand) = (load(Some(16)), load(None));
    let once = |t: &Transform| t.instantiate_once().expect("instantiate");
    for _ in 0..200 {
        once(&pooled);
        once(&on_demand);
    }
    let (p, _) = interleaved(
        "pooling",
        "on-demand",
        "µs",
        || micros_per(500, || once(&pooled)),
        || micros_per(500, || once(&on_demand)),
    );
    println!("target: pooling ≤ 10 µs median: {}\n", verdict(p <= 10.0));
}

fn gated_calls() {
    println!(
        "## One gated call (dataset.next-batch on a drained cursor) vs the cheapest host call"
    );
    let transform = Sandbox::new(SandboxOptions::default())
        .and_then(|s| s.load_file(&guest("probe")))
        .expect("load probe");
    let source: Arc<dyn DatasetSource> = Arc::new(SqliteSource::new(demo_data()));
    let run = |mode: &str, calls: u64| {
        let outcome = transform.run(RunRequest {
            writ: writ("hospital", &["read:analytics:hospital"]),
            budget: Budget {
                host_calls: calls + 100,
                ..Budget::default()
            },
            datasets: Arc::clone(&source),
            params: vec![
                ("mode".into(), mode.into()),
                ("calls".into(), calls.to_string()),
            ],
            interrupt: Interrupt::new(),
        });
        assert!(outcome.is_ok(), "{:?}", outcome.result);
        outcome.elapsed
    };
    let n: u64 = std::env::var("SLUICE_BENCH_CALLS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    // Per call: a run of n calls minus a run of none, so instantiation and setup cancel out.
    let per_call = |mode: &str| {
        let base = run(mode, 0);
        let full = run(mode, n);
        full.saturating_sub(base).as_nanos() as f64 / n as f64
    };
    let (cheapest, gated) = interleaved(
        "cheapest host call",
        "gated call",
        "ns",
        || per_call("cheapest-calls"),
        || per_call("gated-calls"),
    );
    println!(
        "{n} calls per run; a gated call costs {:.0} ns more than the cheapest: lending the \
         dataset handle, lowering the result, the gate, the lookup (BENCHMARKS.md breaks it down)",
        gated - cheapest
    );
    println!(
        "target: gated call ≤ 150 ns median: {}\n",
        verdict(gated <= 150.0)
    );
}

fn bank_guest_vs_native() {
    println!(
        "## Bank transform over 2.4 M rows, SQLite read included: native vs WebAssembly guest"
    );
    let source = SqliteSource::new(demo_data());
    let transform = Sandbox::new(SandboxOptions::default())
        .and_then(|s| s.load_file(&guest("bank")))
        .expect("load bank");
    let guest_ms = || {
        let outcome = transform.run(RunRequest {
            writ: writ("bank", &["read:analytics:bank", "write:reports:bank"]),
            budget: Budget::default(),
            datasets: Arc::new(source.clone()),
            params: vec![],
            interrupt: Interrupt::new(),
        });
        assert!(outcome.is_ok(), "{:?}", outcome.result);
        outcome.elapsed.as_secs_f64() * 1e3
    };
    let native_ms = || {
        let start = Instant::now();
        let totals = bank_native(&source);
        assert_eq!(totals.transactions, 2_400_000);
        start.elapsed().as_secs_f64() * 1e3
    };
    let (native, guest) = interleaved("native", "guest", "ms", native_ms, guest_ms);
    println!(
        "guest runs at {:.2}x native speed (medians)\n",
        native / guest
    );
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` passes nothing: run either way.
    demo_data();
    let only = std::env::var("SLUICE_BENCH").unwrap_or_default();
    if only.is_empty() || only == "instantiation" {
        instantiation();
    }
    if only.is_empty() || only == "gated" {
        gated_calls();
    }
    if only.is_empty() || only == "bank" {
        bank_guest_vs_native();
    }
}

//! Sluice against the engine a tenant would use instead: the bank transform as a sandboxed guest
//! vs Polars (PyPI `polars`, pinned in `tests/python/requirements.txt`) computing the same
//! figures from the same Parquet file, in interleaved rounds (Polars, Sluice, Polars, ...).
//!
//! Each side is timed where it runs: Polars inside its own Python process around
//! `LazyFrame.collect()` of a lazy scan (both cores), Sluice around the guest's run as
//! `sluice try` times it (instantiation, open, read, aggregate, the report staged). The number
//! to read is the median of the per-round ratios Sluice / Polars.
//!
//! Run: `cargo xtask bench engines` (needs the project's venv: `SLUICE_VENV`, made by
//! `cargo xtask test` or `cargo xtask bench`); `SLUICE_BENCH_ROUNDS` (default 9).

#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::io::{BufRead as _, BufReader, Write as _};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::Arc;

use sluice_data::FileFormat;
use sluice_data::sources::LayoutSource;
use sluice_demo::{SEED_SCALE, seed_demo_files};
use sluice_sandbox::{Budget, DatasetSource, Interrupt, RunRequest, Sandbox, SandboxOptions};
use sluice_tests::bench::{bank_native, median, rounds, verdict};
use sluice_tests::{guest, root, writ};

fn python() -> PathBuf {
    let venv = std::env::var_os("SLUICE_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("target").join("venv"));
    venv.join("bin").join("python")
}

fn main() {
    let dir = tempfile::tempdir().unwrap();
    seed_demo_files(dir.path(), SEED_SCALE, FileFormat::Parquet).unwrap();
    let file = dir
        .path()
        .join("bank")
        .join("analytics")
        .join("transactions.parquet");
    let source: Arc<dyn DatasetSource> = Arc::new(LayoutSource::new(dir.path()));
    let expected = bank_native(source.as_ref());

    let mut polars = Command::new(python())
        .arg(root().join("tests").join("benches").join("polars_bank.py"))
        .arg(&file)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect(
            "starting Python with polars: run `cargo xtask bench engines`, which makes the venv",
        );
    let mut to_polars = polars.stdin.take().unwrap();
    let mut from_polars = BufReader::new(polars.stdout.take().unwrap());
    // Its first line says which Polars, on how many threads.
    let mut line = String::new();
    from_polars.read_line(&mut line).unwrap();
    let banner: serde_json::Value = serde_json::from_str(&line).expect("polars' banner");
    println!(
        "## Bank figures over 2.4 M rows of Parquet ({} bytes): Polars {} on {} threads vs \
         Sluice's bank guest",
        std::fs::metadata(&file).unwrap().len(),
        banner["polars"].as_str().unwrap_or("?"),
        banner["threads"]
    );
    let mut answer = || -> serde_json::Value {
        to_polars.write_all(b"go\n").unwrap();
        to_polars.flush().unwrap();
        line.clear();
        from_polars.read_line(&mut line).unwrap();
        serde_json::from_str(&line).expect("polars' answer")
    };
    let first = answer();
    // Polars computes the very figures the bank's code computes.
    assert_eq!(first["transactions"], expected.transactions);
    assert_eq!(first["balances"], expected.balances);
    assert_eq!(
        first["balance_cents"].as_i64().map(i128::from),
        Some(expected.balance_cents)
    );
    assert_eq!(first["frauds"], expected.frauds);

    let transform = Sandbox::new(SandboxOptions::default())
        .and_then(|s| s.load_file(&guest("bank")))
        .expect("load bank");
    let sluice_ms = || {
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
    let _ = sluice_ms();
    let (mut ps, mut ss, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..rounds(9) {
        let p = answer()["ms"].as_f64().unwrap();
        let s = sluice_ms();
        ps.push(p);
        ss.push(s);
        ratios.push(s / p);
    }
    let n = ratios.len();
    let (p, s, r) = (median(ps), median(ss), median(ratios));
    println!(
        "  Polars: {p:.1} ms | Sluice bank guest: {s:.1} ms | Sluice / Polars = {r:.2} (median of {n} \
         paired rounds; target <= 1.0: {})",
        verdict(r <= 1.0)
    );
    drop(to_polars);
    let _ = polars.wait();
}

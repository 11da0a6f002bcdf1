//! The night page of a 1,000-tenant night with 13 earlier nights: its size, and the time to draw
//! it against the time to serialize the same records as JSON (what `--json` and the shard
//! summaries cost), in interleaved rounds in one process; the median of per-round ratios is the
//! number to read (this VM is noisy).
//!
//! Run: `cargo bench -p sluice-tests --bench night_page` (no server needed), or
//! `cargo xtask bench night_page`. `SLUICE_BENCH_ROUNDS` (default 9).

use std::collections::HashMap;
use std::time::Instant;

use sluice_pipeline::record::TenantRecord;
use sluice_tests::bench::{median, rounds, verdict};
use sluice_tests::big_night::big_night;

const TENANTS: usize = 1_000;
const PAST: usize = 13;

fn main() {
    let (night, past) = big_night(TENANTS, PAST);
    let past_records: Vec<&HashMap<String, TenantRecord>> =
        past.iter().map(|n| &n.tenants).collect();
    let rounds = rounds(9);
    let (mut page_ms, mut json_ms, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
    let (mut page_bytes, mut json_bytes) = (0, 0);
    for _ in 0..rounds {
        let start = Instant::now();
        let json = serde_json::to_string(&(&night, &past_records)).unwrap();
        let j = start.elapsed().as_secs_f64() * 1e3;
        let start = Instant::now();
        let page = sluice_page::render(&night, &past);
        let p = start.elapsed().as_secs_f64() * 1e3;
        (page_bytes, json_bytes) = (page.len(), json.len());
        page_ms.push(p);
        json_ms.push(j);
        ratios.push(p / j);
    }
    let (p, j, r) = (median(page_ms), median(json_ms), median(ratios));
    println!("night page, {TENANTS} tenants, {PAST} earlier nights ({rounds} interleaved rounds):");
    println!(
        "  page: {page_bytes} bytes ({:.0} KB), limit 1,000,000: {}",
        page_bytes as f64 / 1e3,
        verdict(page_bytes < 1_000_000)
    );
    println!(
        "  draw: {p:.1} ms | JSON of the same records ({json_bytes} bytes): {j:.1} ms | \
         page / JSON = {r:.2} (median of paired rounds)"
    );
}

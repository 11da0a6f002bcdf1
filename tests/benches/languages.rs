//! The same seed transforms in Rust, Python and JavaScript, measured in one process in
//! interleaved rounds (Rust, Python, JS, Rust, Python, JS, ...), so a noisy neighbour on this VM
//! hits every language of a round alike; ratios to Rust are medians of the per-round ratios.
//!
//! Per language: component size; first compile (no cache); cached load (the compiled-plugin
//! cache: read, verify, deserialize, link), alone and with the pin check (read the plugin,
//! SHA-256); pooled instantiation; and each seed tenant's transform at seed scale, SQLite read
//! included, as a ratio to the Rust guest.
//!
//! Run: `cargo xtask guests && cargo bench -p sluice-tests --bench languages`
//! (`SLUICE_BENCH_ROUNDS` sets the rounds, default 5, at least 5.)

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use sha2::Digest as _;
use sluice_data::SqliteSource;
use sluice_sandbox::{
    Budget, CodeOrigin, Interrupt, RunRequest, Sandbox, SandboxOptions, Transform, WasiSurface,
};
use sluice_tests::bench::{median, rounds, verdict};
use sluice_tests::{demo_data, expected_report, guest, language_of, own_scopes, writ};

const LANGS: [(&str, &str); 3] = [("Rust", ""), ("Python", "-py"), ("JS", "-js")];

fn surface(name: &str) -> WasiSurface {
    language_of(name).surface()
}

fn sandbox(cache: Option<&Path>) -> Sandbox {
    let mut sandbox = Sandbox::new(SandboxOptions::default()).expect("sandbox");
    if let Some(dir) = cache {
        sandbox.use_compiled_cache(dir).expect("cache");
    }
    sandbox
}

fn hex_sha256(bytes: &[u8]) -> String {
    hex::encode(sha2::Sha256::digest(bytes))
}

/// Runs `measure(language index)` for every language, `rounds` times interleaved; returns the
/// samples per language.
fn interleaved(mut measure: impl FnMut(usize) -> f64) -> Vec<Vec<f64>> {
    let mut samples = vec![Vec::new(); LANGS.len()];
    for _ in 0..rounds(5) {
        for (i, s) in samples.iter_mut().enumerate() {
            s.push(measure(i));
        }
    }
    samples
}

/// Median per language, and the median of per-round ratios to Rust.
fn report(what: &str, unit: &str, samples: &[Vec<f64>]) -> Vec<f64> {
    let medians: Vec<f64> = samples.iter().map(|s| median(s.clone())).collect();
    let cells: Vec<String> = LANGS
        .iter()
        .zip(&medians)
        .enumerate()
        .map(|(i, ((lang, _), m))| {
            let ratio = median(
                samples[i]
                    .iter()
                    .zip(&samples[0])
                    .map(|(x, rust)| x / rust)
                    .collect(),
            );
            if i == 0 {
                format!("{lang} {m:.2} {unit}")
            } else {
                format!("{lang} {m:.2} {unit} ({ratio:.2}× Rust)")
            }
        })
        .collect();
    println!("| {what} | {} |", cells.join(" | "));
    medians
}

/// Where a cached load's milliseconds go, for the Python component (`SLUICE_BENCH=breakdown`):
/// the copying path (read the entry whole, hash, deserialize the copy) step by step, against the
/// cache's path (hash through a small buffer, let Wasmtime map the file).
fn breakdown() {
    let cache = tempfile::tempdir().unwrap();
    let name = "hospital-py";
    let bytes = std::fs::read(guest(name)).unwrap();
    let sha = hex_sha256(&bytes);
    sandbox(Some(cache.path()))
        .load_pinned(&bytes, &sha, name, surface(name))
        .unwrap();
    let entry = std::fs::read_dir(cache.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|x| x == "cwasm"))
        .unwrap();
    let s = sandbox(Some(cache.path()));
    for _ in 0..5 {
        let t0 = Instant::now();
        let code = std::fs::read(&entry).unwrap();
        let t1 = Instant::now();
        let digest = blake3::hash(&code);
        let t2 = Instant::now();
        // SAFETY: the cache's own entry, just written by this process.
        let component =
            unsafe { wasmtime::component::Component::deserialize(s.engine(), &code) }.unwrap();
        let t3 = Instant::now();
        let total = Instant::now();
        s.load_pinned(&bytes, &sha, name, surface(name)).unwrap();
        let t4 = Instant::now();
        drop((digest, component));
        println!(
            "copying: read {:.1} ms ({} MB), blake3 {:.1} ms, deserialize {:.1} ms; the cache's \
             load_pinned: {:.1} ms",
            (t1 - t0).as_secs_f64() * 1e3,
            code.len() >> 20,
            (t2 - t1).as_secs_f64() * 1e3,
            (t3 - t2).as_secs_f64() * 1e3,
            (t4 - total).as_secs_f64() * 1e3,
        );
    }
}

fn main() {
    if std::env::var("SLUICE_BENCH").as_deref() == Ok("breakdown") {
        return breakdown();
    }
    println!("rounds: {} (interleaved Rust, Python, JS)\n", rounds(5));
    println!("| measurement | Rust | Python | JS |");
    println!("|---|---|---|---|");

    // Size.
    let sizes: Vec<String> = LANGS
        .iter()
        .map(|(_, suffix)| {
            let len = std::fs::metadata(guest(&format!("hospital{suffix}")))
                .unwrap()
                .len();
            format!("{:.2} MB", len as f64 / 1e6)
        })
        .collect();
    println!("| component size (hospital) | {} |", sizes.join(" | "));

    // First compile: no cache, a fresh sandbox each time.
    let bytes: Vec<(String, Vec<u8>)> = LANGS
        .iter()
        .map(|(_, suffix)| {
            let name = format!("hospital{suffix}");
            let bytes = std::fs::read(guest(&name)).unwrap();
            (name, bytes)
        })
        .collect();
    let compile = interleaved(|i| {
        let s = sandbox(None);
        let (name, bytes) = &bytes[i];
        let start = Instant::now();
        s.load_as(bytes, name, surface(name)).expect("compile");
        start.elapsed().as_secs_f64() * 1000.0
    });
    report("first compile (hospital)", "ms", &compile);

    // Cached load, from a cache filled once; each load in a fresh sandbox, as a new run would.
    let cache = tempfile::tempdir().unwrap();
    let shas: Vec<String> = bytes.iter().map(|(_, b)| hex_sha256(b)).collect();
    {
        let s = sandbox(Some(cache.path()));
        for ((name, b), sha) in bytes.iter().zip(&shas) {
            s.load_pinned(b, sha, name, surface(name)).unwrap();
        }
    }
    let cached = interleaved(|i| {
        let s = sandbox(Some(cache.path()));
        let (name, b) = &bytes[i];
        let start = Instant::now();
        let t = s.load_pinned(b, &shas[i], name, surface(name)).unwrap();
        let ms = start.elapsed().as_secs_f64() * 1000.0;
        assert_eq!(t.origin(), &CodeOrigin::Cached);
        ms
    });
    let cached_ms = report("cached load (hospital)", "ms", &cached);
    let pinned = interleaved(|i| {
        let s = sandbox(Some(cache.path()));
        let name = &bytes[i].0;
        let start = Instant::now();
        let b = std::fs::read(guest(name)).unwrap();
        let sha = hex_sha256(&b);
        let t = s.load_pinned(&b, &sha, name, surface(name)).unwrap();
        let ms = start.elapsed().as_secs_f64() * 1000.0;
        assert_eq!(t.origin(), &CodeOrigin::Cached);
        ms
    });
    report("cached load + pin check (read, SHA-256)", "ms", &pinned);

    // Pooled instantiation.
    let s = sandbox(Some(cache.path()));
    let transforms: Vec<Transform> = bytes
        .iter()
        .zip(&shas)
        .map(|((name, b), sha)| s.load_pinned(b, sha, name, surface(name)).unwrap())
        .collect();
    for t in &transforms {
        for _ in 0..20 {
            t.instantiate_once().unwrap();
        }
    }
    let inst = interleaved(|i| {
        let n = 100;
        let start = Instant::now();
        for _ in 0..n {
            transforms[i].instantiate_once().unwrap();
        }
        start.elapsed().as_secs_f64() * 1e6 / f64::from(n)
    });
    let inst_us = report("instantiation, pooled", "µs", &inst);

    // Seed transforms at seed scale.
    let source = Arc::new(SqliteSource::new(demo_data()));
    let mut worst = 0.0f64;
    for tenant in ["hospital", "bank", "retail"] {
        let transforms: Vec<Transform> = LANGS
            .iter()
            .map(|(_, suffix)| {
                let name = format!("{tenant}{suffix}");
                s.load_file_as(&guest(&name), surface(&name)).unwrap()
            })
            .collect();
        let scopes = own_scopes(tenant);
        let scopes: Vec<&str> = scopes.iter().map(String::as_str).collect();
        let run = |t: &Transform| {
            let start = Instant::now();
            let outcome = t.run(RunRequest {
                writ: writ(tenant, &scopes),
                budget: Budget::default(),
                datasets: source.clone(),
                params: Vec::new(),
                interrupt: Interrupt::new(),
            });
            let ms = start.elapsed().as_secs_f64() * 1000.0;
            assert_eq!(
                String::from_utf8(outcome.staged[0].bytes.clone()).unwrap(),
                expected_report(tenant)
            );
            ms
        };
        for t in &transforms {
            run(t);
        }
        let samples = interleaved(|i| run(&transforms[i]));
        report(&format!("{tenant} transform, seed scale"), "ms", &samples);
        for s in &samples[1..] {
            let ratio = median(s.iter().zip(&samples[0]).map(|(x, r)| x / r).collect());
            worst = worst.max(ratio);
        }
    }
    println!();
    println!(
        "targets: Python cached load ≤ 20 ms: {} ({:.1} ms); pooled instantiation ≤ 1 ms: {} \
         (worst {:.0} µs); every Python and JS seed transform within 5× Rust: {} (worst {worst:.2}×)",
        verdict(cached_ms[1] <= 20.0),
        cached_ms[1],
        verdict(inst_us.iter().all(|&u| u <= 1000.0)),
        inst_us.iter().copied().fold(0.0, f64::max),
        verdict(worst <= 5.0),
    );
}

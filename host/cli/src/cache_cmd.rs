//! `sluice cache ls|clear`: the compiled-plugin cache.

use std::time::SystemTime;

use anyhow::Context as _;
use sluice_sandbox::{Sandbox, SandboxOptions};

use crate::args::CacheDirArgs;
use crate::exit;
use crate::print::safe;

/// The cache at `--cache-dir` (or the default), opened for this build's engine.
fn open(args: &CacheDirArgs) -> anyhow::Result<Sandbox> {
    let dir = args
        .cache_dir
        .clone()
        .or_else(sluice_sandbox::CompiledCache::default_dir)
        .context("no cache directory: set --cache-dir, SLUICE_CACHE_DIR or HOME")?;
    let mut sandbox = Sandbox::new(SandboxOptions {
        pooling_slots: None,
        ..SandboxOptions::default()
    })?;
    sandbox.use_compiled_cache(&dir)?;
    Ok(sandbox)
}

fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / f64::from(1 << 20))
}

pub fn ls(args: CacheDirArgs) -> anyhow::Result<u8> {
    let sandbox = open(&args)?;
    let cache = sandbox.compiled_cache().expect("just configured");
    let entries = cache.entries()?;
    println!(
        "{:<16}  {:<16}  {:>10}  {:>8}  state",
        "plugin sha256", "engine", "size", "age"
    );
    let now = SystemTime::now();
    for e in &entries {
        let age = e.modified.and_then(|m| now.duration_since(m).ok()).map_or(
            "?".to_string(),
            |d| match d.as_secs() {
                s if s < 120 => format!("{s}s"),
                s if s < 7200 => format!("{}m", s / 60),
                s if s < 172_800 => format!("{}h", s / 3600),
                s => format!("{}d", s / 86_400),
            },
        );
        let state = match (e.complete, e.current_engine) {
            (false, _) => "incomplete (recompiled on next use)",
            (true, true) => "ok",
            (true, false) => "other engine (never loaded by this build)",
        };
        println!(
            "{:<16}  {:<16}  {:>10}  {:>8}  {state}",
            &e.plugin_sha256[..16],
            e.engine_key,
            mib(e.bytes),
            age
        );
    }
    let total: u64 = entries.iter().map(|e| e.bytes).sum();
    println!(
        "{} compiled plugin(s), {} in {}; this build's engine is {}",
        entries.len(),
        mib(total),
        safe(&cache.dir().display().to_string()),
        cache.engine_key()
    );
    Ok(exit::OK)
}

pub fn clear(args: CacheDirArgs) -> anyhow::Result<u8> {
    let sandbox = open(&args)?;
    let cache = sandbox.compiled_cache().expect("just configured");
    let (files, bytes) = cache.clear()?;
    println!(
        "removed {files} file(s), {} from {}",
        mib(bytes),
        safe(&cache.dir().display().to_string())
    );
    Ok(exit::OK)
}

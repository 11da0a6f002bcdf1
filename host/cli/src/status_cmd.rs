//! `sluice status CONFIG RUN_ID`: the verdict on a sharded night, from every shard's summary and
//! audit chain.

use sluice_pipeline::config;
use sluice_pipeline::shards::{RunDir, ShardSummary, night_status};

use crate::args::StatusArgs;
use crate::exit;
use crate::print::safe;

pub fn status(args: StatusArgs) -> anyhow::Result<u8> {
    let config = config::load(&args.config)?;
    let run = RunDir::new(&config.runs, &args.run_id)?;
    let shards = match args.shards {
        Some(n) => n,
        None => shard_count(&run)?,
    };
    let tenants: Vec<String> = config.tenants.iter().map(|t| t.id.clone()).collect();
    let status = night_status(&run, &tenants, shards)?;
    let code = if status.isolation_violated() {
        exit::ISOLATION_VIOLATED
    } else if status.complete() {
        exit::OK
    } else {
        exit::FAILED
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&status)?);
        return Ok(code);
    }
    println!("Night {} ({} shards)", safe(&status.run_id), status.shards);
    for s in &status.shard_states {
        println!("  shard {}: {}", s.shard, safe(&s.state));
    }
    println!(
        "Tenants: {} ok, {} failed, {} never ran (of {})",
        status.ok.len(),
        status.failed.len(),
        status.never_ran.len(),
        tenants.len()
    );
    for (tenant, why) in &status.failed {
        println!("  FAILED     {}: {}", safe(tenant), safe(why));
    }
    for tenant in &status.never_ran {
        println!(
            "  NEVER RAN  {} (shard {})",
            safe(tenant),
            sluice_pipeline::shards::owner(tenant, shards)
        );
    }
    match &status.isolation {
        Some(i) if i.violated => println!("Isolation (shard 0): VIOLATED"),
        Some(i) => match &i.error {
            Some(e) => println!("Isolation (shard 0): not proven: {}", safe(e)),
            None => println!("Isolation (shard 0): verified"),
        },
        None => println!("Isolation (shard 0): not proven (shard 0 left no proof)"),
    }
    println!(
        "{}",
        match code {
            exit::OK =>
                "Night complete: every tenant ran once and succeeded, every chain verified.",
            exit::ISOLATION_VIOLATED => "ISOLATION VIOLATED: a cross-tenant access was allowed.",
            _ => "Night incomplete: rerun the failed or missing shards (same run id).",
        }
    );
    Ok(code)
}

/// The shard count the run directory's summaries agree on.
fn shard_count(run: &RunDir) -> anyhow::Result<u32> {
    let mut counts = std::collections::BTreeSet::new();
    let entries = std::fs::read_dir(run.dir()).map_err(|e| {
        anyhow::anyhow!(
            "no shard of run '{}' left anything in {} ({e}); pass --shards N to report the whole \
             night as never run",
            run.run_id,
            run.dir().display()
        )
    })?;
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with("shard-") && name.ends_with(".json") {
            let bytes = std::fs::read(entry.path())?;
            let summary: ShardSummary = serde_json::from_slice(&bytes)
                .map_err(|e| anyhow::anyhow!("reading {}: {e}", entry.path().display()))?;
            counts.insert(summary.shard.count);
        }
    }
    match counts.len() {
        1 => Ok(*counts.iter().next().expect("one")),
        0 => anyhow::bail!(
            "no shard of run '{}' left a summary; pass --shards N to report the whole night as \
             never run",
            run.run_id
        ),
        _ => anyhow::bail!(
            "the summaries of run '{}' disagree on the shard count ({counts:?}); pass --shards N",
            run.run_id
        ),
    }
}

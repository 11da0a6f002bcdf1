//! `sluice status CONFIG RUN_ID`: the verdict on a stored night, from every shard's summary and
//! audit chain; `--html` draws its page from the same.

use sluice_pipeline::config;
use sluice_pipeline::record::NightRecord;
use sluice_pipeline::shards::{RunDir, night_status};

use crate::args::StatusArgs;
use crate::exit;
use crate::print::safe;

pub fn status(args: StatusArgs) -> anyhow::Result<u8> {
    let config = config::load(&args.config)?;
    let run = RunDir::new(&config.runs, &args.run_id)?;
    let shards = match args.shards {
        Some(n) => n,
        None => run.shard_count()?,
    };
    let tenants: Vec<String> = config.tenants.iter().map(|t| t.id.clone()).collect();
    let status = night_status(&run, &tenants, shards)?;
    if let Some(file) = &args.html {
        let night = NightRecord::of_stored(&run, &status, &tenants)?;
        crate::run_cmd::write_page(file, &night, &config.runs)?;
        if !args.json {
            println!("Night page: {}", safe(&file.display().to_string()));
        }
    }
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

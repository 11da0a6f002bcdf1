//! `sluice run` and `sluice verify-isolation`: the nightly pipeline, printed in the seed's shape.

use std::io::IsTerminal as _;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use sluice_pipeline::config;
use sluice_pipeline::nightly::{Pipeline, RunOptions};
use sluice_pipeline::outcome::{AgentEnd, IsolationResult, PipelineReport, TenantResult};
use sluice_pipeline::record::{NightRecord, past_nights};
use sluice_pipeline::shards::{RunDir, Shard, ShardSummary};
use sluice_sandbox::{Decision, HostCall};
use sluice_storage::Location;

use crate::args::{RunArgs, VerifyIsolationArgs};
use crate::exit;
use crate::print::{figure_map, safe, scope_list, thousands};

/// Shows a path relative to the working directory when it is below it; a URL as it is.
fn shown(location: &Location) -> String {
    let Some(path) = location.as_local() else {
        return location.to_string();
    };
    std::env::current_dir()
        .ok()
        .and_then(|cwd| path.strip_prefix(cwd).ok().map(Path::to_path_buf))
        .unwrap_or_else(|| path.to_path_buf())
        .display()
        .to_string()
}

fn print_tenant(t: &TenantResult) {
    println!("── {} ({}) ──", safe(&t.name), safe(&t.id));
    println!("   Data type: {}", safe(&t.data_type));
    if let Some(agent) = &t.agent_id {
        println!("   Agent:    {}", safe(agent));
        println!("   Scope:    {}", scope_list(&t.scope));
        if let Some(e) = t.expires_in {
            println!("   Expires:  {e}s");
        }
    }
    if let Some(plugin) = &t.plugin {
        crate::print::plugin_load(plugin, "   ");
    }
    let reads: u64 = t
        .gate
        .iter()
        .filter(|g| g.call == HostCall::DatasetNextBatch && g.decision == Decision::Allowed)
        .map(|g| g.count)
        .sum();
    if t.rows_read > 0 || reads > 0 {
        println!(
            "   [EXTRACT] Read {} rows of {} in {reads} gated batches",
            thousands(t.rows_read),
            safe(&t.data_type)
        );
    }
    for g in t.gate.iter().filter(|g| g.decision != Decision::Allowed) {
        let times = if g.count > 1 {
            format!(" ×{}", g.count)
        } else {
            String::new()
        };
        println!(
            "   [{}] {}{times} on {}",
            g.decision.as_str(),
            g.call.name(),
            safe(&g.required)
        );
        println!(
            "             Required: {}",
            scope_list(&[g.required.as_str()])
        );
        println!("             Held:     {}", scope_list(&t.scope));
    }
    if t.gate_overflow.total() > 0 {
        println!(
            "   [AUDIT]   {} more decisions ({} denied) counted, not itemized",
            t.gate_overflow.total(),
            t.gate_overflow.denied
        );
    }
    if !t.figures.is_empty() {
        println!(
            "   [TRANSFORM] Processed data for report: {}",
            figure_map(&t.figures)
        );
    }
    if t.renewals > 0 {
        println!(
            "   [RENEW]    Agent renewed {} time(s) during the run",
            t.renewals
        );
    }
    if t.error.is_none() {
        for table in &t.tables {
            println!(
                "   [LOAD]     Table {} ({} rows) written to {}",
                safe(&table.name),
                table.rows,
                safe(&shown(&Location::Local(table.location.clone().into())))
            );
        }
    }
    match (&t.report, &t.error) {
        (Some(report), None) => {
            println!("   [LOAD]     Report written to {}", safe(&shown(report)))
        }
        (_, Some(error)) => println!("   [FAILED]   {}", safe(&error.message)),
        (None, None) => println!("   [LOAD]     no report committed"),
    }
    match &t.agent_end {
        Some(AgentEnd::Released) => println!("   [RELEASE]  Agent released for {}", safe(&t.id)),
        Some(AgentEnd::Revoked) => {
            println!("   [REVOKED]  Agent was revoked at the broker during the run")
        }
        Some(AgentEnd::Expired) => {
            println!("   [EXPIRED]  Agent expired before it could be released")
        }
        Some(AgentEnd::NotReleased(why)) => println!("   [UNRELEASED] {}", safe(why)),
        None => {}
    }
    if let Some(c) = &t.candidate {
        print_candidate(c);
    }
    println!();
}

/// A tenant's shadow run: what ran, under which agent, and every figure that changed.
fn print_candidate(c: &sluice_pipeline::shadow::ShadowResult) {
    let digest = c
        .plugin
        .as_ref()
        .and_then(|p| p.digest.as_deref())
        .unwrap_or("not loaded");
    println!("   [SHADOW]   candidate {} ({digest})", safe(&c.reference));
    if let Some(agent) = &c.agent_id {
        println!(
            "              agent {} holding {}",
            safe(agent),
            scope_list(&c.scope)
        );
    }
    for g in c.gate.iter().filter(|g| g.decision != Decision::Allowed) {
        let why = match g.decision {
            Decision::Shadowed => "captured for candidate.json, published nowhere",
            _ => "denied: a candidate publishes nothing",
        };
        println!(
            "              [{}] {} on {}: {why}",
            g.decision.as_str(),
            g.call.name(),
            safe(&g.required)
        );
    }
    match &c.error {
        Some(error) => println!("              [FAILED] {}", safe(&error.message)),
        None if c.changed.is_empty() => println!(
            "              every figure as the current version's; written to {}",
            c.report
                .as_ref()
                .map_or("-".into(), |r| safe(&shown(r)).to_string())
        ),
        None => {
            println!(
                "              {} figure(s) differ (the candidate reported {}); written to {}",
                c.changed.len(),
                c.figures.len(),
                c.report
                    .as_ref()
                    .map_or("-".into(), |r| safe(&shown(r)).to_string())
            );
            for change in &c.changed {
                println!(
                    "              {}: {} → {}",
                    safe(&change.figure),
                    safe(change.current.as_deref().unwrap_or("(none)")),
                    safe(change.candidate.as_deref().unwrap_or("(none)"))
                );
            }
        }
    }
}

fn print_isolation(i: &IsolationResult) {
    println!("── Cross-Tenant Isolation Test ──");
    println!();
    if let Some(agent) = &i.agent_id {
        println!("{} agent: {}", safe(&i.tenant), safe(agent));
        println!("{} agent scope: {}", safe(&i.tenant), scope_list(&i.held));
        println!();
    }
    for c in &i.checks {
        let decision = c.decision.map_or("NOT ATTEMPTED", Decision::as_str);
        let mark = if !c.must_block && c.holds() {
            " ✓"
        } else {
            ""
        };
        if c.must_block && !c.holds() {
            println!(
                "  [{decision}] VIOLATION: {} is NOT enforced",
                safe(&c.claim)
            );
        } else {
            println!("  [{decision}] {}{mark}", safe(&c.claim));
        }
        if c.must_block {
            println!(
                "            Required: {}",
                scope_list(&[c.required.as_str()])
            );
            println!("            Held:     {}", scope_list(&i.held));
        }
    }
    if i.released() {
        println!("  [RELEASE] Probe agent released");
    }
    println!();
    if i.violated {
        println!(
            "!!! CROSS-TENANT ISOLATION VIOLATED: a tenant's agent reached another tenant's data. !!!"
        );
        println!(
            "!!! Check the tenants' scopes and the broker's ceiling before running again.      !!!"
        );
    } else if let Some(e) = &i.error {
        println!("Isolation NOT verified: {}", safe(e));
    } else {
        println!("Cross-tenant isolation verified.");
    }
}

fn exit_code(report: &PipelineReport) -> u8 {
    if report.isolation_violated() {
        exit::ISOLATION_VIOLATED
    } else if report.failed > 0
        || report.interrupted
        || report.audit_error.is_some()
        || report.isolation.as_ref().is_some_and(|i| i.error.is_some())
    {
        exit::FAILED
    } else {
        exit::OK
    }
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?)
}

/// How long a second Ctrl-C waits for each live agent's release before exiting.
const LAST_RELEASE: Duration = Duration::from_secs(2);

/// Stops the night on the first SIGINT or SIGTERM (what Kubernetes sends), and on a second one
/// releases what it can and exits at once. Registered before any agent exists.
fn watch_signals(pipeline: &Arc<Pipeline>) -> anyhow::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut sigint = signal(SignalKind::interrupt())?;
    let mut sigterm = signal(SignalKind::terminate())?;
    let pipeline = Arc::clone(pipeline);
    tokio::spawn(async move {
        let name = tokio::select! {
            _ = sigint.recv() => "interrupted (Ctrl-C)",
            _ = sigterm.recv() => "terminated (SIGTERM)",
        };
        pipeline.interrupt().trigger();
        eprintln!(
            "\nsluice: {name}: starting no new tenant, stopping running guests, releasing every \
             agent; signal again to exit at once"
        );
        tokio::select! {
            _ = sigint.recv() => {}
            _ = sigterm.recv() => {}
        }
        let (released, live) = pipeline.release_live_agents(LAST_RELEASE).await;
        eprintln!(
            "sluice: exiting now: released {released} of {live} live agent(s); any other expires on its own"
        );
        std::process::exit(130);
    });
    Ok(())
}

pub fn run(args: RunArgs) -> anyhow::Result<u8> {
    let mut config = config::load(&args.config)?;
    config.cache_dir = args.cache.dir();
    if args.concurrency == Some(0) {
        anyhow::bail!("--concurrency must be at least 1");
    }
    let json = args.json;
    let sharded = shard_of(&args, &mut config)?;
    runtime()?.block_on(async move {
        // An embedded broker lives as long as this block: the whole night.
        let (broker, _embedded) =
            crate::broker::connect(&config.broker, config.broker_timeout).await?;
        crate::broker::authenticate_patiently(&broker).await;
        let pipeline = Arc::new(Pipeline::start(config, broker, args.concurrency).await?);
        let total = pipeline.own_tenants().len();
        warn_about_cache(&pipeline);
        watch_signals(&pipeline)?;
        let progress = !json && total > 20 && std::io::stderr().is_terminal();
        if !json {
            println!("Nightly Analytics Pipeline");
            println!("{}", "=".repeat(55));
            println!("Broker: {}", safe(pipeline.broker_description()));
            println!();
        }
        let options = RunOptions {
            on_tenant: (!json && !progress).then(|| Box::new(print_tenant) as _),
            on_progress: progress.then(|| {
                Box::new(|done: usize, total: usize| {
                    eprint!("\r  [{done}/{total}] tenants done");
                    if done == total {
                        eprintln!();
                    }
                }) as _
            }),
        };
        let report = pipeline.run(options).await;
        // A shard's summary is how `sluice status` learns of it: without one the night is
        // incomplete, so failing to write it fails the shard.
        let summary = sharded.as_ref().map(|(shard, run)| {
            run.write_summary(&ShardSummary::of(run, *shard, &report))
                .map_err(|e| format!("{e:#}"))
        });
        let summary_failed = matches!(summary, Some(Err(_)));
        let page = args.html.as_ref().map(|file| {
            let audit = &pipeline.config().audit;
            let (run_id, shard) = match &sharded {
                Some((shard, run)) => (Some(run.run_id.as_str()), shard.index),
                None => (None, 0),
            };
            let night = NightRecord::of_report(&report, run_id, shard, audit);
            write_page(file, &night, &pipeline.config().runs)
        });
        if let Some(url) = &args.pushgateway {
            let shard = sharded.as_ref().map_or(0, |(s, _)| s.index);
            let body = sluice_pipeline::metrics::exposition(&report);
            // Metrics are for watching the night, not part of it: a failed push is reported,
            // and the night's verdict stands.
            if let Err(e) =
                sluice_pipeline::metrics::push(url, &pipeline.config().orch_id, shard, body).await
            {
                eprintln!("sluice: metrics not pushed: {e:#}");
            }
        }
        // A page is for reading the night, not part of it: failing to write it is said, and
        // the night's verdict stands.
        if let Some(Err(e)) = &page {
            eprintln!("sluice: night page not written: {e:#}");
        }
        if json {
            println!("{}", serde_json::to_string_pretty(&report)?);
            return Ok(exit_code(&report).max(u8::from(summary_failed)));
        }
        if progress {
            // With a progress bar, tenants are listed after it, failures in full.
            for t in &report.tenants {
                match &t.error {
                    None => println!(
                        "  ok     {} ({} rows, report {})",
                        safe(&t.id),
                        t.rows_read,
                        safe(&t.report.as_ref().map(shown).unwrap_or_default())
                    ),
                    Some(e) => println!("  FAILED {}: {}", safe(&t.id), safe(&e.message)),
                }
            }
            println!();
        }
        match &report.isolation {
            Some(isolation) => print_isolation(isolation),
            None if sharded.is_some() => {
                println!("Isolation is proven by shard 0 of this night (see `sluice status`).")
            }
            None if pipeline.config().isolation.is_none() => println!(
                "Isolation not checked: the configuration has no [isolation] probe (see examples/nightly.toml)."
            ),
            None => println!("Isolation not checked: the run was interrupted."),
        }
        println!();
        match &report.audit_error {
            None => println!(
                "Audit trail: {} entries, head {} (check: sluice audit verify {} --head {})",
                report.audit.entries,
                report.audit.hash,
                safe(&shown(&pipeline.config().audit)),
                report.audit.hash
            ),
            Some(e) => println!("Audit trail INCOMPLETE: {}", safe(e)),
        }
        match (&sharded, &summary) {
            (Some((shard, _)), Some(Ok(path))) => println!(
                "Shard {} of {}: {} tenant(s); summary {}",
                shard.index,
                shard.count,
                report.tenants.len(),
                safe(&shown(path))
            ),
            (_, Some(Err(e))) => println!("Shard summary NOT written: {}", safe(e)),
            _ => {}
        }
        if let (Some(file), Some(Ok(()))) = (&args.html, &page) {
            println!("Night page: {}", safe(&file.display().to_string()));
        }
        let code = exit_code(&report).max(u8::from(summary_failed));
        println!("{}", verdict(&report, code));
        Ok(code)
    })
}

/// Draws `night` with the nights stored before it under `runs`, and writes it to `file`.
pub(crate) fn write_page(file: &Path, night: &NightRecord, runs: &Location) -> anyhow::Result<()> {
    let past = past_nights(runs, night.started_at_ms, sluice_page::TREND_NIGHTS - 1);
    sluice_page::write(file, &sluice_page::render(night, &past))
        .map_err(|e| anyhow::anyhow!("writing {}: {e}", file.display()))
}

/// The shard this run is, from the flags or an Indexed Job's environment; sets it in `config`
/// (the pipeline then runs only its tenants, and proves isolation only in shard 0) with its own
/// audit chain in the night's run directory.
fn shard_of(
    args: &RunArgs,
    config: &mut config::PipelineConfig,
) -> anyhow::Result<Option<(Shard, RunDir)>> {
    let shard = match (args.shard, args.shards) {
        (Some(index), Some(count)) => Shard::new(index, count)?,
        _ => match Shard::from_env()? {
            Some(shard) => shard,
            // A named night is stored like a sharded one, so it has a status and a history.
            None if args.run_id.is_some() => Shard::new(0, 1)?,
            None => return Ok(None),
        },
    };
    let run_id = match &args.run_id {
        Some(id) => id.clone(),
        None => std::env::var("SLUICE_RUN_ID").map_err(|_| {
            anyhow::anyhow!(
                "a sharded night needs a run id its shards share: pass --run-id or set \
                 SLUICE_RUN_ID"
            )
        })?,
    };
    let run = RunDir::new(&config.runs, &run_id)?;
    config.shard = Some(shard);
    config.audit = run.audit_path(shard.index);
    Ok(Some((shard, run)))
}

/// The last line of a run: what happened to the tenants and to their agents.
fn verdict(report: &PipelineReport, code: u8) -> String {
    match code {
        exit::OK => return "Pipeline complete. All tenants processed with isolated scopes.".into(),
        exit::ISOLATION_VIOLATED => return "Pipeline FAILED: tenant isolation is violated.".into(),
        _ => {}
    }
    let failed: Vec<String> = report
        .tenants
        .iter()
        .filter(|t| !t.ok())
        .map(|t| safe(&t.id).into_owned())
        .collect();
    let unsettled = report.tenants.iter().filter(|t| !t.agent_settled()).count();
    let agents = if unsettled == 0 {
        "every agent created was released or is dead at the broker".to_string()
    } else {
        format!("{unsettled} agent(s) could NOT be released: revoke them at the broker")
    };
    let head = if report.interrupted {
        "Pipeline INTERRUPTED"
    } else {
        "Pipeline finished with failures"
    };
    let others = if failed.len() < report.tenants.len() {
        "; the others ran"
    } else {
        ""
    };
    let listed = if failed.is_empty() {
        String::new()
    } else {
        format!(" ({})", failed.join(", "))
    };
    format!(
        "{head}: {} of {} tenants did not complete{listed}{others}; {agents}.",
        failed.len(),
        report.tenants.len(),
    )
}

pub fn verify_isolation(args: VerifyIsolationArgs) -> anyhow::Result<u8> {
    let mut config = config::load(&args.config)?;
    config.cache_dir = args.cache.dir();
    if config.isolation.is_none() {
        anyhow::bail!(
            "{} has no [isolation] section naming the probe (see examples/nightly.toml)",
            args.config.display()
        );
    }
    runtime()?.block_on(async move {
        let (broker, _embedded) =
            crate::broker::connect(&config.broker, config.broker_timeout).await?;
        let pipeline = Arc::new(Pipeline::start(config, broker, Some(1)).await?);
        warn_about_cache(&pipeline);
        watch_signals(&pipeline)?;
        println!("Broker: {}", safe(pipeline.broker_description()));
        println!();
        let isolation = pipeline.verify_isolation().await;
        print_isolation(&isolation);
        Ok(if isolation.violated {
            exit::ISOLATION_VIOLATED
        } else if isolation.error.is_some() {
            exit::FAILED
        } else {
            exit::OK
        })
    })
}

fn warn_about_cache(pipeline: &Pipeline) {
    if let Some(warning) = pipeline.cache_warning() {
        eprintln!("sluice: warning: {}", safe(warning));
    }
}

pub fn digest(files: &[std::path::PathBuf]) -> anyhow::Result<u8> {
    for file in files {
        let sha = sluice_pipeline::plugins::file_digest(file)
            .map_err(|e| anyhow::anyhow!("reading {}: {e}", file.display()))?;
        println!("{sha}  {}", file.display());
    }
    Ok(exit::OK)
}

//! `sluice run` and `sluice verify-isolation`: the nightly pipeline, printed in the seed's shape.

use std::io::IsTerminal as _;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use sluice_pipeline::config;
use sluice_pipeline::nightly::{Pipeline, RunOptions};
use sluice_pipeline::outcome::{IsolationResult, PipelineReport, TenantResult};

use crate::args::{RunArgs, VerifyIsolationArgs};
use crate::exit;
use crate::print::{scope_list, thousands};

/// Shows `path` relative to the working directory when it is below it.
fn shown(path: &Path) -> String {
    std::env::current_dir()
        .ok()
        .and_then(|cwd| path.strip_prefix(cwd).ok().map(Path::to_path_buf))
        .unwrap_or_else(|| path.to_path_buf())
        .display()
        .to_string()
}

fn print_tenant(t: &TenantResult) {
    println!("── {} ({}) ──", t.name, t.id);
    println!("   Data type: {}", t.data_type);
    if let Some(agent) = &t.agent_id {
        println!("   Agent:    {agent}");
        println!("   Scope:    {}", scope_list(&t.scope));
        if let Some(e) = t.expires_in {
            println!("   Expires:  {e}s");
        }
    }
    let reads: u64 = t
        .gate
        .iter()
        .filter(|g| g.call == "dataset.next-batch" && g.decision == "ALLOWED")
        .map(|g| g.count)
        .sum();
    if t.rows_read > 0 || reads > 0 {
        println!(
            "   [EXTRACT] Read {} rows of {} in {reads} gated batches",
            thousands(t.rows_read),
            t.data_type
        );
    }
    for g in t.gate.iter().filter(|g| g.decision != "ALLOWED") {
        println!("   [{}] {} on {}", g.decision, g.call, g.required);
        println!(
            "             Required: {}",
            scope_list(&[g.required.as_str()])
        );
        println!("             Held:     {}", scope_list(&t.scope));
    }
    if !t.figures.is_empty() {
        let figures: Vec<String> = t
            .figures
            .iter()
            .map(|f| format!("'{}': '{}'", f.name, f.value))
            .collect();
        println!(
            "   [TRANSFORM] Processed data for report: {{{}}}",
            figures.join(", ")
        );
    }
    if t.renewals > 0 {
        println!(
            "   [RENEW]    Agent renewed {} time(s) during the run",
            t.renewals
        );
    }
    match (&t.report, &t.error) {
        (Some(report), None) => println!("   [LOAD]     Report written to {}", shown(report)),
        (_, Some(error)) => println!("   [FAILED]   {error}"),
        (None, None) => println!("   [LOAD]     no report committed"),
    }
    if t.released {
        println!("   [RELEASE]  Agent released for {}", t.id);
    }
    println!();
}

fn print_isolation(i: &IsolationResult) {
    println!("── Cross-Tenant Isolation Test ──");
    println!();
    if let Some(agent) = &i.agent_id {
        println!("{} agent: {agent}", i.tenant);
        println!("{} agent scope: {}", i.tenant, scope_list(&i.held));
        println!();
    }
    for c in &i.checks {
        let mark = if !c.must_block && c.holds() {
            " ✓"
        } else {
            ""
        };
        if c.must_block && !c.holds() {
            println!("  [{}] VIOLATION: {} is NOT enforced", c.decision, c.claim);
        } else {
            println!("  [{}] {}{mark}", c.decision, c.claim);
        }
        if c.must_block {
            println!(
                "            Required: {}",
                scope_list(&[c.required.as_str()])
            );
            println!("            Held:     {}", scope_list(&i.held));
        }
    }
    if i.released {
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
        println!("Isolation NOT verified: {e}");
    } else {
        println!("Cross-tenant isolation verified.");
    }
}

fn exit_code(report: &PipelineReport) -> u8 {
    if report.isolation_violated() {
        exit::ISOLATION_VIOLATED
    } else if report.failed > 0 || report.isolation.as_ref().is_some_and(|i| i.error.is_some()) {
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

pub fn run(args: RunArgs) -> anyhow::Result<u8> {
    let config = config::load(&args.config)?;
    if args.concurrency == Some(0) {
        anyhow::bail!("--concurrency must be at least 1");
    }
    let json = args.json;
    runtime()?.block_on(async move {
        let total = config.tenants.len();
        let pipeline = Arc::new(Pipeline::start(config, args.concurrency).await?);
        let cancel = Arc::new(AtomicBool::new(false));
        {
            // Registered here, before any agent exists, not when the task first runs.
            let mut interrupt = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())?;
            let cancel = Arc::clone(&cancel);
            tokio::spawn(async move {
                if interrupt.recv().await.is_some() {
                    cancel.store(true, Ordering::Release);
                    eprintln!("\nsluice: interrupted: finishing running tenants and releasing their agents");
                }
            });
        }
        let progress = !json && total > 20 && std::io::stderr().is_terminal();
        if !json {
            println!("Nightly Analytics Pipeline");
            println!("{}", "=".repeat(55));
            println!("Broker: {}", pipeline.broker.description);
            println!();
        }
        let options = RunOptions {
            concurrency: None,
            on_tenant: (!json && !progress).then(|| Box::new(print_tenant) as _),
            on_progress: progress.then(|| {
                Box::new(|done: usize, total: usize| {
                    eprint!("\r  [{done}/{total}] tenants done");
                    if done == total {
                        eprintln!();
                    }
                }) as _
            }),
            cancel,
        };
        let report = pipeline.run(options).await;
        if json {
            println!("{}", serde_json::to_string_pretty(&report)?);
            return Ok(exit_code(&report));
        }
        if progress {
            // With a progress bar, tenants are listed after it, failures in full.
            for t in &report.tenants {
                match &t.error {
                    None => println!("  ok     {} ({} rows, report {})", t.id, t.rows_read, t.report.as_deref().map(shown).unwrap_or_default()),
                    Some(e) => println!("  FAILED {}: {e}", t.id),
                }
            }
            println!();
        }
        match &report.isolation {
            Some(isolation) => print_isolation(isolation),
            None if pipeline.config.isolation.is_none() => println!(
                "Isolation not checked: the configuration has no [isolation] probe (see examples/nightly.toml)."
            ),
            None => println!("Isolation not checked: the run was interrupted."),
        }
        println!();
        println!(
            "Audit trail: {} entries, head {} (check: sluice audit verify {} --head {})",
            report.audit.entries,
            report.audit.hash,
            shown(&pipeline.config.audit),
            report.audit.hash
        );
        let code = exit_code(&report);
        match code {
            exit::OK => println!("Pipeline complete. All tenants processed with isolated scopes."),
            exit::ISOLATION_VIOLATED => println!("Pipeline FAILED: tenant isolation is violated."),
            _ => {
                let failed: Vec<&str> = report.tenants.iter().filter(|t| !t.ok()).map(|t| t.id.as_str()).collect();
                let others = if failed.len() < report.tenants.len() {
                    "; the others ran"
                } else {
                    ""
                };
                let unreleased = report
                    .tenants
                    .iter()
                    .filter(|t| t.agent_id.is_some() && !t.released)
                    .count();
                let agents = if unreleased == 0 {
                    "every agent created was released".to_string()
                } else {
                    format!("{unreleased} agent(s) could NOT be released: revoke them at the broker")
                };
                println!(
                    "Pipeline finished with failures: {} of {} tenants failed{}{others}; {agents}.",
                    failed.len(),
                    report.tenants.len(),
                    if failed.is_empty() { String::new() } else { format!(" ({})", failed.join(", ")) }
                );
            }
        }
        Ok(code)
    })
}

pub fn verify_isolation(args: VerifyIsolationArgs) -> anyhow::Result<u8> {
    let config = config::load(&args.config)?;
    if config.isolation.is_none() {
        anyhow::bail!(
            "{} has no [isolation] section naming the probe (see examples/nightly.toml)",
            args.config.display()
        );
    }
    runtime()?.block_on(async move {
        let pipeline = Arc::new(Pipeline::start(config, Some(1)).await?);
        println!("Broker: {}", pipeline.broker.description);
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

pub fn digest(files: &[std::path::PathBuf]) -> anyhow::Result<u8> {
    for file in files {
        let sha = sluice_pipeline::plugins::file_digest(file)
            .map_err(|e| anyhow::anyhow!("reading {}: {e}", file.display()))?;
        println!("{sha}  {}", file.display());
    }
    Ok(exit::OK)
}

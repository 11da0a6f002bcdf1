//! `sluice try`: one transform, scopes from the command line, no broker.

use sluice_pipeline::{LocalRun, run_local};

use crate::args::TryArgs;
use crate::exit;
use crate::print;

pub fn run(args: TryArgs) -> anyhow::Result<u8> {
    let run = LocalRun {
        component: args.component,
        tenant: args.tenant,
        scopes: args.scopes,
        data: args.data,
        reports: args.reports,
        audit: args.audit,
        params: args.params,
        budget: args.limits.budget(),
        language: args.lang.into(),
        cache_dir: args.cache.dir(),
    };
    let result = run_local(&run)?;
    if let Some(warning) = &result.cache_warning {
        eprintln!("sluice: warning: {}", print::safe(warning));
    }
    let outcome = &result.outcome;
    let writ = &outcome.writ;
    println!(
        "── {} ({}) ──",
        print::safe(&run.component.display().to_string()),
        print::safe(&writ.tenant)
    );
    println!(
        "   Agent:    {} (local: no broker)",
        print::safe(&writ.agent_id)
    );
    println!("   Scope:    {}", print::scope_list(&writ.held_strings()));
    print::plugin_load(&result.plugin, "   ");
    print::gate_events(writ, &outcome.events, "   ");
    print::logs(outcome, "   ");
    if outcome.overflow.total() > 0 {
        println!(
            "   [AUDIT]   {} more decisions ({} denied) counted, not itemized",
            outcome.overflow.total(),
            outcome.overflow.denied
        );
    }
    println!(
        "   [USAGE]   rows read {}, host calls {}, invalid calls {}, {} ms",
        outcome.usage.rows_read,
        outcome.usage.host_calls,
        outcome.usage.invalid_calls,
        outcome.elapsed.as_millis()
    );
    match &outcome.result {
        Ok(_) => {
            println!("   [RESULT]  ok: {}", print::figures(outcome));
            for path in &result.published {
                println!(
                    "   [LOAD]     Report written to {}",
                    print::safe(&path.to_string())
                );
            }
            if result.published.is_empty() {
                println!("   [LOAD]     no report committed");
            }
            Ok(exit::OK)
        }
        Err(failure) => {
            println!("   [FAILED]  {failure}");
            println!("   [LOAD]     nothing written; previous reports left as they were");
            eprintln!(
                "sluice: transform {} failed: {failure}",
                print::safe(&run.component.display().to_string())
            );
            Ok(exit::FAILED)
        }
    }
}

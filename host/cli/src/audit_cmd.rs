//! `sluice audit verify|show`.

use serde_json::Value;
use sluice_pipeline::Verdict;
use sluice_pipeline::audit::{read_entries, verify as verify_chain, verify_head};

use crate::args::{AuditShowArgs, AuditVerifyArgs};
use crate::exit;

pub fn verify(args: AuditVerifyArgs) -> anyhow::Result<u8> {
    let verdict = match &args.head {
        Some(head) => verify_head(&args.file, head)?,
        None => verify_chain(&args.file)?,
    };
    match verdict {
        Verdict::Intact(count) => {
            println!(
                "OK: {} entries, chain intact ({})",
                count,
                args.file.display()
            );
            Ok(exit::OK)
        }
        Verdict::Broken { line, reason } => {
            println!(
                "BROKEN at entry {line} of {}: {reason}",
                args.file.display()
            );
            Ok(exit::FAILED)
        }
    }
}

fn text<'a>(entry: &'a serde_json::Map<String, Value>, key: &str) -> &'a str {
    entry.get(key).and_then(Value::as_str).unwrap_or("")
}

pub fn show(args: AuditShowArgs) -> anyhow::Result<u8> {
    for entry in read_entries(&args.file)? {
        if args
            .tenant
            .as_deref()
            .is_some_and(|t| text(&entry, "tenant") != t)
        {
            continue;
        }
        let decision = text(&entry, "decision");
        let denied =
            matches!(decision, "BLOCKED" | "REVOKED") || text(&entry, "outcome") == "denied";
        if args.denied && !denied {
            continue;
        }
        let seq = entry.get("seq").map(Value::to_string).unwrap_or_default();
        let what = match text(&entry, "event") {
            "gate" => {
                let count = entry.get("count").and_then(Value::as_u64).unwrap_or(1);
                let times = if count > 1 {
                    format!(" ×{count}")
                } else {
                    String::new()
                };
                format!(
                    "{:<8} {}{times} requires {}",
                    decision,
                    text(&entry, "call"),
                    text(&entry, "required")
                )
            }
            other => {
                // Lifecycle events: show what they carry beyond the common members.
                let common = [
                    "seq", "prev", "hash", "time", "event", "tenant", "agent_id", "task_id",
                ];
                let extra: Vec<String> = entry
                    .iter()
                    .filter(|(k, _)| !common.contains(&k.as_str()))
                    .map(|(k, v)| match v {
                        Value::String(s) => format!("{k}={s}"),
                        other => format!("{k}={other}"),
                    })
                    .collect();
                format!("{other} {}", extra.join(" "))
            }
        };
        println!(
            "#{seq:<5} {} {:<9} {}  agent={} task={}",
            text(&entry, "time"),
            text(&entry, "tenant"),
            what,
            text(&entry, "agent_id"),
            text(&entry, "task_id"),
        );
    }
    Ok(exit::OK)
}

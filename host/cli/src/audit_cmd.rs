//! `sluice audit verify|show`. The file is evidence, not trusted input: everything shown from it
//! is escaped, so an entry cannot pose as another or as this command's own output.

use std::io::Write as _;

use serde_json::Value;
use sluice_audit::Verdict;
use sluice_audit::{read_entries, verify as verify_chain, verify_head};
use sluice_storage::Location;

use crate::args::{AuditShowArgs, AuditVerifyArgs};
use crate::exit;
use crate::print::{reader_gone, safe};

/// The trail an argument names: a path (from the working directory) or an `s3://` URL.
fn trail(arg: &str) -> anyhow::Result<Location> {
    Location::parse(arg, std::path::Path::new(""))
}

pub fn verify(args: AuditVerifyArgs) -> anyhow::Result<u8> {
    let at = trail(&args.file)?;
    let verdict = match &args.head {
        Some(head) => verify_head(&at, head)?,
        None => verify_chain(&at)?,
    };
    let file = safe(&at.to_string()).into_owned();
    match verdict {
        Verdict::Intact(count) => {
            println!("OK: {count} entries, chain intact ({file})");
            Ok(exit::OK)
        }
        Verdict::Torn { intact, bytes } => {
            println!(
                "TORN: {intact} entries intact, then {bytes} bytes of an entry cut short (a run was \
                 killed while writing it) in {file}; the next run seals it and records what it cut"
            );
            Ok(exit::FAILED)
        }
        Verdict::Broken { line, reason } => {
            println!("BROKEN at entry {line} of {file}: {reason}");
            Ok(exit::FAILED)
        }
    }
}

fn text<'a>(entry: &'a serde_json::Map<String, Value>, key: &str) -> &'a str {
    entry.get(key).and_then(Value::as_str).unwrap_or("")
}

/// A member's value, shown on one line.
fn shown(value: &Value) -> String {
    match value {
        Value::String(s) => safe(s).into_owned(),
        other => safe(&other.to_string()).into_owned(),
    }
}

pub fn show(args: AuditShowArgs) -> anyhow::Result<u8> {
    let trail = read_entries(trail(&args.file)?)?;
    let mut out = std::io::stdout().lock();
    for entry in trail.entries {
        if args
            .tenant
            .as_deref()
            .is_some_and(|t| text(&entry, "tenant") != t)
        {
            continue;
        }
        let decision = text(&entry, "decision");
        let denied = matches!(decision, "BLOCKED" | "REVOKED")
            || text(&entry, "outcome") == "denied"
            || entry.get("denied").and_then(Value::as_u64).unwrap_or(0) > 0;
        if args.denied && !denied {
            continue;
        }
        let seq = entry.get("seq").map(shown).unwrap_or_default();
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
                    safe(decision),
                    safe(text(&entry, "call")),
                    safe(text(&entry, "required"))
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
                    .map(|(k, v)| format!("{}={}", safe(k), shown(v)))
                    .collect();
                format!("{} {}", safe(other), extra.join(" "))
            }
        };
        let line = writeln!(
            out,
            "#{seq:<5} {} {:<9} {}  agent={} task={}",
            safe(text(&entry, "time")),
            safe(text(&entry, "tenant")),
            what,
            safe(text(&entry, "agent_id")),
            safe(text(&entry, "task_id")),
        );
        if reader_gone(line)? {
            return Ok(exit::OK);
        }
    }
    if let Some(bytes) = trail.torn {
        let line = writeln!(
            out,
            "(the file ends in {bytes} bytes of an entry cut short: not shown)"
        );
        reader_gone(line)?;
    }
    Ok(exit::OK)
}

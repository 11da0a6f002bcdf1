//! A night's (or a shard's) metrics in Prometheus' text format, pushed to a Pushgateway when it
//! ends, as batch jobs report: tenants ok and failed, rows read, gate decisions, each tenant's
//! duration and agent-creation latency. Grouped by job (the orchestrator id) and shard, so each
//! shard's push replaces only its own group.

use std::fmt::Write as _;
use std::time::Duration;

use sluice_sandbox::Decision;

use crate::outcome::PipelineReport;

/// `report` in the text exposition format.
pub fn exposition(report: &PipelineReport) -> String {
    let mut out = String::new();
    let mut metric = |name: &str, help: &str, samples: Vec<(String, f64)>| {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge");
        for (labels, value) in samples {
            let _ = writeln!(out, "{name}{labels} {value}");
        }
    };
    let ok = report.tenants.iter().filter(|t| t.ok()).count();
    metric(
        "sluice_tenants",
        "Tenants of this shard by outcome.",
        vec![
            (label("outcome", "ok"), ok as f64),
            (
                label("outcome", "failed"),
                (report.tenants.len() - ok) as f64,
            ),
        ],
    );
    metric(
        "sluice_rows_read",
        "Rows the shard's transforms read.",
        vec![(
            String::new(),
            report.tenants.iter().map(|t| t.rows_read).sum::<u64>() as f64,
        )],
    );
    let (mut allowed, mut denied) = (0u64, 0u64);
    for t in &report.tenants {
        for line in &t.gate {
            match line.decision {
                Decision::Allowed | Decision::Shadowed => allowed += line.count,
                _ => denied += line.count,
            }
        }
        allowed += t.gate_overflow.allowed;
        denied += t.gate_overflow.denied;
    }
    metric(
        "sluice_gate_decisions",
        "Scope gate decisions by outcome.",
        vec![
            (label("decision", "allowed"), allowed as f64),
            (label("decision", "denied"), denied as f64),
        ],
    );
    metric(
        "sluice_tenant_duration_seconds",
        "Each tenant's time from start to release.",
        report
            .tenants
            .iter()
            .map(|t| (label("tenant", &t.id), t.elapsed_ms as f64 / 1e3))
            .collect(),
    );
    metric(
        "sluice_agent_create_seconds",
        "How long the broker took to create each tenant's agent.",
        report
            .tenants
            .iter()
            .filter_map(|t| Some((label("tenant", &t.id), t.agent_create_us? as f64 / 1e6)))
            .collect(),
    );
    metric(
        "sluice_night_duration_seconds",
        "The shard's whole run.",
        vec![(String::new(), report.elapsed_ms as f64 / 1e3)],
    );
    out
}

/// `{name="value"}` with the value escaped as the format requires.
fn label(name: &str, value: &str) -> String {
    let escaped = value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n");
    format!("{{{name}=\"{escaped}\"}}")
}

/// Replaces group `job`/`shard` at the Pushgateway at `url` with `body`.
pub async fn push(url: &str, job: &str, shard: u32, body: String) -> anyhow::Result<()> {
    let target = format!(
        "{}/metrics/job/{}/shard/{shard}",
        url.trim_end_matches('/'),
        path_segment(job)
    );
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()?;
    let response = client
        .put(&target)
        .header("Content-Type", "text/plain; version=0.0.4")
        .body(body)
        .send()
        .await
        .map_err(|e| anyhow::anyhow!("pushing metrics to {target}: {e}"))?;
    anyhow::ensure!(
        response.status().is_success(),
        "pushing metrics to {target}: the Pushgateway answered {}",
        response.status()
    );
    Ok(())
}

/// `job` as a URL path segment (orchestrator ids are plain, but be safe).
fn path_segment(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

//! What a night keeps of itself: one record per tenant in its shard's summary, enough to draw
//! the night again later (`sluice status --html`) and to compare it with the nights before.
//!
//! Everything a tenant wrote stays [`GuestText`] here (escaped by whoever shows it), and what a
//! record keeps of it is bounded: a hostile tenant cannot make a summary, or a page, large.

use serde::{Deserialize, Serialize};
use sluice_sandbox::{Decision, GuestText};
use sluice_storage::Location;

use crate::outcome::{AgentEnd, BudgetUse, PipelineReport, TenantError, TenantResult};
use crate::shards::{NightStatus, RunDir, ShardSummary};

/// Figures a record keeps per tenant; the rest are counted.
pub const MAX_FIGURES: usize = 32;
/// Bytes of a figure's name or value a record keeps (cut at a character boundary, marked `…`).
pub const MAX_FIGURE_BYTES: usize = 256;
/// Bytes of a failure's message a record keeps.
pub const MAX_CAUSE_BYTES: usize = 1024;
/// The last log lines a record keeps, each cut like a figure.
pub const MAX_LOG_LINES: usize = 5;

/// Milliseconds since the Unix epoch, now.
pub fn unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// One tenant's night as kept.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct TenantRecord {
    pub id: String,
    pub shard: u32,
    pub error: Option<TenantError>,
    pub agent_id: Option<String>,
    /// `released`, `revoked`, `expired` or `not released: why`.
    pub agent_end: Option<String>,
    pub language: Option<String>,
    /// What ran: a registry plugin's manifest digest or a file's `sha256:<hex>`.
    pub digest: Option<String>,
    /// `cached`, `compiled` or `recompiled`.
    pub origin: Option<String>,
    pub started_at_ms: u64,
    pub elapsed_ms: u64,
    pub rows_read: u64,
    pub bytes_read: u64,
    pub allowed: u64,
    /// Gate decisions that refused a call (blocked, or on a revoked agent).
    pub denied: u64,
    pub budget: Option<BudgetUse>,
    pub figures: Vec<(GuestText, GuestText)>,
    /// Figures past [`MAX_FIGURES`], not kept.
    #[serde(default)]
    pub figures_dropped: u64,
    /// Its last [`MAX_LOG_LINES`] log lines.
    #[serde(default)]
    pub log_tail: Vec<GuestText>,
}

impl TenantRecord {
    pub fn of(t: &TenantResult, shard: u32) -> TenantRecord {
        let (mut allowed, mut denied) = (0, 0);
        for line in &t.gate {
            match line.decision {
                Decision::Allowed | Decision::Shadowed => allowed += line.count,
                Decision::Blocked | Decision::Revoked => denied += line.count,
            }
        }
        let kept = |text: &GuestText| GuestText::new(cut(text.as_raw(), MAX_FIGURE_BYTES));
        TenantRecord {
            id: t.id.clone(),
            shard,
            error: t.error.as_ref().map(|e| TenantError {
                kind: e.kind,
                message: cut(&e.message, MAX_CAUSE_BYTES),
            }),
            agent_id: t.agent_id.clone(),
            agent_end: t.agent_end.as_ref().map(|end| match end {
                AgentEnd::Released => "released".to_string(),
                AgentEnd::Revoked => "revoked".to_string(),
                AgentEnd::Expired => "expired".to_string(),
                AgentEnd::NotReleased(why) => format!("not released: {why}"),
            }),
            language: t.plugin.as_ref().map(|p| p.language.to_string()),
            digest: t.plugin.as_ref().and_then(|p| p.digest.clone()),
            origin: t.plugin.as_ref().map(|p| p.origin.to_string()),
            started_at_ms: t.started_at_ms,
            elapsed_ms: t.elapsed_ms,
            rows_read: t.rows_read,
            bytes_read: t.budget.as_ref().map_or(0, |b| b.bytes_read.used),
            allowed,
            denied,
            budget: t.budget.clone(),
            figures: t
                .figures
                .iter()
                .take(MAX_FIGURES)
                .map(|f| (kept(&f.name), kept(&f.value)))
                .collect(),
            figures_dropped: t.figures.len().saturating_sub(MAX_FIGURES) as u64,
            log_tail: t.log[t.log.len().saturating_sub(MAX_LOG_LINES)..]
                .iter()
                .map(kept)
                .collect(),
        }
    }

    pub fn ok(&self) -> bool {
        self.error.is_none()
    }
}

/// `text` cut to at most `max` bytes at a character boundary, marked with `…` if it was cut.
fn cut(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_string();
    }
    let mut end = max.saturating_sub('…'.len_utf8());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}

/// One check of the isolation proof as kept.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct CheckRecord {
    pub claim: String,
    pub required: String,
    /// `ALLOWED`, `BLOCKED`, …; `None` if the probe never asked.
    pub decision: Option<String>,
    pub holds: bool,
}

/// The isolation proof as kept.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct IsolationRecord {
    pub violated: bool,
    pub error: Option<String>,
    #[serde(default)]
    pub checks: Vec<CheckRecord>,
}

impl IsolationRecord {
    pub fn of(report: &PipelineReport) -> Option<IsolationRecord> {
        report.isolation.as_ref().map(|i| IsolationRecord {
            violated: i.violated,
            error: i.error.clone(),
            checks: i
                .checks
                .iter()
                .map(|c| CheckRecord {
                    claim: c.claim.clone(),
                    required: c.required.clone(),
                    decision: c.decision.map(|d| d.as_str().to_string()),
                    holds: c.holds(),
                })
                .collect(),
        })
    }

    pub fn proven(&self) -> bool {
        !self.violated && self.error.is_none()
    }
}

/// What the night's verdict is, first thing on its page.
#[derive(Clone, Copy, Debug, Serialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum Verdict {
    Complete,
    Failed,
    IsolationViolated,
    Interrupted,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Complete => "complete",
            Verdict::Failed => "failed",
            Verdict::IsolationViolated => "isolation violated",
            Verdict::Interrupted => "interrupted",
        }
    }
}

/// One shard of a night (an unsharded night is one shard).
#[derive(Clone, Debug, Serialize)]
pub struct ShardRecord {
    pub shard: u32,
    /// `ok`, `interrupted`, `missing: …`, or what is wrong with its audit chain.
    pub state: String,
    pub audit_ok: bool,
    /// Where its audit chain is, as the operator would pass it to `sluice audit verify`.
    pub audit: String,
    pub audit_entries: u64,
    pub audit_head: String,
    pub started_at_ms: u64,
    pub elapsed_ms: u64,
}

/// A whole night, as its page shows it.
#[derive(Clone, Debug, Serialize)]
pub struct NightRecord {
    pub run_id: Option<String>,
    pub verdict: Verdict,
    pub started_at_ms: u64,
    pub elapsed_ms: u64,
    pub shards: Vec<ShardRecord>,
    /// In configuration order.
    pub tenants: Vec<TenantRecord>,
    /// Tenants of the configuration no shard reported.
    pub never_ran: Vec<String>,
    pub isolation: Option<IsolationRecord>,
    pub interrupted: bool,
}

impl NightRecord {
    /// The night `report` just ran in this process, its audit chain at `audit`.
    pub fn of_report(
        report: &PipelineReport,
        run_id: Option<&str>,
        shard: u32,
        audit: &Location,
    ) -> NightRecord {
        let isolation = IsolationRecord::of(report);
        let failed = report.tenants.iter().any(|t| !t.ok());
        let verdict = if report.isolation_violated() {
            Verdict::IsolationViolated
        } else if report.interrupted {
            Verdict::Interrupted
        } else if failed
            || report.audit_error.is_some()
            || isolation.as_ref().is_some_and(|i| !i.proven())
        {
            Verdict::Failed
        } else {
            Verdict::Complete
        };
        NightRecord {
            run_id: run_id.map(str::to_string),
            verdict,
            started_at_ms: report.started_at_ms,
            elapsed_ms: report.elapsed_ms,
            shards: vec![ShardRecord {
                shard,
                state: match &report.audit_error {
                    Some(e) => e.clone(),
                    None if report.interrupted => "interrupted".into(),
                    None => "ok".into(),
                },
                audit_ok: report.audit_error.is_none(),
                audit: audit.to_string(),
                audit_entries: report.audit.entries,
                audit_head: report.audit.hash.clone(),
                started_at_ms: report.started_at_ms,
                elapsed_ms: report.elapsed_ms,
            }],
            tenants: report
                .tenants
                .iter()
                .map(|t| TenantRecord::of(t, shard))
                .collect(),
            never_ran: Vec::new(),
            isolation,
            interrupted: report.interrupted,
        }
    }

    /// Night `run` of `tenants` (the configuration's, in order), from what its shards stored:
    /// their summaries, and `status`, the verdict [`crate::shards::night_status`] gave on them and their chains.
    pub fn of_stored(
        run: &RunDir,
        status: &NightStatus,
        tenants: &[String],
    ) -> anyhow::Result<NightRecord> {
        let summaries = stored_summaries(run, status.shards)?;
        let mut by_id: std::collections::HashMap<String, TenantRecord> = summaries
            .iter()
            .flat_map(|s| s.records.iter().cloned())
            .map(|r| (r.id.clone(), r))
            .collect();
        // Configuration order; a summary written before records were kept lists its tenants only.
        let records: Vec<TenantRecord> = tenants
            .iter()
            .filter_map(|id| {
                by_id.remove(id).or_else(|| {
                    let shard = summaries.iter().find(|s| s.tenants.contains(id))?;
                    let error = shard.failed.iter().find(|(t, _)| t == id).map(|(_, why)| {
                        TenantError::new(crate::outcome::FailureKind::Run, why.clone())
                    });
                    Some(TenantRecord::bare(id, shard.shard.index, error))
                })
            })
            .collect();
        let started_at_ms = summaries
            .iter()
            .map(|s| s.started_at_ms)
            .filter(|&t| t > 0)
            .min()
            .unwrap_or(0);
        let ended_at_ms = summaries
            .iter()
            .map(|s| s.started_at_ms + s.elapsed_ms)
            .max()
            .unwrap_or(started_at_ms);
        let interrupted = summaries.iter().any(|s| s.interrupted);
        let verdict = if status.isolation_violated() {
            Verdict::IsolationViolated
        } else if status.complete() {
            Verdict::Complete
        } else if interrupted {
            Verdict::Interrupted
        } else {
            Verdict::Failed
        };
        let shard_records = status
            .shard_states
            .iter()
            .map(|state| {
                let summary = summaries.iter().find(|s| s.shard.index == state.shard);
                ShardRecord {
                    shard: state.shard,
                    state: state.state.clone(),
                    audit_ok: state.audit_ok,
                    audit: run.audit_path(state.shard).to_string(),
                    audit_entries: summary.map_or(0, |s| s.audit_entries),
                    audit_head: summary.map_or_else(String::new, |s| s.audit_head.clone()),
                    started_at_ms: summary.map_or(0, |s| s.started_at_ms),
                    elapsed_ms: summary.map_or(0, |s| s.elapsed_ms),
                }
            })
            .collect();
        Ok(NightRecord {
            run_id: Some(run.run_id.clone()),
            verdict,
            started_at_ms,
            elapsed_ms: ended_at_ms.saturating_sub(started_at_ms),
            shards: shard_records,
            tenants: records,
            never_ran: status.never_ran.clone(),
            isolation: summaries
                .iter()
                .find(|s| s.shard.index == 0)
                .and_then(|s| s.isolation.clone()),
            interrupted,
        })
    }
}

impl TenantRecord {
    /// A tenant known only by name (and failure) from an older summary.
    fn bare(id: &str, shard: u32, error: Option<TenantError>) -> TenantRecord {
        TenantRecord {
            id: id.to_string(),
            shard,
            error,
            agent_id: None,
            agent_end: None,
            language: None,
            digest: None,
            origin: None,
            started_at_ms: 0,
            elapsed_ms: 0,
            rows_read: 0,
            bytes_read: 0,
            allowed: 0,
            denied: 0,
            budget: None,
            figures: Vec::new(),
            figures_dropped: 0,
            log_tail: Vec::new(),
        }
    }
}

/// The summaries run `run`'s shards left, in shard order (missing ones skipped).
fn stored_summaries(run: &RunDir, shards: u32) -> anyhow::Result<Vec<ShardSummary>> {
    let mut summaries = Vec::new();
    for index in 0..shards {
        if let Some(summary) = run.read_summary(index)? {
            summaries.push(summary);
        }
    }
    Ok(summaries)
}

/// One earlier night, as the page's trends need it.
#[derive(Clone, Debug)]
pub struct PastNight {
    pub run_id: String,
    pub started_at_ms: u64,
    pub tenants: std::collections::HashMap<String, TenantRecord>,
}

/// Nights stored under `runs` that began before `before_ms`, oldest first, at most `nights` of
/// them. A run directory that cannot be read is skipped: trends are a convenience, never the
/// reason a page is not drawn.
pub fn past_nights(runs: &Location, before_ms: u64, nights: usize) -> Vec<PastNight> {
    let Ok(names) = runs.names() else {
        return Vec::new();
    };
    let mut past: Vec<PastNight> = names
        .iter()
        .filter_map(|name| {
            let run = RunDir::new(runs, name).ok()?;
            let shards = run.shard_count().ok()?;
            let summaries = stored_summaries(&run, shards).ok()?;
            let started_at_ms = summaries.iter().map(|s| s.started_at_ms).min()?;
            (started_at_ms > 0 && started_at_ms < before_ms).then(|| PastNight {
                run_id: name.clone(),
                started_at_ms,
                tenants: summaries
                    .into_iter()
                    .flat_map(|s| s.records)
                    .map(|r| (r.id.clone(), r))
                    .collect(),
            })
        })
        .collect();
    past.sort_by_key(|n| n.started_at_ms);
    let skip = past.len().saturating_sub(nights);
    past.drain(..skip);
    past
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cut_keeps_whole_characters_and_says_it_cut() {
        assert_eq!(cut("short", 10), "short");
        let cut = cut(&"é".repeat(100), 11);
        assert!(cut.len() <= 11, "{cut}");
        assert_eq!(cut, format!("{}…", "é".repeat(4)));
    }
}

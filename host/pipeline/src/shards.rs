//! A night split over shards (the pods of a Kubernetes Indexed Job, or processes on one machine):
//! which shard runs which tenant, where each shard leaves its summary and audit chain, and the
//! night's verdict read back from all of them (`sluice status`).
//!
//! Tenants are assigned by rendezvous (highest-random-weight) hashing: every shard scores every
//! tenant with SHA-256 of (tenant, shard) and a tenant goes to its highest-scoring shard. Adding a
//! tenant moves no other tenant; adding a shard moves only the tenants the new shard now wins
//! (about 1/N of them), and removing one moves only its own. No shard needs to know another's
//! state: each computes the same assignment from the configuration alone.

use anyhow::Context as _;
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};
use sluice_sandbox::is_plain_name;

use crate::outcome::PipelineReport;
use crate::record::{IsolationRecord, TenantRecord};
use sluice_audit::{Verdict, verify_head};
use sluice_storage::Location;

/// Shard `index` of `count` (0 ≤ index < count).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Shard {
    pub index: u32,
    pub count: u32,
}

/// The shard a tenant belongs to when a night has `count` shards.
pub fn owner(tenant: &str, count: u32) -> u32 {
    (0..count.max(1))
        .max_by_key(|&shard| (score(tenant, shard), shard))
        .unwrap_or(0)
}

fn score(tenant: &str, shard: u32) -> u64 {
    let mut hash = Sha256::new();
    hash.update(tenant.as_bytes());
    hash.update([0]);
    hash.update(shard.to_le_bytes());
    let digest = hash.finalize();
    u64::from_le_bytes(digest[..8].try_into().expect("8 bytes"))
}

impl Shard {
    /// Shard `index` of `count`, or why not.
    pub fn new(index: u32, count: u32) -> anyhow::Result<Shard> {
        anyhow::ensure!(count >= 1, "a night has at least 1 shard, not {count}");
        anyhow::ensure!(
            index < count,
            "shard {index} does not exist in a night of {count} shards (they are 0 to {})",
            count - 1
        );
        Ok(Shard { index, count })
    }

    /// The shard a Kubernetes Indexed Job's pod is: `JOB_COMPLETION_INDEX`, of `SLUICE_SHARDS`
    /// shards. `None` when neither is set.
    pub fn from_env() -> anyhow::Result<Option<Shard>> {
        let index = std::env::var("JOB_COMPLETION_INDEX").ok();
        let count = std::env::var("SLUICE_SHARDS").ok();
        match (index, count) {
            (None, None) => Ok(None),
            (Some(i), Some(n)) => {
                let index = i
                    .trim()
                    .parse()
                    .with_context(|| format!("JOB_COMPLETION_INDEX '{i}' is not a shard number"))?;
                let count = n
                    .trim()
                    .parse()
                    .with_context(|| format!("SLUICE_SHARDS '{n}' is not a shard count"))?;
                Shard::new(index, count).map(Some)
            }
            (Some(_), None) => anyhow::bail!(
                "JOB_COMPLETION_INDEX is set but SLUICE_SHARDS is not: set it to the Job's \
                 completions (or pass --shard and --shards)"
            ),
            (None, Some(_)) => anyhow::bail!(
                "SLUICE_SHARDS is set but JOB_COMPLETION_INDEX is not: pass --shard, or run as an \
                 Indexed Job"
            ),
        }
    }

    pub fn owns(&self, tenant: &str) -> bool {
        owner(tenant, self.count) == self.index
    }

    /// The shard that proves isolation: 0, because every night has a shard 0 whatever its
    /// size, and the proof needs a fresh agent, not any shard's tenants.
    pub fn proves_isolation(&self) -> bool {
        self.index == 0
    }
}

/// Where a night's shards leave their summaries and audit chains: `<runs>/<run id>/`.
#[derive(Clone, Debug)]
pub struct RunDir {
    dir: Location,
    pub run_id: String,
}

impl RunDir {
    pub fn new(runs: &Location, run_id: &str) -> anyhow::Result<RunDir> {
        anyhow::ensure!(
            is_plain_name(run_id),
            "run id '{run_id}' must be 1-64 letters, digits, '-' or '_'"
        );
        Ok(RunDir {
            dir: runs.child(run_id),
            run_id: run_id.to_string(),
        })
    }

    pub fn dir(&self) -> &Location {
        &self.dir
    }

    /// Shard `shard`'s audit chain: a file, or on object storage a folder of segments.
    pub fn audit_path(&self, shard: u32) -> Location {
        self.dir.child(&audit_name(shard))
    }

    pub fn summary_path(&self, shard: u32) -> Location {
        self.dir.child(&format!("shard-{shard}.json"))
    }

    /// The shard count this night's summaries agree on.
    pub fn shard_count(&self) -> anyhow::Result<u32> {
        let mut counts = std::collections::BTreeSet::new();
        for name in self.dir.names()? {
            if name.starts_with("shard-") && name.ends_with(".json") {
                let file = self.dir.child(&name);
                let Some(bytes) = file.get()? else { continue };
                let summary: ShardSummary = serde_json::from_slice(&bytes)
                    .with_context(|| format!("reading shard summary {file}"))?;
                counts.insert(summary.shard.count);
            }
        }
        match counts.len() {
            1 => Ok(counts.into_iter().next().unwrap_or(1)),
            0 => anyhow::bail!(
                "no shard of run '{}' left a summary in {}; pass --shards N to report the whole \
                 night as never run",
                self.run_id,
                self.dir
            ),
            _ => anyhow::bail!(
                "the summaries of run '{}' disagree on the shard count ({counts:?}); pass --shards N",
                self.run_id
            ),
        }
    }

    /// Shard `index`'s summary, if it left one.
    pub fn read_summary(&self, index: u32) -> anyhow::Result<Option<ShardSummary>> {
        let path = self.summary_path(index);
        match path.get()? {
            Some(bytes) => {
                Ok(Some(serde_json::from_slice(&bytes).with_context(|| {
                    format!("reading shard summary {path}")
                })?))
            }
            None => Ok(None),
        }
    }

    /// Replaces shard `summary.shard`'s summary atomically (a rerun of the index replaces it).
    pub fn write_summary(&self, summary: &ShardSummary) -> anyhow::Result<Location> {
        let summary_path = self.summary_path(summary.shard.index);
        summary_path.put(serde_json::to_vec_pretty(summary)?)?;
        Ok(summary_path)
    }
}

fn audit_name(shard: u32) -> String {
    format!("shard-{shard}.audit.jsonl")
}

/// What one shard says of its part of the night, beside its audit chain.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct ShardSummary {
    pub run_id: String,
    pub shard: Shard,
    /// The tenants this shard owned, in configuration order.
    pub tenants: Vec<String>,
    pub ok: Vec<String>,
    /// Tenant and why, in one line.
    pub failed: Vec<(String, String)>,
    /// Only shard 0 proves isolation.
    pub isolation: Option<IsolationRecord>,
    pub interrupted: bool,
    /// The audit chain's file name in the run directory, and its head after this shard's run.
    pub audit_file: String,
    pub audit_entries: u64,
    pub audit_head: String,
    pub audit_error: Option<String>,
    /// When the shard began, in milliseconds since the Unix epoch (0 in older summaries).
    #[serde(default)]
    pub started_at_ms: u64,
    pub elapsed_ms: u64,
    /// Each tenant's night as kept, enough to draw the night's page again (older summaries
    /// have none).
    #[serde(default)]
    pub records: Vec<TenantRecord>,
}

impl ShardSummary {
    /// `report` of shard `shard` of night `run`, whose audit chain is at `audit`.
    pub fn of(run: &RunDir, shard: Shard, report: &PipelineReport) -> ShardSummary {
        ShardSummary {
            run_id: run.run_id.clone(),
            shard,
            tenants: report.tenants.iter().map(|t| t.id.clone()).collect(),
            ok: report
                .tenants
                .iter()
                .filter(|t| t.ok())
                .map(|t| t.id.clone())
                .collect(),
            failed: report
                .tenants
                .iter()
                .filter(|t| !t.ok())
                .map(|t| {
                    let why = t.error_message().unwrap_or("did not finish").to_string();
                    (t.id.clone(), why)
                })
                .collect(),
            isolation: IsolationRecord::of(report),
            interrupted: report.interrupted,
            audit_file: audit_name(shard.index),
            audit_entries: report.audit.entries,
            audit_head: report.audit.hash.clone(),
            audit_error: report.audit_error.clone(),
            started_at_ms: report.started_at_ms,
            elapsed_ms: report.elapsed_ms,
            records: report
                .tenants
                .iter()
                .map(|t| TenantRecord::of(t, shard.index))
                .collect(),
        }
    }
}

/// The verdict on a whole night, from every shard's summary and chain.
#[derive(Clone, Debug, Serialize)]
pub struct NightStatus {
    pub run_id: String,
    pub shards: u32,
    /// Per shard: `None` if it left no summary, else whether its audit chain verified.
    pub shard_states: Vec<ShardState>,
    pub ok: Vec<String>,
    pub failed: Vec<(String, String)>,
    /// Tenants whose shard left no summary (or did not run them).
    pub never_ran: Vec<String>,
    /// Shard 0's isolation proof, if it ran.
    pub isolation: Option<IsolationRecord>,
}

#[derive(Clone, Debug, Serialize)]
pub struct ShardState {
    pub shard: u32,
    /// `missing`, `ok`, `interrupted`, or what is wrong with its audit chain.
    pub state: String,
    pub audit_ok: bool,
}

impl NightStatus {
    pub fn complete(&self) -> bool {
        self.never_ran.is_empty()
            && self.failed.is_empty()
            && self.shard_states.iter().all(|s| s.audit_ok)
            && self.isolation.as_ref().is_some_and(IsolationRecord::proven)
    }

    pub fn isolation_violated(&self) -> bool {
        self.isolation.as_ref().is_some_and(|i| i.violated)
    }
}

/// Reads night `run` of `tenants` (the configuration's, in order) split over `shards`: every
/// shard's summary, each audit chain verified up to the head its summary recorded.
pub fn night_status(run: &RunDir, tenants: &[String], shards: u32) -> anyhow::Result<NightStatus> {
    let mut status = NightStatus {
        run_id: run.run_id.clone(),
        shards,
        shard_states: Vec::new(),
        ok: Vec::new(),
        failed: Vec::new(),
        never_ran: Vec::new(),
        isolation: None,
    };
    let mut ran = std::collections::HashSet::new();
    for index in 0..shards {
        let path = run.summary_path(index);
        let summary = match run.read_summary(index)? {
            Some(summary) => summary,
            None => {
                status.shard_states.push(ShardState {
                    shard: index,
                    state: "missing: it left no summary (never ran, or was killed)".into(),
                    audit_ok: false,
                });
                continue;
            }
        };
        anyhow::ensure!(
            summary.shard
                == Shard {
                    index,
                    count: shards
                }
                && summary.run_id == run.run_id,
            "{path} is shard {} of {} of run '{}', not shard {index} of {shards} of run '{}'",
            summary.shard.index,
            summary.shard.count,
            summary.run_id,
            run.run_id
        );
        anyhow::ensure!(
            summary.audit_file == audit_name(index),
            "{path} names its audit chain '{}', not shard {index}'s '{}'",
            summary.audit_file,
            audit_name(index)
        );
        let audit = run.audit_path(index);
        // A shard that owned no tenant may have written no entry, and so no file.
        let verdict = if summary.audit_entries == 0 && !sluice_audit::exists(&audit)? {
            Ok(Verdict::Intact(0))
        } else if summary.audit_entries == 0 {
            sluice_audit::verify(&audit)
        } else {
            verify_head(&audit, &summary.audit_head)
        };
        let (audit_ok, audit_state) = match verdict {
            Ok(Verdict::Intact(_)) if summary.audit_error.is_none() => (true, None),
            Ok(Verdict::Intact(_)) => (false, summary.audit_error.clone()),
            Ok(Verdict::Torn { intact, bytes }) => (
                false,
                Some(format!(
                    "audit chain torn after {intact} entries ({bytes} bytes)"
                )),
            ),
            Ok(Verdict::Broken { line, reason }) => (
                false,
                Some(format!("audit chain broken at line {line}: {reason}")),
            ),
            Err(e) => (false, Some(format!("{e:#}"))),
        };
        let state = audit_state.unwrap_or_else(|| {
            if summary.interrupted {
                "interrupted"
            } else {
                "ok"
            }
            .to_string()
        });
        status.shard_states.push(ShardState {
            shard: index,
            state,
            audit_ok,
        });
        for tenant in &summary.ok {
            ran.insert(tenant.clone());
            status.ok.push(tenant.clone());
        }
        for (tenant, why) in &summary.failed {
            ran.insert(tenant.clone());
            status.failed.push((tenant.clone(), why.clone()));
        }
        if index == 0 {
            status.isolation = summary.isolation.clone();
        }
    }
    status.never_ran = tenants
        .iter()
        .filter(|t| !ran.contains(*t))
        .cloned()
        .collect();
    Ok(status)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tenants(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("tenant-{i:05}")).collect()
    }

    #[test]
    fn shards_get_an_even_share() {
        let all = tenants(10_000);
        let mut counts = [0u32; 8];
        for t in &all {
            counts[owner(t, 8) as usize] += 1;
        }
        // 1,250 each on average; rendezvous hashing keeps every shard within a few percent.
        for c in counts {
            assert!((1_150..=1_350).contains(&c), "{counts:?}");
        }
    }

    #[test]
    fn adding_a_tenant_moves_no_one_and_adding_a_shard_moves_only_what_it_wins() {
        let all = tenants(10_000);
        let before: Vec<u32> = all.iter().map(|t| owner(t, 8)).collect();
        // A new tenant changes nobody else's shard: owner() depends on the tenant alone.
        let mut more = all.clone();
        more.push("tenant-new".into());
        assert_eq!(
            more[..all.len()]
                .iter()
                .map(|t| owner(t, 8))
                .collect::<Vec<_>>(),
            before
        );
        // A ninth shard takes about 1/9 of the tenants, and every tenant that moves, moves to it.
        let after: Vec<u32> = all.iter().map(|t| owner(t, 9)).collect();
        let moved: Vec<usize> = (0..all.len()).filter(|&i| before[i] != after[i]).collect();
        assert!(moved.iter().all(|&i| after[i] == 8));
        assert!(
            (1_000..=1_250).contains(&moved.len()),
            "{} moved",
            moved.len()
        );
        // Removing it puts each of them back where it was.
        assert_eq!(all.iter().map(|t| owner(t, 8)).collect::<Vec<_>>(), before);
    }

    #[test]
    fn shard_numbers_are_checked() {
        assert_eq!(
            Shard::new(4, 4).unwrap_err().to_string(),
            "shard 4 does not exist in a night of 4 shards (they are 0 to 3)"
        );
        assert!(Shard::new(0, 0).is_err());
        assert!(Shard::new(0, 1).unwrap().owns("anyone"));
    }
}

//! What the audit trail records: agent lifecycle events as a typed enum, and the gate's
//! decisions, each entry tied to a tenant, an agent's SPIFFE ID and a task.

use std::time::SystemTime;

use serde::Serialize;
use serde_json::{Value, json};
use sluice_sandbox::{GateEvent, GateOverflow, RunOutcome, Writ};

/// RFC 3339 UTC with nanoseconds, as the broker writes audit times.
pub fn rfc3339(time: SystemTime) -> String {
    time::OffsetDateTime::from(time)
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| "1970-01-01T00:00:00Z".to_string())
}

/// Who an entry is about. Empty fields (an agent that was never created) are written empty.
#[derive(Clone, Debug, Default)]
pub struct Subject {
    pub tenant: String,
    pub agent_id: String,
    pub task_id: String,
}

/// An agent's life and a tenant's run, as the pipeline saw them.
#[derive(Clone, Debug, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Lifecycle {
    AgentCreated {
        scope: Vec<String>,
        expires_in: u64,
        #[serde(skip_serializing_if = "Option::is_none")]
        purpose: Option<&'static str>,
    },
    AgentRenewed {
        expires_in: u64,
    },
    /// The broker stopped honouring the agent (revoked, expired), or it could not be confirmed:
    /// from here on the gate denies every data access.
    AgentInvalidated {
        detail: String,
    },
    AgentReleased {
        #[serde(skip_serializing_if = "Option::is_none")]
        detail: Option<&'static str>,
    },
    /// Release failed; the agent lives until it expires.
    AgentNotReleased {
        detail: String,
    },
    CommitRefused {
        outcome: &'static str,
        detail: String,
    },
    ReportCommitted {
        report: String,
        bytes: u64,
    },
    /// An output table published as a file.
    TableCommitted {
        table: String,
        rows: u64,
    },
    TenantFailed {
        detail: String,
    },
    /// What a run used, whether it succeeded or not.
    RunFinished {
        rows_read: u64,
        bytes_read: u64,
        report_bytes: u64,
        host_calls: u64,
        invalid_calls: u64,
        log_bytes_dropped: u64,
        elapsed_ms: u64,
    },
    /// Gate decisions past the run's itemized kinds, counted.
    GateOverflow {
        allowed: u64,
        denied: u64,
        first_time: Option<String>,
        last_time: Option<String>,
    },
    /// A shard of a night started on its tenants: where each attempt at an index begins in its
    /// chain (a rerun continues the same chain).
    ShardStarted {
        shard: u32,
        shards: u32,
        tenants: u64,
        pid: u32,
        /// `HOSTNAME`, which Kubernetes sets to the pod's name.
        #[serde(skip_serializing_if = "Option::is_none")]
        host: Option<String>,
    },
    /// A tenant's plugin (or candidate) was checked before it ran: what the configuration
    /// named, the digest that was pinned, whose key had to sign it, and the verdict.
    PluginChecked {
        plugin: &'static str,
        reference: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        digest: Option<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        signer: Option<String>,
        verdict: String,
    },
    /// A tenant's candidate ran in shadow: what it was, and every figure that differs from
    /// the current run's (`[{figure, current, candidate}]`).
    CandidateCompared {
        reference: String,
        digest: String,
        figures: u64,
        changed: Value,
    },
    /// A PostgreSQL login was minted for the agent's run (its name, never its password), a
    /// member of `role`, valid until the agent expires.
    LoginCreated {
        login: String,
        role: String,
        valid_until: String,
    },
    /// The login's expiry moved with its agent's renewal.
    LoginRenewed {
        login: String,
        valid_until: String,
    },
    /// The agent stopped being honoured: the login may not log in again, and its sessions were
    /// terminated.
    LoginCut {
        login: String,
        sessions: u64,
        detail: String,
    },
    /// The login was dropped at the agent's release (its sessions terminated first).
    LoginDropped {
        login: String,
        sessions: u64,
    },
    /// Dropping it failed; it can no longer log in once its `VALID UNTIL` passes, and the next
    /// start drops it.
    LoginNotDropped {
        login: String,
        detail: String,
    },
    /// A login an earlier process left behind (killed before its release) was dropped.
    LeftoverLoginDropped {
        login: String,
    },
    /// A torn last line (an entry cut short by a crash) was cut off the file before appending.
    AuditTailRepaired {
        torn_bytes: u64,
        torn_sha256: String,
    },
}

impl Lifecycle {
    /// The entry for this event about `subject`, stamped now.
    pub fn entry(&self, subject: &Subject) -> Value {
        let mut entry = json!({
            "time": rfc3339(SystemTime::now()),
            "tenant": subject.tenant,
            "agent_id": subject.agent_id,
            "task_id": subject.task_id,
        });
        if let (Some(e), Ok(Value::Object(mut fields))) =
            (entry.as_object_mut(), serde_json::to_value(self))
        {
            e.append(&mut fields);
        }
        entry
    }

    /// What a run used, from its outcome.
    pub fn run_finished(outcome: &RunOutcome) -> Lifecycle {
        let u = &outcome.usage;
        Lifecycle::RunFinished {
            rows_read: u.rows_read,
            bytes_read: u.bytes_read,
            report_bytes: u.report_bytes,
            host_calls: u.host_calls,
            invalid_calls: u.invalid_calls,
            log_bytes_dropped: outcome.log_bytes_dropped,
            elapsed_ms: outcome.elapsed.as_millis() as u64,
        }
    }
}

/// The subject of a run's writ.
pub fn writ_subject(writ: &Writ) -> Subject {
    Subject {
        tenant: writ.tenant.clone(),
        agent_id: writ.agent_id.clone(),
        task_id: writ.task_id.clone(),
    }
}

/// One kind of gate decision as an audit entry: `count` decisions made between `time` and
/// `last_time`.
pub fn gate_entry(writ: &Writ, event: &GateEvent) -> Value {
    let mut entry = json!({
        "time": rfc3339(event.time),
        "event": "gate",
        "tenant": writ.tenant,
        "agent_id": writ.agent_id,
        "task_id": writ.task_id,
        "call": event.call.name(),
        "required": event.required.as_str(),
        "held": writ.held_strings(),
        "decision": event.decision.as_str(),
        "count": event.count,
    });
    if event.count > 1 {
        entry["last_time"] = json!(rfc3339(event.last_time));
    }
    entry
}

/// Every entry for a run's gate: one per kind of decision, then the overflow if any.
pub fn gate_entries(writ: &Writ, events: &[GateEvent], overflow: &GateOverflow) -> Vec<Value> {
    let mut entries: Vec<Value> = events.iter().map(|e| gate_entry(writ, e)).collect();
    if overflow.total() > 0 {
        entries.push(
            Lifecycle::GateOverflow {
                allowed: overflow.allowed,
                denied: overflow.denied,
                first_time: overflow.first_time.map(rfc3339),
                last_time: overflow.last_time.map(rfc3339),
            }
            .entry(&writ_subject(writ)),
        );
    }
    entries
}

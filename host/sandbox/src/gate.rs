//! The scope gate: the one place that decides whether a guest's host call may touch data.
//!
//! Every host function that reads or writes tenant data names the scope it requires and asks
//! [`Gate::check`]. The gate answers with AgentWrit's coverage rule (`agentwrit::Scope::covers`,
//! the same code the broker client uses) and records the decision, allow or deny, as an audit
//! event. Nothing else in the host decides a scope question.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::SystemTime;

use agentwrit::Scope;

/// The credential a run holds: who the agent is and what it may do.
///
/// The default `Writ` holds no scopes, so a gate built from it allows nothing.
#[derive(Clone, Default)]
pub struct Writ {
    /// The tenant this run is for.
    pub tenant: String,
    /// The agent's SPIFFE ID.
    pub agent_id: String,
    /// The broker task id.
    pub task_id: String,
    /// The scopes the agent holds, as issued.
    pub held: Vec<Scope>,
    /// Set by the pipeline when the agent is revoked, released or expired: every later gated call
    /// is denied, whatever the scopes say.
    pub revoked: Arc<AtomicBool>,
}

impl Writ {
    /// A writ for `tenant` holding `held`, with a fresh revocation flag.
    pub fn new(
        tenant: impl Into<String>,
        agent_id: impl Into<String>,
        task_id: impl Into<String>,
        held: Vec<Scope>,
    ) -> Writ {
        Writ {
            tenant: tenant.into(),
            agent_id: agent_id.into(),
            task_id: task_id.into(),
            held,
            revoked: Arc::new(AtomicBool::new(false)),
        }
    }

    /// The held scopes as strings, in issue order.
    pub fn held_strings(&self) -> Vec<String> {
        self.held.iter().map(|s| s.as_str().to_string()).collect()
    }
}

impl std::fmt::Debug for Writ {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Writ")
            .field("tenant", &self.tenant)
            .field("agent_id", &self.agent_id)
            .field("task_id", &self.task_id)
            .field("held", &self.held)
            .field("revoked", &self.revoked.load(Ordering::Relaxed))
            .finish()
    }
}

/// The host functions that pass the gate, named as in `wit/`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum HostCall {
    DatasetsOpen,
    DatasetsList,
    DatasetNextBatch,
    ReportsCreate,
    ReportAppend,
    ReportCommit,
}

impl HostCall {
    /// The WIT name, e.g. `datasets.open`.
    pub fn name(self) -> &'static str {
        match self {
            HostCall::DatasetsOpen => "datasets.open",
            HostCall::DatasetsList => "datasets.list",
            HostCall::DatasetNextBatch => "dataset.next-batch",
            HostCall::ReportsCreate => "reports.create",
            HostCall::ReportAppend => "report.append",
            HostCall::ReportCommit => "report.commit",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    Allowed,
    /// The held scopes do not cover the required one.
    Blocked,
    /// The agent was revoked, released or expired during the run.
    Revoked,
}

impl Decision {
    pub fn as_str(self) -> &'static str {
        match self {
            Decision::Allowed => "ALLOWED",
            Decision::Blocked => "BLOCKED",
            Decision::Revoked => "REVOKED",
        }
    }
}

/// Decisions of the gate: one call, or a run of identical consecutive calls (the same host
/// function, required scope and decision, e.g. a stream of `next-batch` reads) counted in
/// `count`. Tenant, agent, task and held scopes are the gate's [`Writ`]; they are not copied into
/// every event because the gate sits on the hot path of every data call.
#[derive(Clone, Debug)]
pub struct GateEvent {
    /// When the first decision of the run was made.
    pub time: SystemTime,
    /// When the run was seen to end (the next different decision, or the end of the run): an
    /// upper bound on the last call's time, equal to `time` when `count` is 1.
    pub last_time: SystemTime,
    pub call: HostCall,
    pub required: Arc<Scope>,
    pub decision: Decision,
    /// How many identical consecutive decisions this event stands for; at least 1.
    pub count: u64,
}

/// The wall clock at the kernel's tick resolution (a few ms): cheap enough to stamp every gated
/// call, which `SystemTime::now()` is not (~45-85 ns here, a third of a host call).
fn coarse_now() -> SystemTime {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec and CLOCK_REALTIME_COARSE is a valid clock id.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_REALTIME_COARSE, &mut ts) };
    if rc != 0 {
        return SystemTime::now();
    }
    SystemTime::UNIX_EPOCH + std::time::Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

/// The gate said no: the guest sees this as `error::denied`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Denied {
    pub required: String,
    pub held: Vec<String>,
    pub revoked: bool,
}

impl std::fmt::Display for Denied {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.revoked {
            return write!(
                f,
                "agent no longer valid (revoked, released or expired): '{}' refused",
                self.required
            );
        }
        write!(
            f,
            "scope '{}' is not covered by held scopes [{}]",
            self.required,
            self.held.join(", ")
        )
    }
}

/// Decides scope questions for one run and remembers every decision.
pub struct Gate {
    writ: Writ,
    events: Vec<GateEvent>,
}

impl Gate {
    pub fn new(writ: Writ) -> Gate {
        Gate {
            writ,
            events: Vec::new(),
        }
    }

    pub fn writ(&self) -> &Writ {
        &self.writ
    }

    /// Allows `call` only if a held scope covers `required` and the agent is still valid.
    /// Records the decision either way.
    pub fn check(&mut self, call: HostCall, required: &Arc<Scope>) -> Result<(), Denied> {
        let decision = if self.writ.revoked.load(Ordering::Acquire) {
            Decision::Revoked
        } else if self.writ.held.iter().any(|held| held.covers(required)) {
            Decision::Allowed
        } else {
            Decision::Blocked
        };
        match self.events.last_mut() {
            // The hot path of a stream of reads: count it, read no clock. The run's end is
            // stamped when it closes (the next different decision, or the end of the run).
            Some(last)
                if last.call == call
                    && last.decision == decision
                    && (Arc::ptr_eq(&last.required, required) || *last.required == **required) =>
            {
                last.count += 1;
            }
            Some(_) | None => {
                let now = coarse_now();
                if let Some(last) = self.events.last_mut()
                    && last.count > 1
                {
                    last.last_time = now;
                }
                self.events.push(GateEvent {
                    time: now,
                    last_time: now,
                    call,
                    required: Arc::clone(required),
                    decision,
                    count: 1,
                });
            }
        }
        match decision {
            Decision::Allowed => Ok(()),
            Decision::Blocked | Decision::Revoked => Err(Denied {
                required: required.as_str().to_string(),
                held: self.writ.held_strings(),
                revoked: decision == Decision::Revoked,
            }),
        }
    }

    /// The decisions so far, oldest first, identical consecutive ones counted in one event.
    pub fn events(&self) -> &[GateEvent] {
        &self.events
    }

    /// The writ and every decision, the last run of identical decisions stamped as ending now.
    pub fn into_parts(mut self) -> (Writ, Vec<GateEvent>) {
        if let Some(last) = self.events.last_mut()
            && last.count > 1
        {
            last.last_time = coarse_now();
        }
        (self.writ, self.events)
    }
}

/// Where gate decisions go when a run ends (the pipeline's chained JSONL audit, the CLI's printer).
pub trait AuditSink: Send + Sync {
    /// Records the decisions of one run, oldest first.
    fn record_gate_events(&self, writ: &Writ, events: &[GateEvent]) -> anyhow::Result<()>;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scope(s: &str) -> Arc<Scope> {
        Arc::new(Scope::parse(s).unwrap())
    }

    fn hospital() -> Writ {
        Writ::new(
            "hospital",
            "spiffe://agentwrit.local/agent/o/t/1",
            "t",
            vec![
                Scope::parse("read:analytics:hospital").unwrap(),
                Scope::parse("write:reports:hospital").unwrap(),
            ],
        )
    }

    #[test]
    fn gate_allows_covered_scope_and_records_it() {
        let mut gate = Gate::new(hospital());
        gate.check(HostCall::DatasetsOpen, &scope("read:analytics:hospital"))
            .unwrap();
        assert_eq!(gate.events().len(), 1);
        assert_eq!(gate.events()[0].decision, Decision::Allowed);
    }

    #[test]
    fn gate_blocks_other_tenant_with_required_and_held() {
        let mut gate = Gate::new(hospital());
        let denied = gate
            .check(HostCall::DatasetsOpen, &scope("read:analytics:bank"))
            .unwrap_err();
        assert_eq!(denied.required, "read:analytics:bank");
        assert_eq!(
            denied.held,
            ["read:analytics:hospital", "write:reports:hospital"]
        );
        assert_eq!(gate.events()[0].decision, Decision::Blocked);
        let denied = gate
            .check(HostCall::ReportsCreate, &scope("write:reports:retail"))
            .unwrap_err();
        assert_eq!(
            denied.to_string(),
            "scope 'write:reports:retail' is not covered by held scopes [read:analytics:hospital, write:reports:hospital]"
        );
    }

    #[test]
    fn identical_consecutive_decisions_are_counted_in_one_event() {
        let mut gate = Gate::new(hospital());
        let read = scope("read:analytics:hospital");
        for _ in 0..3 {
            gate.check(HostCall::DatasetNextBatch, &read).unwrap();
        }
        gate.check(HostCall::ReportsCreate, &scope("write:reports:hospital"))
            .unwrap();
        gate.check(HostCall::DatasetNextBatch, &read).unwrap();
        let counts: Vec<(HostCall, u64)> =
            gate.events().iter().map(|e| (e.call, e.count)).collect();
        assert_eq!(
            counts,
            [
                (HostCall::DatasetNextBatch, 3),
                (HostCall::ReportsCreate, 1),
                (HostCall::DatasetNextBatch, 1)
            ]
        );
        assert!(gate.events()[0].last_time >= gate.events()[0].time);
    }

    #[test]
    fn empty_writ_allows_nothing() {
        let mut gate = Gate::new(Writ::default());
        assert!(
            gate.check(HostCall::DatasetsOpen, &scope("read:analytics:hospital"))
                .is_err()
        );
    }

    #[test]
    fn revoked_writ_denies_even_covered_scopes() {
        let writ = hospital();
        let flag = Arc::clone(&writ.revoked);
        let mut gate = Gate::new(writ);
        flag.store(true, Ordering::Release);
        let denied = gate
            .check(HostCall::ReportCommit, &scope("write:reports:hospital"))
            .unwrap_err();
        assert!(denied.revoked);
        assert_eq!(gate.events()[0].decision, Decision::Revoked);
    }
}

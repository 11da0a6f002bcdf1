//! The scope gate: the one place that decides whether a guest's host call may touch data.
//!
//! Every host function that reads or writes tenant data names the scope it requires and asks
//! [`Gate::check`]. The gate answers with AgentWrit's coverage rule (`agentwrit_scope::Scope::covers`,
//! the same code the broker client uses) and records the decision, allow or deny, as an audit
//! event. Nothing else in the host decides a scope question.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, SystemTime};

use agentwrit_scope::Scope;

use crate::interrupt::Interrupt;
use sluice_text::escape;

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
    /// Triggered by the pipeline when the agent is revoked, released or expired: every later
    /// gated call is denied, whatever the scopes say, and a guest asleep in the host wakes.
    pub revoked: Interrupt,
    /// A shadow run (a tenant's candidate plugin): its calls on the tenant's own report are
    /// captured for `candidate.json`, decided [`Decision::Shadowed`], though the agent holds no
    /// write scope; every other call is decided on the held scopes alone.
    pub shadow: bool,
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
            revoked: Interrupt::new(),
            shadow: false,
        }
    }

    /// Whether a shadow run's `call` on `required` is captured rather than decided on the
    /// held scopes: only the tenant's own report, which a shadow run never publishes.
    fn captures(&self, call: HostCall, required: &Scope) -> bool {
        self.shadow
            && matches!(
                call,
                HostCall::ReportsCreate | HostCall::ReportAppend | HostCall::ReportCommit
            )
            && required.as_str() == format!("write:reports:{}", self.tenant)
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
            .field("revoked", &self.revoked.is_triggered())
            .field("shadow", &self.shadow)
            .finish()
    }
}

/// The host functions that pass the gate, named as in `wit/`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum HostCall {
    DatasetsOpen,
    DatasetsList,
    DatasetNextBatch,
    TablesCreate,
    TableAppend,
    TableCommit,
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
            HostCall::TablesCreate => "tables.create",
            HostCall::TableAppend => "table.append",
            HostCall::TableCommit => "table.commit",
            HostCall::ReportsCreate => "reports.create",
            HostCall::ReportAppend => "report.append",
            HostCall::ReportCommit => "report.commit",
        }
    }
}

impl serde::Serialize for HostCall {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    Allowed,
    /// The held scopes do not cover the required one.
    Blocked,
    /// The agent was revoked, released or expired during the run.
    Revoked,
    /// A shadow run's call on its tenant's own report: captured for `candidate.json`,
    /// published nowhere (see [`Writ::shadow`]).
    Shadowed,
}

impl Decision {
    pub fn as_str(self) -> &'static str {
        match self {
            Decision::Allowed => "ALLOWED",
            Decision::Blocked => "BLOCKED",
            Decision::Revoked => "REVOKED",
            Decision::Shadowed => "SHADOWED",
        }
    }
}

impl serde::Serialize for Decision {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// Decisions of the gate of one kind: the same host function, required scope and decision,
/// however often and in whatever order the guest made them, counted in `count`. Tenant, agent,
/// task and held scopes are the gate's [`Writ`]; they are not copied into every event because
/// the gate sits on the hot path of every data call.
#[derive(Clone, Debug)]
pub struct GateEvent {
    /// When the first decision of this kind was made.
    pub time: SystemTime,
    /// When the last one was made (to the epoch ticker's 10 ms), equal to `time` when `count`
    /// is 1: an aggregated run of reads never seems to go on past the moment it stopped.
    pub last_time: SystemTime,
    pub call: HostCall,
    pub required: Arc<Scope>,
    pub decision: Decision,
    /// How many decisions of this kind were made; at least 1.
    pub count: u64,
}

/// Decisions beyond the run's `audit_entries` distinct kinds: counted, not itemized, so a guest
/// varying its requests cannot grow the audit trail, and no denial goes uncounted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct GateOverflow {
    pub allowed: u64,
    /// Blocked and revoked decisions.
    pub denied: u64,
    pub first_time: Option<SystemTime>,
    pub last_time: Option<SystemTime>,
}

impl GateOverflow {
    pub fn total(&self) -> u64 {
        self.allowed + self.denied
    }

    fn count(&mut self, decision: Decision, now: SystemTime) {
        match decision {
            Decision::Allowed | Decision::Shadowed => self.allowed += 1,
            Decision::Blocked | Decision::Revoked => self.denied += 1,
        }
        self.first_time.get_or_insert(now);
        self.last_time = Some(now);
    }
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

/// Milliseconds since the Unix epoch, as of the sandboxes' last epoch tick.
static TICK_MS: AtomicU64 = AtomicU64::new(0);
/// Epoch tickers running: [`TICK_MS`] is current only while one is.
static TICKERS: AtomicUsize = AtomicUsize::new(0);

/// A running epoch ticker keeps [`TICK_MS`] current until it is dropped.
pub(crate) struct TickClock(());

impl TickClock {
    pub(crate) fn start() -> TickClock {
        tick_clock();
        TICKERS.fetch_add(1, Ordering::AcqRel);
        TickClock(())
    }

    pub(crate) fn tick(&self) {
        tick_clock();
    }
}

impl Drop for TickClock {
    fn drop(&mut self) {
        TICKERS.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Called by the sandbox's epoch ticker every tick: the clock [`tick_now`] reads.
fn tick_clock() {
    let ms = coarse_now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    TICK_MS.store(ms, Ordering::Relaxed);
}

/// The time of the last epoch tick, at least `floor`: one relaxed load, cheap enough for every
/// repeat of a decision. Without a ticker (a gate used alone) it reads the coarse clock.
fn tick_now(floor: SystemTime) -> SystemTime {
    if TICKERS.load(Ordering::Relaxed) == 0 {
        return coarse_now().max(floor);
    }
    let ms = TICK_MS.load(Ordering::Relaxed);
    (SystemTime::UNIX_EPOCH + Duration::from_millis(ms)).max(floor)
}

/// The gate said no: what the guest sees as `error::denied`, exactly as the gate decided it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Denied {
    pub required: Arc<Scope>,
    pub held: Vec<Scope>,
    /// [`Decision::Blocked`] or [`Decision::Revoked`].
    pub decision: Decision,
}

impl Denied {
    pub fn revoked(&self) -> bool {
        self.decision == Decision::Revoked
    }

    pub fn held_strings(&self) -> Vec<String> {
        self.held.iter().map(|s| s.as_str().to_string()).collect()
    }
}

impl std::fmt::Display for Denied {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Scopes come from the broker and from guest-chosen names: shown escaped.
        let required = escape(self.required.as_str());
        if self.revoked() {
            return write!(
                f,
                "agent no longer valid (revoked, released or expired): '{required}' refused"
            );
        }
        let held: Vec<String> = self
            .held
            .iter()
            .map(|s| escape(s.as_str()).into_owned())
            .collect();
        write!(
            f,
            "scope '{required}' is not covered by held scopes [{}]",
            held.join(", ")
        )
    }
}

/// Decides scope questions for one run and remembers every decision, bounded.
pub struct Gate {
    writ: Writ,
    events: Vec<GateEvent>,
    /// The event the previous decision went to: a stream of identical decisions is one compare.
    last: usize,
    max_events: usize,
    overflow: GateOverflow,
    last_denial: Option<Denied>,
}

impl Gate {
    /// A gate for `writ` that itemizes at most `max_events` distinct kinds of decision.
    pub fn new(writ: Writ, max_events: usize) -> Gate {
        Gate {
            writ,
            events: Vec::new(),
            last: 0,
            max_events,
            overflow: GateOverflow::default(),
            last_denial: None,
        }
    }

    pub fn writ(&self) -> &Writ {
        &self.writ
    }

    /// Allows `call` only if a held scope covers `required` and the agent is still valid.
    /// Records the decision either way.
    pub fn check(&mut self, call: HostCall, required: &Arc<Scope>) -> Result<(), Denied> {
        let revoked = self.writ.revoked.is_triggered();
        // The hot path of a stream of reads: the same call on the same scope (the very `Arc` a
        // handle keeps) that was allowed last time. The held scopes never change during a run,
        // so it is allowed again unless the agent was revoked since: count it, compare no text.
        if !revoked
            && let Some(last) = self.events.get_mut(self.last)
            && last.decision == Decision::Allowed
            && last.call == call
            && Arc::ptr_eq(&last.required, required)
        {
            last.count += 1;
            last.last_time = tick_now(last.time);
            return Ok(());
        }
        let decision = if revoked {
            Decision::Revoked
        } else if self.writ.held.iter().any(|held| held.covers(required)) {
            Decision::Allowed
        } else if self.writ.captures(call, required) {
            Decision::Shadowed
        } else {
            Decision::Blocked
        };
        match self.events.get_mut(self.last) {
            // The hot path of a stream of identical decisions: count it and stamp it.
            Some(last)
                if last.call == call
                    && last.decision == decision
                    && (Arc::ptr_eq(&last.required, required) || *last.required == **required) =>
            {
                last.count += 1;
                last.last_time = tick_now(last.time);
            }
            _ => self.record(call, required, decision),
        }
        if matches!(decision, Decision::Allowed | Decision::Shadowed) {
            return Ok(());
        }
        let denied = Denied {
            required: Arc::clone(required),
            held: self.writ.held.clone(),
            decision,
        };
        self.last_denial = Some(denied.clone());
        Err(denied)
    }

    /// A decision of another kind than the previous one: find its event, or start one.
    fn record(&mut self, call: HostCall, required: &Arc<Scope>, decision: Decision) {
        let now = coarse_now();
        let same =
            |e: &GateEvent| e.call == call && e.decision == decision && *e.required == **required;
        if let Some(index) = self.events.iter().position(same) {
            let event = &mut self.events[index];
            event.count += 1;
            event.last_time = now;
            self.last = index;
        } else if self.events.len() < self.max_events {
            self.events.push(GateEvent {
                time: now,
                last_time: now,
                call,
                required: Arc::clone(required),
                decision,
                count: 1,
            });
            self.last = self.events.len() - 1;
        } else {
            self.overflow.count(decision, now);
            // Point past the end so the next decision takes this path too.
            self.last = usize::MAX;
        }
    }

    /// The decisions so far, in the order their kinds first appeared.
    pub fn events(&self) -> &[GateEvent] {
        &self.events
    }

    /// The gate's most recent denial, if any: what a guest that gives up on a denial is
    /// reported as, whatever it claims.
    pub fn last_denial(&self) -> Option<&Denied> {
        self.last_denial.as_ref()
    }

    /// The writ and every decision.
    pub fn into_parts(self) -> (Writ, Vec<GateEvent>, GateOverflow) {
        (self.writ, self.events, self.overflow)
    }
}

/// Where gate decisions go when a run ends (the pipeline's chained JSONL audit, the CLI's printer).
pub trait AuditSink: Send + Sync {
    /// Records the decisions of one run, and what went uncounted past its bound.
    fn record_gate_events(
        &self,
        writ: &Writ,
        events: &[GateEvent],
        overflow: &GateOverflow,
    ) -> anyhow::Result<()>;
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
        let mut gate = Gate::new(hospital(), 64);
        gate.check(HostCall::DatasetsOpen, &scope("read:analytics:hospital"))
            .unwrap();
        assert_eq!(gate.events().len(), 1);
        assert_eq!(gate.events()[0].decision, Decision::Allowed);
    }

    #[test]
    fn gate_blocks_other_tenant_with_required_and_held() {
        let mut gate = Gate::new(hospital(), 64);
        let denied = gate
            .check(HostCall::DatasetsOpen, &scope("read:analytics:bank"))
            .unwrap_err();
        assert_eq!(denied.required.as_str(), "read:analytics:bank");
        assert_eq!(
            denied.held_strings(),
            ["read:analytics:hospital", "write:reports:hospital"]
        );
        assert_eq!(denied.decision, Decision::Blocked);
        assert_eq!(gate.events()[0].decision, Decision::Blocked);
        let denied = gate
            .check(HostCall::ReportsCreate, &scope("write:reports:retail"))
            .unwrap_err();
        assert_eq!(
            denied.to_string(),
            "scope 'write:reports:retail' is not covered by held scopes [read:analytics:hospital, write:reports:hospital]"
        );
        assert_eq!(gate.last_denial(), Some(&denied));
    }

    #[test]
    fn identical_decisions_are_counted_in_one_event_even_when_interleaved() {
        let mut gate = Gate::new(hospital(), 64);
        let read = scope("read:analytics:hospital");
        let write = scope("write:reports:hospital");
        for _ in 0..3 {
            gate.check(HostCall::DatasetNextBatch, &read).unwrap();
        }
        for _ in 0..1000 {
            gate.check(HostCall::ReportAppend, &write).unwrap();
            gate.check(HostCall::DatasetNextBatch, &read).unwrap();
        }
        let counts: Vec<(HostCall, u64)> =
            gate.events().iter().map(|e| (e.call, e.count)).collect();
        assert_eq!(
            counts,
            [
                (HostCall::DatasetNextBatch, 1003),
                (HostCall::ReportAppend, 1000),
            ]
        );
        assert!(gate.events()[0].last_time >= gate.events()[0].time);
    }

    #[test]
    fn kinds_past_the_bound_are_counted_in_the_overflow_and_no_denial_is_lost() {
        let mut gate = Gate::new(hospital(), 4);
        for i in 0..100 {
            let other = scope(&format!("read:analytics:tenant{i}"));
            assert!(gate.check(HostCall::DatasetsOpen, &other).is_err());
            gate.check(
                HostCall::DatasetNextBatch,
                &scope("read:analytics:hospital"),
            )
            .unwrap();
        }
        let (_, events, overflow) = gate.into_parts();
        assert_eq!(events.len(), 4);
        let itemized_denials: u64 = events
            .iter()
            .filter(|e| e.decision != Decision::Allowed)
            .map(|e| e.count)
            .sum();
        assert_eq!(itemized_denials + overflow.denied, 100);
        let itemized: u64 = events.iter().map(|e| e.count).sum();
        assert_eq!(itemized + overflow.total(), 200);
    }

    #[test]
    fn an_aggregated_run_ends_at_its_last_decision_not_at_the_next_kind() {
        let mut gate = Gate::new(hospital(), 64);
        let read = scope("read:analytics:hospital");
        for _ in 0..3 {
            gate.check(HostCall::DatasetNextBatch, &read).unwrap();
        }
        let stopped = SystemTime::now();
        // The guest sleeps, then does something else: the reads did not go on meanwhile.
        std::thread::sleep(Duration::from_millis(300));
        let _ = gate.check(HostCall::ReportsCreate, &scope("write:reports:bank"));
        let (_, events, _) = gate.into_parts();
        assert_eq!(events[0].count, 3);
        let late = events[0]
            .last_time
            .duration_since(stopped)
            .unwrap_or_default();
        assert!(late < Duration::from_millis(100), "stamped {late:?} late");
        assert!(events[1].time >= stopped + Duration::from_millis(250));
    }

    #[test]
    fn a_shadow_writ_captures_its_own_report_and_nothing_else() {
        let mut writ = hospital();
        writ.held = vec![Scope::parse("read:analytics:hospital").unwrap()];
        writ.shadow = true;
        let mut gate = Gate::new(writ, 64);
        for call in [
            HostCall::ReportsCreate,
            HostCall::ReportAppend,
            HostCall::ReportCommit,
        ] {
            gate.check(call, &scope("write:reports:hospital")).unwrap();
        }
        for (call, required) in [
            (HostCall::TablesCreate, "write:reports:hospital"),
            (HostCall::ReportsCreate, "write:reports:bank"),
            (HostCall::DatasetsOpen, "read:analytics:bank"),
        ] {
            let denied = gate.check(call, &scope(required)).unwrap_err();
            assert_eq!(denied.decision, Decision::Blocked, "{required}");
        }
        let decisions: Vec<_> = gate.events().iter().map(|e| e.decision.as_str()).collect();
        assert_eq!(
            decisions,
            [
                "SHADOWED", "SHADOWED", "SHADOWED", "BLOCKED", "BLOCKED", "BLOCKED"
            ]
        );
    }

    #[test]
    fn empty_writ_allows_nothing() {
        let mut gate = Gate::new(Writ::default(), 64);
        assert!(
            gate.check(HostCall::DatasetsOpen, &scope("read:analytics:hospital"))
                .is_err()
        );
    }

    #[test]
    fn revoked_writ_denies_even_covered_scopes() {
        let writ = hospital();
        let flag = writ.revoked.clone();
        let mut gate = Gate::new(writ, 64);
        flag.trigger();
        let denied = gate
            .check(HostCall::ReportCommit, &scope("write:reports:hospital"))
            .unwrap_err();
        assert!(denied.revoked());
        assert_eq!(gate.events()[0].decision, Decision::Revoked);
    }

    #[test]
    fn a_denial_shows_guest_chosen_names_escaped() {
        let mut gate = Gate::new(hospital(), 64);
        let denied = gate
            .check(
                HostCall::DatasetsOpen,
                &scope("read:analytics:x\n[ALLOWED]\x1b"),
            )
            .unwrap_err();
        assert!(!denied.to_string().contains('\n'));
    }
}

//! What a pipeline run reports, tenant by tenant: printed by the CLI, or serialized with `--json`.
//!
//! Decisions and calls are the gate's own types, and guest-written text is [`GuestText`], so
//! nothing downstream re-derives a verdict from strings or prints a guest's bytes raw.

use serde::{Deserialize, Serialize};
use sluice_sandbox::{Decision, Figure, GateEvent, GateOverflow, GuestText, HostCall};

pub use sluice_data::outputs::PublishedTable;
use sluice_storage::Location;

/// What part of a tenant's night failed it.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum FailureKind {
    /// Its plugin could not be loaded: missing, another digest, not a component, refused imports.
    Plugin,
    /// Its agent: refused or invalid at creation, or cut off mid-run (revoked, expired, the
    /// broker unreachable), or no longer valid at commit.
    Agent,
    /// Its transform failed: an error of its own, a limit, the gate, a fault.
    Run,
    /// Its outputs could not be published; nothing was.
    Publish,
    /// Storage failed part way through publishing: what was published is listed.
    Storage,
    /// It never ran: the night was interrupted first.
    NotRun,
}

/// Why a tenant failed: a kind to act on and one line to read. `--json` shows it as
/// `{"kind": "run", "message": "..."}`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct TenantError {
    pub kind: FailureKind,
    pub message: String,
}

impl TenantError {
    pub fn new(kind: FailureKind, message: impl Into<String>) -> TenantError {
        TenantError {
            kind,
            message: message.into(),
        }
    }
}

impl std::fmt::Display for TenantError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

/// One kind of gate decision as reported.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct GateLine {
    pub call: HostCall,
    pub required: String,
    pub decision: Decision,
    pub count: u64,
}

impl GateLine {
    pub fn from_events(events: &[GateEvent]) -> Vec<GateLine> {
        events
            .iter()
            .map(|e| GateLine {
                call: e.call,
                required: e.required.as_str().to_string(),
                decision: e.decision,
                count: e.count,
            })
            .collect()
    }
}

/// One budgeted quantity of a run: what it used of what it was allowed, in the limit's unit
/// before scaling (milliseconds, bytes, rows, calls).
#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Gauge {
    pub used: u64,
    pub limit: u64,
}

impl Gauge {
    /// How full it is, 0 to 1 (a limit of 0 is full at once).
    pub fn fraction(&self) -> f64 {
        if self.limit == 0 {
            return if self.used == 0 { 0.0 } else { 1.0 };
        }
        (self.used as f64 / self.limit as f64).min(1.0)
    }
}

/// How much of its budget a tenant's run used, limit by limit: what an operator watches to see
/// a tenant outgrowing its limits before it fails.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct BudgetUse {
    pub wall_time_ms: Gauge,
    /// Linear memory or decoded data held, whichever peaked higher, in bytes.
    pub memory_bytes: Gauge,
    pub rows_read: Gauge,
    pub bytes_read: Gauge,
    pub host_calls: Gauge,
    pub report_bytes: Gauge,
}

impl BudgetUse {
    pub fn of(
        usage: &sluice_sandbox::Usage,
        elapsed: std::time::Duration,
        budget: &sluice_sandbox::Budget,
    ) -> BudgetUse {
        let gauge = |used, limit| Gauge { used, limit };
        BudgetUse {
            wall_time_ms: gauge(
                elapsed.as_millis() as u64,
                budget.wall_time.as_millis() as u64,
            ),
            memory_bytes: gauge(usage.memory_peak, budget.memory_bytes),
            rows_read: gauge(usage.rows_read, budget.rows_read),
            bytes_read: gauge(usage.bytes_read, budget.bytes_read),
            host_calls: gauge(usage.host_calls, budget.host_calls),
            report_bytes: gauge(usage.report_bytes, budget.report_bytes),
        }
    }

    /// Each gauge with its limit's name (`wall-time-ms`, as errors and flags say it).
    pub fn gauges(&self) -> [(sluice_sandbox::Limit, Gauge); 6] {
        use sluice_sandbox::Limit;
        [
            (Limit::WallTime, self.wall_time_ms),
            (Limit::Memory, self.memory_bytes),
            (Limit::RowsRead, self.rows_read),
            (Limit::BytesRead, self.bytes_read),
            (Limit::HostCalls, self.host_calls),
            (Limit::ReportBytes, self.report_bytes),
        ]
    }

    /// The fullest gauge: how close the run came to any of its limits.
    pub fn fullest(&self) -> (sluice_sandbox::Limit, f64) {
        self.gauges()
            .into_iter()
            .map(|(limit, g)| (limit, g.fraction()))
            .fold((sluice_sandbox::Limit::WallTime, 0.0), |best, g| {
                if g.1 > best.1 { g } else { best }
            })
    }
}

/// How a tenant's agent ended.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum AgentEnd {
    /// Released at the broker by the pipeline.
    Released,
    /// The broker revoked it during the run (or someone else released it).
    Revoked,
    /// Its lifetime ran out before the pipeline released it.
    Expired,
    /// Release failed (broker unreachable): it lives until it expires.
    NotReleased(String),
}

/// How a tenant's plugin was loaded.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct PluginLoad {
    /// `rust`, `python` or `js`.
    pub language: &'static str,
    /// `cached` (compiled code from the plugin cache), `compiled`, or `recompiled` (a cache
    /// entry was unusable).
    pub origin: &'static str,
    /// Why the cache could not be used, if it could not (an unusable entry, a failed write).
    pub cache_note: Option<String>,
    /// Compiling (or loading compiled code) and linking, in milliseconds.
    pub load_ms: u64,
    /// The plugin as configured: a file or an `oci://` reference.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reference: Option<String>,
    /// What ran: a registry plugin's manifest digest, a file's `sha256:<hex>`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
    /// The fingerprint of the key whose signature was verified.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signer: Option<String>,
}

impl PluginLoad {
    pub fn new(language: &'static str, transform: &sluice_sandbox::Transform) -> PluginLoad {
        use sluice_sandbox::CodeOrigin;
        let (origin, cache_note) = match transform.origin() {
            CodeOrigin::Cached => ("cached", None),
            CodeOrigin::Uncached => ("compiled", None),
            CodeOrigin::Compiled { stored } => {
                ("compiled", stored.as_ref().err().map(|e| e.to_string()))
            }
            CodeOrigin::Recompiled { reason, stored } => (
                "recompiled",
                Some(match stored {
                    Ok(()) => format!("cache entry unusable: {reason}"),
                    Err(e) => format!("cache entry unusable: {reason}; {e}"),
                }),
            ),
        };
        PluginLoad {
            language,
            origin,
            cache_note,
            load_ms: transform.load_time().as_millis() as u64,
            reference: None,
            digest: None,
            signer: None,
        }
    }
}

/// One figure that differs between the current run and the candidate's.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct FigureChange {
    pub figure: String,
    /// `None`: the run did not report this figure.
    pub current: Option<String>,
    pub candidate: Option<String>,
}

/// The candidate's run.
#[derive(Clone, Debug, Serialize)]
pub struct ShadowResult {
    pub reference: String,
    pub task_id: String,
    pub plugin: Option<PluginLoad>,
    pub agent_id: Option<String>,
    /// The scopes its agent held: the read scope only.
    pub scope: Vec<String>,
    pub figures: Vec<Figure>,
    /// Figures that differ from the current run's, current order first.
    pub changed: Vec<FigureChange>,
    pub gate: Vec<GateLine>,
    /// `candidate.json`, once written.
    pub report: Option<Location>,
    pub agent_end: Option<AgentEnd>,
    pub error: Option<TenantError>,
}

/// One tenant's night.
#[derive(Clone, Debug, Serialize)]
pub struct TenantResult {
    pub id: String,
    pub name: String,
    pub data_type: String,
    pub task_id: String,
    /// The agent's SPIFFE ID, once the broker issued one.
    pub agent_id: Option<String>,
    /// The scopes the broker issued (what the gate enforced).
    pub scope: Vec<String>,
    pub expires_in: Option<u64>,
    /// How long the broker took to create its agent, in µs.
    pub agent_create_us: Option<u64>,
    /// How its plugin was loaded, once it was.
    pub plugin: Option<PluginLoad>,
    pub rows_read: u64,
    pub host_calls: u64,
    /// What its run used of its budget, once it ran.
    pub budget: Option<BudgetUse>,
    pub figures: Vec<Figure>,
    pub gate: Vec<GateLine>,
    /// Decisions past the itemized kinds, counted.
    pub gate_overflow: GateOverflow,
    /// What the guest logged, as it wrote it (shown escaped).
    pub log: Vec<GuestText>,
    /// Where the report was committed.
    pub report: Option<Location>,
    /// Output tables published, in commit order.
    pub tables: Vec<PublishedTable>,
    pub renewals: u32,
    /// How the agent ended, once it existed.
    pub agent_end: Option<AgentEnd>,
    /// Why the tenant failed.
    pub error: Option<TenantError>,
    /// Its candidate's shadow run, if it has a candidate.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub candidate: Option<ShadowResult>,
    /// When its turn began, in milliseconds since the Unix epoch.
    pub started_at_ms: u64,
    pub elapsed_ms: u64,
}

impl TenantResult {
    /// A tenant that has not run (yet).
    pub(crate) fn new(id: &str, name: &str, data_type: &str) -> TenantResult {
        TenantResult {
            id: id.to_string(),
            name: name.to_string(),
            data_type: data_type.to_string(),
            task_id: String::new(),
            agent_id: None,
            scope: Vec::new(),
            expires_in: None,
            agent_create_us: None,
            plugin: None,
            rows_read: 0,
            host_calls: 0,
            budget: None,
            figures: Vec::new(),
            gate: Vec::new(),
            gate_overflow: GateOverflow::default(),
            log: Vec::new(),
            report: None,
            tables: Vec::new(),
            renewals: 0,
            agent_end: None,
            error: None,
            candidate: None,
            started_at_ms: crate::record::unix_ms(),
            elapsed_ms: 0,
        }
    }

    pub fn ok(&self) -> bool {
        self.error.is_none()
    }

    /// Why the tenant failed, in one line.
    pub fn error_message(&self) -> Option<&str> {
        self.error.as_ref().map(|e| e.message.as_str())
    }

    /// Whether the pipeline released the agent at the broker.
    pub fn released(&self) -> bool {
        self.agent_end == Some(AgentEnd::Released)
    }

    /// Whether the agent is accounted for: released, or dead at the broker already.
    pub fn agent_settled(&self) -> bool {
        self.agent_id.is_none() || !matches!(self.agent_end, None | Some(AgentEnd::NotReleased(_)))
    }
}

/// One cross-tenant check of the isolation proof.
#[derive(Clone, Debug, Serialize)]
pub struct IsolationCheck {
    /// e.g. `hospital agent cannot read bank data`.
    pub claim: String,
    pub required: String,
    /// What the gate decided; `None` if the probe never asked.
    pub decision: Option<Decision>,
    /// Whether this access must be blocked (cross-tenant) or allowed (own data).
    pub must_block: bool,
}

impl IsolationCheck {
    pub fn holds(&self) -> bool {
        if self.must_block {
            self.decision == Some(Decision::Blocked)
        } else {
            self.decision == Some(Decision::Allowed)
        }
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct IsolationResult {
    pub tenant: String,
    pub agent_id: Option<String>,
    pub held: Vec<String>,
    pub checks: Vec<IsolationCheck>,
    /// A cross-tenant access was allowed.
    pub violated: bool,
    pub agent_end: Option<AgentEnd>,
    /// The proof could not be run, or its own-data check failed.
    pub error: Option<String>,
}

impl IsolationResult {
    pub fn released(&self) -> bool {
        self.agent_end == Some(AgentEnd::Released)
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct PipelineReport {
    pub broker: String,
    /// Where the audit trail ends after this run: keep it to prove later that nothing was cut.
    pub audit: sluice_audit::AuditHead,
    /// Why the audit trail could not be written completely, if it could not.
    pub audit_error: Option<String>,
    pub tenants: Vec<TenantResult>,
    pub isolation: Option<IsolationResult>,
    pub failed: usize,
    /// The run was stopped (Ctrl-C, SIGTERM) before every tenant finished.
    pub interrupted: bool,
    /// When the night began, in milliseconds since the Unix epoch.
    pub started_at_ms: u64,
    pub elapsed_ms: u64,
}

impl PipelineReport {
    pub fn isolation_violated(&self) -> bool {
        self.isolation.as_ref().is_some_and(|i| i.violated)
    }
}

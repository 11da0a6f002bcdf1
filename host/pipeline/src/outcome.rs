//! What a pipeline run reports, tenant by tenant: printed by the CLI, or serialized with `--json`.

use std::path::PathBuf;

use serde::Serialize;
use sluice_sandbox::GateEvent;

/// A gate event as reported.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct GateLine {
    pub call: String,
    pub required: String,
    pub decision: String,
    pub count: u64,
}

impl GateLine {
    pub fn from_events(events: &[GateEvent]) -> Vec<GateLine> {
        events
            .iter()
            .map(|e| GateLine {
                call: e.call.name().to_string(),
                required: e.required.as_str().to_string(),
                decision: e.decision.as_str().to_string(),
                count: e.count,
            })
            .collect()
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct Figure {
    pub name: String,
    pub value: String,
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
    pub rows_read: u64,
    pub host_calls: u64,
    pub figures: Vec<Figure>,
    pub gate: Vec<GateLine>,
    /// Where the report was committed.
    pub report: Option<PathBuf>,
    pub renewals: u32,
    /// Whether the agent was released (true on every path once it existed).
    pub released: bool,
    /// Why the tenant failed, in one line.
    pub error: Option<String>,
    pub elapsed_ms: u64,
}

impl TenantResult {
    pub fn ok(&self) -> bool {
        self.error.is_none()
    }
}

/// One cross-tenant check of the isolation proof.
#[derive(Clone, Debug, Serialize)]
pub struct IsolationCheck {
    /// e.g. `hospital agent cannot read bank data`.
    pub claim: String,
    pub required: String,
    /// `BLOCKED`, `ALLOWED`, or `NOT ATTEMPTED` if the probe never asked.
    pub decision: String,
    /// Whether this access must be blocked (cross-tenant) or allowed (own data).
    pub must_block: bool,
}

impl IsolationCheck {
    pub fn holds(&self) -> bool {
        if self.must_block {
            self.decision == "BLOCKED"
        } else {
            self.decision == "ALLOWED"
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
    pub released: bool,
    /// The proof could not be run, or its own-data check failed.
    pub error: Option<String>,
}

#[derive(Clone, Debug, Serialize)]
pub struct PipelineReport {
    pub broker: String,
    /// Where the audit trail ends after this run: keep it to prove later that nothing was cut.
    pub audit: crate::audit::AuditHead,
    pub tenants: Vec<TenantResult>,
    pub isolation: Option<IsolationResult>,
    pub failed: usize,
    pub elapsed_ms: u64,
}

impl PipelineReport {
    pub fn isolation_violated(&self) -> bool {
        self.isolation.as_ref().is_some_and(|i| i.violated)
    }
}

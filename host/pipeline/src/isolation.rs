//! The isolation proof: the shipped probe runs under a fresh agent of the first tenant and tries to
//! read the second tenant's data and write the third tenant's report. The verdict comes from the
//! gate's recorded decisions, not from anything the probe says.

use std::sync::Arc;

use sluice_sandbox::{Decision, GateEvent, HostCall};

use crate::nightly::{Pipeline, unix_now};
use crate::outcome::{IsolationCheck, IsolationResult};
use crate::session::TenantSession;

/// What the gate decided for `calls` on `required`, if the probe asked: a denial wins over an
/// allowance, so a check cannot pass on one decision while another went the other way.
fn decision(events: &[GateEvent], calls: &[HostCall], required: &str) -> Option<Decision> {
    let matching = events
        .iter()
        .filter(|e| calls.contains(&e.call) && e.required.as_str() == required);
    matching
        .map(|e| e.decision)
        .reduce(|a, b| if a == Decision::Allowed { b } else { a })
}

impl Pipeline {
    pub async fn verify_isolation(self: &Arc<Self>) -> IsolationResult {
        let tenants = &self.config.tenants;
        let owner = &tenants[0];
        let mut result = IsolationResult {
            tenant: owner.id.clone(),
            agent_id: None,
            held: Vec::new(),
            checks: Vec::new(),
            violated: false,
            agent_end: None,
            error: None,
        };
        let Some(probe) = &self.config.isolation else {
            result.error = Some("no [isolation] probe configured: isolation not verified".into());
            return result;
        };
        if tenants.len() < 2 {
            result.error = Some("isolation needs at least two tenants".into());
            return result;
        }
        let reader = &tenants[1];
        let writer = tenants.get(2).unwrap_or(reader);
        let resource = reader.read_scope.resource().to_string();
        let target_read = format!("read:{resource}:{}", reader.id);
        let target_write = format!("write:reports:{}", writer.id);
        let own_read = format!("read:{}:{}", owner.read_scope.resource(), owner.id);

        let transform = match self
            .load_plugin(&probe.probe, &probe.sha256, probe.language)
            .await
        {
            Ok(t) => t,
            Err(e) => {
                result.error = Some(e);
                return result;
            }
        };
        let task_id = format!("isolation-{}-{}", owner.id, unix_now());
        let scopes = [&owner.read_scope, &owner.write_scope];
        let open =
            TenantSession::open(self, &owner.id, &task_id, scopes, Some("isolation probe")).await;
        let mut session = match open {
            Ok(session) => session,
            Err((session, e)) => {
                result.error = Some(format!("the probe's agent: {e}"));
                if let Some(session) = session {
                    result.agent_id = Some(session.agent_id().to_string());
                    result.agent_end = Some(session.close().await);
                }
                return result;
            }
        };
        result.agent_id = Some(session.agent_id().to_string());
        result.held = session.issued();
        let dataset = reader
            .datasets
            .first()
            .map_or("data".to_string(), |d| d.name.clone());
        let params = vec![
            ("read-tenant".to_string(), reader.id.clone()),
            ("resource".to_string(), resource),
            ("read-dataset".to_string(), dataset),
            ("write-tenant".to_string(), writer.id.clone()),
        ];
        let outcome = session
            .run(&transform, self.config.budget.clone(), params)
            .await;
        let ev = &outcome.events;
        result.checks = vec![
            IsolationCheck {
                claim: format!("{} agent cannot read {} data", owner.id, reader.id),
                decision: decision(
                    ev,
                    &[HostCall::DatasetsOpen, HostCall::DatasetNextBatch],
                    &target_read,
                ),
                required: target_read,
                must_block: true,
            },
            IsolationCheck {
                claim: format!("{} agent cannot write {} reports", owner.id, writer.id),
                decision: decision(
                    ev,
                    &[
                        HostCall::ReportsCreate,
                        HostCall::ReportAppend,
                        HostCall::ReportCommit,
                    ],
                    &target_write,
                ),
                required: target_write,
                must_block: true,
            },
            IsolationCheck {
                claim: format!("{} agent can read its own data", owner.id),
                decision: decision(
                    ev,
                    &[HostCall::DatasetsOpen, HostCall::DatasetsList],
                    &own_read,
                ),
                required: own_read,
                must_block: false,
            },
        ];
        // Any cross-tenant decision that was not a denial is a violation, whatever the probe
        // reported back.
        result.violated = ev
            .iter()
            .any(|e| e.decision == Decision::Allowed && e.required.identifier() != owner.id);
        if outcome.overflow.total() > 0 {
            result.error = Some(
                "the probe made more kinds of calls than the audit itemizes: isolation not verified"
                    .into(),
            );
        } else if !result.violated && result.checks.iter().any(|c| !c.holds()) {
            result.error = Some(match &outcome.result {
                Err(f) => format!("the probe failed: {f}"),
                Ok(_) => "the probe could not complete every check".into(),
            });
        }
        result.agent_end = Some(session.close().await);
        result
    }
}

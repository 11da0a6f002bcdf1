//! The isolation proof: the shipped probe runs under a fresh agent of the first tenant and tries to
//! read the second tenant's data and write the third tenant's report. The verdict comes from the
//! gate's recorded decisions, not from anything the probe says.

use std::sync::Arc;

use agentwrit::{AgentRequest, Scope};
use serde_json::json;
use sluice_sandbox::{AuditSink, Decision, GateEvent, HostCall, Writ};

use crate::nightly::{Pipeline, unix_now};
use crate::outcome::{IsolationCheck, IsolationResult};

/// The decision the gate recorded for `call` on `required`, if the probe asked.
fn decision(events: &[GateEvent], calls: &[HostCall], required: &str) -> String {
    events
        .iter()
        .find(|e| calls.contains(&e.call) && e.required.as_str() == required)
        .map_or("NOT ATTEMPTED".to_string(), |e| {
            e.decision.as_str().to_string()
        })
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
            released: false,
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
        let read_scope = Scope::parse(&reader.read_scope).ok();
        let resource = read_scope
            .as_ref()
            .map_or("analytics", |s| s.resource())
            .to_string();
        let own_resource = Scope::parse(&owner.read_scope)
            .map(|s| s.resource().to_string())
            .unwrap_or_else(|_| "analytics".into());
        let target_read = format!("read:{resource}:{}", reader.id);
        let target_write = format!("write:reports:{}", writer.id);
        let own_read = format!("read:{own_resource}:{}", owner.id);

        let transform = match self.load_plugin(&probe.probe, &probe.sha256).await {
            Ok(t) => t,
            Err(e) => {
                result.error = Some(e);
                return result;
            }
        };
        let task_id = format!("isolation-{}-{}", owner.id, unix_now());
        let request = AgentRequest::new(
            &self.config.orch_id,
            &task_id,
            [owner.read_scope.clone(), owner.write_scope.clone()],
        )
        .max_ttl(self.config.agent_ttl.as_secs());
        let mut agent = match self.broker.app.create_agent(request).await {
            Ok(a) => a,
            Err(e) => {
                result.error = Some(format!("creating the probe's agent failed: {e}"));
                return result;
            }
        };
        result.agent_id = Some(agent.agent_id().to_string());
        self.audit_event(
            "agent_created",
            &owner.id,
            agent.agent_id(),
            &task_id,
            json!({ "scope": agent.scope(), "purpose": "isolation probe" }),
        );

        let held = match self
            .broker
            .app
            .validate(agent.access_token().secret())
            .await
        {
            Ok(r) if r.valid => r.claims.map(|c| c.scope).unwrap_or_default(),
            _ => Vec::new(),
        };
        result.held = held.clone();
        let writ = Writ::new(
            &owner.id,
            agent.agent_id(),
            &task_id,
            held.iter().filter_map(|s| Scope::parse(s).ok()).collect(),
        );
        let dataset = reader
            .datasets
            .first()
            .map_or("data".to_string(), |d| d.name.clone());
        let params = vec![
            ("read-tenant".to_string(), reader.id.clone()),
            ("resource".to_string(), resource.clone()),
            ("read-dataset".to_string(), dataset),
            ("write-tenant".to_string(), writer.id.clone()),
        ];
        let run = self.run_sandboxed(transform, writ, params).await;
        match run {
            Ok(outcome) => {
                if let Err(e) = self
                    .audit
                    .record_gate_events(&outcome.writ, &outcome.events)
                {
                    eprintln!("sluice: audit write failed: {e:#}");
                }
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
                // Any cross-tenant decision that was not a denial is a violation, whatever the
                // probe reported back.
                result.violated = ev.iter().any(|e| {
                    e.decision == Decision::Allowed && (e.required.identifier() != owner.id)
                });
                if !result.violated && result.checks.iter().any(|c| !c.holds()) {
                    result.error = Some(match outcome.result {
                        Err(f) => format!("the probe failed: {f}"),
                        Ok(_) => "the probe could not complete every check".into(),
                    });
                }
            }
            Err(e) => result.error = Some(format!("the probe's sandbox thread failed: {e}")),
        }
        match self.release(&mut agent, &owner.id, &task_id).await {
            Ok(()) => result.released = true,
            Err(e) => {
                result.error.get_or_insert(e);
            }
        }
        result
    }
}

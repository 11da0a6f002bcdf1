//! The isolation proof: under a fresh agent of the first tenant, the gate is asked whether it may
//! read the second tenant's data, write the third tenant's report and read its own data; then the
//! shipped probe makes those calls through the sandbox. The verdict is the gate's: its answers
//! to those three questions, asked before the probe runs and before any data is read, and every
//! decision the probe's calls drew (one cross-tenant allowance anywhere is a violation). Nothing
//! the probe says counts.
//!
//! The probe sees the first tenant's dataset names but none of its bytes (an empty dataset
//! behind each name): it tests the gate, not the data, so nothing in a tenant's data (a file
//! that takes a minute to read, or fails to) can delay the verdict or leave it empty.

use std::sync::Arc;

use agentwrit::{Scope, ScopeError};
use sluice_sandbox::{
    AuditSink as _, DatasetCursor, DatasetRef, DatasetSource, Decision, Gate, GateEvent, HostCall,
    ReadContext, RecordBatch, Schema, SchemaRef, SourceError,
};

use crate::nightly::{Pipeline, unix_now};
use crate::outcome::{IsolationCheck, IsolationResult};
use crate::session::TenantSession;

/// What the probe may find: the owner's configured dataset names, each empty; nothing else.
struct NoBytes {
    owner: String,
    names: Vec<(String, String)>,
}

impl DatasetSource for NoBytes {
    fn list(&self, tenant: &str, resource: &str) -> Result<Vec<String>, SourceError> {
        Ok(self
            .names
            .iter()
            .filter(|(r, _)| tenant == self.owner && r == resource)
            .map(|(_, n)| n.clone())
            .collect())
    }

    fn open(
        &self,
        _dataset: &DatasetRef,
        _columns: Option<&[String]>,
        _cx: &ReadContext,
    ) -> Result<Box<dyn DatasetCursor>, SourceError> {
        Ok(Box::new(Empty(Arc::new(Schema::empty()))))
    }
}

struct Empty(SchemaRef);

impl DatasetCursor for Empty {
    fn schema(&self) -> &SchemaRef {
        &self.0
    }

    fn next_batch(&mut self, _max_rows: usize) -> Result<Option<RecordBatch>, SourceError> {
        Ok(None)
    }
}

/// What the gate decided for `calls` on `required`, if the probe asked: a denial wins over an
/// allowance, so a check cannot pass on one decision while another went the other way.
fn decision(events: &[GateEvent], calls: &[HostCall], required: &Scope) -> Option<Decision> {
    let matching = events
        .iter()
        .filter(|e| calls.contains(&e.call) && *e.required == *required);
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
        let checked = (|| {
            Ok::<_, ScopeError>([
                Scope::new("read", &resource, &reader.id)?,
                Scope::new("write", "reports", &writer.id)?,
                Scope::new("read", owner.read_scope.resource(), &owner.id)?,
            ])
        })();
        let [target_read, target_write, own_read] = match checked {
            Ok(scopes) => scopes,
            Err(e) => {
                result.error = Some(format!("the isolation checks' scopes: {e}"));
                return result;
            }
        };

        let transform = match self
            .load_file_plugin(&probe.probe, &probe.sha256, probe.language)
            .await
        {
            Ok(t) => t.transform,
            Err(e) => {
                result.error = Some(e);
                return result;
            }
        };
        let task_id = format!("isolation-{}-{}", owner.id, unix_now());
        let scopes = [&owner.read_scope, &owner.write_scope];
        let open = TenantSession::open(
            &self.agents,
            &owner.id,
            &task_id,
            &scopes,
            Some("isolation probe"),
        )
        .await;
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
        // The gate's answers, before any call of the probe's and before any data is read.
        let writ = session.writ();
        let mut gate = Gate::new(writ.clone(), 8);
        let asked = [
            (HostCall::DatasetsOpen, &target_read),
            (HostCall::ReportsCreate, &target_write),
            (HostCall::DatasetsOpen, &own_read),
        ];
        for (call, scope) in asked {
            let _ = gate.check(call, &Arc::new(scope.clone()));
        }
        let (_, asked_events, asked_overflow) = gate.into_parts();
        let _ = self
            .audit
            .record_gate_events(&writ, &asked_events, &asked_overflow);
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
        let no_bytes = NoBytes {
            owner: owner.id.clone(),
            names: owner
                .datasets
                .iter()
                .map(|d| (d.resource.clone(), d.name.clone()))
                .collect(),
        };
        let outcome = session
            .run(
                &self.runs,
                &transform,
                self.config.budget.clone(),
                params,
                Arc::new(no_bytes),
            )
            .await;
        let probed = &outcome.events;
        // The gate's answers first: a check is decided whatever becomes of the probe.
        let ev: Vec<GateEvent> = asked_events.iter().chain(probed).cloned().collect();
        let ev = &ev;
        result.checks = vec![
            IsolationCheck {
                claim: format!("{} agent cannot read {} data", owner.id, reader.id),
                decision: decision(
                    ev,
                    &[HostCall::DatasetsOpen, HostCall::DatasetNextBatch],
                    &target_read,
                ),
                required: target_read.to_string(),
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
                required: target_write.to_string(),
                must_block: true,
            },
            IsolationCheck {
                claim: format!("{} agent can read its own data", owner.id),
                decision: decision(
                    ev,
                    &[HostCall::DatasetsOpen, HostCall::DatasetsList],
                    &own_read,
                ),
                required: own_read.to_string(),
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

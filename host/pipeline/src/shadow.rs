//! Shadow runs: a tenant's candidate plugin runs after its current one, on the same data and
//! budget, under an agent of its own that holds only the tenant's read scope, so nothing it
//! does can publish (a write is DENIED at the gate). The host writes what it computed as
//! `candidate.json` beside the tenant's reports, never as `latest.json`, with the exact
//! per-figure difference from the current run.

use std::sync::Arc;

use sluice_audit::{Lifecycle, Subject};
use sluice_sandbox::Figure;

use crate::config::TenantConfig;
use crate::lock::Slot;
use crate::nightly::{Pipeline, unix_now};
use crate::outcome::{FailureKind, GateLine, TenantError};
pub use crate::outcome::{FigureChange, ShadowResult};
use crate::session::TenantSession;

/// The figures that differ between `current` and `candidate`, exactly (as the guests wrote
/// them): the current run's order, then figures only the candidate reported.
pub fn figure_changes(current: &[Figure], candidate: &[Figure]) -> Vec<FigureChange> {
    let find = |figures: &[Figure], name: &str| {
        figures
            .iter()
            .find(|f| f.name.as_raw() == name)
            .map(|f| f.value.as_raw().to_string())
    };
    let mut changes = Vec::new();
    for f in current {
        let theirs = find(candidate, f.name.as_raw());
        if theirs.as_deref() != Some(f.value.as_raw()) {
            changes.push(FigureChange {
                figure: f.name.as_raw().to_string(),
                current: Some(f.value.as_raw().to_string()),
                candidate: theirs,
            });
        }
    }
    for f in candidate {
        if find(current, f.name.as_raw()).is_none() {
            changes.push(FigureChange {
                figure: f.name.as_raw().to_string(),
                current: None,
                candidate: Some(f.value.as_raw().to_string()),
            });
        }
    }
    changes
}

impl Pipeline {
    /// Runs `tenant`'s candidate beside `current`'s figures.
    pub(crate) async fn shadow(
        self: &Arc<Self>,
        tenant: &TenantConfig,
        current: &[Figure],
    ) -> ShadowResult {
        let mut result = ShadowResult {
            reference: tenant
                .candidate
                .as_ref()
                .map(ToString::to_string)
                .unwrap_or_default(),
            task_id: format!("shadow-{}-{}", tenant.id, unix_now()),
            plugin: None,
            agent_id: None,
            scope: Vec::new(),
            figures: Vec::new(),
            changed: Vec::new(),
            gate: Vec::new(),
            report: None,
            agent_end: None,
            error: None,
        };
        let subject = Subject {
            tenant: tenant.id.clone(),
            agent_id: String::new(),
            task_id: result.task_id.clone(),
        };
        if let Err(error) = self
            .shadow_run(tenant, current, &mut result, &subject)
            .await
        {
            self.audit.record(
                &Subject {
                    agent_id: result.agent_id.clone().unwrap_or_default(),
                    ..subject
                },
                Lifecycle::TenantFailed {
                    detail: format!("candidate: {}", error.message),
                },
            );
            result.error = Some(error);
        }
        result
    }

    async fn shadow_run(
        self: &Arc<Self>,
        tenant: &TenantConfig,
        current: &[Figure],
        result: &mut ShadowResult,
        subject: &Subject,
    ) -> Result<(), TenantError> {
        let loaded = self
            .load_plugin(tenant, Slot::Candidate, subject)
            .await
            .map_err(|e| TenantError::new(FailureKind::Plugin, e))?;
        result.plugin = Some(loaded.load());
        // The read scope only: whatever the candidate tries to write is denied at the gate.
        let opened = TenantSession::open(
            &self.agents,
            &tenant.id,
            &result.task_id,
            &[&tenant.read_scope],
            Some("candidate (shadow run)"),
        )
        .await;
        let mut session = match opened {
            Ok(session) => session.into_shadow(),
            Err((session, e)) => {
                if let Some(session) = session {
                    result.agent_id = Some(session.agent_id().to_string());
                    result.agent_end = Some(session.close().await);
                }
                return Err(e.into());
            }
        };
        result.agent_id = Some(session.agent_id().to_string());
        result.scope = session.issued();
        let login = match session
            .login_for(tenant.postgres_role(), tenant.budget.open_datasets)
            .await
        {
            Ok(login) => login,
            Err(e) => {
                result.agent_end = Some(session.close().await);
                return Err(e.into());
            }
        };
        let datasets = Arc::new(self.source.for_tenant(login));
        let outcome = session
            .run(
                &self.runs,
                &loaded.transform,
                tenant.budget.clone(),
                tenant.params.clone(),
                datasets,
            )
            .await;
        result.gate = GateLine::from_events(&outcome.events);
        let ran = match outcome.result {
            Ok(summary) => Ok(summary.figures),
            Err(failure) => Err(session
                .invalidated()
                .unwrap_or(crate::session::SessionError::Run(failure))),
        };
        result.agent_end = Some(session.close().await);
        result.figures = ran.map_err(TenantError::from)?;
        result.changed = figure_changes(current, &result.figures);
        // The candidate's own report, as it wrote it (bounded by its report budget); a
        // candidate that wrote none is represented by its figures.
        let own = outcome.staged.into_iter().find(|r| r.tenant == tenant.id);
        let bytes = match own {
            Some(staged) => staged.bytes,
            None => serde_json::to_vec(&serde_json::json!({
                "tenant": tenant.id,
                "figures": result
                    .figures
                    .iter()
                    .map(|f| (f.name.as_raw().to_string(), serde_json::Value::from(f.value.as_raw())))
                    .collect::<serde_json::Map<_, _>>(),
            }))
            .unwrap_or_default(),
        };
        let (reports, id) = (self.reports.clone(), tenant.id.clone());
        let written = tokio::task::spawn_blocking(move || reports.publish_candidate(&id, bytes))
            .await
            .map_err(|e| anyhow::anyhow!("writing the candidate report: {e}"))
            .and_then(|r| r);
        match written {
            Ok(location) => result.report = Some(location),
            Err(e) => {
                return Err(TenantError::new(FailureKind::Publish, format!("{e:#}")));
            }
        }
        self.audit.record(
            &Subject {
                agent_id: result.agent_id.clone().unwrap_or_default(),
                ..subject.clone()
            },
            Lifecycle::CandidateCompared {
                reference: result.reference.clone(),
                digest: loaded.digest.clone(),
                figures: result.figures.len() as u64,
                changed: serde_json::to_value(&result.changed).unwrap_or_default(),
            },
        );
        Ok(())
    }
}

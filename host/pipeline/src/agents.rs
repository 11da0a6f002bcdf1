//! What a tenant's agent needs from the night, and nothing more: the broker's app, the agents'
//! lifetime, the audit trail, the agents still alive (what a second Ctrl-C releases) and the
//! PostgreSQL logins minted with them.
//! Sessions and their keepers hold this, not the whole [`Pipeline`](crate::nightly::Pipeline).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use agentwrit::{Agent, AgentWritApp};
use sluice_audit::{AuditLog, Lifecycle, Subject};
use tokio::sync::Mutex;

use crate::keeper::Liveness;
use crate::run_logins::RunLogins;

/// The night's agent side, shared by every session and keeper.
pub(crate) struct AgentContext {
    pub(crate) app: AgentWritApp,
    /// Whether the app's ceiling is Sluice's own configuration: it decides what an error tells
    /// the user to change.
    pub(crate) embedded: bool,
    pub(crate) orch_id: String,
    /// The lifetime every agent is asked for, and renewed at a third of.
    pub(crate) ttl: Duration,
    pub(crate) audit: Arc<AuditLog>,
    /// Agents created and not yet closed, by task id.
    live: Mutex<HashMap<String, Arc<Mutex<Agent>>>>,
    /// PostgreSQL logins minted per run, alive with their agents.
    pub(crate) logins: RunLogins,
    /// The night's liveness poller of running tenants' agents.
    pub(crate) liveness: Liveness,
}

impl AgentContext {
    pub(crate) fn new(
        app: AgentWritApp,
        embedded: bool,
        orch_id: String,
        ttl: Duration,
        audit: Arc<AuditLog>,
    ) -> AgentContext {
        AgentContext {
            app,
            embedded,
            orch_id,
            ttl,
            logins: RunLogins::new(Arc::clone(&audit)),
            audit,
            live: Mutex::new(HashMap::new()),
            liveness: Liveness::default(),
        }
    }

    /// Remembers a new agent until [`forget`](Self::forget).
    pub(crate) async fn track(&self, task_id: &str, agent: &Arc<Mutex<Agent>>) {
        let mut live = self.live.lock().await;
        live.insert(task_id.to_string(), Arc::clone(agent));
    }

    /// The agent of `task_id` is closed: a second interrupt has nothing to release for it.
    pub(crate) async fn forget(&self, task_id: &str) {
        self.live.lock().await.remove(task_id);
    }

    /// Best-effort release of every agent still alive, each given at most `within`, audited.
    /// Returns (released, alive), with the audit trail flushed.
    pub(crate) async fn release_live(&self, within: Duration) -> (usize, usize) {
        let agents: Vec<(String, Arc<Mutex<Agent>>)> = self
            .live
            .lock()
            .await
            .iter()
            .map(|(task, agent)| (task.clone(), Arc::clone(agent)))
            .collect();
        let alive = agents.len();
        // Their logins first: data access ends before the credentials that granted it.
        self.logins.drop_live(within).await;
        let mut releases = tokio::task::JoinSet::new();
        for (task_id, agent) in agents {
            releases.spawn(async move {
                let released = tokio::time::timeout(within, async {
                    let mut agent = agent.lock().await;
                    // Released by its session while this waited: counted, not audited twice.
                    let already = agent.is_released();
                    agent
                        .release()
                        .await
                        .map(|()| (agent.agent_id().to_string(), already))
                })
                .await;
                (task_id, released)
            });
        }
        let mut released = 0;
        while let Some(done) = releases.join_next().await {
            if let Ok((task_id, Ok(Ok((agent_id, already))))) = done {
                released += 1;
                if already {
                    continue;
                }
                let subject = Subject {
                    tenant: String::new(),
                    agent_id,
                    task_id,
                };
                self.audit.record(
                    &subject,
                    Lifecycle::AgentReleased {
                        detail: Some("on a second interrupt, before exiting at once"),
                    },
                );
            }
        }
        let _ = self.audit.flush();
        (released, alive)
    }
}

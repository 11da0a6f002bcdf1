//! Keeps a running tenant's agent honest: renewed when a third of its lifetime is left, and
//! checked with the broker often enough that a revocation stops the guest within 100 ms.
//!
//! AgentWrit has no revocation feed, so the keeper asks `validate` every [`LIVENESS_POLL`] while
//! the transform runs: one small request per running tenant, not one per batch. When the broker
//! says the agent is dead (revoked, expired) the writ's flag is set and the gate denies every
//! later data access. When the broker cannot be reached for [`UNCONFIRMED_AFTER`], the keeper
//! fails closed the same way: a revocation it cannot hear about must not go unnoticed.

use std::sync::Arc;

use std::time::{Duration, Instant};

use agentwrit::Agent;
use sluice_audit::{Lifecycle, Subject};
use sluice_sandbox::Interrupt;
use tokio::sync::{Mutex, Notify};

use crate::agents::AgentContext;
use crate::run_logins::SessionLogin;

/// How often a running tenant's agent is checked with the broker.
pub const LIVENESS_POLL: Duration = Duration::from_millis(50);
/// How long one liveness check may take before it counts as unanswered.
const CHECK_TIMEOUT: Duration = Duration::from_secs(1);
/// How long the agent may go unconfirmed (broker down or hanging) before data access stops.
pub const UNCONFIRMED_AFTER: Duration = Duration::from_secs(3);

/// Why the keeper stopped honouring an agent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Invalidation {
    /// The broker no longer honours an agent whose lifetime was not over: revoked (or released
    /// by someone else).
    Revoked,
    /// Its lifetime ran out.
    Expired,
    /// Renewal was refused.
    RenewalFailed(String),
    /// The broker could not be asked.
    Unconfirmed(String),
}

impl std::fmt::Display for Invalidation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Invalidation::Revoked => f.write_str("the broker revoked it"),
            Invalidation::Expired => f.write_str("it expired"),
            Invalidation::RenewalFailed(e) => write!(f, "its renewal failed ({e})"),
            Invalidation::Unconfirmed(e) => write!(
                f,
                "the broker could not confirm it for {} s ({e})",
                UNCONFIRMED_AFTER.as_secs()
            ),
        }
    }
}

/// What the keeper saw while the transform ran.
#[derive(Clone, Debug, Default)]
pub struct KeeperReport {
    pub renewals: u32,
    pub invalidated: Option<Invalidation>,
}

/// A keeper running beside one tenant's transform.
pub(crate) struct Keeper {
    stop: Arc<Notify>,
    task: tokio::task::JoinHandle<KeeperReport>,
}

impl Keeper {
    /// Starts keeping `agent`; `revoked` is the flag of the writ its gate enforces.
    pub(crate) fn start(
        agents: Arc<AgentContext>,
        agent: Arc<Mutex<Agent>>,
        login: Option<Arc<SessionLogin>>,
        revoked: Interrupt,
        subject: Subject,
        cancel: Interrupt,
    ) -> Keeper {
        let stop = Arc::new(Notify::new());
        let task = tokio::spawn(keep(
            agents,
            agent,
            login,
            revoked,
            subject,
            cancel,
            Arc::clone(&stop),
        ));
        Keeper { stop, task }
    }

    /// Stops the keeper and says what it saw.
    pub(crate) async fn stop(self) -> KeeperReport {
        self.stop.notify_one();
        self.task.await.unwrap_or_default()
    }
}

async fn keep(
    agents: Arc<AgentContext>,
    agent: Arc<Mutex<Agent>>,
    login: Option<Arc<SessionLogin>>,
    revoked: Interrupt,
    subject: Subject,
    cancel: Interrupt,
    stop: Arc<Notify>,
) -> KeeperReport {
    let (ttl, app) = (agents.ttl, &agents.app);
    let mut report = KeeperReport::default();
    let mut confirmed = Instant::now();
    // The gate stops the guest; the login's sessions are terminated right after, so a
    // session opened with the run's login (or a copy of it) ends with the agent.
    let invalidate = async |report: &mut KeeperReport, why: Invalidation| {
        revoked.trigger();
        agents.audit.record(
            &subject,
            Lifecycle::AgentInvalidated {
                detail: format!("data access stopped: {why}"),
            },
        );
        if let Some(login) = &login {
            login.cut(&agents.audit, &why.to_string()).await;
        }
        report.invalidated = Some(why);
    };
    loop {
        tokio::select! {
            () = tokio::time::sleep(LIVENESS_POLL) => {}
            () = stop.notified() => return report,
            // An interrupted night renews nothing: its guests are stopping.
            () = cancel.triggered() => return report,
        }
        let mut a = agent.lock().await;
        if a.remaining() < ttl / 3 {
            match tokio::time::timeout(CHECK_TIMEOUT, a.renew()).await {
                Ok(Ok(())) => {
                    report.renewals += 1;
                    confirmed = Instant::now();
                    agents.audit.record(
                        &subject,
                        Lifecycle::AgentRenewed {
                            expires_in: a.expires_in(),
                        },
                    );
                    let lifetime = a.remaining();
                    drop(a);
                    if let Some(login) = &login {
                        login.renew(&agents.audit, lifetime).await;
                    }
                    continue;
                }
                Ok(Err(e)) if !e.is_transport() => {
                    drop(a);
                    invalidate(&mut report, Invalidation::RenewalFailed(e.to_string())).await;
                    return report;
                }
                // Unreachable: the liveness check below decides how long that may last.
                Ok(Err(_)) | Err(_) => {}
            }
        }
        let token = a.access_token().clone();
        let expired = a.remaining().is_zero();
        drop(a);
        let unanswered = match tokio::time::timeout(CHECK_TIMEOUT, app.validate(&token)).await {
            Ok(Ok(r)) if r.is_valid() => {
                confirmed = Instant::now();
                continue;
            }
            Ok(Ok(_)) => {
                let why = if expired {
                    Invalidation::Expired
                } else {
                    Invalidation::Revoked
                };
                invalidate(&mut report, why).await;
                return report;
            }
            Ok(Err(e)) => e.to_string(),
            Err(_) => format!("no answer within {} ms", CHECK_TIMEOUT.as_millis()),
        };
        if confirmed.elapsed() >= UNCONFIRMED_AFTER {
            invalidate(&mut report, Invalidation::Unconfirmed(unanswered)).await;
            return report;
        }
    }
}

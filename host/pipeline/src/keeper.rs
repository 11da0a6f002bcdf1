//! Keeps running tenants' agents honest: renewed when a third of their lifetime is left, and
//! checked with the broker often enough that a revocation stops a guest's data access within
//! 100 ms.
//!
//! AgentWrit has no revocation feed, so agents are checked with `validate`. One poller per night
//! does it for every running tenant, every [`LIVENESS_POLL`], all at once: one task and one timer
//! for the night, not one per tenant, and a guest asleep in the host is woken by a revocation
//! as one reading is stopped. An agent the broker vouched for less than a poll ago (at its
//! creation, for a tenant that just started) is not asked about again yet. When the broker says the agent is dead (revoked, expired) the writ's flag is set and the gate
//! denies every later data access. When the broker cannot be reached for [`UNCONFIRMED_AFTER`],
//! the agent fails closed the same way: a revocation nobody can hear about must not go
//! unnoticed.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use agentwrit::Agent;
use sluice_audit::{Lifecycle, Subject};
use sluice_sandbox::Interrupt;
use tokio::sync::Mutex;

use crate::agents::AgentContext;
use crate::run_logins::SessionLogin;

/// How often running tenants' agents are checked with the broker.
pub const LIVENESS_POLL: Duration = Duration::from_millis(50);
/// A confirmation younger than this needs no other yet: a poll less the poller's jitter, so a
/// running agent is still asked at every poll while a tenant that has just started (its agent
/// vouched for at creation) is not asked again at once.
const FRESH: Duration = Duration::from_millis(45);
/// How long one liveness check may take before it counts as unanswered.
const CHECK_TIMEOUT: Duration = Duration::from_secs(1);
/// How long an agent may go unconfirmed (broker down or hanging) before data access stops.
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

/// The night's one liveness poller: the agents of running tenants, checked together.
#[derive(Default)]
pub(crate) struct Liveness {
    inner: Arc<Watched>,
}

#[derive(Default)]
struct Watched {
    watches: std::sync::Mutex<Vec<Arc<Watch>>>,
    /// Whether the poller's task is running; it ends when nothing is watched.
    polling: AtomicBool,
}

impl Watched {
    fn list(&self) -> std::sync::MutexGuard<'_, Vec<Arc<Watch>>> {
        self.watches.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// One running tenant's agent, as the poller keeps it.
struct Watch {
    agents: Arc<AgentContext>,
    agent: Arc<Mutex<Agent>>,
    login: Option<Arc<SessionLogin>>,
    revoked: Interrupt,
    subject: Subject,
    cancel: Interrupt,
    /// Held while the agent is being checked, so stopping waits for a check under way.
    state: Mutex<WatchState>,
}

struct WatchState {
    report: KeeperReport,
    /// When the broker last vouched for the agent (its creation's `validate` before the run):
    /// a confirmation younger than [`FRESH`] needs no other yet.
    confirmed: Instant,
    /// Stopped, or the agent invalidated: nothing more to do.
    done: bool,
    /// When the first of the checks the broker has not answered since its last answer began.
    unanswered_since: Option<Instant>,
}

/// A running tenant's place in the night's poller; [`stop`](Keeper::stop) ends it.
pub(crate) struct Keeper {
    watched: Arc<Watched>,
    watch: Arc<Watch>,
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
        let watched = Arc::clone(&agents.liveness.inner);
        let watch = Arc::new(Watch {
            agents,
            agent,
            login,
            revoked,
            subject,
            cancel,
            state: Mutex::new(WatchState {
                report: KeeperReport::default(),
                confirmed: Instant::now(),
                done: false,
                unanswered_since: None,
            }),
        });
        watched.list().push(Arc::clone(&watch));
        if !watched.polling.swap(true, Ordering::AcqRel) {
            tokio::spawn(poll(Arc::downgrade(&watched)));
        }
        Keeper { watched, watch }
    }

    /// Stops keeping the agent (after a check under way) and says what was seen.
    pub(crate) async fn stop(self) -> KeeperReport {
        self.unlist();
        let mut state = self.watch.state.lock().await;
        state.done = true;
        state.report.clone()
    }

    fn unlist(&self) {
        self.watched.list().retain(|w| !Arc::ptr_eq(w, &self.watch));
    }
}

impl Drop for Keeper {
    fn drop(&mut self) {
        // A run given up without `stop` (its night dropped) leaves nothing to poll.
        self.unlist();
    }
}

/// The poller: every [`LIVENESS_POLL`], every watched agent at once; ends when nothing is
/// watched (the next [`Keeper::start`] starts it again) or the night is gone.
async fn poll(watched: Weak<Watched>) {
    let mut tick = tokio::time::interval(LIVENESS_POLL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    loop {
        tick.tick().await;
        let Some(watched) = watched.upgrade() else {
            return;
        };
        let watches: Vec<Arc<Watch>> = {
            let list = watched.list();
            if list.is_empty() {
                // Under the list's lock: a `start` after this sees `polling` false and spawns.
                watched.polling.store(false, Ordering::Release);
                return;
            }
            list.clone()
        };
        drop(watched);
        futures_util::future::join_all(watches.iter().map(|w| check(w))).await;
    }
}

/// One check of one agent: renewal when due, else `validate` unless the broker vouched for it
/// less than [`FRESH`] ago.
async fn check(w: &Watch) {
    let mut state = w.state.lock().await;
    // An interrupted night renews nothing: its guests are stopping.
    if state.done || w.cancel.is_triggered() {
        return;
    }
    let (ttl, app) = (w.agents.ttl, &w.agents.app);
    let started = Instant::now();
    let mut a = w.agent.lock().await;
    if a.remaining() < ttl / 3 {
        match tokio::time::timeout(CHECK_TIMEOUT, a.renew()).await {
            Ok(Ok(())) => {
                state.report.renewals += 1;
                state.unanswered_since = None;
                state.confirmed = started;
                w.agents.audit.record(
                    &w.subject,
                    Lifecycle::AgentRenewed {
                        expires_in: a.expires_in(),
                    },
                );
                let lifetime = a.remaining();
                drop(a);
                if let Some(login) = &w.login {
                    login.renew(&w.agents.audit, lifetime).await;
                }
                return;
            }
            Ok(Err(e)) if !e.is_transport() => {
                drop(a);
                invalidate(w, &mut state, Invalidation::RenewalFailed(e.to_string())).await;
                return;
            }
            // Unreachable: the liveness check below decides how long that may last.
            Ok(Err(_)) | Err(_) => {}
        }
    }
    if state.unanswered_since.is_none() && state.confirmed.elapsed() < FRESH {
        return;
    }
    let token = a.access_token().clone();
    let expired = a.remaining().is_zero();
    drop(a);
    let unanswered = match tokio::time::timeout(CHECK_TIMEOUT, app.validate(&token)).await {
        Ok(Ok(r)) if r.is_valid() => {
            state.unanswered_since = None;
            state.confirmed = started;
            return;
        }
        Ok(Ok(_)) => {
            let why = if expired {
                Invalidation::Expired
            } else {
                Invalidation::Revoked
            };
            invalidate(w, &mut state, why).await;
            return;
        }
        Ok(Err(e)) => e.to_string(),
        Err(_) => format!("no answer within {} ms", CHECK_TIMEOUT.as_millis()),
    };
    let since = *state.unanswered_since.get_or_insert(started);
    if since.elapsed() >= UNCONFIRMED_AFTER {
        invalidate(w, &mut state, Invalidation::Unconfirmed(unanswered)).await;
    }
}

/// The agent is no longer honoured: the gate stops the guest, then the login's sessions are
/// terminated, so a session opened with the run's login (or a copy of it) ends with the agent.
async fn invalidate(w: &Watch, state: &mut WatchState, why: Invalidation) {
    w.revoked.trigger();
    w.agents.audit.record(
        &w.subject,
        Lifecycle::AgentInvalidated {
            detail: format!("data access stopped: {why}"),
        },
    );
    if let Some(login) = &w.login {
        login.cut(&w.agents.audit, &why.to_string()).await;
    }
    state.report.invalidated = Some(why);
    state.done = true;
}

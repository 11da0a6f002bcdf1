//! One tenant's agent from creation to release: create → validate the issued scopes → writ →
//! sandboxed run (with the keeper) → confirm → commit → release. The nightly run and the
//! isolation proof both go through it, so they cannot drift apart.
//!
//! [`TenantSession::close`] must run on every path once [`TenantSession::open`] succeeded; the
//! callers end every session with it, failures included.

use std::sync::Arc;
use std::time::{Duration, Instant};

use agentwrit::{Agent, AgentRequest, Error as BrokerError, Scope, Validation};
use sluice_audit::{Lifecycle, Subject, writ_subject};
use sluice_data::ReportDir;
use sluice_data::outputs::{OutputStore, Published, publish_run};
use sluice_sandbox::{
    AuditSink as _, Budget, DatasetSource, Interrupt, RunFailure, RunOutcome, RunRequest,
    StagedReport, StagedTable, Transform, Writ,
};
use tokio::sync::{Mutex, Semaphore};

use crate::agents::AgentContext;
use crate::keeper::{Invalidation, Keeper, KeeperReport};
use crate::outcome::{AgentEnd, FailureKind, TenantError};
use crate::run_logins::SessionLogin;
use sluice_data::PgLogin;

/// How long a transient broker failure may be retried when confirming or releasing an agent.
const RETRY_WINDOW: Duration = Duration::from_secs(3);
/// Pause between those retries.
const RETRY_PAUSE: Duration = Duration::from_millis(200);

/// Why a tenant's session failed, one line each.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    /// The broker refused or failed to create the agent (explained for the operator).
    #[error("{0}")]
    CreateAgent(String),
    #[error("validating the new agent with the broker failed: {0}")]
    Validate(BrokerError),
    #[error("the broker says the new agent is invalid: {0}")]
    InvalidAgent(String),
    /// The transform failed.
    #[error("{0}")]
    Run(RunFailure),
    /// The keeper stopped the agent's data access mid-run.
    #[error(
        "agent {agent} stopped mid-run: {why}; report not committed, the previous report is kept"
    )]
    Invalidated { agent: String, why: Invalidation },
    #[error("report not committed: {0}; the previous report is kept")]
    CommitRefused(String),
    #[error("publishing the run's outputs failed: {why}; {}", published_note(*published))]
    Publish { why: String, published: usize },
    /// Its PostgreSQL login could not be minted.
    #[error("no PostgreSQL login for this run: {0}")]
    Login(String),
}

impl SessionError {
    /// What part of the night failed.
    pub fn kind(&self) -> FailureKind {
        match self {
            SessionError::CreateAgent(_)
            | SessionError::Validate(_)
            | SessionError::InvalidAgent(_)
            | SessionError::Invalidated { .. }
            | SessionError::CommitRefused(_)
            | SessionError::Login(_) => FailureKind::Agent,
            SessionError::Run(_) => FailureKind::Run,
            SessionError::Publish { published: 0, .. } => FailureKind::Publish,
            SessionError::Publish { .. } => FailureKind::Storage,
        }
    }
}

impl From<SessionError> for TenantError {
    fn from(e: SessionError) -> TenantError {
        TenantError::new(e.kind(), e.to_string())
    }
}

/// What a failed publish left: nothing, or (the machine or the network failing part way) the
/// outputs the audit lists.
fn published_note(published: usize) -> String {
    match published {
        0 => "nothing was published: the previous report and tables are kept".into(),
        n => format!("{n} output(s) were published before it stopped, as the audit records"),
    }
}

/// Where the night's runs take place: its interrupt, and one permit per slot of the engine's
/// instance pool, held by a run's thread until it ends.
#[derive(Clone)]
pub(crate) struct Runs {
    pub(crate) interrupt: Interrupt,
    pub(crate) slots: Arc<Semaphore>,
}

/// A tenant's live agent and the writ its gate enforces.
pub(crate) struct TenantSession {
    agents: Arc<AgentContext>,
    subject: Subject,
    agent: Arc<Mutex<Agent>>,
    /// The scopes the broker issued: what the gate enforces.
    held: Vec<Scope>,
    expires_in: u64,
    revoked: Interrupt,
    keeper: KeeperReport,
    /// A candidate's shadow run (see [`Writ::shadow`]).
    shadow: bool,
    /// The PostgreSQL login minted for this run, if its tenant's is minted per run.
    login: Option<Arc<SessionLogin>>,
}

impl TenantSession {
    /// Creates an agent holding `scopes` for `tenant` under `task_id`, and reads back the scopes
    /// the broker issued: those, not the requested ones, are what the gate enforces.
    pub(crate) async fn open(
        agents: &Arc<AgentContext>,
        tenant: &str,
        task_id: &str,
        scopes: &[&Scope],
        purpose: Option<&'static str>,
    ) -> Result<TenantSession, (Option<TenantSession>, SessionError)> {
        let request =
            AgentRequest::new(&agents.orch_id, task_id, scopes.iter().map(|&s| s.clone()))
                .max_ttl(agents.ttl.as_secs());
        let agent = match agents.app.create_agent(request).await {
            Ok(agent) => agent,
            Err(e) => {
                let why = explain_create_error(&e, scopes, agents.embedded);
                return Err((None, SessionError::CreateAgent(why)));
            }
        };
        let subject = Subject {
            tenant: tenant.to_string(),
            agent_id: agent.agent_id().to_string(),
            task_id: task_id.to_string(),
        };
        agents.audit.record(
            &subject,
            Lifecycle::AgentCreated {
                scope: agent
                    .scope()
                    .iter()
                    .map(|s| s.as_str().to_string())
                    .collect(),
                expires_in: agent.expires_in(),
                purpose,
            },
        );
        let expires_in = agent.expires_in();
        let token = agent.access_token().clone();
        let agent = Arc::new(Mutex::new(agent));
        agents.track(&subject.task_id, &agent).await;
        let mut session = TenantSession {
            agents: Arc::clone(agents),
            subject,
            agent,
            held: Vec::new(),
            expires_in,
            revoked: Interrupt::new(),
            keeper: KeeperReport::default(),
            shadow: false,
            login: None,
        };
        // Scopes arrive parsed: a broker issuing a malformed one fails validation, naming it.
        match agents.app.validate(&token).await {
            Ok(Validation::Valid(claims)) => session.held = claims.scope.clone(),
            Ok(Validation::Invalid(why)) => {
                return Err((Some(session), SessionError::InvalidAgent(why)));
            }
            Err(e) => return Err((Some(session), SessionError::Validate(e))),
        }
        Ok(session)
    }

    pub(crate) fn agent_id(&self) -> &str {
        &self.subject.agent_id
    }

    /// The scopes the broker issued, as text for reports.
    pub(crate) fn issued(&self) -> Vec<String> {
        self.held.iter().map(|s| s.as_str().to_string()).collect()
    }

    pub(crate) fn expires_in(&self) -> u64 {
        self.expires_in
    }

    pub(crate) fn renewals(&self) -> u32 {
        self.keeper.renewals
    }

    /// The writ the gate enforces: the issued scopes, and this session's revocation.
    pub(crate) fn writ(&self) -> Writ {
        Writ {
            tenant: self.subject.tenant.clone(),
            agent_id: self.subject.agent_id.clone(),
            task_id: self.subject.task_id.clone(),
            held: self.held.clone(),
            revoked: self.revoked.clone(),
            shadow: self.shadow,
        }
    }

    /// How this run logs in to PostgreSQL, given how its tenant's configuration says to: a
    /// per-run login is minted now (valid while the agent is, at most `connections` sessions)
    /// and lives until [`close`](Self::close); a standing role's variable is used as it is.
    pub(crate) async fn login_for(
        &mut self,
        configured: Option<PgLogin>,
        connections: u64,
    ) -> Result<Option<PgLogin>, SessionError> {
        let Some(PgLogin::PerRun {
            provisioner_env,
            role,
        }) = configured
        else {
            return Ok(configured);
        };
        let lifetime = self.agent.lock().await.remaining();
        let minted = self
            .agents
            .logins
            .mint(
                &provisioner_env,
                &role,
                &self.subject,
                lifetime,
                connections,
            )
            .await
            .map_err(SessionError::Login)?;
        let login = PgLogin::Minted(minted.login().clone());
        self.login = Some(minted);
        Ok(Some(login))
    }

    /// This session as a shadow run's: see [`Writ::shadow`].
    pub(crate) fn into_shadow(mut self) -> TenantSession {
        self.shadow = true;
        self
    }

    /// Runs `transform` over `datasets` under the issued scopes on a thread of its own, behind
    /// the watchdog, with the keeper watching the agent; audits the gate's decisions and what
    /// the run used.
    pub(crate) async fn run(
        &mut self,
        runs: &Runs,
        transform: &Transform,
        budget: Budget,
        params: Vec<(String, String)>,
        datasets: Arc<dyn DatasetSource>,
    ) -> RunOutcome {
        let request = RunRequest {
            writ: self.writ(),
            budget,
            datasets,
            params,
            interrupt: runs.interrupt.clone(),
        };
        // The run slot goes to the run's thread: an abandoned run keeps its share of the pool.
        let slot = Arc::clone(&runs.slots).acquire_owned().await;
        let keeper = Keeper::start(
            Arc::clone(&self.agents),
            Arc::clone(&self.agent),
            self.login.clone(),
            self.revoked.clone(),
            self.subject.clone(),
            runs.interrupt.clone(),
        );
        let outcome = transform.spawn(request, slot).outcome().await;
        self.keeper = keeper.stop().await;
        let audit = &self.agents.audit;
        let _ = audit.record_gate_events(&outcome.writ, &outcome.events, &outcome.overflow);
        audit.record(
            &writ_subject(&outcome.writ),
            Lifecycle::run_finished(&outcome),
        );
        outcome
    }

    /// Why the run's data access was cut, if the keeper cut it.
    pub(crate) fn invalidated(&self) -> Option<SessionError> {
        self.keeper
            .invalidated
            .clone()
            .map(|why| SessionError::Invalidated {
                agent: self.subject.agent_id.clone(),
                why,
            })
    }

    /// Publishes `tables` (to `outputs`) and `staged` reports (to `reports`) together (see
    /// [`publish_run`]), only with an agent the broker still honours. Returns what was published, which the audit records item
    /// by item as each becomes visible, and the error that stopped it, if one did.
    pub(crate) async fn commit(
        &self,
        staged: &[StagedReport],
        tables: &[StagedTable],
        outputs: &OutputStore,
        reports: &ReportDir,
    ) -> (Vec<Published>, Result<(), SessionError>) {
        if let Some(invalidated) = self.invalidated() {
            return (Vec::new(), Err(invalidated));
        }
        if let Err(why) = self.confirm().await {
            self.agents.audit.record(
                &self.subject,
                Lifecycle::CommitRefused {
                    outcome: "denied",
                    detail: why.clone(),
                },
            );
            return (Vec::new(), Err(SessionError::CommitRefused(why)));
        }
        let (audit, subject) = (Arc::clone(&self.agents.audit), self.subject.clone());
        let (store, reports) = (outputs.clone(), reports.clone());
        let (staged, tables) = (staged.to_vec(), tables.to_vec());
        // Off the runtime: files are written and synced, and on object storage each is a request.
        let published = tokio::task::spawn_blocking(move || {
            let audit_each = |item: &Published| {
                let entry = match item {
                    Published::Table(table) => Lifecycle::TableCommitted {
                        table: table.location.clone(),
                        rows: table.rows,
                    },
                    Published::Report { location, bytes } => Lifecycle::ReportCommitted {
                        report: location.to_string(),
                        bytes: *bytes,
                    },
                };
                audit.record(&subject, entry);
            };
            publish_run(&store, &reports, &tables, &staged, audit_each)
        })
        .await;
        match published {
            Ok(Ok(published)) => (published, Ok(())),
            Ok(Err(failure)) => {
                let published = failure.published.len();
                let why = format!("{:#}", failure.error);
                (
                    failure.published,
                    Err(SessionError::Publish { why, published }),
                )
            }
            Err(e) => (
                Vec::new(),
                Err(SessionError::Publish {
                    why: e.to_string(),
                    published: 0,
                }),
            ),
        }
    }

    /// Asks the broker whether the agent is still valid, retrying an unreachable broker for a
    /// few seconds.
    async fn confirm(&self) -> Result<(), String> {
        let agent = &self.subject.agent_id;
        let started = Instant::now();
        loop {
            let token = self.agent.lock().await.access_token().clone();
            match self.agents.app.validate(&token).await {
                Ok(Validation::Valid(_)) => return Ok(()),
                Ok(Validation::Invalid(_)) => {
                    return Err(format!(
                        "agent {agent} is no longer valid at the broker (revoked, released or expired)"
                    ));
                }
                Err(e) if e.is_transport() && started.elapsed() < RETRY_WINDOW => {
                    tokio::time::sleep(RETRY_PAUSE).await;
                }
                Err(e) => return Err(format!("agent {agent} could not be confirmed: {e}")),
            }
        }
    }

    /// Releases the agent (retrying an unreachable broker for a few seconds) and says how it
    /// ended: an agent the broker already revoked or expired is reported as such.
    pub(crate) async fn close(self) -> AgentEnd {
        // The login first: data access ends before the agent that granted it.
        if let Some(login) = &self.login {
            self.agents.logins.drop_login(login).await;
        }
        let end = self.end().await;
        // Only now: until its release is done, a second interrupt may still release it.
        self.agents.forget(&self.subject.task_id).await;
        end
    }

    async fn end(&self) -> AgentEnd {
        let mut agent = self.agent.lock().await;
        let started = Instant::now();
        let audit = &self.agents.audit;
        loop {
            match agent.release().await {
                Ok(()) => {
                    audit.record(&self.subject, Lifecycle::AgentReleased { detail: None });
                    return AgentEnd::Released;
                }
                // The token is already dead at the broker.
                Err(BrokerError::Authentication(_)) => {
                    let end = match &self.keeper.invalidated {
                        Some(Invalidation::Expired) => AgentEnd::Expired,
                        Some(Invalidation::Revoked) => AgentEnd::Revoked,
                        _ if agent.remaining().is_zero() => AgentEnd::Expired,
                        _ => AgentEnd::Revoked,
                    };
                    if !matches!(
                        self.keeper.invalidated,
                        Some(Invalidation::Revoked | Invalidation::Expired)
                    ) {
                        audit.record(
                            &self.subject,
                            Lifecycle::AgentInvalidated {
                                detail: format!("found {end:?} at release").to_lowercase(),
                            },
                        );
                    }
                    return end;
                }
                Err(e) if e.is_transport() && started.elapsed() < RETRY_WINDOW => {
                    tokio::time::sleep(RETRY_PAUSE).await;
                }
                Err(e) => {
                    let why = format!(
                        "releasing agent {} failed ({e}); it expires in {} s",
                        self.subject.agent_id,
                        agent.remaining().as_secs()
                    );
                    audit.record(
                        &self.subject,
                        Lifecycle::AgentNotReleased {
                            detail: why.clone(),
                        },
                    );
                    return AgentEnd::NotReleased(why);
                }
            }
        }
    }
}

/// Turns a failed `create_agent` into one line a user can act on.
fn explain_create_error(e: &BrokerError, scopes: &[&Scope], embedded: bool) -> String {
    let scopes = format!(
        "[{}]",
        scopes
            .iter()
            .map(|s| s.to_string())
            .collect::<Vec<_>>()
            .join(", ")
    );
    match e {
        BrokerError::Authorization(p) => {
            let fix = if embedded {
                "add a matching scope to [broker] ceiling in the config"
            } else {
                "widen the app's ceiling at the broker (it needs read:analytics:*, write:reports:* for the demo)"
            };
            format!(
                "the broker refused an agent with scopes {scopes} ({} {}: {}): the app's ceiling does not cover this tenant's read_scope/write_scope; fix them or {fix}",
                p.status,
                p.error_code.as_deref().unwrap_or("forbidden"),
                p.detail
            )
        }
        BrokerError::Authentication(p) => format!(
            "the broker rejected the app's credentials ({}): check AGENTWRIT_CLIENT_ID and AGENTWRIT_CLIENT_SECRET",
            p.detail
        ),
        other => format!("creating the agent failed: {other}"),
    }
}

//! A tenant run's PostgreSQL login, tied to its agent: minted after the agent (valid until it
//! expires), renewed when the keeper renews the agent, cut when the keeper stops honouring it,
//! dropped when the session closes, on every path. The provisioners (one per variable the
//! configuration names) are connected once per night, and each first connection drops the
//! logins earlier processes left behind. Every step is audited with the agent's SPIFFE ID; no
//! password is ever in an entry, an error or a log.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use sluice_audit::{AuditLog, Lifecycle, Subject};
use sluice_data::RunLogin;
use sluice_data::logins::{MAX_CONNECTIONS, Provisioner};
use tokio::sync::Mutex;

/// The night's provisioners and the logins alive now.
pub(crate) struct RunLogins {
    audit: Arc<AuditLog>,
    /// By the variable holding the provisioner's URL: connected, or why not.
    provisioners: Mutex<HashMap<String, Result<Arc<Provisioner>, String>>>,
    /// Minted and not yet dropped, by task id: what a second Ctrl-C drops.
    live: Mutex<HashMap<String, Arc<SessionLogin>>>,
}

/// One run's login and the provisioner that minted it.
pub(crate) struct SessionLogin {
    provisioner: Arc<Provisioner>,
    login: RunLogin,
    subject: Subject,
}

impl RunLogins {
    pub(crate) fn new(audit: Arc<AuditLog>) -> RunLogins {
        RunLogins {
            audit,
            provisioners: Mutex::new(HashMap::new()),
            live: Mutex::new(HashMap::new()),
        }
    }

    /// The provisioner whose URL is in `env`, connected on first use; a first connection drops
    /// the logins killed processes left behind.
    pub(crate) async fn provisioner(&self, env: &str) -> Result<Arc<Provisioner>, String> {
        let mut provisioners = self.provisioners.lock().await;
        if let Some(known) = provisioners.get(env) {
            return known.clone();
        }
        let connected = Provisioner::connect(env).await.map(Arc::new);
        if let Ok(provisioner) = &connected {
            let night = Subject {
                tenant: String::new(),
                agent_id: String::new(),
                task_id: String::new(),
            };
            match provisioner.sweep().await {
                Ok(dropped) => {
                    for login in dropped {
                        self.audit
                            .record(&night, Lifecycle::LeftoverLoginDropped { login });
                    }
                }
                Err(detail) => self.audit.record(
                    &night,
                    Lifecycle::LoginNotDropped {
                        login: "leftovers of earlier nights".into(),
                        detail,
                    },
                ),
            }
        }
        provisioners.insert(env.to_string(), connected.clone());
        connected
    }

    /// Mints a login in group role `role` for the run of `subject`, valid for `lifetime` (what
    /// is left of its agent's), with at most `connections` sessions.
    pub(crate) async fn mint(
        &self,
        provisioner_env: &str,
        role: &str,
        subject: &Subject,
        lifetime: Duration,
        connections: u64,
    ) -> Result<Arc<SessionLogin>, String> {
        let provisioner = self.provisioner(provisioner_env).await?;
        let valid_until = SystemTime::now() + lifetime;
        let connections = connections.min(u64::from(MAX_CONNECTIONS)) as u32;
        let login = provisioner.mint(role, valid_until, connections).await?;
        self.audit.record(
            subject,
            Lifecycle::LoginCreated {
                login: login.name().to_string(),
                role: role.to_string(),
                valid_until: sluice_audit::rfc3339(valid_until),
            },
        );
        let minted = Arc::new(SessionLogin {
            provisioner,
            login,
            subject: subject.clone(),
        });
        self.live
            .lock()
            .await
            .insert(subject.task_id.clone(), Arc::clone(&minted));
        Ok(minted)
    }

    /// Drops `login` (its sessions first), audited either way.
    pub(crate) async fn drop_login(&self, login: &SessionLogin) {
        self.live.lock().await.remove(&login.subject.task_id);
        let name = login.login.name().to_string();
        let entry = match login.provisioner.drop_login(&login.login).await {
            Ok(sessions) => Lifecycle::LoginDropped {
                login: name,
                sessions,
            },
            Err(detail) => Lifecycle::LoginNotDropped {
                login: name,
                detail,
            },
        };
        self.audit.record(&login.subject, entry);
    }

    /// Drops every login still alive, each given at most `within`: what a second Ctrl-C does
    /// before exiting at once. Returns how many were dropped.
    pub(crate) async fn drop_live(&self, within: Duration) -> usize {
        let live: Vec<Arc<SessionLogin>> = self.live.lock().await.values().cloned().collect();
        let mut drops = tokio::task::JoinSet::new();
        for login in live {
            drops.spawn(async move {
                tokio::time::timeout(within, login.provisioner.drop_login(&login.login))
                    .await
                    .is_ok_and(|r| r.is_ok())
            });
        }
        let mut dropped = 0;
        while let Some(done) = drops.join_next().await {
            dropped += usize::from(done.unwrap_or(false));
        }
        dropped
    }
}

impl SessionLogin {
    pub(crate) fn login(&self) -> &RunLogin {
        &self.login
    }

    /// Moves the login's expiry with its agent's renewal (`lifetime` from now), audited.
    pub(crate) async fn renew(&self, audit: &AuditLog, lifetime: Duration) {
        let valid_until = SystemTime::now() + lifetime;
        let login = self.login.name().to_string();
        let entry = match self.provisioner.renew(&self.login, valid_until).await {
            Ok(()) => Lifecycle::LoginRenewed {
                login,
                valid_until: sluice_audit::rfc3339(valid_until),
            },
            // Not fatal to the run: the login lapses at its old expiry, and reads fail then.
            Err(detail) => Lifecycle::LoginNotDropped {
                login,
                detail: format!("not renewed: {detail}"),
            },
        };
        audit.record(&self.subject, entry);
    }

    /// Stops the login at once (no new session, every session terminated), audited: the
    /// agent is no longer honoured, for `why`.
    pub(crate) async fn cut(&self, audit: &AuditLog, why: &str) {
        let login = self.login.name().to_string();
        let entry = match self.provisioner.cut(&self.login).await {
            Ok(sessions) => Lifecycle::LoginCut {
                login,
                sessions,
                detail: why.to_string(),
            },
            Err(detail) => Lifecycle::LoginNotDropped {
                login,
                detail: format!("not cut ({why}): {detail}"),
            },
        };
        audit.record(&self.subject, entry);
    }
}

//! `Agent`: a registered agent's identity and token, with renew, release and delegate.

use std::time::{Duration, Instant};

use reqwest::Method;
use serde::Deserialize;
use serde_json::json;

use crate::error::{Error, Result};
use crate::http::Http;
use crate::secret::AccessToken;
use crate::types::{DelegatedToken, DelegationRecord};
use agentwrit_scope::Scope;

/// An agent created by [`AgentWritApp::create_agent`](crate::AgentWritApp::create_agent).
///
/// Its `Debug` shows only the agent id, orch id and task id. An agent does not validate itself:
/// ask the app (or [`crate::validate`]) instead.
pub struct Agent {
    http: Http,
    agent_id: String,
    access_token: AccessToken,
    expires_in: u64,
    issued_at: Instant,
    scope: Vec<Scope>,
    task_id: String,
    orch_id: String,
    released: bool,
}

impl std::fmt::Debug for Agent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Agent")
            .field("agent_id", &self.agent_id)
            .field("orch_id", &self.orch_id)
            .field("task_id", &self.task_id)
            .finish()
    }
}

#[derive(Deserialize)]
struct Renewed {
    access_token: String,
    expires_in: u64,
}

#[derive(Deserialize)]
struct Delegated {
    access_token: String,
    expires_in: u64,
    #[serde(default)]
    delegation_chain: Vec<DelegationRecord>,
}

impl Agent {
    pub(crate) fn new(
        http: Http,
        agent_id: String,
        access_token: AccessToken,
        expires_in: u64,
        scope: Vec<Scope>,
        task_id: String,
        orch_id: String,
    ) -> Agent {
        Agent {
            http,
            agent_id,
            access_token,
            expires_in,
            issued_at: Instant::now(),
            scope,
            task_id,
            orch_id,
            released: false,
        }
    }

    /// The agent's SPIFFE ID.
    pub fn agent_id(&self) -> &str {
        &self.agent_id
    }

    pub fn access_token(&self) -> &AccessToken {
        &self.access_token
    }

    /// Lifetime of the current token in seconds, as issued.
    pub fn expires_in(&self) -> u64 {
        self.expires_in
    }

    /// Time left on the current token, by the local clock.
    pub fn remaining(&self) -> Duration {
        Duration::from_secs(self.expires_in).saturating_sub(self.issued_at.elapsed())
    }

    /// The scopes requested at creation (the broker issues exactly these).
    pub fn scope(&self) -> &[Scope] {
        &self.scope
    }

    pub fn task_id(&self) -> &str {
        &self.task_id
    }

    pub fn orch_id(&self) -> &str {
        &self.orch_id
    }

    pub fn is_released(&self) -> bool {
        self.released
    }

    /// Exchanges the token for a fresh one with the same identity and scopes; the old one dies.
    pub async fn renew(&mut self) -> Result<()> {
        if self.released {
            return Err(Error::Released("be renewed"));
        }
        let renewed: Renewed = self
            .http
            .json(
                Method::POST,
                "v1/token/renew",
                Some(&self.access_token),
                None,
            )
            .await?;
        self.access_token = AccessToken::new(renewed.access_token);
        self.expires_in = renewed.expires_in;
        self.issued_at = Instant::now();
        Ok(())
    }

    /// Revokes the token at the broker. Releasing twice is not an error: the second call makes no
    /// request. A failed release (e.g. the token already expired) leaves the agent unreleased.
    pub async fn release(&mut self) -> Result<()> {
        if self.released {
            return Ok(());
        }
        self.http
            .send(
                Method::POST,
                "v1/token/release",
                Some(&self.access_token),
                None,
            )
            .await?;
        self.released = true;
        Ok(())
    }

    /// Issues `delegate_to` a token for `scope` (which must be within this agent's scope).
    pub async fn delegate(
        &self,
        delegate_to: &str,
        scope: &[Scope],
        ttl: Option<u64>,
    ) -> Result<DelegatedToken> {
        if self.released {
            return Err(Error::Released("delegate"));
        }
        let mut body = json!({ "delegate_to": delegate_to, "scope": scope });
        if let Some(ttl) = ttl {
            body["ttl"] = json!(ttl);
        }
        let delegated: Delegated = self
            .http
            .json(
                Method::POST,
                "v1/delegate",
                Some(&self.access_token),
                Some(&body),
            )
            .await?;
        Ok(DelegatedToken {
            access_token: AccessToken::new(delegated.access_token),
            expires_in: delegated.expires_in,
            delegation_chain: delegated.delegation_chain,
        })
    }
}

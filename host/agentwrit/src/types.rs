//! Response types, mirroring the Python SDK's data classes.

use agentwrit_scope::Scope;
use serde::Deserialize;

/// `GET /v1/health`.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct HealthStatus {
    pub status: String,
    pub version: String,
    pub uptime: u64,
    pub db_connected: bool,
    pub audit_events_count: u64,
}

/// One hop of a delegation chain.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct DelegationRecord {
    pub agent: String,
    pub scope: Vec<Scope>,
    pub delegated_at: String,
    #[serde(default)]
    pub signature: Option<String>,
}

/// A token's claims as `/v1/token/validate` returns them. `task_id` and `orch_id` are optional
/// (admin and app tokens have neither), unlike in the Python SDK, which fails on such tokens.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct AgentClaims {
    #[serde(default)]
    pub iss: String,
    pub sub: String,
    #[serde(default)]
    pub aud: Vec<String>,
    pub exp: i64,
    pub nbf: i64,
    pub iat: i64,
    pub jti: String,
    #[serde(default)]
    pub sid: Option<String>,
    /// Parsed as they arrive: a token whose scopes do not parse is not a token this client
    /// accepts (the answer fails to decode, naming the scope).
    pub scope: Vec<Scope>,
    #[serde(default)]
    pub task_id: Option<String>,
    #[serde(default)]
    pub orch_id: Option<String>,
    #[serde(default)]
    pub delegation_chain: Vec<DelegationRecord>,
    #[serde(default)]
    pub chain_hash: Option<String>,
}

/// The broker's answer to `validate`: a valid token always comes with its claims.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Validation {
    Valid(Box<AgentClaims>),
    /// Garbage, expired, released or revoked; the broker's one fixed reason, or the client's.
    Invalid(String),
}

impl Validation {
    pub fn is_valid(&self) -> bool {
        matches!(self, Validation::Valid(_))
    }

    pub fn claims(&self) -> Option<&AgentClaims> {
        match self {
            Validation::Valid(claims) => Some(claims.as_ref()),
            Validation::Invalid(_) => None,
        }
    }
}

/// A token issued by delegation.
#[derive(Clone, Debug)]
pub struct DelegatedToken {
    pub access_token: crate::AccessToken,
    pub expires_in: u64,
    pub delegation_chain: Vec<DelegationRecord>,
}

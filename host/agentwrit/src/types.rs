//! Response types, mirroring the Python SDK's data classes.

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
    pub scope: Vec<String>,
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
    pub scope: Vec<String>,
    #[serde(default)]
    pub task_id: Option<String>,
    #[serde(default)]
    pub orch_id: Option<String>,
    #[serde(default)]
    pub delegation_chain: Vec<DelegationRecord>,
    #[serde(default)]
    pub chain_hash: Option<String>,
}

/// The answer of `validate`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ValidateResult {
    pub valid: bool,
    pub claims: Option<AgentClaims>,
    pub error: Option<String>,
}

/// A token issued by delegation.
#[derive(Clone, Debug)]
pub struct DelegatedToken {
    pub access_token: crate::AccessToken,
    pub expires_in: u64,
    pub delegation_chain: Vec<DelegationRecord>,
}

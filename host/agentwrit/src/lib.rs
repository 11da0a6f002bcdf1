//! AgentWrit client for Rust: apps, agents, scope checks and typed errors, wire-compatible with
//! the AgentWrit broker and mirroring the official Python SDK (`AgentWritApp`, `Agent`,
//! `scope_is_subset`, `validate`).
//!
//! ```no_run
//! # async fn demo() -> agentwrit::Result<()> {
//! use agentwrit::{AgentRequest, AgentWritApp, ClientSecret, Scope};
//! let app = AgentWritApp::new("http://127.0.0.1:8080", "sa-123", ClientSecret::new("…"))?;
//! let read = Scope::parse("read:analytics:bank").expect("a scope");
//! let mut agent = app
//!     .create_agent(AgentRequest::new("nightly-pipeline", "etl-bank-1", [read]))
//!     .await?;
//! assert!(agentwrit::scope_is_subset(&["read:analytics:bank"], agent.scope()));
//! let checked = app.validate(agent.access_token()).await?;
//! assert!(checked.is_valid());
//! agent.release().await?;
//! # Ok(()) }
//! ```

mod agent;
mod app;
mod error;
mod http;
pub mod operator;
pub mod rate_limit;
mod secret;
mod types;
mod validate;

pub use agent::Agent;
pub use app::{AgentRequest, AgentWritApp, DEFAULT_TIMEOUT};
pub use error::{Error, ProblemDetail, Result};
pub use http::USER_AGENT;
/// The scope grammar and coverage rule (`agentwrit-scope`), re-exported.
pub mod scope {
    pub use agentwrit_scope::*;
}
pub use agentwrit_scope::{Scope, ScopeError, scope_covers, scope_is_subset};
pub use secret::{AccessToken, AdminSecret, ClientSecret, LaunchToken};
pub use types::{AgentClaims, DelegatedToken, DelegationRecord, HealthStatus, Validation};
pub use validate::validate;

//! AgentWrit client for Rust: apps, agents, scope checks and typed errors, wire-compatible with
//! the AgentWrit broker and mirroring the official Python SDK.

pub mod scope;

pub use scope::{Scope, ScopeError, scope_covers, scope_is_subset};

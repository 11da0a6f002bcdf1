//! The broker's audit log: events with the contract's hash chain (section 9).

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// An audit event, members in the contract's order; empty optional members omitted.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq, Default)]
pub struct AuditEvent {
    pub id: String,
    pub timestamp: String,
    pub event_type: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub agent_id: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub task_id: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub orch_id: String,
    pub detail: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub resource: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub outcome: String,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub deleg_depth: i64,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub deleg_chain_hash: String,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub bytes_transferred: i64,
    pub hash: String,
    pub prev_hash: String,
}

fn is_zero(n: &i64) -> bool {
    *n == 0
}

/// What an emitter supplies; id, time and hashes are filled in by the log.
#[derive(Default)]
pub struct NewEvent<'a> {
    pub event_type: &'a str,
    pub agent_id: &'a str,
    pub task_id: &'a str,
    pub orch_id: &'a str,
    pub detail: String,
    pub resource: &'a str,
    pub outcome: &'a str,
    pub deleg_depth: i64,
    pub deleg_chain_hash: &'a str,
}

/// The broker's crude detail redaction: `key=value` / `key: value` with a sensitive key word.
pub fn sanitize(detail: &str) -> String {
    const WORDS: [&str; 4] = ["secret", "password", "token_value", "private_key"];
    let lower = detail.to_ascii_lowercase();
    if !WORDS.iter().any(|w| lower.contains(w)) {
        return detail.to_string();
    }
    for sep in ["=", ": "] {
        if let Some(pos) = detail.find(sep) {
            let key = detail[..pos].to_ascii_lowercase();
            if WORDS.iter().any(|w| key.contains(w)) {
                return format!("{}{sep}***REDACTED***", &detail[..pos]);
            }
        }
    }
    detail.to_string()
}

/// The hash over the 13 fields, as contract 9.2 specifies.
pub fn event_hash(e: &AuditEvent) -> String {
    let text = [
        e.prev_hash.as_str(),
        &e.id,
        &e.timestamp,
        &e.event_type,
        &e.agent_id,
        &e.task_id,
        &e.orch_id,
        &e.detail,
        &e.resource,
        &e.outcome,
        &e.deleg_depth.to_string(),
        &e.deleg_chain_hash,
        &e.bytes_transferred.to_string(),
    ]
    .join("|");
    hex::encode(Sha256::digest(text.as_bytes()))
}

/// Builds the next event of a chain whose last hash is `prev` and length `count`.
pub fn chain(count: u64, prev: &str, timestamp: String, new: NewEvent<'_>) -> AuditEvent {
    let mut event = AuditEvent {
        id: format!("evt-{:06}", count + 1),
        timestamp,
        event_type: new.event_type.to_string(),
        agent_id: new.agent_id.to_string(),
        task_id: new.task_id.to_string(),
        orch_id: new.orch_id.to_string(),
        detail: sanitize(&new.detail),
        resource: new.resource.to_string(),
        outcome: new.outcome.to_string(),
        deleg_depth: new.deleg_depth,
        deleg_chain_hash: new.deleg_chain_hash.to_string(),
        bytes_transferred: 0,
        hash: String::new(),
        prev_hash: prev.to_string(),
    };
    event.hash = event_hash(&event);
    event
}

/// Checks a whole chain: `None` when intact, else the index of the first broken event.
pub fn first_broken(events: &[AuditEvent]) -> Option<usize> {
    let mut prev = GENESIS.to_string();
    for (i, e) in events.iter().enumerate() {
        if e.prev_hash != prev || event_hash(e) != e.hash {
            return Some(i);
        }
        prev = e.hash.clone();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reproduces_a_captured_hash_from_the_real_broker() {
        // exchanges.txt, event evt-000001 of the real broker.
        let e = AuditEvent {
            id: "evt-000001".into(),
            timestamp: "2026-11-28T00:58:35.516802231Z".into(),
            event_type: "admin_auth".into(),
            detail: "admin authenticated as admin".into(),
            outcome: "success".into(),
            prev_hash: GENESIS.into(),
            ..AuditEvent::default()
        };
        assert_eq!(
            event_hash(&e),
            "c4d3fa4d130787ebcd83b74b16435ed21a2030b03a0d82995f6f5e79482dc21f"
        );
    }

    #[test]
    fn sanitize_redacts_only_keyed_secrets() {
        assert_eq!(
            sanitize("client_secret=abc"),
            "client_secret=***REDACTED***"
        );
        assert_eq!(
            sanitize("admin authenticated as admin"),
            "admin authenticated as admin"
        );
    }
}

//! Unauthenticated routes: health, metrics, challenge, token validation.

use std::fmt::Write as _;
use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::envelope::decode;
use crate::problem::{ApiError, ApiResult};
use crate::state::{BrokerState, now, random_hex};

/// The version the real broker reports.
pub const VERSION: &str = "2.0.0";

pub async fn health(State(st): State<Arc<BrokerState>>) -> Json<Value> {
    let events = st.mem().audit.len();
    Json(json!({
        "status": "ok",
        "version": VERSION,
        "uptime": st.started.elapsed().as_secs(),
        "db_connected": true,
        "audit_events_count": events,
    }))
}

pub async fn metrics(State(st): State<Arc<BrokerState>>) -> impl IntoResponse {
    let mem = st.mem();
    let m = &mem.metrics;
    let mut out = String::new();
    let mut family = |name: &str, kind: &str, series: Vec<(String, u64)>| {
        let _ = writeln!(out, "# TYPE agentwrit_{name} {kind}");
        for (labels, value) in series {
            let _ = writeln!(out, "agentwrit_{name}{labels} {value}");
        }
    };
    let labelled = |label: &str, map: Vec<(String, u64)>| {
        let mut v: Vec<(String, u64)> = map
            .into_iter()
            .map(|(k, n)| (format!("{{{label}=\"{k}\"}}"), n))
            .collect();
        v.sort();
        v
    };
    family(
        "tokens_issued_total",
        "counter",
        labelled(
            "scope",
            m.tokens_issued
                .iter()
                .map(|(k, v)| (k.clone(), *v))
                .collect(),
        ),
    );
    family(
        "tokens_revoked_total",
        "counter",
        labelled(
            "level",
            m.tokens_revoked
                .iter()
                .map(|(k, v)| (k.clone(), *v))
                .collect(),
        ),
    );
    family(
        "registrations_total",
        "counter",
        labelled(
            "status",
            m.registrations
                .iter()
                .map(|(k, v)| (k.to_string(), *v))
                .collect(),
        ),
    );
    family(
        "admin_auth_total",
        "counter",
        labelled(
            "status",
            m.admin_auth
                .iter()
                .map(|(k, v)| (k.to_string(), *v))
                .collect(),
        ),
    );
    family(
        "launch_tokens_created_total",
        "counter",
        vec![(String::new(), m.launch_tokens_created)],
    );
    family(
        "active_agents",
        "gauge",
        vec![(String::new(), m.active_agents)],
    );
    family(
        "audit_events_total",
        "counter",
        labelled(
            "event_type",
            m.audit_events
                .iter()
                .map(|(k, v)| (k.clone(), *v))
                .collect(),
        ),
    );
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        out,
    )
}

/// Nonces live 30 s and are single use.
pub const NONCE_TTL: i64 = 30;

pub async fn challenge(State(st): State<Arc<BrokerState>>) -> Json<Value> {
    let nonce = random_hex(32);
    let now = now();
    let mut mem = st.mem();
    // Forget expired nonces so the map stays small.
    mem.nonces.retain(|_, (expires, _)| *expires >= now);
    mem.nonces.insert(nonce.clone(), (now + NONCE_TTL, false));
    Json(json!({ "nonce": nonce, "expires_in": NONCE_TTL }))
}

#[derive(Deserialize, Default)]
struct ValidateRequest {
    #[serde(default)]
    token: String,
}

pub async fn validate(State(st): State<Arc<BrokerState>>, body: Bytes) -> ApiResult<Json<Value>> {
    let request: ValidateRequest = decode(&body)?;
    if request.token.is_empty() {
        return Err(ApiError::bad_request("token field is required"));
    }
    Ok(Json(match st.verify(&request.token) {
        Ok(claims) => json!({ "valid": true, "claims": claims }),
        Err(_) => json!({ "valid": false, "error": "token is invalid or expired" }),
    }))
}

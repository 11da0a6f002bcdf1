//! Agent routes: register (launch token + signed nonce), renew, release, delegate.

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use ed25519_dalek::{Signature, Signer as _, Verifier as _, VerifyingKey};
use serde::Deserialize;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use agentwrit::scope_is_subset;

use crate::audit::NewEvent;
use crate::auth::bearer;
use crate::envelope::decode;
use crate::jwt::{ChainRecord, Claims};
use crate::problem::{ApiError, ApiResult};
use crate::state::{AgentRecord, BrokerState, go_list, now, random_hex, rfc3339_nano};

/// A token whose chain already has this many records cannot delegate further.
pub const MAX_DELEGATION_DEPTH: usize = 5;

#[derive(Deserialize, Default)]
struct RegisterRequest {
    #[serde(default)]
    launch_token: String,
    #[serde(default)]
    nonce: String,
    #[serde(default)]
    public_key: String,
    #[serde(default)]
    signature: String,
    #[serde(default)]
    orch_id: String,
    #[serde(default)]
    task_id: String,
    #[serde(default)]
    requested_scope: Vec<String>,
}

/// A SPIFFE path segment: non-empty, not `.` or `..`, only `A-Z a-z 0-9 . - _`, and (stricter)
/// at most 128 bytes, so an agent's SPIFFE ID stays well within the spec's 2,048.
fn valid_segment(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 128
        && s != "."
        && s != ".."
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'))
}

pub async fn register(State(st): State<Arc<BrokerState>>, body: Bytes) -> ApiResult<Json<Value>> {
    let r: RegisterRequest = decode(&body)?;
    let fields = [
        &r.launch_token,
        &r.nonce,
        &r.public_key,
        &r.signature,
        &r.orch_id,
        &r.task_id,
    ];
    if fields.iter().any(|f| f.is_empty()) {
        return Err(ApiError::bad_request("missing required field"));
    }
    if r.requested_scope.len() > super::admin::MAX_SCOPES {
        // Stricter: the scopes are copied into a token and an audit event.
        return Err(ApiError::bad_request("requested_scope has too many scopes"));
    }
    if r.requested_scope.is_empty() {
        return Err(ApiError::bad_request(
            "missing required field: requested_scope",
        ));
    }
    // Stricter than the real broker, which burns the launch token and nonce before finding out
    // (500 "registration failed"): refuse bad identifiers before anything is consumed.
    for (name, value) in [("orch_id", &r.orch_id), ("task_id", &r.task_id)] {
        if !valid_segment(value) {
            return Err(ApiError::bad_request(format!(
                "invalid {name}: use letters, digits, '.', '-' or '_'"
            )));
        }
    }
    let now = now();
    let (allowed, max_ttl, single_use, app_id) = {
        let mem = st.mem();
        let launch = mem
            .launch_tokens
            .get(&r.launch_token)
            .ok_or_else(|| ApiError::unauthorized("launch token: launch token not found"))?;
        if now > launch.expires_at {
            return Err(ApiError::unauthorized("launch token: launch token expired"));
        }
        if launch.consumed {
            return Err(ApiError::unauthorized(
                "launch token: launch token already consumed",
            ));
        }
        (
            launch.allowed_scope.clone(),
            launch.max_ttl,
            launch.single_use,
            launch.app_id.clone(),
        )
    };
    if !scope_is_subset(&r.requested_scope, &allowed) {
        st.audit(NewEvent {
            event_type: "registration_policy_violation",
            task_id: &r.task_id,
            orch_id: &r.orch_id,
            detail: format!(
                "scope violation: requested {} exceeds allowed {}",
                go_list(&r.requested_scope),
                go_list(&allowed)
            ),
            outcome: "denied",
            ..NewEvent::default()
        });
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "scope_violation",
            "requested scope exceeds allowed scope",
        ));
    }
    {
        let mut mem = st.mem();
        match mem.nonces.get_mut(&r.nonce) {
            Some((expires, _)) if now > *expires => {
                return Err(ApiError::unauthorized("nonce: nonce not found or expired"));
            }
            Some((_, true)) => return Err(ApiError::unauthorized("nonce: nonce already consumed")),
            Some((_, used)) => *used = true,
            None => return Err(ApiError::unauthorized("nonce: nonce not found or expired")),
        }
    }
    let key_bytes = STANDARD
        .decode(&r.public_key)
        .map_err(|_| ApiError::unauthorized("invalid Ed25519 public key: base64 decode failed"))?;
    let key = <[u8; 32]>::try_from(key_bytes.as_slice())
        .ok()
        .and_then(|b| VerifyingKey::from_bytes(&b).ok())
        .ok_or_else(|| ApiError::unauthorized("invalid Ed25519 public key: wrong key size"))?;
    let signature = STANDARD.decode(&r.signature).map_err(|_| {
        ApiError::unauthorized("nonce signature verification failed: base64 decode failed")
    })?;
    let message = hex::decode(&r.nonce).unwrap_or_else(|_| r.nonce.clone().into_bytes());
    Signature::from_slice(&signature)
        .ok()
        .and_then(|s| key.verify(&message, &s).ok())
        .ok_or_else(|| ApiError::unauthorized("nonce signature verification failed"))?;
    if single_use {
        let mut mem = st.mem();
        match mem.launch_tokens.get_mut(&r.launch_token) {
            Some(launch) if !launch.consumed => launch.consumed = true,
            _ => {
                return Err(ApiError::unauthorized(
                    "consume launch token: launch token already consumed",
                ));
            }
        }
    }
    let agent_id = format!(
        "spiffe://{}/agent/{}/{}/{}",
        st.config.trust_domain,
        r.orch_id,
        r.task_id,
        random_hex(8)
    );
    let claims = Claims {
        task_id: r.task_id.clone(),
        orch_id: r.orch_id.clone(),
        ..Claims::new(&agent_id, r.requested_scope.clone(), st.audience())
    };
    let ttl = if max_ttl <= 0 { 300 } else { max_ttl };
    let issued = st.issue(claims, ttl);
    let (token, expires_in, jti) = (issued.token, issued.ttl, issued.jti);
    {
        let mut mem = st.mem();
        mem.agents.insert(
            agent_id.clone(),
            AgentRecord {
                public_key: key.as_bytes().to_vec(),
            },
        );
        mem.metrics.active_agents += 1;
        *mem.metrics.registrations.entry("success").or_default() += 1;
    }
    let app_suffix = if app_id.is_empty() {
        String::new()
    } else {
        format!(" app_id={app_id}")
    };
    st.audit(NewEvent {
        event_type: "agent_registered",
        agent_id: &agent_id,
        task_id: &r.task_id,
        orch_id: &r.orch_id,
        detail: format!(
            "Agent registered with scope {}{app_suffix}",
            go_list(&r.requested_scope)
        ),
        outcome: "success",
        ..NewEvent::default()
    });
    st.audit(NewEvent {
        event_type: "token_issued",
        agent_id: &agent_id,
        task_id: &r.task_id,
        orch_id: &r.orch_id,
        detail: format!("Token issued, jti={jti}, ttl={expires_in}{app_suffix}"),
        outcome: "success",
        ..NewEvent::default()
    });
    Ok(Json(json!({
        "agent_id": agent_id,
        "access_token": token,
        "expires_in": expires_in,
    })))
}

pub async fn renew(
    State(st): State<Arc<BrokerState>>,
    headers: HeaderMap,
) -> ApiResult<Json<Value>> {
    let old = bearer(&st, &headers, "/v1/token/renew", None)?;
    // Revoke the presented token first: it is dead even if issuing the new one fails.
    st.revoke("token", &old.jti);
    let ttl = old.exp - old.iat;
    let issued = st.issue(old.clone(), ttl);
    let (token, expires_in, new_jti) = (issued.token, issued.ttl, issued.jti);
    st.audit(NewEvent {
        event_type: "token_renewed",
        agent_id: &old.sub,
        task_id: &old.task_id,
        orch_id: &old.orch_id,
        detail: format!("token renewed for agent={} new_jti={new_jti}", old.sub),
        outcome: "success",
        ..NewEvent::default()
    });
    Ok(Json(
        json!({ "access_token": token, "expires_in": expires_in }),
    ))
}

pub async fn release(
    State(st): State<Arc<BrokerState>>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let c = bearer(&st, &headers, "/v1/token/release", None)?;
    st.revoke("token", &c.jti);
    *st.mem()
        .metrics
        .tokens_revoked
        .entry("release".into())
        .or_default() += 1;
    st.audit(NewEvent {
        event_type: "token_released",
        agent_id: &c.sub,
        task_id: &c.task_id,
        orch_id: &c.orch_id,
        detail: format!("token released | jti={}", c.jti),
        outcome: "success",
        ..NewEvent::default()
    });
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[derive(Deserialize, Default)]
struct DelegateRequest {
    #[serde(default)]
    delegate_to: String,
    #[serde(default)]
    scope: Vec<String>,
    #[serde(default)]
    ttl: i64,
}

/// The chain hash: SHA-256 of the chain as compact JSON, `<>&` escaped as Go does.
fn chain_hash(chain: &[ChainRecord]) -> String {
    let json = serde_json::to_string(chain)
        .unwrap_or_default()
        .replace('<', "\\u003c")
        .replace('>', "\\u003e")
        .replace('&', "\\u0026");
    hex::encode(Sha256::digest(json.as_bytes()))
}

pub async fn delegate(
    State(st): State<Arc<BrokerState>>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Json<Value>> {
    let caller = bearer(&st, &headers, "/v1/delegate", None)?;
    let r: DelegateRequest = decode(&body)?;
    if r.delegate_to.is_empty() || r.scope.is_empty() {
        // The real broker answers this case with 500; kept for compatibility.
        return Err(ApiError::internal("delegation failed"));
    }
    // Stricter than the real broker: only agents delegate, never admin or app tokens.
    if !caller.sub.starts_with("spiffe://") {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "scope_violation",
            "only agent tokens may delegate",
        ));
    }
    let depth = caller.delegation_chain.len();
    if depth >= MAX_DELEGATION_DEPTH {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "scope_violation",
            "delegation depth limit exceeded",
        ));
    }
    if !scope_is_subset(&r.scope, &caller.scope) {
        st.audit(NewEvent {
            event_type: "delegation_attenuation_violation",
            agent_id: &caller.sub,
            task_id: &caller.task_id,
            orch_id: &caller.orch_id,
            detail: format!(
                "delegation_attenuation_violation | delegator={} | target={} | requested={} | allowed={}",
                caller.sub,
                r.delegate_to,
                go_list(&r.scope),
                go_list(&caller.scope)
            ),
            outcome: "denied",
            deleg_depth: depth as i64,
            ..NewEvent::default()
        });
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "scope_violation",
            "delegated scope exceeds delegator scope",
        ));
    }
    if !st.mem().agents.contains_key(&r.delegate_to) {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            "delegate agent not found",
        ));
    }
    let delegated_at = rfc3339_nano(std::time::SystemTime::now());
    let signed = format!("{}|{}|{delegated_at}", caller.sub, caller.scope.join(","));
    let record = ChainRecord {
        agent: caller.sub.clone(),
        scope: caller.scope.clone(),
        delegated_at,
        signature: hex::encode(st.keys.signing.sign(signed.as_bytes()).to_bytes()),
    };
    let mut chain = caller.delegation_chain.clone();
    chain.push(record);
    let hash = chain_hash(&chain);
    // Stricter than the real broker: a delegated token never outlives its delegator's.
    let remaining = (caller.exp - now()).max(1);
    let ttl = if r.ttl <= 0 { 60 } else { r.ttl }.min(remaining);
    let claims = Claims {
        task_id: caller.task_id.clone(),
        orch_id: caller.orch_id.clone(),
        delegation_chain: chain.clone(),
        chain_hash: hash.clone(),
        ..Claims::new(&r.delegate_to, r.scope.clone(), caller.aud.clone())
    };
    let issued = st.issue(claims, ttl);
    let (token, expires_in) = (issued.token, issued.ttl);
    st.audit(NewEvent {
        event_type: "delegation_created",
        agent_id: &r.delegate_to,
        task_id: &caller.task_id,
        orch_id: &caller.orch_id,
        detail: format!(
            "delegation from {} to {} scope={} depth={}",
            caller.sub,
            r.delegate_to,
            go_list(&r.scope),
            chain.len()
        ),
        outcome: "success",
        deleg_depth: chain.len() as i64,
        deleg_chain_hash: &hash,
        ..NewEvent::default()
    });
    Ok(Json(json!({
        "access_token": token,
        "expires_in": expires_in,
        "delegation_chain": chain,
    })))
}

//! Operator routes: admin auth, launch tokens, revocation, the audit log.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, Query, Request, State};
use axum::http::{HeaderMap, StatusCode};
use serde::Deserialize;
use serde_json::{Value, json};

use agentwrit::{Scope, scope_is_subset};

use crate::audit::NewEvent;
use crate::auth::bearer;
use crate::envelope::decode;
use crate::jwt::Claims;
use crate::problem::{ApiError, ApiResult};
use crate::state::{BrokerState, LaunchRecord, go_list, now, random_hex, rfc3339_seconds};
use crate::store::AppKey;

/// Scope families only broker principals hold. Stricter than the real broker, which lets app
/// ceilings and admin launch tokens grant them to agents (contract 15.16).
pub fn reserved_family(scope: &str) -> bool {
    Scope::parse(scope).is_ok_and(|s| matches!(s.action(), "admin" | "app"))
}

pub fn reserved_error(scope: &str) -> ApiError {
    ApiError::bad_request(format!(
        "scope '{scope}' is reserved for broker principals: agents may not be granted admin: or app: scopes"
    ))
}

pub fn rate_limited(retry_after: u64) -> ApiError {
    let mut e = ApiError::new(
        StatusCode::TOO_MANY_REQUESTS,
        "rate_limited",
        "rate limit exceeded, try again later",
    );
    e.retry_after = Some(retry_after);
    e
}

/// The peer's IP. The real broker trusts `X-Forwarded-For` here (spoofable); the dev broker does not.
pub fn peer_ip(request: &Request) -> String {
    request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map_or_else(|| "local".into(), |c| c.0.ip().to_string())
}

#[derive(Deserialize, Default)]
struct AdminAuthRequest {
    #[serde(default)]
    secret: String,
    #[serde(default)]
    client_id: String,
    #[serde(default)]
    client_secret: String,
}

pub async fn admin_auth(
    State(st): State<Arc<BrokerState>>,
    request: Request,
) -> ApiResult<Json<Value>> {
    let ip = peer_ip(&request);
    if st.config.rate_limits && !st.mem().admin_limiter.allow(&ip, Instant::now()) {
        return Err(rate_limited(1));
    }
    let body = axum::body::to_bytes(request.into_body(), crate::envelope::MAX_BODY)
        .await
        .map_err(|_| ApiError::bad_request("failed to read request body"))?;
    let r: AdminAuthRequest = decode(&body)?;
    if !r.client_id.is_empty() || !r.client_secret.is_empty() {
        return Err(ApiError::bad_request(
            "Admin auth format changed. Use {\"secret\": \"...\"} instead of client_id/client_secret",
        ));
    }
    if r.secret.is_empty() {
        return Err(ApiError::bad_request("secret is required"));
    }
    if !bcrypt::verify(&r.secret, &st.admin_secret_hash).unwrap_or(false) {
        *st.mem().metrics.admin_auth.entry("failure").or_default() += 1;
        st.audit(NewEvent {
            event_type: "admin_auth_failed",
            detail: "failed admin authentication attempt".into(),
            outcome: "denied",
            ..NewEvent::default()
        });
        return Err(ApiError::unauthorized("invalid credentials"));
    }
    let claims = principal_claims(
        &st,
        "admin",
        &["admin:launch-tokens:*", "admin:revoke:*", "admin:audit:*"],
    );
    let issued = st.issue(claims, st.config.admin_token_ttl);
    let (token, expires_in) = (issued.token, issued.ttl);
    *st.mem().metrics.admin_auth.entry("success").or_default() += 1;
    st.audit(NewEvent {
        event_type: "admin_auth",
        detail: "admin authenticated as admin".into(),
        outcome: "success",
        ..NewEvent::default()
    });
    Ok(Json(json!({
        "access_token": token,
        "expires_in": expires_in,
        "token_type": "Bearer",
    })))
}

/// Claims of an admin or app token: no task, orch or chain.
pub fn principal_claims(st: &BrokerState, sub: &str, scopes: &[&str]) -> Claims {
    let scopes = scopes.iter().map(|s| s.to_string()).collect();
    Claims::new(sub, scopes, st.audience())
}

/// Longest agent name a launch token holds, in bytes.
const MAX_NAME: usize = 256;
/// Most scopes in a launch token, and the longest one, in bytes.
pub(crate) const MAX_SCOPES: usize = 64;
pub(crate) const MAX_SCOPE: usize = 256;

#[derive(Deserialize, Default)]
struct LaunchTokenRequest {
    #[serde(default)]
    agent_name: String,
    #[serde(default)]
    allowed_scope: Vec<String>,
    #[serde(default)]
    max_ttl: i64,
    #[serde(default)]
    single_use: Option<bool>,
    #[serde(default)]
    ttl: i64,
}

pub async fn admin_launch_tokens(
    State(st): State<Arc<BrokerState>>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<(StatusCode, Json<Value>)> {
    launch_tokens(
        &st,
        &headers,
        &body,
        "/v1/admin/launch-tokens",
        "admin:launch-tokens:*",
    )
}

pub async fn app_launch_tokens(
    State(st): State<Arc<BrokerState>>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<(StatusCode, Json<Value>)> {
    launch_tokens(
        &st,
        &headers,
        &body,
        "/v1/app/launch-tokens",
        "app:launch-tokens:*",
    )
}

fn launch_tokens(
    st: &BrokerState,
    headers: &HeaderMap,
    body: &[u8],
    path: &str,
    required: &str,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let caller = bearer(st, headers, path, Some(required))?;
    let r: LaunchTokenRequest = decode(body)?;
    let mut app_id = String::new();
    if let Some(id) = caller.sub.strip_prefix("app:") {
        let app = st
            .store()
            .app_by(AppKey::AppId, id)
            .map_err(|_| ApiError::internal("failed to create launch token"))?;
        let forbidden = |detail: &str| ApiError::new(StatusCode::FORBIDDEN, "forbidden", detail);
        let app = app.ok_or_else(|| forbidden("app not found"))?;
        // Stricter than the real broker: a deregistered app's unexpired token mints nothing.
        if app.status != "active" {
            return Err(forbidden("app is deregistered"));
        }
        if !scope_is_subset(&r.allowed_scope, &app.scopes) {
            st.audit(NewEvent {
                event_type: "scope_ceiling_exceeded",
                agent_id: &caller.sub,
                detail: format!(
                    "app={} requested={} ceiling={}",
                    app.app_id,
                    go_list(&r.allowed_scope),
                    go_list(&app.scopes)
                ),
                outcome: "denied",
                ..NewEvent::default()
            });
            // Stricter: unlike the real broker, the detail does not disclose the ceiling.
            return Err(forbidden("requested scopes exceed app ceiling"));
        }
        app_id = app.app_id;
    } else if let Some(scope) = r.allowed_scope.iter().find(|s| reserved_family(s)) {
        return Err(reserved_error(scope));
    }
    let deny = |reason: &str| {
        st.audit(NewEvent {
            event_type: "launch_token_denied",
            agent_id: &caller.sub,
            detail: format!(
                "launch token denied for agent={} by={} reason={reason}",
                r.agent_name, caller.sub
            ),
            outcome: "denied",
            ..NewEvent::default()
        });
        ApiError::bad_request(reason.to_string())
    };
    if r.agent_name.is_empty() {
        return Err(deny("agent_name is required"));
    }
    if r.allowed_scope.is_empty() {
        return Err(deny("allowed_scope must not be empty"));
    }
    // Stricter: a launch token is kept in memory until it expires; what it holds is bounded.
    if r.agent_name.len() > MAX_NAME {
        return Err(deny("agent_name is too long"));
    }
    if r.allowed_scope.len() > MAX_SCOPES || r.allowed_scope.iter().any(|s| s.len() > MAX_SCOPE) {
        return Err(deny("allowed_scope has too many or too long scopes"));
    }
    let max_ttl = if r.max_ttl <= 0 { 300 } else { r.max_ttl };
    // Stricter: the launch token's own validity is clamped like every token's (the real broker
    // leaves it unbounded, 15.6), and no sum overflows.
    let ttl = st.config.clamp_ttl(if r.ttl <= 0 { 30 } else { r.ttl });
    let expires_at = now().saturating_add(ttl);
    let token = random_hex(32);
    {
        let mut mem = st.mem();
        let now = now();
        mem.launch_tokens.retain(|_, l| l.expires_at >= now);
        mem.launch_tokens.insert(
            token.clone(),
            LaunchRecord {
                agent_name: r.agent_name.clone(),
                allowed_scope: r.allowed_scope.clone(),
                max_ttl,
                single_use: r.single_use.unwrap_or(true),
                expires_at,
                consumed: false,
                app_id: app_id.clone(),
            },
        );
        mem.metrics.launch_tokens_created += 1;
    }
    let app_suffix = if app_id.is_empty() {
        String::new()
    } else {
        format!(" app_id={app_id}")
    };
    st.audit(NewEvent {
        event_type: "launch_token_issued",
        detail: format!(
            "launch token issued for agent={} scope={} max_ttl={max_ttl} created_by={}{app_suffix}",
            r.agent_name,
            go_list(&r.allowed_scope),
            caller.sub
        ),
        outcome: "success",
        ..NewEvent::default()
    });
    Ok((
        StatusCode::CREATED,
        Json(json!({
            "launch_token": token,
            "expires_at": rfc3339_seconds(expires_at),
            "policy": { "allowed_scope": r.allowed_scope, "max_ttl": max_ttl },
        })),
    ))
}

#[derive(Deserialize, Default)]
struct RevokeRequest {
    #[serde(default)]
    level: String,
    #[serde(default)]
    target: String,
}

pub async fn revoke(
    State(st): State<Arc<BrokerState>>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Json<Value>> {
    bearer(&st, &headers, "/v1/revoke", Some("admin:revoke:*"))?;
    let r: RevokeRequest = decode(&body)?;
    if r.level.is_empty() || r.target.is_empty() {
        return Err(ApiError::bad_request("level and target are required"));
    }
    if !matches!(r.level.as_str(), "token" | "agent" | "task" | "chain") {
        return Err(ApiError::bad_request(format!(
            "invalid revocation level: {}",
            r.level
        )));
    }
    st.revoke(&r.level, &r.target);
    st.audit(NewEvent {
        event_type: "token_revoked",
        agent_id: &r.target,
        detail: format!("revoked at level={} target={}", r.level, r.target),
        outcome: "success",
        ..NewEvent::default()
    });
    Ok(Json(json!({
        "revoked": true,
        "level": r.level,
        "target": r.target,
        "count": 1,
    })))
}

#[derive(Deserialize, Default)]
pub struct AuditQuery {
    agent_id: Option<String>,
    task_id: Option<String>,
    event_type: Option<String>,
    outcome: Option<String>,
    since: Option<String>,
    until: Option<String>,
    limit: Option<String>,
    offset: Option<String>,
}

fn parse_time(text: &Option<String>) -> Option<time::OffsetDateTime> {
    text.as_deref().and_then(|t| {
        time::OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339).ok()
    })
}

pub async fn audit_events(
    State(st): State<Arc<BrokerState>>,
    headers: HeaderMap,
    Query(q): Query<AuditQuery>,
) -> ApiResult<Json<Value>> {
    bearer(&st, &headers, "/v1/audit/events", Some("admin:audit:*"))?;
    let limit = q
        .limit
        .as_deref()
        .and_then(|l| l.parse::<i64>().ok())
        .map_or(100, |l| if l <= 0 { 100 } else { l });
    let offset = q
        .offset
        .as_deref()
        .and_then(|o| o.parse::<i64>().ok())
        .unwrap_or(0);
    let (since, until) = (parse_time(&q.since), parse_time(&q.until));
    let mem = st.mem();
    let matches: Vec<&crate::audit::AuditEvent> = mem
        .audit
        .iter()
        .filter(|e| q.agent_id.as_ref().is_none_or(|v| &e.agent_id == v))
        .filter(|e| q.task_id.as_ref().is_none_or(|v| &e.task_id == v))
        .filter(|e| q.event_type.as_ref().is_none_or(|v| &e.event_type == v))
        .filter(|e| q.outcome.as_ref().is_none_or(|v| &e.outcome == v))
        .filter(|e| {
            let t = parse_time(&Some(e.timestamp.clone()));
            since.is_none_or(|s| t.is_some_and(|t| t >= s))
                && until.is_none_or(|u| t.is_some_and(|t| t <= u))
        })
        .collect();
    let total = matches.len();
    let events: Vec<&crate::audit::AuditEvent> = matches
        .into_iter()
        .skip(offset.max(0) as usize)
        .take(limit.min(1000) as usize)
        .collect();
    Ok(Json(json!({
        "events": events,
        "total": total,
        "offset": offset,
        "limit": limit,
    })))
}

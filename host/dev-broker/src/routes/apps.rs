//! App management (admin) and app authentication.

use std::sync::Arc;
use std::time::Instant;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, StatusCode};
use serde::Deserialize;
use serde_json::{Value, json};

use agentwrit::Scope;

use crate::audit::NewEvent;
use crate::auth::bearer;
use crate::envelope::decode;
use crate::problem::{ApiError, ApiResult};
use crate::routes::admin::{
    peer_ip, principal_claims, rate_limited, reserved_error, reserved_family,
};
use crate::state::{BrokerState, go_list, now, random_hex, rfc3339_seconds};
use crate::store::{AppKey, AppRow};

const MANAGE: &str = "admin:launch-tokens:*";

/// Starts with a lowercase letter, then lowercase letters/digits in groups optionally joined by
/// single hyphens; 2 to 64 characters.
fn valid_app_name(name: &str) -> bool {
    let b = name.as_bytes();
    b.len() >= 2
        && b.len() <= 64
        && b[0].is_ascii_lowercase()
        && b[1].is_ascii_lowercase() | b[1].is_ascii_digit()
        && !name.ends_with('-')
        && !name.contains("--")
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
}

/// `sample-apps` → `sa`, `sdk-integration` → `si`, `probe` → `pr`.
fn client_id_prefix(name: &str) -> String {
    if name.contains('-') {
        name.split('-')
            .filter_map(|p| p.chars().next())
            .take(3)
            .collect()
    } else {
        name.chars().take(2).collect()
    }
}

fn check_ttl(ttl: i64) -> ApiResult<()> {
    if !(60..=86_400).contains(&ttl) {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_ttl",
            format!("invalid token TTL: must be between 60 and 86400 seconds, got {ttl}"),
        ));
    }
    Ok(())
}

fn check_scopes(scopes: &[String]) -> ApiResult<()> {
    // Stricter: a ceiling is stored for good; its size is bounded.
    if scopes.len() > super::admin::MAX_SCOPES {
        return Err(ApiError::bad_request("too many scopes"));
    }
    for s in scopes {
        if s.len() > super::admin::MAX_SCOPE || Scope::parse(s).is_err() {
            return Err(ApiError::bad_request(
                "invalid scope format: use action:resource:identifier",
            ));
        }
        if reserved_family(s) {
            return Err(reserved_error(s));
        }
    }
    Ok(())
}

fn app_json(app: &AppRow) -> Value {
    json!({
        "app_id": app.app_id,
        "name": app.name,
        "client_id": app.client_id,
        "scopes": app.scopes,
        "token_ttl": app.token_ttl,
        "status": app.status,
        "created_at": app.created_at,
        "updated_at": app.updated_at,
    })
}

fn not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "not_found", "app not found")
}

#[derive(Deserialize, Default)]
struct RegisterApp {
    #[serde(default)]
    name: String,
    #[serde(default)]
    scopes: Vec<String>,
    #[serde(default)]
    token_ttl: Option<i64>,
}

pub async fn register(
    State(st): State<Arc<BrokerState>>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<(StatusCode, Json<Value>)> {
    bearer(&st, &headers, "/v1/admin/apps", Some(MANAGE))?;
    let r: RegisterApp = decode(&body)?;
    if r.name.is_empty() {
        return Err(ApiError::bad_request("name is required"));
    }
    if r.scopes.is_empty() {
        return Err(ApiError::bad_request("scopes must not be empty"));
    }
    if let Some(ttl) = r.token_ttl {
        check_ttl(ttl)?;
    }
    if !valid_app_name(&r.name) {
        return Err(ApiError::bad_request(
            "invalid app name: must be lowercase letters, digits, and hyphens",
        ));
    }
    check_scopes(&r.scopes)?;
    let secret = random_hex(32);
    let secret_hash = bcrypt::hash(&secret, st.config.bcrypt_cost)
        .map_err(|_| ApiError::internal("failed to register app"))?;
    let stamp = rfc3339_seconds(now());
    let app = AppRow {
        app_id: format!("app-{}-{}", r.name, random_hex(3)),
        name: r.name.clone(),
        client_id: format!("{}-{}", client_id_prefix(&r.name), random_hex(6)),
        secret_hash,
        scopes: r.scopes.clone(),
        token_ttl: r.token_ttl.unwrap_or(st.config.app_token_ttl),
        status: "active".into(),
        created_at: stamp.clone(),
        updated_at: stamp,
    };
    st.store()
        .insert_app(&app)
        .map_err(|_| ApiError::internal("failed to register app"))?;
    st.audit(NewEvent {
        event_type: "app_registered",
        detail: format!(
            "app={} client_id={} scopes={} token_ttl={}",
            app.name,
            app.client_id,
            go_list(&app.scopes),
            app.token_ttl
        ),
        outcome: "success",
        ..NewEvent::default()
    });
    // As the real broker: `name` and `status` are emitted empty in this response.
    Ok((
        StatusCode::CREATED,
        Json(json!({
            "app_id": app.app_id,
            "name": "",
            "client_id": app.client_id,
            "client_secret": secret,
            "scopes": app.scopes,
            "token_ttl": app.token_ttl,
            "status": "",
        })),
    ))
}

pub async fn list(
    State(st): State<Arc<BrokerState>>,
    headers: HeaderMap,
) -> ApiResult<Json<Value>> {
    bearer(&st, &headers, "/v1/admin/apps", Some(MANAGE))?;
    let apps = st
        .store()
        .apps()
        .map_err(|_| ApiError::internal("failed to list apps"))?;
    let items: Vec<Value> = apps.iter().map(app_json).collect();
    Ok(Json(json!({ "apps": items, "total": items.len() })))
}

fn load(st: &BrokerState, id: &str) -> ApiResult<AppRow> {
    st.store()
        .app_by(AppKey::AppId, id)
        .map_err(|_| ApiError::internal("failed to load app"))?
        .ok_or_else(not_found)
}

pub async fn get(
    State(st): State<Arc<BrokerState>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    bearer(&st, &headers, &format!("/v1/admin/apps/{id}"), Some(MANAGE))?;
    Ok(Json(app_json(&load(&st, &id)?)))
}

#[derive(Deserialize, Default)]
struct UpdateApp {
    #[serde(default)]
    scopes: Vec<String>,
    #[serde(default)]
    token_ttl: Option<i64>,
}

pub async fn update(
    State(st): State<Arc<BrokerState>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> ApiResult<Json<Value>> {
    let admin = bearer(&st, &headers, &format!("/v1/admin/apps/{id}"), Some(MANAGE))?;
    let r: UpdateApp = decode(&body)?;
    if r.scopes.is_empty() && r.token_ttl.is_none() {
        return Err(ApiError::bad_request(
            "at least one of scopes or token_ttl must be provided",
        ));
    }
    // Scopes first, then the TTL: a bad TTL after good scopes leaves the scopes updated.
    if !r.scopes.is_empty() {
        check_scopes(&r.scopes)?;
        let mut app = load(&st, &id)?;
        app.scopes = r.scopes.clone();
        app.updated_at = rfc3339_seconds(now());
        st.store()
            .update_app(&app)
            .map_err(|_| ApiError::internal("failed to update app"))?;
        st.audit(NewEvent {
            event_type: "app_updated",
            detail: format!(
                "app_id={id} scopes={} updated_by={}",
                go_list(&app.scopes),
                admin.sub
            ),
            outcome: "success",
            ..NewEvent::default()
        });
    }
    if let Some(ttl) = r.token_ttl {
        check_ttl(ttl)?;
        let mut app = load(&st, &id)?;
        let old = app.token_ttl;
        app.token_ttl = ttl;
        app.updated_at = rfc3339_seconds(now());
        st.store()
            .update_app(&app)
            .map_err(|_| ApiError::internal("failed to update app"))?;
        st.audit(NewEvent {
            event_type: "app_updated",
            detail: format!(
                "app_id={id} token_ttl={old}->{ttl} updated_by={}",
                admin.sub
            ),
            outcome: "success",
            ..NewEvent::default()
        });
    }
    Ok(Json(app_json(&load(&st, &id)?)))
}

pub async fn delete(
    State(st): State<Arc<BrokerState>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let admin = bearer(&st, &headers, &format!("/v1/admin/apps/{id}"), Some(MANAGE))?;
    let mut app = load(&st, &id)?;
    app.status = "inactive".into();
    let stamp = rfc3339_seconds(now());
    app.updated_at = stamp.clone();
    st.store()
        .update_app(&app)
        .map_err(|_| ApiError::internal("failed to deregister app"))?;
    st.audit(NewEvent {
        event_type: "app_deregistered",
        detail: format!(
            "app_id={id} name={} deregistered_by={}",
            app.name, admin.sub
        ),
        outcome: "success",
        ..NewEvent::default()
    });
    Ok(Json(json!({
        "app_id": id,
        "name": "",
        "client_id": "",
        "scopes": null,
        "token_ttl": 0,
        "status": "inactive",
        "deregistered_at": stamp,
    })))
}

#[derive(Deserialize, Default)]
struct AppAuth {
    #[serde(default)]
    client_id: String,
    #[serde(default)]
    client_secret: String,
}

/// Longest client id taken for one; issued ids are `<abbrev>-<12 hex>`.
const MAX_CLIENT_ID: usize = 128;

pub async fn auth(State(st): State<Arc<BrokerState>>, request: Request) -> ApiResult<Json<Value>> {
    let ip = peer_ip(&request);
    let body = axum::body::to_bytes(request.into_body(), crate::envelope::MAX_BODY)
        .await
        .map_err(|_| ApiError::bad_request("failed to read request body"))?;
    // The limiter runs before validation, keyed by the body's client_id when there is one.
    // Stricter: an id longer than any the broker issues cannot be an app's; it is keyed by the
    // peer instead, so made-up ids cannot grow the limiter without bound.
    let key = serde_json::from_slice::<Value>(&body)
        .ok()
        .and_then(|v| v.get("client_id")?.as_str().map(str::to_string))
        .filter(|id| !id.is_empty() && id.len() <= MAX_CLIENT_ID)
        .unwrap_or(ip);
    if st.config.rate_limits && !st.mem().app_limiter.allow(&key, Instant::now()) {
        return Err(rate_limited(60));
    }
    let r: AppAuth = decode(&body)?;
    if r.client_id.is_empty() || r.client_secret.is_empty() {
        return Err(ApiError::bad_request(
            "client_id and client_secret are required",
        ));
    }
    let app = st
        .store()
        .app_by(AppKey::ClientId, &r.client_id)
        .map_err(|_| ApiError::internal("authentication error"))?;
    let reason = match &app {
        None => Some("unknown_client_id"),
        Some(a) if a.status != "active" => Some("app_inactive"),
        Some(a) if !bcrypt::verify(&r.client_secret, &a.secret_hash).unwrap_or(false) => {
            Some("wrong_secret")
        }
        Some(_) => None,
    };
    let app = match (reason, app) {
        (None, Some(app)) => app,
        (reason, _) => {
            st.audit(NewEvent {
                event_type: "app_auth_failed",
                detail: format!(
                    "client_id={} reason={}",
                    r.client_id,
                    reason.unwrap_or("unknown_client_id")
                ),
                outcome: "denied",
                ..NewEvent::default()
            });
            return Err(ApiError::unauthorized("Authentication failed"));
        }
    };
    let scopes = ["app:launch-tokens:*", "app:agents:*", "app:audit:read"];
    let claims = principal_claims(&st, &format!("app:{}", app.app_id), &scopes);
    let issued = st.issue(claims, app.token_ttl);
    let (token, expires_in) = (issued.token, issued.ttl);
    st.audit(NewEvent {
        event_type: "app_authenticated",
        detail: format!("client_id={} app_id={}", app.client_id, app.app_id),
        outcome: "success",
        ..NewEvent::default()
    });
    Ok(Json(json!({
        "access_token": token,
        "expires_in": expires_in,
        "token_type": "Bearer",
        "scopes": scopes,
    })))
}

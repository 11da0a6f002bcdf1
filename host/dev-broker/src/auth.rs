//! The bearer middleware (contract 1.6), as a function the protected handlers call first.

use axum::http::{HeaderMap, StatusCode};

use agentwrit::Scope;

use crate::audit::NewEvent;
use crate::jwt::Claims;
use crate::problem::ApiError;
use crate::state::BrokerState;

/// Longest bearer token looked at; the broker's own are well under 2 KiB.
const MAX_TOKEN: usize = 16 << 10;

/// Verifies the `Authorization: Bearer` token; every failure is audited and answered 401 (403 for
/// a missing route scope). Expired, tampered, released and revoked tokens look alike to clients.
pub fn bearer(
    state: &BrokerState,
    headers: &HeaderMap,
    path: &str,
    required: Option<&str>,
) -> Result<Claims, ApiError> {
    let fail = |reason: String, detail: &'static str| {
        state.audit(NewEvent {
            event_type: "token_auth_failed",
            detail: format!("{reason} | path={path}"),
            resource: path,
            outcome: "denied",
            ..NewEvent::default()
        });
        ApiError::unauthorized(detail)
    };
    let Some(value) = headers.get("authorization") else {
        return Err(fail(
            "missing authorization header".into(),
            "missing authorization header",
        ));
    };
    let Some(token) = value.to_str().ok().and_then(|v| v.strip_prefix("Bearer ")) else {
        return Err(fail(
            "invalid authorization scheme".into(),
            "invalid authorization scheme",
        ));
    };
    if token.len() > MAX_TOKEN {
        return Err(fail(
            format!("token verification failed: token is {} bytes", token.len()),
            "token verification failed",
        ));
    }
    let claims = state.verify(token).map_err(|reason| {
        fail(
            format!("token verification failed: {reason}"),
            "token verification failed",
        )
    })?;
    if let Some(audience) = &state.config.audience
        && !claims.aud.iter().any(|a| a == audience)
    {
        state.audit(NewEvent {
            event_type: "token_auth_failed",
            agent_id: &claims.sub,
            detail: format!("audience mismatch | expected={audience} | path={path}"),
            resource: path,
            outcome: "denied",
            ..NewEvent::default()
        });
        return Err(ApiError::unauthorized("token audience mismatch"));
    }
    if let Some(required) = required {
        let covered =
            Scope::parse(required).is_ok_and(|req| claims.held.iter().any(|h| h.covers(&req)));
        if !covered {
            state.audit(NewEvent {
                event_type: "scope_violation",
                agent_id: &claims.sub,
                task_id: &claims.task_id,
                orch_id: &claims.orch_id,
                detail: format!(
                    "scope_violation | required={required} | actual={} | path={path}",
                    claims.scope.join(",")
                ),
                resource: path,
                outcome: "denied",
                ..NewEvent::default()
            });
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "insufficient_scope",
                format!("token lacks required scope: {required}"),
            ));
        }
    }
    Ok(claims)
}

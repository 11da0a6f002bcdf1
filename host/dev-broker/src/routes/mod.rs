//! The 19 routes of the AgentWrit HTTP contract, one module per group.

pub mod admin;
pub mod agents;
pub mod apps;
pub mod public;

use std::sync::Arc;

use axum::Router;
use axum::http::StatusCode;
use axum::routing::{get, post};

use crate::envelope::envelope;
use crate::state::BrokerState;

/// The broker as an axum router: tests can drive it directly, [`crate::DevBroker`] serves it.
pub fn router(state: Arc<BrokerState>) -> Router {
    Router::new()
        .route("/v1/health", get(public::health))
        .route("/v1/metrics", get(public::metrics))
        .route("/v1/challenge", get(public::challenge))
        .route("/v1/register", post(agents::register))
        .route("/v1/token/validate", post(public::validate))
        .route("/v1/token/renew", post(agents::renew))
        .route("/v1/token/release", post(agents::release))
        .route("/v1/delegate", post(agents::delegate))
        .route("/v1/revoke", post(admin::revoke))
        .route("/v1/audit/events", get(admin::audit_events))
        .route("/v1/admin/auth", post(admin::admin_auth))
        .route("/v1/admin/launch-tokens", post(admin::admin_launch_tokens))
        .route("/v1/app/launch-tokens", post(admin::app_launch_tokens))
        .route("/v1/admin/apps", post(apps::register).get(apps::list))
        .route(
            "/v1/admin/apps/{id}",
            get(apps::get).put(apps::update).delete(apps::delete),
        )
        .route("/v1/app/auth", post(apps::auth))
        .fallback(|| async { (StatusCode::NOT_FOUND, "404 page not found\n") })
        .layer(axum::middleware::from_fn(envelope))
        .with_state(state)
}

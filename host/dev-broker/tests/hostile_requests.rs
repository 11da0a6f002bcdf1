//! The dev broker under bad input: no integer panics it, only objects decode where the contract
//! has objects, and what an unauthenticated caller sends is bounded before it is kept, stored or
//! logged.

use std::path::Path;

use agentwrit::AdminSecret;
use serde_json::{Value, json};
use sluice_dev_broker::{BrokerConfig, DevBroker, start_with_app};

const ADMIN: &str = "hardening-admin";

async fn broker(state: &Path) -> (DevBroker, sluice_dev_broker::AppCredentials) {
    let mut config = BrokerConfig::in_memory(AdminSecret::new(ADMIN));
    config.state_dir = Some(state.to_path_buf());
    config.rate_limits = false;
    let ceiling = ["read:analytics:*".to_string()];
    start_with_app(
        config,
        "127.0.0.1:0".parse().unwrap(),
        "hardening",
        &ceiling,
    )
    .await
    .unwrap()
}

async fn post(url: &str, bearer: Option<&str>, body: impl Into<reqwest::Body>) -> (u16, Value) {
    let mut request = reqwest::Client::new().post(url).body(body);
    if let Some(token) = bearer {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

async fn app_token(b: &DevBroker, creds: &sluice_dev_broker::AppCredentials) -> String {
    let body = json!({"client_id": creds.client_id, "client_secret": creds.client_secret.secret()});
    let (status, answer) = post(&format!("{}/v1/app/auth", b.url()), None, body.to_string()).await;
    assert_eq!(status, 200, "{answer}");
    answer["access_token"].as_str().unwrap().to_string()
}

async fn admin_token(b: &DevBroker) -> String {
    let body = json!({"secret": ADMIN}).to_string();
    let (status, answer) = post(&format!("{}/v1/admin/auth", b.url()), None, body).await;
    assert_eq!(status, 200, "{answer}");
    answer["access_token"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn the_largest_ttls_are_clamped_not_a_panic() {
    let state = tempfile::tempdir().unwrap();
    let (b, creds) = broker(state.path()).await;
    let token = app_token(&b, &creds).await;
    let body = json!({
        "agent_name": "big",
        "allowed_scope": ["read:analytics:x"],
        "ttl": i64::MAX,
        "max_ttl": i64::MAX,
    });
    let (status, answer) = post(
        &format!("{}/v1/app/launch-tokens", b.url()),
        Some(&token),
        body.to_string(),
    )
    .await;
    assert_eq!(status, 201, "{answer}");
    let expires = answer["expires_at"].as_str().unwrap();
    assert_eq!(expires.len(), "2026-01-01T00:00:00Z".len(), "{expires}");
    let admin = admin_token(&b).await;
    let body = json!({"agent_name": "big", "allowed_scope": ["read:analytics:x"], "ttl": i64::MAX});
    let (status, _) = post(
        &format!("{}/v1/admin/launch-tokens", b.url()),
        Some(&admin),
        body.to_string(),
    )
    .await;
    assert_eq!(status, 201);
    let body = json!({"delegate_to": "spiffe://x", "scope": ["read:analytics:x"], "ttl": i64::MIN});
    let (status, _) = post(
        &format!("{}/v1/delegate", b.url()),
        Some(&admin),
        body.to_string(),
    )
    .await;
    assert_eq!(
        status, 403,
        "only agents delegate here: answered, not a panic"
    );
    let health = reqwest::get(format!("{}/v1/health", b.url()))
        .await
        .unwrap();
    assert_eq!(health.status().as_u16(), 200, "the broker is still up");
}

#[tokio::test]
async fn json_arrays_where_the_contract_has_objects_are_malformed() {
    let state = tempfile::tempdir().unwrap();
    let (b, creds) = broker(state.path()).await;
    for (path, body) in [
        ("/v1/admin/auth", json!([ADMIN])),
        (
            "/v1/app/auth",
            json!([creds.client_id, creds.client_secret.secret()]),
        ),
        ("/v1/token/validate", json!(["x"])),
        ("/v1/admin/auth", json!(ADMIN)),
        ("/v1/admin/auth", json!(7)),
    ] {
        let (status, answer) = post(&format!("{}{path}", b.url()), None, body.to_string()).await;
        assert_eq!(status, 400, "{path} {body}: {answer}");
        assert_eq!(answer["detail"], "malformed JSON body", "{path}");
    }
}

#[tokio::test]
async fn unauthenticated_junk_is_bounded_before_it_is_kept_or_logged() {
    let state = tempfile::tempdir().unwrap();
    let (b, _) = broker(state.path()).await;
    let db = state.path().join("broker.db");
    let before = std::fs::metadata(&db).unwrap().len();
    let client = reqwest::Client::new();
    let long_path = format!("{}/v1/admin/apps/{}", b.url(), "p".repeat(50 << 10));
    let long_id = "c".repeat(512 << 10);
    for i in 0..45 {
        let response = client.get(&long_path).send().await.unwrap();
        assert_eq!(response.status().as_u16(), 401);
        let body = json!({"client_id": format!("{long_id}{i}"), "client_secret": "s"});
        let (status, _) = post(&format!("{}/v1/app/auth", b.url()), None, body.to_string()).await;
        assert_eq!(status, 401);
    }
    let grown = std::fs::metadata(&db).unwrap().len().saturating_sub(before);
    assert!(
        grown < 512 << 10,
        "the state grew {grown} bytes for 90 junk requests"
    );

    let admin = admin_token(&b).await;
    let events: Value = client
        .get(format!("{}/v1/audit/events?limit=1000", b.url()))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let events = events["events"].as_array().unwrap();
    assert!(events.len() >= 90);
    for event in events {
        let detail = event["detail"].as_str().unwrap_or("");
        let resource = event["resource"].as_str().unwrap_or("");
        assert!(
            detail.len() <= 1024 + 32,
            "{} bytes of detail",
            detail.len()
        );
        assert!(
            resource.len() <= 256 + 32,
            "{} bytes of resource",
            resource.len()
        );
    }
}

#[tokio::test]
async fn an_oversized_request_id_is_replaced_not_echoed() {
    let state = tempfile::tempdir().unwrap();
    let (b, _) = broker(state.path()).await;
    let response = reqwest::Client::new()
        .get(format!("{}/v1/health", b.url()))
        .header("x-request-id", "r".repeat(1024))
        .send()
        .await
        .unwrap();
    let id = response.headers()["x-request-id"].to_str().unwrap();
    assert_eq!(id.len(), 16, "{id}");
    let response = reqwest::Client::new()
        .get(format!("{}/v1/health", b.url()))
        .header("x-request-id", "trace-42")
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["x-request-id"], "trace-42");
}

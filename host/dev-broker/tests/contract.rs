//! The dev broker's behaviour over real HTTP, driven by the Rust client: revocation levels,
//! delegation depth, the contract's answers to malformed requests, app management, where it is
//! stricter than the real broker, its audit chain, and a restart with its state.

use agentwrit::operator::AdminClient;
use agentwrit::{AdminSecret, AgentRequest, Error};
use serde_json::{Value, json};
use sluice_dev_broker::testing::{ADMIN, admin, app, broker, ceiling, loopback, scopes, tenant};
use sluice_dev_broker::{
    AppCredentials, AuditEvent, BrokerConfig, DevBroker, first_broken, start_with_app,
};

/// `texts` as the operator API takes them: plain strings, checked by the broker.
fn texts<const N: usize>(texts: [&str; N]) -> Vec<String> {
    texts.map(String::from).to_vec()
}

#[tokio::test]
async fn chain_revocation_kills_delegated_tokens_but_not_the_roots_own() {
    let (b, creds) = broker().await;
    let app = app(&creds);
    let root = app
        .create_agent(AgentRequest::new("o", "root", scopes(["read:data:*"])))
        .await
        .unwrap();
    let leaf = app
        .create_agent(AgentRequest::new("o", "leaf", scopes(["read:data:x"])))
        .await
        .unwrap();
    let delegated = root
        .delegate(leaf.agent_id(), &scopes(["read:data:x"]), None)
        .await
        .unwrap();
    assert!(
        app.validate(&delegated.access_token)
            .await
            .unwrap()
            .is_valid()
    );
    admin(&b.url())
        .await
        .revoke("chain", root.agent_id())
        .await
        .unwrap();
    assert!(
        !app.validate(&delegated.access_token)
            .await
            .unwrap()
            .is_valid()
    );
    assert!(
        app.validate(root.access_token()).await.unwrap().is_valid(),
        "contract 8: the root's own token survives"
    );
    assert!(app.validate(leaf.access_token()).await.unwrap().is_valid());
}

#[tokio::test]
async fn delegation_chains_stop_at_depth_five() {
    let (b, creds) = broker().await;
    let app = app(&creds);
    let root = app
        .create_agent(AgentRequest::new("o", "root", scopes(["read:data:*"])))
        .await
        .unwrap();
    let hop = app
        .create_agent(AgentRequest::new("o", "hop", scopes(["read:data:x"])))
        .await
        .unwrap();
    let http = reqwest::Client::new();
    let mut token = root.access_token().secret().to_string();
    for depth in 1..=6 {
        let response = http
            .post(format!("{}/v1/delegate", b.url()))
            .bearer_auth(&token)
            .json(&json!({ "delegate_to": hop.agent_id(), "scope": ["read:data:x"] }))
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        let body: Value = response.json().await.unwrap();
        if depth <= 5 {
            assert_eq!(status, 200, "depth {depth}: {body}");
            assert_eq!(body["delegation_chain"].as_array().unwrap().len(), depth);
            token = body["access_token"].as_str().unwrap().to_string();
        } else {
            assert_eq!(status, 403);
            assert_eq!(body["detail"], "delegation depth limit exceeded");
        }
    }
}

async fn raw(b: &DevBroker, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
    reqwest::Client::new().request(method, format!("{}{path}", b.url()))
}

#[tokio::test]
async fn malformed_requests_get_the_contracts_answers() {
    let (b, creds) = broker().await;
    use reqwest::Method;

    let r = raw(&b, Method::POST, "/v1/token/validate")
        .await
        .body("{\"token\": ")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(r.headers()["content-type"], "application/problem+json");
    assert_eq!(r.headers()["x-content-type-options"], "nosniff");
    assert_eq!(r.headers()["cache-control"], "no-store");
    assert_eq!(r.headers()["x-frame-options"], "DENY");
    let request_id = r.headers()["x-request-id"].to_str().unwrap().to_string();
    let body: Value = r.json().await.unwrap();
    assert_eq!(
        body,
        json!({"type": "urn:agentwrit:error:invalid_request", "title": "Bad Request", "status": 400,
               "detail": "malformed JSON body", "instance": "/v1/token/validate",
               "error_code": "invalid_request", "request_id": request_id})
    );

    let r = raw(&b, Method::POST, "/v1/token/validate")
        .await
        .json(&json!({"token": ""}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(
        r.json::<Value>().await.unwrap()["detail"],
        "token field is required"
    );

    let r = raw(&b, Method::POST, "/v1/token/validate")
        .await
        .header("X-Request-ID", "trace-42")
        .body(vec![b' '; (1 << 20) + 1])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 413);
    assert_eq!(r.headers()["x-request-id"], "trace-42");
    assert!(
        r.headers().get("x-frame-options").is_none(),
        "413 is answered outside the security headers"
    );
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["detail"], "request body must not exceed 1 MB");
    assert_eq!(body["request_id"], "trace-42");

    let mut exactly = br#"{"token":"x"}"#.to_vec();
    exactly.resize(1 << 20, b' ');
    let r = raw(&b, Method::POST, "/v1/token/validate")
        .await
        .body(exactly)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "exactly 1 MiB is accepted");

    let r = raw(&b, Method::GET, "/v1/token/renew")
        .await
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 405);
    assert!(r.headers()["allow"].to_str().unwrap().contains("POST"));
    assert_eq!(r.text().await.unwrap(), "Method Not Allowed\n");

    let r = raw(&b, Method::GET, "/v1/health")
        .await
        .send()
        .await
        .unwrap();
    assert!(
        r.text().await.unwrap().ends_with("}\n"),
        "JSON bodies end with a newline, as Go's encoder writes them"
    );

    let r = raw(&b, Method::GET, "/v1/nothing")
        .await
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    assert_eq!(r.text().await.unwrap(), "404 page not found\n");

    for (auth, detail) in [
        (None, "missing authorization header"),
        (Some("Basic abc"), "invalid authorization scheme"),
        (Some("Bearer garbage"), "token verification failed"),
    ] {
        let mut req = raw(&b, Method::POST, "/v1/token/renew").await;
        if let Some(auth) = auth {
            req = req.header("Authorization", auth);
        }
        let r = req.send().await.unwrap();
        assert_eq!(r.status(), 401, "{detail}");
        assert_eq!(r.json::<Value>().await.unwrap()["detail"], detail);
    }

    // The app's token lacks admin:audit:*.
    let app_token = reqwest::Client::new()
        .post(format!("{}/v1/app/auth", b.url()))
        .json(&json!({"client_id": creds.client_id, "client_secret": creds.client_secret.secret()}))
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap()["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    let r = raw(&b, Method::GET, "/v1/audit/events?limit=1")
        .await
        .bearer_auth(&app_token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["type"], "urn:agentwrit:error:insufficient_scope");
    assert_eq!(body["detail"], "token lacks required scope: admin:audit:*");

    let r = raw(&b, Method::POST, "/v1/register")
        .await
        .json(&json!({"launch_token": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.json::<Value>().await.unwrap()["detail"],
        "missing required field"
    );
    let r = raw(&b, Method::POST, "/v1/admin/auth")
        .await
        .json(&json!({"client_id": "a", "client_secret": "b"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
}

#[tokio::test]
async fn operators_manage_apps_and_deregistered_apps_stop_working() {
    let (b, _) = broker().await;
    let admin = admin(&b.url()).await;
    let registered = admin
        .register_app("probe-app", &texts(["read:data:*"]), Some(900))
        .await
        .unwrap();
    assert!(registered.client_id.starts_with("pa-"));
    assert_eq!(registered.client_secret.secret().len(), 64);
    let apps = admin.list_apps().await.unwrap();
    assert_eq!(apps[0].name, "probe-app", "newest first");
    let got = admin.get_app(&registered.app_id).await.unwrap();
    assert_eq!((got.status.as_str(), got.token_ttl), ("active", 900));
    let updated = admin
        .update_app(&registered.app_id, Some(&texts(["read:data:x"])), None)
        .await
        .unwrap();
    assert_eq!(updated.scopes, ["read:data:x"]);
    let err = admin
        .update_app(&registered.app_id, None, Some(30))
        .await
        .unwrap_err();
    assert_eq!(
        err.problem().unwrap().kind,
        "urn:agentwrit:error:invalid_ttl"
    );
    let err = admin
        .register_app("Bad Name!", &texts(["read:data:*"]), None)
        .await
        .unwrap_err();
    assert_eq!(
        err.problem().unwrap().detail,
        "invalid app name: must be lowercase letters, digits, and hyphens"
    );
    let err = admin.get_app("app-none").await.unwrap_err();
    assert!(matches!(err, Error::NotFound(_)));

    let creds = AppCredentials {
        broker_url: b.url(),
        client_id: registered.client_id.clone(),
        client_secret: registered.client_secret.clone(),
    };
    let live = app(&creds);
    live.create_agent(AgentRequest::new("o", "t", scopes(["read:data:x"])))
        .await
        .unwrap();
    admin.delete_app(&registered.app_id).await.unwrap();
    // Stricter than the real broker: the deregistered app's unexpired token mints nothing.
    let err = live
        .create_agent(AgentRequest::new("o", "t2", scopes(["read:data:x"])))
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::Authorization(ref p) if p.detail == "app is deregistered"),
        "{err:?}"
    );
    let err = app(&creds)
        .create_agent(AgentRequest::new("o", "t3", scopes(["read:data:x"])))
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::Authentication(ref p) if p.detail == "Authentication failed"),
        "{err:?}"
    );
}

#[tokio::test]
async fn the_dev_broker_is_stricter_where_the_real_one_is_flawed() {
    let (b, creds) = broker().await;
    let admin = admin(&b.url()).await;
    let err = admin
        .register_app("escalator", &texts(["admin:revoke:*"]), None)
        .await
        .unwrap_err();
    assert!(
        err.problem()
            .unwrap()
            .detail
            .starts_with("scope 'admin:revoke:*' is reserved"),
        "{err}"
    );
    let err = admin
        .create_launch_token("x", &texts(["app:launch-tokens:*"]), 300, true, 30)
        .await
        .unwrap_err();
    assert_eq!(err.status(), Some(400));
    // Admin tokens cannot delegate their powers to an agent.
    let agent = app(&creds).create_agent(tenant("bank")).await.unwrap();
    let r = reqwest::Client::new()
        .post(format!("{}/v1/delegate", b.url()))
        .bearer_auth(admin.token().secret())
        .json(&json!({"delegate_to": agent.agent_id(), "scope": ["admin:revoke:*"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    assert_eq!(
        r.json::<Value>().await.unwrap()["detail"],
        "only agent tokens may delegate"
    );
}

async fn audit_chain(admin: &AdminClient) -> Vec<AuditEvent> {
    let page = admin.audit_events(&[("limit", "1000")]).await.unwrap();
    page.events
        .into_iter()
        .map(|e| serde_json::from_value(e).unwrap())
        .collect()
}

#[tokio::test]
async fn audit_events_filter_by_agent_and_chain_verifies() {
    let (b, creds) = broker().await;
    let mut agent = app(&creds).create_agent(tenant("hospital")).await.unwrap();
    agent.release().await.unwrap();
    let admin = admin(&b.url()).await;
    let page = admin
        .audit_events(&[("agent_id", agent.agent_id())])
        .await
        .unwrap();
    let types: Vec<&str> = page
        .events
        .iter()
        .map(|e| e["event_type"].as_str().unwrap())
        .collect();
    assert_eq!(
        types,
        ["agent_registered", "token_issued", "token_released"]
    );
    assert_eq!(page.total, 3);
    let events = audit_chain(&admin).await;
    assert_eq!(first_broken(&events), None);
    assert_eq!(events[0].id, "evt-000001");
    assert!(
        events
            .iter()
            .all(|e| !e.detail.contains(creds.client_secret.secret()))
    );
}

#[tokio::test]
async fn a_restarted_broker_keeps_apps_revocations_and_its_audit_chain() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = BrokerConfig::in_memory(AdminSecret::new(ADMIN));
    config.state_dir = Some(dir.path().to_path_buf());
    let (b, creds) = start_with_app(config.clone(), loopback(), "sample-apps", &ceiling())
        .await
        .unwrap();
    let agent = app(&creds).create_agent(tenant("bank")).await.unwrap();
    let kept = app(&creds).create_agent(tenant("retail")).await.unwrap();
    admin(&b.url())
        .await
        .revoke("agent", agent.agent_id())
        .await
        .unwrap();
    let before = audit_chain(&admin(&b.url()).await).await.len();
    b.shutdown().await;

    let (b, again) = start_with_app(config, loopback(), "sample-apps", &ceiling())
        .await
        .unwrap();
    assert_eq!(again.client_id, creds.client_id);
    let app = app(&again);
    app.create_agent(tenant("hospital")).await.unwrap();
    assert!(
        !app.validate(agent.access_token()).await.unwrap().is_valid(),
        "revocation survived"
    );
    assert!(
        app.validate(kept.access_token()).await.unwrap().is_valid(),
        "same signing key"
    );
    let events = audit_chain(&admin(&b.url()).await).await;
    assert!(events.len() > before);
    assert_eq!(first_broken(&events), None);
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(dir.path().join("signing.key"))
            .unwrap()
            .permissions(),
    );
    assert_eq!(mode & 0o777, 0o600);
}

/// A token's signature is verified once and its claims cached; its expiry and revocation are
/// still checked on every call.
#[tokio::test]
async fn a_cached_verification_still_expires_and_is_still_revoked() {
    let (b, creds) = broker().await;
    let app = app(&creds);
    let short = app.create_agent(tenant("bank").max_ttl(1)).await.unwrap();
    for _ in 0..3 {
        assert!(app.validate(short.access_token()).await.unwrap().is_valid());
    }
    tokio::time::sleep(std::time::Duration::from_millis(2_100)).await;
    assert!(
        !app.validate(short.access_token()).await.unwrap().is_valid(),
        "expired after it was cached"
    );
    let long = app.create_agent(tenant("retail")).await.unwrap();
    assert!(app.validate(long.access_token()).await.unwrap().is_valid());
    admin(&b.url())
        .await
        .revoke("agent", long.agent_id())
        .await
        .unwrap();
    assert!(
        !app.validate(long.access_token()).await.unwrap().is_valid(),
        "revoked after it was cached"
    );
}

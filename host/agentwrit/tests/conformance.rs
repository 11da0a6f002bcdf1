//! The Rust client against the dev broker over real HTTP: every route, happy and error paths.

use std::net::SocketAddr;
use std::time::Duration;

use agentwrit::operator::AdminClient;
use agentwrit::{AdminSecret, AgentRequest, AgentWritApp, Error, scope_is_subset};
use base64::Engine as _;
use serde_json::{Value, json};
use sluice_dev_broker::{
    AppCredentials, AuditEvent, BrokerConfig, DevBroker, first_broken, start_with_app,
};

const ADMIN: &str = "conformance-admin-secret";

fn loopback() -> SocketAddr {
    "127.0.0.1:0".parse().unwrap()
}

fn ceiling() -> Vec<String> {
    ["read:analytics:*", "write:reports:*", "read:data:*"]
        .map(String::from)
        .to_vec()
}

async fn broker() -> (DevBroker, AppCredentials) {
    let config = BrokerConfig::in_memory(AdminSecret::new(ADMIN));
    start_with_app(config, loopback(), "sample-apps", &ceiling())
        .await
        .expect("starting the dev broker")
}

fn app(creds: &AppCredentials) -> AgentWritApp {
    AgentWritApp::new(
        &creds.broker_url,
        &creds.client_id,
        creds.client_secret.clone(),
    )
    .unwrap()
}

async fn admin(url: &str) -> AdminClient {
    AdminClient::authenticate(url, &AdminSecret::new(ADMIN))
        .await
        .unwrap()
}

fn tenant(t: &str) -> AgentRequest {
    AgentRequest::new(
        "nightly-pipeline",
        format!("etl-{t}-1795827521"),
        [format!("read:analytics:{t}"), format!("write:reports:{t}")],
    )
}

fn jwt_part(token: &str, index: usize) -> Value {
    let part = token.split('.').nth(index).unwrap();
    serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(part)
            .unwrap(),
    )
    .unwrap()
}

#[tokio::test]
async fn health_is_public_and_reports_the_real_brokers_version() {
    let (b, creds) = broker().await;
    let health = app(&creds).health().await.unwrap();
    assert_eq!(
        (
            health.status.as_str(),
            health.version.as_str(),
            health.db_connected
        ),
        ("ok", "2.0.0", true)
    );
    assert!(
        health.audit_events_count >= 2,
        "admin auth and app registration are audited"
    );
    drop(b);
}

#[tokio::test]
async fn create_agent_gets_a_spiffe_id_an_eddsa_jwt_and_exactly_its_scopes() {
    let (_b, creds) = broker().await;
    let app = app(&creds);
    let mut agent = app.create_agent(tenant("hospital")).await.unwrap();
    let prefix = "spiffe://agentwrit.local/agent/nightly-pipeline/etl-hospital-1795827521/";
    assert!(agent.agent_id().starts_with(prefix), "{}", agent.agent_id());
    assert_eq!(agent.agent_id().len(), prefix.len() + 16);
    assert_eq!(agent.expires_in(), 300);
    let header = jwt_part(agent.access_token().secret(), 0);
    assert_eq!(header["alg"], "EdDSA");
    assert_eq!(header["typ"], "JWT");
    assert_eq!(header["kid"].as_str().unwrap().len(), 43);

    let result = app.validate(agent.access_token().secret()).await.unwrap();
    assert!(result.valid);
    let claims = result.claims.unwrap();
    assert_eq!(claims.sub, agent.agent_id());
    assert_eq!(
        claims.scope,
        ["read:analytics:hospital", "write:reports:hospital"]
    );
    assert_eq!(claims.task_id.as_deref(), Some("etl-hospital-1795827521"));
    assert_eq!(claims.orch_id.as_deref(), Some("nightly-pipeline"));
    assert_eq!(claims.exp - claims.iat, 300);

    let other = app.create_agent(tenant("bank")).await.unwrap();
    assert_ne!(other.agent_id(), agent.agent_id());
    assert!(!scope_is_subset(&["read:analytics:bank"], agent.scope()));
    agent.release().await.unwrap();
}

#[tokio::test]
async fn renew_replaces_the_token_and_kills_the_old_one() {
    let (_b, creds) = broker().await;
    let app = app(&creds);
    let mut agent = app.create_agent(tenant("bank")).await.unwrap();
    let old = agent.access_token().clone();
    let id = agent.agent_id().to_string();
    agent.renew().await.unwrap();
    assert_ne!(agent.access_token(), &old);
    assert_eq!(agent.agent_id(), id);
    assert!(!app.validate(old.secret()).await.unwrap().valid);
    assert!(
        app.validate(agent.access_token().secret())
            .await
            .unwrap()
            .valid
    );
}

#[tokio::test]
async fn release_twice_is_fine_and_a_released_agent_does_nothing_more() {
    let (_b, creds) = broker().await;
    let app = app(&creds);
    let mut agent = app.create_agent(tenant("retail")).await.unwrap();
    agent.release().await.unwrap();
    agent.release().await.unwrap();
    assert!(agent.is_released());
    let result = app.validate(agent.access_token().secret()).await.unwrap();
    assert_eq!(
        (result.valid, result.error.as_deref()),
        (false, Some("token is invalid or expired"))
    );
    let err = agent.renew().await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "agent has been released and cannot be renewed"
    );
    let err = agent
        .delegate("spiffe://x", &["read:analytics:retail".into()], None)
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "agent has been released and cannot delegate"
    );
}

#[tokio::test]
async fn delegation_narrows_and_refuses_to_widen_with_a_full_problem() {
    let (_b, creds) = broker().await;
    let app = app(&creds);
    let a = app
        .create_agent(AgentRequest::new(
            "o",
            "task-a",
            ["read:data:*", "write:reports:a"],
        ))
        .await
        .unwrap();
    let b = app
        .create_agent(AgentRequest::new("o", "task-b", ["read:data:x"]))
        .await
        .unwrap();
    let token = a
        .delegate(b.agent_id(), &["read:data:reports".into()], Some(60))
        .await
        .unwrap();
    assert_eq!(token.expires_in, 60);
    assert_eq!(token.delegation_chain.len(), 1);
    assert_eq!(token.delegation_chain[0].agent, a.agent_id());
    assert_eq!(
        token.delegation_chain[0].scope,
        ["read:data:*", "write:reports:a"]
    );
    let claims = app
        .validate(token.access_token.secret())
        .await
        .unwrap()
        .claims
        .unwrap();
    assert_eq!(claims.sub, b.agent_id());
    assert_eq!(claims.scope, ["read:data:reports"]);
    assert_eq!(claims.task_id.as_deref(), Some("task-a"));
    assert_eq!(claims.chain_hash.as_ref().map(String::len), Some(64));

    let err = a
        .delegate(b.agent_id(), &["write:reports:b".into()], None)
        .await
        .unwrap_err();
    let Error::Authorization(problem) = &err else {
        panic!("{err:?}")
    };
    assert_eq!(problem.kind, "urn:agentwrit:error:scope_violation");
    assert_eq!(problem.title, "Forbidden");
    assert_eq!(problem.status, 403);
    assert_eq!(problem.detail, "delegated scope exceeds delegator scope");
    assert_eq!(problem.instance, "/v1/delegate");
    assert_eq!(problem.error_code.as_deref(), Some("scope_violation"));
    assert_eq!(problem.request_id.as_ref().map(String::len), Some(16));

    let err = a
        .delegate(
            "spiffe://agentwrit.local/agent/o/none/0",
            &["read:data:x".into()],
            None,
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::NotFound(ref p) if p.detail == "delegate agent not found"),
        "{err:?}"
    );
}

#[tokio::test]
async fn chain_revocation_kills_delegated_tokens_but_not_the_roots_own() {
    let (b, creds) = broker().await;
    let app = app(&creds);
    let root = app
        .create_agent(AgentRequest::new("o", "root", ["read:data:*"]))
        .await
        .unwrap();
    let leaf = app
        .create_agent(AgentRequest::new("o", "leaf", ["read:data:x"]))
        .await
        .unwrap();
    let delegated = root
        .delegate(leaf.agent_id(), &["read:data:x".into()], None)
        .await
        .unwrap();
    assert!(
        app.validate(delegated.access_token.secret())
            .await
            .unwrap()
            .valid
    );
    admin(&b.url())
        .await
        .revoke("chain", root.agent_id())
        .await
        .unwrap();
    assert!(
        !app.validate(delegated.access_token.secret())
            .await
            .unwrap()
            .valid
    );
    assert!(
        app.validate(root.access_token().secret())
            .await
            .unwrap()
            .valid,
        "contract 8: the root's own token survives"
    );
    assert!(
        app.validate(leaf.access_token().secret())
            .await
            .unwrap()
            .valid
    );
}

#[tokio::test]
async fn delegation_chains_stop_at_depth_five() {
    let (b, creds) = broker().await;
    let app = app(&creds);
    let root = app
        .create_agent(AgentRequest::new("o", "root", ["read:data:*"]))
        .await
        .unwrap();
    let hop = app
        .create_agent(AgentRequest::new("o", "hop", ["read:data:x"]))
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

#[tokio::test]
async fn scopes_outside_the_app_ceiling_are_forbidden() {
    let (_b, creds) = broker().await;
    let err = app(&creds)
        .create_agent(AgentRequest::new(
            "o",
            "t",
            ["read:analytics:bank", "write:billing:bank"],
        ))
        .await
        .unwrap_err();
    let Error::Authorization(p) = &err else {
        panic!("{err:?}")
    };
    assert_eq!(p.kind, "urn:agentwrit:error:forbidden");
    assert_eq!(p.detail, "requested scopes exceed app ceiling");
}

#[tokio::test]
async fn validate_says_false_for_garbage_expired_released_and_revoked_tokens() {
    let (b, creds) = broker().await;
    let app = app(&creds);
    for garbage in ["not-a-jwt", "a.b.c", "eyJhbGciOiJub25lIn0.e30.", ""] {
        let r = app.validate(garbage).await.unwrap();
        assert!(!r.valid, "{garbage:?}");
    }
    assert!(!agentwrit::validate(&b.url(), "x.y.z").await.unwrap().valid);

    let short = app
        .create_agent(tenant("hospital").max_ttl(1))
        .await
        .unwrap();
    assert_eq!(short.expires_in(), 1);
    tokio::time::sleep(Duration::from_millis(2_200)).await;
    assert!(
        !app.validate(short.access_token().secret())
            .await
            .unwrap()
            .valid
    );

    let admin = admin(&b.url()).await;
    let by_jti = app.create_agent(tenant("bank")).await.unwrap();
    let jti = app
        .validate(by_jti.access_token().secret())
        .await
        .unwrap()
        .claims
        .unwrap()
        .jti;
    let revoked = admin.revoke("token", &jti).await.unwrap();
    assert_eq!((revoked.revoked, revoked.count), (true, 1));
    assert!(
        !app.validate(by_jti.access_token().secret())
            .await
            .unwrap()
            .valid
    );

    let by_agent = app.create_agent(tenant("retail")).await.unwrap();
    admin.revoke("agent", by_agent.agent_id()).await.unwrap();
    assert!(
        !app.validate(by_agent.access_token().secret())
            .await
            .unwrap()
            .valid
    );

    let by_task = app
        .create_agent(AgentRequest::new("o", "doomed-task", ["read:data:x"]))
        .await
        .unwrap();
    admin.revoke("task", "doomed-task").await.unwrap();
    assert!(
        !app.validate(by_task.access_token().secret())
            .await
            .unwrap()
            .valid
    );

    let err = admin.revoke("galaxy", "x").await.unwrap_err();
    assert_eq!(
        err.problem().unwrap().detail,
        "invalid revocation level: galaxy"
    );
    // A revoked agent's own release is refused as the real broker refuses it: 401.
    let mut dead = by_agent;
    let err = dead.release().await.unwrap_err();
    assert!(
        matches!(err, Error::Authentication(ref p) if p.detail == "token verification failed"),
        "{err:?}"
    );
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
async fn app_auth_is_rate_limited_per_client_id() {
    let (_b, creds) = broker().await;
    // Three tokens per client_id, then one every six seconds.
    let mut last = None;
    for _ in 0..4 {
        last = Some(app(&creds).create_agent(tenant("bank")).await);
    }
    let err = last.unwrap().unwrap_err();
    let Error::RateLimited {
        problem,
        retry_after,
    } = &err
    else {
        panic!("{err:?}")
    };
    assert_eq!(problem.detail, "rate limit exceeded, try again later");
    assert_eq!(*retry_after, Some(Duration::from_secs(60)));
}

#[tokio::test]
async fn operators_manage_apps_and_deregistered_apps_stop_working() {
    let (b, _) = broker().await;
    let admin = admin(&b.url()).await;
    let registered = admin
        .register_app("probe-app", &["read:data:*".into()], Some(900))
        .await
        .unwrap();
    assert!(registered.client_id.starts_with("pa-"));
    assert_eq!(registered.client_secret.secret().len(), 64);
    let apps = admin.list_apps().await.unwrap();
    assert_eq!(apps[0].name, "probe-app", "newest first");
    let got = admin.get_app(&registered.app_id).await.unwrap();
    assert_eq!((got.status.as_str(), got.token_ttl), ("active", 900));
    let updated = admin
        .update_app(&registered.app_id, Some(&["read:data:x".into()]), None)
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
        .register_app("Bad Name!", &["read:data:*".into()], None)
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
    live.create_agent(AgentRequest::new("o", "t", ["read:data:x"]))
        .await
        .unwrap();
    admin.delete_app(&registered.app_id).await.unwrap();
    // Stricter than the real broker: the deregistered app's unexpired token mints nothing.
    let err = live
        .create_agent(AgentRequest::new("o", "t2", ["read:data:x"]))
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::Authorization(ref p) if p.detail == "app is deregistered"),
        "{err:?}"
    );
    let err = app(&creds)
        .create_agent(AgentRequest::new("o", "t3", ["read:data:x"]))
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
        .register_app("escalator", &["admin:revoke:*".into()], None)
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
        .create_launch_token("x", &["app:launch-tokens:*".into()], 300, true, 30)
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

#[tokio::test]
async fn admin_launch_tokens_register_agents_without_an_app() {
    let (b, _) = broker().await;
    let admin = admin(&b.url()).await;
    let grant = admin
        .create_launch_token("deleg-demo", &["read:data:*".into()], 600, false, 60)
        .await
        .unwrap();
    assert_eq!(grant.max_ttl, 600);
    assert_eq!(grant.launch_token.secret().len(), 64);
    assert!(format!("{grant:?}").contains("LaunchToken([redacted])"));
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
        !app.validate(agent.access_token().secret())
            .await
            .unwrap()
            .valid,
        "revocation survived"
    );
    assert!(
        app.validate(kept.access_token().secret())
            .await
            .unwrap()
            .valid,
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

#[tokio::test]
async fn secrets_and_tokens_stay_out_of_debug_output() {
    let (_b, creds) = broker().await;
    let app = app(&creds);
    let shown = format!("{app:?} {creds:?}");
    assert!(!shown.contains(creds.client_secret.secret()), "{shown}");
    assert!(shown.contains("ClientSecret([redacted])"));
    let agent = app.create_agent(tenant("bank")).await.unwrap();
    let shown = format!("{agent:?}");
    assert!(!shown.contains(agent.access_token().secret()));
    assert!(shown.contains(agent.agent_id()));
}

#[tokio::test]
async fn an_unreachable_broker_is_a_transport_error_naming_it() {
    let app = AgentWritApp::new("http://127.0.0.1:1/", "id", "secret".into()).unwrap();
    let err = app.health().await.unwrap_err();
    assert!(matches!(err, Error::Transport { .. }));
    assert!(
        err.to_string()
            .starts_with("broker unreachable at http://127.0.0.1:1: connection failed"),
        "{err}"
    );
}

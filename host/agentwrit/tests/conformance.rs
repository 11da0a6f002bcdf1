//! The Rust client against the dev broker over real HTTP: what the client does with every answer
//! (typed errors, scopes, tokens, secrets kept out of output). The broker's own behaviour is tested
//! next to it, in `host/dev-broker/tests`.

use std::time::Duration;

use agentwrit::{AccessToken, AgentRequest, AgentWritApp, Error, Validation, scope_is_subset};
use base64::Engine as _;
use serde_json::Value;
use sluice_dev_broker::testing::{admin, app, broker, scopes, tenant};

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

    let result = app.validate(agent.access_token()).await.unwrap();
    let Validation::Valid(claims) = result else {
        panic!("a new agent is valid: {result:?}");
    };
    assert_eq!(claims.sub, agent.agent_id());
    assert_eq!(
        claims.scope,
        scopes(["read:analytics:hospital", "write:reports:hospital"])
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
    assert!(!app.validate(&old).await.unwrap().is_valid());
    assert!(app.validate(agent.access_token()).await.unwrap().is_valid());
}

#[tokio::test]
async fn release_twice_is_fine_and_a_released_agent_does_nothing_more() {
    let (_b, creds) = broker().await;
    let app = app(&creds);
    let mut agent = app.create_agent(tenant("retail")).await.unwrap();
    agent.release().await.unwrap();
    agent.release().await.unwrap();
    assert!(agent.is_released());
    let result = app.validate(agent.access_token()).await.unwrap();
    assert_eq!(
        result,
        Validation::Invalid("token is invalid or expired".into())
    );
    let err = agent.renew().await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "agent has been released and cannot be renewed"
    );
    let err = agent
        .delegate("spiffe://x", &scopes(["read:analytics:retail"]), None)
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
            scopes(["read:data:*", "write:reports:a"]),
        ))
        .await
        .unwrap();
    let b = app
        .create_agent(AgentRequest::new("o", "task-b", scopes(["read:data:x"])))
        .await
        .unwrap();
    let token = a
        .delegate(b.agent_id(), &scopes(["read:data:reports"]), Some(60))
        .await
        .unwrap();
    assert_eq!(token.expires_in, 60);
    assert_eq!(token.delegation_chain.len(), 1);
    assert_eq!(token.delegation_chain[0].agent, a.agent_id());
    assert_eq!(
        token.delegation_chain[0].scope,
        scopes(["read:data:*", "write:reports:a"])
    );
    let claims = app
        .validate(&token.access_token)
        .await
        .unwrap()
        .claims()
        .cloned()
        .unwrap();
    assert_eq!(claims.sub, b.agent_id());
    assert_eq!(claims.scope, scopes(["read:data:reports"]));
    assert_eq!(claims.task_id.as_deref(), Some("task-a"));
    assert_eq!(claims.chain_hash.as_ref().map(String::len), Some(64));

    let err = a
        .delegate(b.agent_id(), &scopes(["write:reports:b"]), None)
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
            &scopes(["read:data:x"]),
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
async fn scopes_outside_the_app_ceiling_are_forbidden() {
    let (_b, creds) = broker().await;
    let err = app(&creds)
        .create_agent(AgentRequest::new(
            "o",
            "t",
            scopes(["read:analytics:bank", "write:billing:bank"]),
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
        let r = app.validate(&AccessToken::new(garbage)).await.unwrap();
        assert!(!r.is_valid(), "{garbage:?}");
    }
    let garbage = AccessToken::new("x.y.z");
    assert!(
        !agentwrit::validate(&b.url(), &garbage)
            .await
            .unwrap()
            .is_valid()
    );

    let short = app
        .create_agent(tenant("hospital").max_ttl(1))
        .await
        .unwrap();
    assert_eq!(short.expires_in(), 1);
    tokio::time::sleep(Duration::from_millis(2_200)).await;
    assert!(!app.validate(short.access_token()).await.unwrap().is_valid());

    let admin = admin(&b.url()).await;
    let by_jti = app.create_agent(tenant("bank")).await.unwrap();
    let jti = app
        .validate(by_jti.access_token())
        .await
        .unwrap()
        .claims()
        .cloned()
        .unwrap()
        .jti;
    let revoked = admin.revoke("token", &jti).await.unwrap();
    assert_eq!((revoked.revoked, revoked.count), (true, 1));
    assert!(
        !app.validate(by_jti.access_token())
            .await
            .unwrap()
            .is_valid()
    );

    let by_agent = app.create_agent(tenant("retail")).await.unwrap();
    admin.revoke("agent", by_agent.agent_id()).await.unwrap();
    assert!(
        !app.validate(by_agent.access_token())
            .await
            .unwrap()
            .is_valid()
    );

    let by_task = app
        .create_agent(AgentRequest::new(
            "o",
            "doomed-task",
            scopes(["read:data:x"]),
        ))
        .await
        .unwrap();
    admin.revoke("task", "doomed-task").await.unwrap();
    assert!(
        !app.validate(by_task.access_token())
            .await
            .unwrap()
            .is_valid()
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

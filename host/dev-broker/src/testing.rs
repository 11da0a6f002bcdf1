//! A dev broker for tests of code that talks to AgentWrit: on an ephemeral loopback port, in
//! memory, with an app whose ceiling covers every tenant's analytics, reports and data. The
//! client's conformance tests and the broker's contract tests share these, so both exercise the
//! broker the same way.

use std::net::SocketAddr;

use agentwrit::operator::AdminClient;
use agentwrit::{AdminSecret, AgentRequest, AgentWritApp, Scope};

use crate::{AppCredentials, BrokerConfig, DevBroker, start_with_app};

/// The admin secret of [`broker`]'s broker.
pub const ADMIN: &str = "conformance-admin-secret";

/// An ephemeral port on loopback.
pub fn loopback() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 0))
}

/// The ceiling of [`broker`]'s app.
pub fn ceiling() -> Vec<String> {
    ["read:analytics:*", "write:reports:*", "read:data:*"]
        .map(String::from)
        .to_vec()
}

/// A broker in memory on loopback, with an app named `sample-apps` under [`ceiling`].
pub async fn broker() -> (DevBroker, AppCredentials) {
    let config = BrokerConfig::in_memory(AdminSecret::new(ADMIN));
    start_with_app(config, loopback(), "sample-apps", &ceiling())
        .await
        .expect("starting the dev broker")
}

/// The app of `creds`, as a client.
pub fn app(creds: &AppCredentials) -> AgentWritApp {
    AgentWritApp::new(
        &creds.broker_url,
        &creds.client_id,
        creds.client_secret.clone(),
    )
    .expect("the dev broker's URL")
}

/// The operator of the broker at `url`, authenticated with [`ADMIN`].
pub async fn admin(url: &str) -> AdminClient {
    AdminClient::authenticate(url, &AdminSecret::new(ADMIN))
        .await
        .expect("authenticating as the operator")
}

/// `texts` as scopes (tests only write valid ones).
pub fn scopes<S: AsRef<str>>(texts: impl IntoIterator<Item = S>) -> Vec<Scope> {
    texts
        .into_iter()
        .map(|t| Scope::parse(t.as_ref()).expect("a valid scope"))
        .collect()
}

/// What the nightly pipeline asks for tenant `t`: its analytics to read, its reports to write.
pub fn tenant(t: &str) -> AgentRequest {
    AgentRequest::new(
        "nightly-pipeline",
        format!("etl-{t}-1795827521"),
        scopes([format!("read:analytics:{t}"), format!("write:reports:{t}")]),
    )
}

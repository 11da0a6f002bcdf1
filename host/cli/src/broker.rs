//! Where a night's agents come from: a real AgentWrit broker named by the environment or the
//! configuration, or else the embedded dev broker, started here, in process, on loopback.

use std::net::SocketAddr;
use std::time::Duration;

use agentwrit::{AgentWritApp, ClientSecret};
use anyhow::Context as _;
use sluice_dev_broker::{BrokerConfig, DevBroker, random_admin_secret, start_with_app};
use sluice_pipeline::broker::Broker;
use sluice_pipeline::config::BrokerSetting;

/// `AGENTWRIT_BROKER_URL` + `AGENTWRIT_CLIENT_ID` + `AGENTWRIT_CLIENT_SECRET` win; then the
/// configuration's `[broker] url`; else an embedded dev broker on an ephemeral loopback port,
/// returned beside the app so the caller keeps it alive for the night.
pub async fn connect(
    setting: &BrokerSetting,
    timeout: Duration,
) -> anyhow::Result<(Broker, Option<DevBroker>)> {
    if let Some(app) = AgentWritApp::from_env_with_timeout(timeout) {
        let app = app.context("AGENTWRIT_BROKER_URL")?;
        return Ok((
            Broker::described(app, Some("(from AGENTWRIT_* variables)")),
            None,
        ));
    }
    match setting {
        BrokerSetting::External {
            url,
            client_id,
            client_secret_env,
        } => {
            let id = client_id
                .clone()
                .or_else(|| std::env::var("AGENTWRIT_CLIENT_ID").ok())
                .filter(|v| !v.is_empty())
                .context("[broker] url is set but there is no client id: set broker.client_id or AGENTWRIT_CLIENT_ID")?;
            let var = client_secret_env
                .clone()
                .unwrap_or_else(|| "AGENTWRIT_CLIENT_SECRET".into());
            let secret = std::env::var(&var)
                .ok()
                .filter(|v| !v.is_empty())
                .with_context(|| {
                    format!("[broker] url is set but ${var} (the client secret) is not")
                })?;
            let app = AgentWritApp::with_timeout(url, id, ClientSecret::new(secret), timeout)?;
            Ok((Broker::external(app), None))
        }
        BrokerSetting::Embedded { ceiling } => {
            let mut config = BrokerConfig::in_memory(random_admin_secret());
            // The embedded broker serves only this process's pipeline: no client is throttled.
            config.rate_limits = false;
            let addr = SocketAddr::from(([127, 0, 0, 1], 0));
            let ceiling: Vec<String> = ceiling.iter().map(|s| s.as_str().to_string()).collect();
            let (broker, creds) = start_with_app(config, addr, "sluice-pipeline", &ceiling)
                .await
                .context("starting the embedded AgentWrit dev broker")?;
            let app = AgentWritApp::with_timeout(
                &creds.broker_url,
                creds.client_id,
                creds.client_secret,
                timeout,
            )?;
            Ok((Broker::embedded(app), Some(broker)))
        }
    }
}

/// How long a night waits out the broker's rate limit on app authentication.
const AUTH_PATIENCE: Duration = Duration::from_secs(30 * 60);

/// Authenticates the app, waiting out the broker's rate limit (the shards of a night share one
/// app and start together) and saying so on stderr. Any other failure is left for
/// `Pipeline::start`, which names the credentials to check.
pub async fn authenticate_patiently(broker: &Broker) {
    let _ = agentwrit::rate_limit::patiently(
        AUTH_PATIENCE,
        |wait| {
            eprintln!(
                "sluice: the broker rate-limited app authentication; trying again in {:.0} s",
                wait.as_secs_f64()
            )
        },
        || broker.app().authenticate(),
    )
    .await;
}

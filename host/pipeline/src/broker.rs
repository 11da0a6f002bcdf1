//! Where the pipeline's agents come from: a real AgentWrit broker named by the environment or the
//! configuration, or else the embedded dev broker started in process.

use std::net::SocketAddr;
use std::time::Duration;

use agentwrit::{AgentWritApp, ClientSecret};
use anyhow::Context as _;
use sluice_dev_broker::{BrokerConfig, DevBroker, random_admin_secret, start_with_app};

use crate::config::BrokerSetting;

/// A connected app, and the embedded broker behind it when there is one (kept alive with it).
pub struct Broker {
    pub app: AgentWritApp,
    pub description: String,
    _embedded: Option<DevBroker>,
}

impl Broker {
    /// A broker the caller already connected to (e.g. an app built by hand).
    pub fn external(app: AgentWritApp) -> Broker {
        Broker {
            description: format!("AgentWrit broker at {}", app.broker_url()),
            app,
            _embedded: None,
        }
    }

    pub fn is_embedded(&self) -> bool {
        self._embedded.is_some()
    }
}

/// `AGENTWRIT_BROKER_URL` + `AGENTWRIT_CLIENT_ID` + `AGENTWRIT_CLIENT_SECRET` win; then the
/// configuration's `[broker] url`; else an embedded dev broker on an ephemeral loopback port.
pub async fn connect(setting: &BrokerSetting, timeout: Duration) -> anyhow::Result<Broker> {
    if let Some(app) = AgentWritApp::from_env_with_timeout(timeout) {
        let app = app.context("AGENTWRIT_BROKER_URL")?;
        return Ok(Broker {
            description: format!(
                "AgentWrit broker at {} (from AGENTWRIT_* variables)",
                app.broker_url()
            ),
            app,
            _embedded: None,
        });
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
            Ok(Broker {
                description: format!("AgentWrit broker at {url}"),
                app,
                _embedded: None,
            })
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
            Ok(Broker {
                description: format!("embedded AgentWrit dev broker at {}", broker.url()),
                app,
                _embedded: Some(broker),
            })
        }
    }
}

//! A ready-to-use broker for development: started, with an app registered, and the credentials
//! a client needs. `sluice broker dev` and the pipeline's embedded broker are built on this.

use std::net::SocketAddr;
use std::path::Path;

use agentwrit::operator::AdminClient;
use agentwrit::{AdminSecret, ClientSecret};

use crate::{BrokerConfig, DevBroker};

/// What a client needs to act as an app.
#[derive(Clone, Debug)]
pub struct AppCredentials {
    pub broker_url: String,
    pub client_id: String,
    pub client_secret: ClientSecret,
}

/// Starts a broker with `config` on `addr` and makes sure app `name` exists with `ceiling`.
///
/// With a state directory, the app's credentials are kept in `<state>/apps/<name>.json` (mode
/// 0600) so a restarted broker hands out the same ones; its ceiling is updated to `ceiling`.
pub async fn start_with_app(
    config: BrokerConfig,
    addr: SocketAddr,
    name: &str,
    ceiling: &[String],
) -> anyhow::Result<(DevBroker, AppCredentials)> {
    let admin_secret = config.admin_secret.clone();
    let state_dir = config.state_dir.clone();
    let broker = DevBroker::start(config, addr).await?;
    let credentials = ensure_app(
        &broker.url(),
        &admin_secret,
        state_dir.as_deref(),
        name,
        ceiling,
    )
    .await?;
    Ok((broker, credentials))
}

/// Registers app `name` (or, with a state dir, reuses its saved credentials) at `broker_url`.
pub async fn ensure_app(
    broker_url: &str,
    admin_secret: &AdminSecret,
    state_dir: Option<&Path>,
    name: &str,
    ceiling: &[String],
) -> anyhow::Result<AppCredentials> {
    let admin = AdminClient::authenticate(broker_url, admin_secret)
        .await
        .map_err(|e| anyhow::anyhow!("authenticating to the dev broker as admin: {e}"))?;
    let saved = state_dir.map(|d| d.join("apps").join(format!("{name}.json")));
    if let Some(path) = saved.as_ref().filter(|p| p.exists()) {
        let text = std::fs::read_to_string(path)
            .map_err(|e| anyhow::anyhow!("reading {}: {e}", path.display()))?;
        let v: serde_json::Value = serde_json::from_str(&text)
            .map_err(|e| anyhow::anyhow!("{} is not valid JSON: {e}", path.display()))?;
        let field = |k: &str| {
            v.get(k)
                .and_then(|x| x.as_str())
                .unwrap_or_default()
                .to_string()
        };
        admin
            .update_app(&field("app_id"), Some(ceiling), None)
            .await
            .map_err(|e| anyhow::anyhow!("updating app '{name}': {e}"))?;
        return Ok(AppCredentials {
            broker_url: broker_url.to_string(),
            client_id: field("client_id"),
            client_secret: ClientSecret::new(field("client_secret")),
        });
    }
    let app = admin
        .register_app(name, ceiling, None)
        .await
        .map_err(|e| anyhow::anyhow!("registering app '{name}': {e}"))?;
    if let Some(path) = saved {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .map_err(|e| anyhow::anyhow!("creating {}: {e}", parent.display()))?;
        }
        let json = serde_json::json!({
            "app_id": app.app_id,
            "client_id": app.client_id,
            "client_secret": app.client_secret.secret(),
        });
        crate::store::write_private_file(&path, json.to_string().as_bytes())?;
    }
    Ok(AppCredentials {
        broker_url: broker_url.to_string(),
        client_id: app.client_id,
        client_secret: app.client_secret,
    })
}

//! An embedded, AgentWrit-compatible development broker: the real broker's HTTP protocol
//! (`../shared/agentwrit/contract.md`), in process, with no Docker, like `vault server -dev`.
//!
//! Where the real broker has a security flaw the contract lists, this one is stricter; each place
//! is marked "Stricter" in the code and listed in docs/agentwrit.md.

mod audit;
mod auth;
mod config;
mod dev;
mod envelope;
mod jwt;
mod keys;
mod problem;
mod ratelimit;
pub mod routes;
mod state;
mod store;
pub mod testing;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use agentwrit::AdminSecret;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub use audit::{AuditEvent, first_broken};
pub use config::BrokerConfig;
pub use dev::{AppCredentials, ensure_app, start_with_app};
pub use jwt::Invalid as TokenInvalid;
pub use state::BrokerState;

/// Builds the broker's state from `config`: the signing key, the admin secret's hash, and what a
/// state directory kept from earlier runs.
pub fn broker_state(config: BrokerConfig) -> anyhow::Result<Arc<BrokerState>> {
    let (keys, store) = match &config.state_dir {
        Some(dir) => {
            std::fs::create_dir_all(dir)
                .map_err(|e| anyhow::anyhow!("creating broker state {}: {e}", dir.display()))?;
            // The state holds the signing key, secret hashes and the audit log: owner only.
            use std::os::unix::fs::PermissionsExt as _;
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
                .map_err(|e| anyhow::anyhow!("securing broker state {}: {e}", dir.display()))?;
            (
                keys::Keys::load_or_create(&dir.join("signing.key"))?,
                store::Store::open(Some(&dir.join("broker.db")))?,
            )
        }
        None => (keys::Keys::generate(), store::Store::open(None)?),
    };
    Ok(Arc::new(BrokerState::new(config, keys, store)?))
}

/// A fresh random admin secret, for a broker nobody administers by hand.
pub fn random_admin_secret() -> AdminSecret {
    AdminSecret::new(state::random_hex(32))
}

/// Reads `<dir>/admin.secret`, or creates it (mode 0600) with 32 random bytes.
pub fn load_or_create_admin_secret(dir: &Path) -> anyhow::Result<AdminSecret> {
    let path = dir.join("admin.secret");
    if path.exists() {
        let secret = std::fs::read_to_string(&path)
            .map_err(|e| anyhow::anyhow!("reading {}: {e}", path.display()))?;
        let secret = secret.trim();
        anyhow::ensure!(!secret.is_empty(), "{} is empty", path.display());
        return Ok(AdminSecret::new(secret));
    }
    std::fs::create_dir_all(dir).map_err(|e| anyhow::anyhow!("creating {}: {e}", dir.display()))?;
    let secret = state::random_hex(32);
    store::write_private_file(&path, format!("{secret}\n").as_bytes())?;
    Ok(AdminSecret::new(secret))
}

/// A broker serving on a loopback port until dropped or [`shutdown`](Self::shutdown).
pub struct DevBroker {
    addr: SocketAddr,
    state: Arc<BrokerState>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl DevBroker {
    /// Binds `addr` (use port 0 for an ephemeral one) and serves in the current tokio runtime.
    pub async fn start(config: BrokerConfig, addr: SocketAddr) -> anyhow::Result<DevBroker> {
        let state = broker_state(config)?;
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|e| anyhow::anyhow!("binding the dev broker to {addr}: {e}"))?;
        let addr = listener.local_addr()?;
        // Small JSON exchanges: do not let Nagle hold responses back.
        let listener = axum::serve::ListenerExt::tap_io(listener, |stream| {
            let _ = stream.set_nodelay(true);
        });
        let app =
            routes::router(Arc::clone(&state)).into_make_service_with_connect_info::<SocketAddr>();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = stopped.await;
                })
                .await;
        });
        Ok(DevBroker {
            addr,
            state,
            stop: Some(stop),
            task: Some(task),
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn state(&self) -> &Arc<BrokerState> {
        &self.state
    }

    /// Stops accepting requests and waits for the server to finish.
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for DevBroker {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

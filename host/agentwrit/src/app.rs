//! `AgentWritApp`: an application's credentials, its cached app session, and agent creation.

use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use ed25519_dalek::{Signer as _, SigningKey};
use reqwest::Method;
use serde::Deserialize;
use serde_json::json;
use tokio::sync::Mutex;

use crate::agent::Agent;
use crate::error::Result;
use crate::http::Http;
use crate::secret::{AccessToken, ClientSecret};
use crate::types::{HealthStatus, Validation};
use agentwrit_scope::Scope;

/// Re-authenticate when less than this is left of the app session, as the Python SDK does.
const REAUTH_MARGIN: Duration = Duration::from_secs(60);

/// Default request timeout, as the Python SDK's.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// An application registered with the broker. Cheap to clone; clones share the app session.
#[derive(Clone)]
pub struct AgentWritApp {
    inner: Arc<AppInner>,
}

struct AppInner {
    http: Http,
    client_id: String,
    client_secret: ClientSecret,
    session: Mutex<Option<AppSession>>,
}

struct AppSession {
    token: AccessToken,
    expires_at: Instant,
}

impl std::fmt::Debug for AgentWritApp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AgentWritApp")
            .field("broker_url", &self.inner.http.base())
            .field("client_id", &self.inner.client_id)
            .field("client_secret", &self.inner.client_secret)
            .finish()
    }
}

/// What `create_agent` asks for. Defaults as the Python SDK: `max_ttl` 300 s, label
/// `<orch_id>/<task_id>`, a fresh Ed25519 key.
#[derive(Clone, Debug)]
pub struct AgentRequest {
    pub orch_id: String,
    pub task_id: String,
    pub requested_scope: Vec<Scope>,
    pub max_ttl: u64,
    pub label: Option<String>,
}

impl AgentRequest {
    pub fn new(
        orch_id: impl Into<String>,
        task_id: impl Into<String>,
        requested_scope: impl IntoIterator<Item = Scope>,
    ) -> AgentRequest {
        AgentRequest {
            orch_id: orch_id.into(),
            task_id: task_id.into(),
            requested_scope: requested_scope.into_iter().collect(),
            max_ttl: 300,
            label: None,
        }
    }

    pub fn max_ttl(mut self, seconds: u64) -> AgentRequest {
        self.max_ttl = seconds;
        self
    }

    pub fn label(mut self, label: impl Into<String>) -> AgentRequest {
        self.label = Some(label.into());
        self
    }
}

#[derive(Deserialize)]
struct TokenResponse {
    access_token: String,
    expires_in: u64,
}

#[derive(Deserialize)]
struct LaunchTokenResponse {
    launch_token: String,
}

#[derive(Deserialize)]
struct Challenge {
    nonce: String,
}

#[derive(Deserialize)]
struct Registration {
    agent_id: String,
    access_token: String,
    expires_in: u64,
}

impl AgentWritApp {
    /// No network I/O happens here; the app authenticates on first use.
    pub fn new(
        broker_url: &str,
        client_id: impl Into<String>,
        client_secret: ClientSecret,
    ) -> Result<AgentWritApp> {
        AgentWritApp::with_timeout(broker_url, client_id, client_secret, DEFAULT_TIMEOUT)
    }

    pub fn with_timeout(
        broker_url: &str,
        client_id: impl Into<String>,
        client_secret: ClientSecret,
        timeout: Duration,
    ) -> Result<AgentWritApp> {
        Ok(AgentWritApp {
            inner: Arc::new(AppInner {
                http: Http::new(broker_url, timeout)?,
                client_id: client_id.into(),
                client_secret,
                session: Mutex::new(None),
            }),
        })
    }

    /// Reads `AGENTWRIT_BROKER_URL`, `AGENTWRIT_CLIENT_ID` and `AGENTWRIT_CLIENT_SECRET`; `None`
    /// when any is unset or empty.
    pub fn from_env() -> Option<Result<AgentWritApp>> {
        AgentWritApp::from_env_with_timeout(DEFAULT_TIMEOUT)
    }

    /// [`from_env`](Self::from_env) with a request timeout of the caller's.
    pub fn from_env_with_timeout(timeout: Duration) -> Option<Result<AgentWritApp>> {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        let (url, id, secret) = (
            var("AGENTWRIT_BROKER_URL")?,
            var("AGENTWRIT_CLIENT_ID")?,
            var("AGENTWRIT_CLIENT_SECRET")?,
        );
        Some(AgentWritApp::with_timeout(
            &url,
            id,
            ClientSecret::new(secret),
            timeout,
        ))
    }

    pub fn broker_url(&self) -> &str {
        self.inner.http.base()
    }

    pub fn client_id(&self) -> &str {
        &self.inner.client_id
    }

    /// The app's bearer token, authenticating when there is none or it is about to expire.
    async fn app_token(&self) -> Result<AccessToken> {
        let mut session = self.inner.session.lock().await;
        if let Some(s) = session.as_ref()
            && s.expires_at.saturating_duration_since(Instant::now()) > REAUTH_MARGIN
        {
            return Ok(s.token.clone());
        }
        let body = json!({
            "client_id": self.inner.client_id,
            "client_secret": self.inner.client_secret.secret(),
        });
        let response: TokenResponse = self
            .inner
            .http
            .json(Method::POST, "v1/app/auth", None, Some(&body))
            .await?;
        let token = AccessToken::new(response.access_token);
        *session = Some(AppSession {
            token: token.clone(),
            expires_at: Instant::now() + Duration::from_secs(response.expires_in),
        });
        Ok(token)
    }

    /// Authenticates the app now (the first agent would otherwise do it): a way to find out that
    /// the credentials are wrong before doing any work.
    pub async fn authenticate(&self) -> Result<()> {
        self.app_token().await.map(drop)
    }

    /// Creates an agent: app session → launch token → challenge → Ed25519 signature → register.
    pub async fn create_agent(&self, request: AgentRequest) -> Result<Agent> {
        self.create_agent_with_key(request, SigningKey::generate(&mut rand::rngs::OsRng))
            .await
    }

    /// [`create_agent`](Self::create_agent) with a key of the caller's.
    pub async fn create_agent_with_key(
        &self,
        request: AgentRequest,
        key: SigningKey,
    ) -> Result<Agent> {
        let http = &self.inner.http;
        let app_token = self.app_token().await?;
        let label = request
            .label
            .clone()
            .unwrap_or_else(|| format!("{}/{}", request.orch_id, request.task_id));
        let launch: LaunchTokenResponse = http
            .json(
                Method::POST,
                "v1/app/launch-tokens",
                Some(&app_token),
                Some(&json!({
                    "agent_name": label,
                    "allowed_scope": request.requested_scope,
                    "max_ttl": request.max_ttl,
                    "single_use": true,
                })),
            )
            .await?;
        let challenge: Challenge = http.json(Method::GET, "v1/challenge", None, None).await?;
        // The broker verifies the signature over the hex-decoded nonce (raw text if not hex).
        let message =
            hex::decode(&challenge.nonce).unwrap_or_else(|_| challenge.nonce.clone().into_bytes());
        let signature = key.sign(&message);
        let registration: Registration = http
            .json(
                Method::POST,
                "v1/register",
                None,
                Some(&json!({
                    "launch_token": launch.launch_token,
                    "nonce": challenge.nonce,
                    "public_key": STANDARD.encode(key.verifying_key().as_bytes()),
                    "signature": STANDARD.encode(signature.to_bytes()),
                    "orch_id": request.orch_id,
                    "task_id": request.task_id,
                    "requested_scope": request.requested_scope,
                })),
            )
            .await?;
        Ok(Agent::new(
            http.clone(),
            registration.agent_id,
            AccessToken::new(registration.access_token),
            registration.expires_in,
            request.requested_scope,
            request.task_id,
            request.orch_id,
        ))
    }

    /// Asks the broker whether `token` is valid. See [`crate::validate`].
    pub async fn validate(&self, token: &AccessToken) -> Result<Validation> {
        crate::validate::validate_with(&self.inner.http, token).await
    }

    /// `GET /v1/health`, unauthenticated.
    pub async fn health(&self) -> Result<HealthStatus> {
        self.inner
            .http
            .json(Method::GET, "v1/health", None, None)
            .await
    }
}

impl From<&str> for ClientSecret {
    fn from(s: &str) -> Self {
        ClientSecret::new(s)
    }
}

impl From<String> for ClientSecret {
    fn from(s: String) -> Self {
        ClientSecret::new(s)
    }
}

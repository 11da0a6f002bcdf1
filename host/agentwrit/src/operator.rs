//! Operator-only helpers: admin authentication, app management, admin launch tokens, revocation
//! and the broker's audit log. Applications never need these; they hold the admin secret's power.

use std::time::Duration;

use reqwest::Method;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::error::Result;
use crate::http::Http;
use crate::secret::{AccessToken, AdminSecret, ClientSecret, LaunchToken};

/// A broker session authenticated with the admin secret.
pub struct AdminClient {
    http: Http,
    token: AccessToken,
}

impl std::fmt::Debug for AdminClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AdminClient")
            .field("broker_url", &self.http.base())
            .field("token", &self.token)
            .finish()
    }
}

/// An app as the broker lists it.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct AppRecord {
    pub app_id: String,
    pub name: String,
    pub client_id: String,
    pub scopes: Vec<String>,
    pub token_ttl: u64,
    pub status: String,
    pub created_at: String,
    pub updated_at: String,
}

/// A newly registered app: the only time its secret is shown.
#[derive(Clone, Debug)]
pub struct RegisteredApp {
    pub app_id: String,
    pub client_id: String,
    pub client_secret: ClientSecret,
    pub scopes: Vec<String>,
    pub token_ttl: u64,
}

/// A launch token minted by the admin.
#[derive(Clone, Debug)]
pub struct LaunchTokenGrant {
    pub launch_token: LaunchToken,
    pub expires_at: String,
    pub allowed_scope: Vec<String>,
    pub max_ttl: u64,
}

/// `POST /v1/revoke`'s answer.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct Revocation {
    pub revoked: bool,
    pub level: String,
    pub target: String,
    pub count: u64,
}

/// One page of the broker's audit log.
#[derive(Clone, Debug, Deserialize)]
pub struct AuditPage {
    pub events: Vec<Value>,
    pub total: u64,
    pub offset: i64,
    pub limit: i64,
}

#[derive(Deserialize)]
struct Token {
    access_token: String,
}

#[derive(Deserialize)]
struct Registered {
    app_id: String,
    client_id: String,
    client_secret: String,
    scopes: Vec<String>,
    token_ttl: u64,
}

#[derive(Deserialize)]
struct AppList {
    apps: Vec<AppRecord>,
}

#[derive(Deserialize)]
struct Launch {
    launch_token: String,
    expires_at: String,
    policy: Policy,
}

#[derive(Deserialize)]
struct Policy {
    allowed_scope: Vec<String>,
    max_ttl: u64,
}

impl AdminClient {
    /// `POST /v1/admin/auth` with the admin secret.
    pub async fn authenticate(broker_url: &str, secret: &AdminSecret) -> Result<AdminClient> {
        let http = Http::new(broker_url, Duration::from_secs(10))?;
        let token: Token = http
            .json(
                Method::POST,
                "v1/admin/auth",
                None,
                Some(&json!({ "secret": secret.secret() })),
            )
            .await?;
        Ok(AdminClient {
            http,
            token: AccessToken::new(token.access_token),
        })
    }

    pub fn token(&self) -> &AccessToken {
        &self.token
    }

    async fn call<T: serde::de::DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<T> {
        self.http
            .json(method, path, Some(&self.token), body.as_ref())
            .await
    }

    /// Registers app `name` with scope ceiling `scopes`.
    pub async fn register_app(
        &self,
        name: &str,
        scopes: &[String],
        token_ttl: Option<u64>,
    ) -> Result<RegisteredApp> {
        let mut body = json!({ "name": name, "scopes": scopes });
        if let Some(ttl) = token_ttl {
            body["token_ttl"] = json!(ttl);
        }
        let r: Registered = self.call(Method::POST, "v1/admin/apps", Some(body)).await?;
        Ok(RegisteredApp {
            app_id: r.app_id,
            client_id: r.client_id,
            client_secret: ClientSecret::new(r.client_secret),
            scopes: r.scopes,
            token_ttl: r.token_ttl,
        })
    }

    pub async fn list_apps(&self) -> Result<Vec<AppRecord>> {
        let list: AppList = self.call(Method::GET, "v1/admin/apps", None).await?;
        Ok(list.apps)
    }

    pub async fn get_app(&self, app_id: &str) -> Result<AppRecord> {
        self.call(Method::GET, &format!("v1/admin/apps/{app_id}"), None)
            .await
    }

    /// Changes an app's ceiling and/or app-token TTL.
    pub async fn update_app(
        &self,
        app_id: &str,
        scopes: Option<&[String]>,
        token_ttl: Option<u64>,
    ) -> Result<AppRecord> {
        let mut body = json!({});
        if let Some(scopes) = scopes {
            body["scopes"] = json!(scopes);
        }
        if let Some(ttl) = token_ttl {
            body["token_ttl"] = json!(ttl);
        }
        self.call(Method::PUT, &format!("v1/admin/apps/{app_id}"), Some(body))
            .await
    }

    /// Deregisters an app (soft delete: its credentials stop authenticating).
    pub async fn delete_app(&self, app_id: &str) -> Result<Value> {
        self.call(Method::DELETE, &format!("v1/admin/apps/{app_id}"), None)
            .await
    }

    /// Mints a launch token directly (no app ceiling applies to the admin).
    pub async fn create_launch_token(
        &self,
        agent_name: &str,
        allowed_scope: &[String],
        max_ttl: u64,
        single_use: bool,
        ttl: u64,
    ) -> Result<LaunchTokenGrant> {
        let launch: Launch = self
            .call(
                Method::POST,
                "v1/admin/launch-tokens",
                Some(json!({
                    "agent_name": agent_name,
                    "allowed_scope": allowed_scope,
                    "max_ttl": max_ttl,
                    "single_use": single_use,
                    "ttl": ttl,
                })),
            )
            .await?;
        Ok(LaunchTokenGrant {
            launch_token: LaunchToken::new(launch.launch_token),
            expires_at: launch.expires_at,
            allowed_scope: launch.policy.allowed_scope,
            max_ttl: launch.policy.max_ttl,
        })
    }

    /// Revokes at `level` (`token`, `agent`, `task` or `chain`) the given target.
    pub async fn revoke(&self, level: &str, target: &str) -> Result<Revocation> {
        self.call(
            Method::POST,
            "v1/revoke",
            Some(json!({ "level": level, "target": target })),
        )
        .await
    }

    /// `GET /v1/audit/events` with query parameters, e.g. `[("agent_id", id), ("limit", "10")]`.
    pub async fn audit_events(&self, query: &[(&str, &str)]) -> Result<AuditPage> {
        let query: Vec<String> = query
            .iter()
            .map(|(k, v)| format!("{k}={}", urlencode(v)))
            .collect();
        let path = if query.is_empty() {
            "v1/audit/events".to_string()
        } else {
            format!("v1/audit/events?{}", query.join("&"))
        };
        self.call(Method::GET, &path, None).await
    }
}

fn urlencode(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

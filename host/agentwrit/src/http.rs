//! The one HTTP path every call takes: JSON in, JSON out, problem+json into typed errors.

use std::time::Duration;

use reqwest::{Method, header};
use serde::de::DeserializeOwned;

use crate::error::{Error, ProblemDetail, Result};
use crate::secret::AccessToken;

/// The user agent sent by this crate, in the Python SDK's style.
pub const USER_AGENT: &str = concat!("agentwrit-rust/", env!("CARGO_PKG_VERSION"));

#[derive(Clone, Debug)]
pub(crate) struct Http {
    client: reqwest::Client,
    base: String,
}

impl Http {
    pub(crate) fn new(broker_url: &str, timeout: Duration) -> Result<Http> {
        let base = broker_url.trim_end_matches('/').to_string();
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .user_agent(USER_AGENT)
            // The SDK does not follow redirects: a 3xx is an error like any other.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| Error::Transport {
                url: base.clone(),
                message: format!("building the HTTP client: {e}"),
            })?;
        Ok(Http { client, base })
    }

    pub(crate) fn base(&self) -> &str {
        &self.base
    }

    /// Sends a request and returns the 2xx body; any other status becomes a typed error.
    pub(crate) async fn send(
        &self,
        method: Method,
        path: &str,
        bearer: Option<&AccessToken>,
        body: Option<&serde_json::Value>,
    ) -> Result<Vec<u8>> {
        let url = format!("{}/{}", self.base, path.trim_start_matches('/'));
        let mut request = self.client.request(method, &url);
        if let Some(token) = bearer {
            let mut value = header::HeaderValue::from_str(&format!("Bearer {}", token.secret()))
                .map_err(|_| Error::Decode {
                    url: url.clone(),
                    message: "the access token is not a valid header value".into(),
                })?;
            // Keeps the token out of reqwest's Debug output.
            value.set_sensitive(true);
            request = request.header(header::AUTHORIZATION, value);
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        let transport = |e: reqwest::Error| Error::Transport {
            url: self.base.clone(),
            message: without_url(&e),
        };
        let response = request.send().await.map_err(transport)?;
        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get(header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        let bytes = response.bytes().await.map_err(transport)?;
        if (200..300).contains(&status) {
            return Ok(bytes.to_vec());
        }
        let path = format!("/{}", path.trim_start_matches('/'));
        let path = path.split('?').next().unwrap_or_default();
        let problem = ProblemDetail::from_response(status, path, &bytes);
        Err(Error::from_status(status, problem, retry_after))
    }

    /// [`send`](Self::send), then decode the body as `T`.
    pub(crate) async fn json<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        bearer: Option<&AccessToken>,
        body: Option<&serde_json::Value>,
    ) -> Result<T> {
        let bytes = self.send(method, path, bearer, body).await?;
        serde_json::from_slice(&bytes).map_err(|e| Error::Decode {
            url: format!("{}/{}", self.base, path.trim_start_matches('/')),
            message: e.to_string(),
        })
    }
}

/// reqwest's Display includes the URL, reported once by the caller: keep the kind and the causes.
fn without_url(e: &reqwest::Error) -> String {
    let mut message = String::from(if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "connection failed"
    } else if e.is_body() || e.is_decode() {
        "reading the response failed"
    } else {
        "request failed"
    });
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        message.push_str(": ");
        message.push_str(&s.to_string());
        source = s.source();
    }
    message
}

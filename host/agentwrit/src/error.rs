//! Typed errors from the broker's problem+json responses and from the transport.

use std::time::Duration;

use serde::Deserialize;

/// An RFC 7807 problem body as the broker sends it (contract 1.4).
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
pub struct ProblemDetail {
    /// `urn:agentwrit:error:<type>`, or `about:blank` when the body was not JSON.
    #[serde(rename = "type", default)]
    pub kind: String,
    #[serde(default)]
    pub title: String,
    #[serde(default)]
    pub status: u16,
    #[serde(default)]
    pub detail: String,
    #[serde(default)]
    pub instance: String,
    #[serde(default)]
    pub error_code: Option<String>,
    #[serde(default)]
    pub request_id: Option<String>,
    #[serde(default)]
    pub hint: Option<String>,
}

impl ProblemDetail {
    /// Parses a non-2xx response body, falling back as the Python SDK does for non-JSON bodies.
    pub(crate) fn from_response(status: u16, path: &str, body: &[u8]) -> ProblemDetail {
        match serde_json::from_slice::<ProblemDetail>(body) {
            Ok(mut p) => {
                if p.instance.is_empty() {
                    p.instance = path.to_string();
                }
                if p.status == 0 {
                    p.status = status;
                }
                p
            }
            Err(_) => {
                let text = String::from_utf8_lossy(body).trim().to_string();
                ProblemDetail {
                    kind: "about:blank".into(),
                    title: format!("HTTP {status}"),
                    status,
                    detail: if text.is_empty() {
                        "No error detail provided.".into()
                    } else {
                        text
                    },
                    instance: path.to_string(),
                    ..ProblemDetail::default()
                }
            }
        }
    }
}

impl std::fmt::Display for ProblemDetail {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.title, self.detail)?;
        if let Some(code) = &self.error_code {
            write!(f, " ({code}")?;
            if let Some(id) = &self.request_id {
                write!(f, ", request {id}")?;
            }
            write!(f, ")")?;
        }
        Ok(())
    }
}

/// Everything an AgentWrit call can fail with. No variant carries a secret or a token.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// HTTP 401: bad credentials, or a dead (expired, released, revoked) token.
    #[error("authentication failed: {0}")]
    Authentication(Box<ProblemDetail>),
    /// HTTP 403: the scopes asked for exceed what is allowed.
    #[error("not authorized: {0}")]
    Authorization(Box<ProblemDetail>),
    /// HTTP 404.
    #[error("not found: {0}")]
    NotFound(Box<ProblemDetail>),
    /// HTTP 429; `retry_after` from the `Retry-After` header.
    #[error("rate limited{}: {problem}", retry_after.map(|d| format!(" (retry after {} s)", d.as_secs())).unwrap_or_default())]
    RateLimited {
        problem: Box<ProblemDetail>,
        retry_after: Option<Duration>,
    },
    /// Any other non-2xx response.
    #[error("broker error {status}: {0}", status = .0.status)]
    Problem(Box<ProblemDetail>),
    /// The broker could not be reached, or the exchange broke off.
    #[error("broker unreachable at {url}: {message}")]
    Transport { url: String, message: String },
    /// The broker answered 2xx with a body this client cannot read.
    #[error("unexpected response from {url}: {message}")]
    Decode { url: String, message: String },
    /// The agent was released; it makes no more requests.
    #[error("agent has been released and cannot {0}")]
    Released(&'static str),
}

impl Error {
    /// The problem body, for errors that came from the broker.
    pub fn problem(&self) -> Option<&ProblemDetail> {
        match self {
            Error::Authentication(p)
            | Error::Authorization(p)
            | Error::NotFound(p)
            | Error::Problem(p)
            | Error::RateLimited { problem: p, .. } => Some(p),
            _ => None,
        }
    }

    /// The HTTP status, for errors that came from the broker.
    pub fn status(&self) -> Option<u16> {
        self.problem().map(|p| p.status)
    }

    /// Whether the broker could not be asked at all (down, unreachable, timed out): the one
    /// kind of failure worth retrying as it is.
    pub fn is_transport(&self) -> bool {
        matches!(self, Error::Transport { .. })
    }

    pub(crate) fn from_status(
        status: u16,
        problem: ProblemDetail,
        retry_after: Option<Duration>,
    ) -> Error {
        let problem = Box::new(problem);
        match status {
            401 => Error::Authentication(problem),
            403 => Error::Authorization(problem),
            404 => Error::NotFound(problem),
            429 => Error::RateLimited {
                problem,
                retry_after,
            },
            _ => Error::Problem(problem),
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

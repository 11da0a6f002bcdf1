//! Errors as the broker sends them: RFC 7807 problem+json with the contract's members.
//!
//! Handlers return an [`ApiError`]; the response carries it as an extension and the envelope
//! middleware, which knows the request path and id, renders the body. So every error has the same
//! shape without every handler threading the request through.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiError {
    pub status: StatusCode,
    pub kind: &'static str,
    pub detail: String,
    /// Extra headers, e.g. `Retry-After` on 429.
    pub retry_after: Option<u64>,
}

impl ApiError {
    pub fn new(status: StatusCode, kind: &'static str, detail: impl Into<String>) -> ApiError {
        ApiError {
            status,
            kind,
            detail: detail.into(),
            retry_after: None,
        }
    }

    pub fn bad_request(detail: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, "invalid_request", detail)
    }

    pub fn malformed() -> ApiError {
        ApiError::bad_request("malformed JSON body")
    }

    pub fn unauthorized(detail: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", detail)
    }

    pub fn internal(detail: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal_error", detail)
    }

    /// The JSON body, members in the contract's order.
    pub fn body(&self, instance: &str, request_id: &str) -> String {
        format!(
            r#"{{"type":{},"title":{},"status":{},"detail":{},"instance":{},"error_code":{},"request_id":{}}}"#,
            json_str(&format!("urn:agentwrit:error:{}", self.kind)),
            json_str(self.status.canonical_reason().unwrap_or("Error")),
            self.status.as_u16(),
            json_str(&self.detail),
            json_str(instance),
            json_str(self.kind),
            json_str(request_id),
        ) + "\n"
    }
}

fn json_str(s: &str) -> String {
    serde_json::Value::String(s.to_string()).to_string()
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = self.status.into_response();
        response.extensions_mut().insert(self);
        response
    }
}

pub type ApiResult<T> = Result<T, ApiError>;

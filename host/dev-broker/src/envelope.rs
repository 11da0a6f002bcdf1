//! What wraps every request, outermost first as in the real broker (contract 1.2): request id,
//! 1 MiB body limit, security headers, then the router; and the rendering of problem bodies.

use axum::body::{Body, to_bytes};
use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::Response;
use serde::de::DeserializeOwned;

use crate::problem::ApiError;
use crate::state::random_hex;

/// The 1 MiB request body limit; exactly 1 MiB is accepted.
pub const MAX_BODY: usize = 1 << 20;

pub async fn envelope(request: Request, next: Next) -> Response {
    let path = request.uri().path().to_string();
    let request_id = request
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty() && v.len() <= MAX_REQUEST_ID)
        .filter(|v| v.bytes().all(|b| b.is_ascii_graphic()))
        .map_or_else(|| random_hex(8), str::to_string);

    let (parts, body) = request.into_parts();
    let too_large = parts
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok())
        .is_some_and(|n| n > MAX_BODY);
    let body = if too_large {
        Err(true)
    } else {
        to_bytes(body, MAX_BODY).await.map_err(|e| {
            let mut source: Option<&dyn std::error::Error> = Some(&e);
            let mut limit = false;
            while let Some(s) = source {
                limit |= s.to_string().contains("length limit exceeded");
                source = s.source();
            }
            limit
        })
    };
    let bytes = match body {
        Ok(bytes) => bytes,
        Err(limit) => {
            let error = if limit {
                ApiError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "payload_too_large",
                    "request body must not exceed 1 MB",
                )
            } else {
                ApiError::bad_request("failed to read request body")
            };
            // The body limit sits outside the security headers: a 413 carries only the id.
            let mut response = problem_response(&error, &path, &request_id);
            set_request_id(&mut response, &request_id);
            return response;
        }
    };
    let mut response = next
        .run(Request::from_parts(parts, Body::from(bytes)))
        .await;
    if let Some(error) = response.extensions_mut().remove::<ApiError>() {
        response = problem_response(&error, &path, &request_id);
    } else if response.status() == StatusCode::METHOD_NOT_ALLOWED {
        // Go's router answers a wrong method in plain text.
        let (mut head, _) = response.into_parts();
        head.headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        );
        response = Response::from_parts(head, Body::from("Method Not Allowed\n"));
    } else if response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes() == b"application/json")
    {
        // Go's JSON encoder ends every body with a newline; so do we.
        let (mut head, body) = response.into_parts();
        let mut bytes = to_bytes(body, usize::MAX)
            .await
            .unwrap_or_default()
            .to_vec();
        bytes.push(b'\n');
        head.headers.remove(header::CONTENT_LENGTH);
        response = Response::from_parts(head, Body::from(bytes));
    }
    let headers = response.headers_mut();
    headers.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert("x-frame-options", HeaderValue::from_static("DENY"));
    set_request_id(&mut response, &request_id);
    response
}

fn set_request_id(response: &mut Response, id: &str) {
    if let Ok(value) = HeaderValue::from_str(id) {
        response.headers_mut().insert("x-request-id", value);
    }
}

fn problem_response(error: &ApiError, path: &str, request_id: &str) -> Response {
    let mut response = Response::new(Body::from(error.body(path, request_id)));
    *response.status_mut() = error.status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/problem+json"),
    );
    if let Some(seconds) = error.retry_after {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
    }
    response
}

/// Decodes a request body the way the broker's Go handlers do: the first JSON value is read,
/// unknown members and trailing bytes are ignored, `null` means "all members empty", wrong types
/// and empty bodies fail. Only an object decodes into a request: serde would also read a struct
/// from an array (`["secret"]` as `{"secret": ...}`), which Go refuses.
pub fn decode<T: DeserializeOwned + Default>(bytes: &[u8]) -> Result<T, ApiError> {
    let mut values = serde_json::Deserializer::from_slice(bytes).into_iter::<serde_json::Value>();
    match values.next() {
        Some(Ok(serde_json::Value::Null)) => Ok(T::default()),
        Some(Ok(value @ serde_json::Value::Object(_))) => {
            serde_json::from_value(value).map_err(|_| ApiError::malformed())
        }
        _ => Err(ApiError::malformed()),
    }
}

/// Longest `X-Request-ID` reused as it came: a longer or non-printable one is replaced by a
/// fresh id (stricter than the real broker, which echoes any value into every response).
pub const MAX_REQUEST_ID: usize = 128;

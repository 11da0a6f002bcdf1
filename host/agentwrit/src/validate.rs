//! Token validation through the broker: the only way to verify a broker token (there is no
//! public key endpoint).

use std::time::Duration;

use reqwest::Method;
use serde::Deserialize;
use serde_json::json;

use crate::error::Result;
use crate::http::Http;
use crate::types::{AgentClaims, ValidateResult};

#[derive(Deserialize)]
struct Answer {
    valid: bool,
    #[serde(default)]
    claims: Option<AgentClaims>,
    #[serde(default)]
    error: Option<String>,
}

/// Asks the broker at `broker_url` whether `token` is valid.
///
/// Garbage, expired, released and revoked tokens give `Ok` with `valid: false`; an empty token is
/// answered locally the same way (the broker would refuse the request). `Err` means the broker
/// could not be asked.
pub async fn validate(broker_url: &str, token: &str) -> Result<ValidateResult> {
    let http = Http::new(broker_url, Duration::from_secs(10))?;
    validate_with(&http, token).await
}

pub(crate) async fn validate_with(http: &Http, token: &str) -> Result<ValidateResult> {
    if token.is_empty() {
        return Ok(ValidateResult {
            valid: false,
            claims: None,
            error: Some("token is empty".into()),
        });
    }
    let answer: Answer = http
        .json(
            Method::POST,
            "v1/token/validate",
            None,
            Some(&json!({ "token": token })),
        )
        .await?;
    Ok(match (answer.valid, answer.claims) {
        (true, Some(claims)) => ValidateResult {
            valid: true,
            claims: Some(claims),
            error: None,
        },
        (true, None) => ValidateResult {
            valid: false,
            claims: None,
            error: Some("Missing claims in valid response".into()),
        },
        (false, _) => ValidateResult {
            valid: false,
            claims: None,
            error: answer.error,
        },
    })
}

//! Token validation through the broker: the only way to verify a broker token (there is no
//! public key endpoint).

use std::time::Duration;

use reqwest::Method;
use serde::Deserialize;
use serde_json::json;

use crate::error::Result;
use crate::http::Http;
use crate::secret::AccessToken;
use crate::types::{AgentClaims, Validation};

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
/// Garbage, expired, released and revoked tokens give [`Validation::Invalid`]; an empty token is
/// answered locally the same way (the broker would refuse the request). `Err` means the broker
/// could not be asked, or answered "valid" with claims this client cannot read.
pub async fn validate(broker_url: &str, token: &AccessToken) -> Result<Validation> {
    let http = Http::new(broker_url, Duration::from_secs(10))?;
    validate_with(&http, token).await
}

pub(crate) async fn validate_with(http: &Http, token: &AccessToken) -> Result<Validation> {
    if token.secret().is_empty() {
        return Ok(Validation::Invalid("token is empty".into()));
    }
    let answer: Answer = http
        .json(
            Method::POST,
            "v1/token/validate",
            None,
            Some(&json!({ "token": token.secret() })),
        )
        .await?;
    Ok(match (answer.valid, answer.claims) {
        (true, Some(claims)) => Validation::Valid(Box::new(claims)),
        (true, None) => Validation::Invalid("Missing claims in valid response".into()),
        (false, _) => Validation::Invalid(answer.error.unwrap_or_default()),
    })
}

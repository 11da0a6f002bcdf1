//! Compact EdDSA JWTs in the broker's exact format (contract section 4).

use agentwrit::Scope;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ed25519_dalek::{Signature, Signer as _, Verifier as _};
use serde::{Deserialize, Serialize};

use crate::keys::Keys;

#[derive(Serialize)]
struct Header<'a> {
    alg: &'a str,
    typ: &'a str,
    kid: &'a str,
}

#[derive(Deserialize)]
struct ParsedHeader {
    alg: String,
    #[serde(default)]
    kid: Option<String>,
}

/// One hop of a delegation chain, members in the order the broker emits them.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct ChainRecord {
    pub agent: String,
    pub scope: Vec<String>,
    pub delegated_at: String,
    pub signature: String,
}

/// Token claims, members in the order the broker emits them; empty optional members are omitted.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Claims {
    #[serde(default)]
    pub iss: String,
    pub sub: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub aud: Vec<String>,
    pub exp: i64,
    pub nbf: i64,
    pub iat: i64,
    pub jti: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub sid: String,
    #[serde(default)]
    pub scope: Vec<String>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub task_id: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub orch_id: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub delegation_chain: Vec<ChainRecord>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub chain_hash: String,
    /// `scope`, parsed once when the token is verified (and kept with it in the verified
    /// tokens), so no check parses a held scope again. Empty in claims being issued.
    #[serde(skip)]
    pub held: Vec<Scope>,
}

impl Claims {
    /// Claims for `sub` holding `scope`; times and `jti` are set when the token is issued.
    pub fn new(sub: impl Into<String>, scope: Vec<String>, aud: Vec<String>) -> Claims {
        Claims {
            iss: String::new(),
            sub: sub.into(),
            aud,
            exp: 0,
            nbf: 0,
            iat: 0,
            jti: String::new(),
            sid: String::new(),
            scope,
            task_id: String::new(),
            orch_id: String::new(),
            delegation_chain: Vec::new(),
            chain_hash: String::new(),
            held: Vec::new(),
        }
    }
}

pub fn sign(keys: &Keys, claims: &Claims) -> String {
    let header = Header {
        alg: "EdDSA",
        typ: "JWT",
        kid: &keys.kid,
    };
    let header = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&header).unwrap_or_default());
    let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(claims).unwrap_or_default());
    let signing_input = format!("{header}.{payload}");
    let signature = keys.signing.sign(signing_input.as_bytes());
    format!(
        "{signing_input}.{}",
        URL_SAFE_NO_PAD.encode(signature.to_bytes())
    )
}

/// Why a token failed verification (kept for the audit detail; clients only see 401).
#[derive(Debug, PartialEq, Eq)]
pub enum Invalid {
    Malformed,
    Algorithm,
    KeyId,
    Signature,
    Claims,
    Expired,
    NotYetValid,
    Issuer,
    /// Revoked at one of the contract's four levels.
    Revoked,
}

impl std::fmt::Display for Invalid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Invalid::Malformed => "malformed token",
            Invalid::Algorithm => "unexpected signing algorithm",
            Invalid::KeyId => "unknown key id",
            Invalid::Signature => "invalid signature",
            Invalid::Claims => "invalid claims",
            Invalid::Expired => "token expired",
            Invalid::NotYetValid => "token not yet valid",
            Invalid::Issuer => "issuer mismatch",
            Invalid::Revoked => "token has been revoked",
        })
    }
}

/// Steps 1-6 of contract 4.3 (revocation is the caller's step 7); the broker itself checks the
/// signature once ([`verify_signed`]) and the times on every call ([`check_times`]).
#[cfg(test)]
pub fn verify(keys: &Keys, token: &str, issuer: &str, now: i64) -> Result<Claims, Invalid> {
    let claims = verify_signed(keys, token, issuer)?;
    check_times(&claims, now)?;
    Ok(claims)
}

/// Whether `claims` are in force at `now` (contract 4.3 steps 5-6): the part of verifying a
/// token that changes with time, so a cached verification repeats it.
pub fn check_times(claims: &Claims, now: i64) -> Result<(), Invalid> {
    if now > claims.exp {
        return Err(Invalid::Expired);
    }
    if claims.nbf != 0 && now < claims.nbf {
        return Err(Invalid::NotYetValid);
    }
    Ok(())
}

/// Everything of [`verify`] that a token's bytes decide once and for all: its shape, algorithm,
/// key id, signature, claims and issuer.
pub fn verify_signed(keys: &Keys, token: &str, issuer: &str) -> Result<Claims, Invalid> {
    let mut parts = token.splitn(3, '.');
    let (Some(h), Some(p), Some(s)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(Invalid::Malformed);
    };
    let header: ParsedHeader = URL_SAFE_NO_PAD
        .decode(h)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .ok_or(Invalid::Malformed)?;
    if header.alg != "EdDSA" {
        return Err(Invalid::Algorithm);
    }
    if header.kid.as_deref().is_some_and(|k| k != keys.kid) {
        return Err(Invalid::KeyId);
    }
    let signature = URL_SAFE_NO_PAD
        .decode(s)
        .ok()
        .and_then(|b| Signature::from_slice(&b).ok())
        .ok_or(Invalid::Signature)?;
    keys.signing
        .verifying_key()
        .verify(format!("{h}.{p}").as_bytes(), &signature)
        .map_err(|_| Invalid::Signature)?;
    let mut claims: Claims = URL_SAFE_NO_PAD
        .decode(p)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .ok_or(Invalid::Claims)?;
    if claims.sub.is_empty() || claims.jti.is_empty() || claims.exp <= 0 {
        return Err(Invalid::Claims);
    }
    if !issuer.is_empty() && claims.iss != issuer {
        return Err(Invalid::Issuer);
    }
    claims.held = claims
        .scope
        .iter()
        .map(|s| Scope::parse(s))
        .collect::<Result<_, _>>()
        .map_err(|_| Invalid::Claims)?;
    Ok(claims)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(exp: i64) -> Claims {
        Claims {
            iss: String::new(),
            sub: "spiffe://agentwrit.local/agent/o/t/0011223344556677".into(),
            aud: vec![],
            exp,
            nbf: 100,
            iat: 100,
            jti: "00112233445566778899aabbccddeeff".into(),
            sid: String::new(),
            scope: vec!["read:data:x".into()],
            task_id: "t".into(),
            orch_id: "o".into(),
            delegation_chain: vec![],
            chain_hash: String::new(),
            held: Vec::new(),
        }
    }

    #[test]
    fn round_trip_and_member_order() {
        let keys = Keys::generate();
        let token = sign(&keys, &claims(400));
        let verified = verify(&keys, &token, "", 400).unwrap();
        // The held scopes arrive parsed, once, with the verified claims.
        assert_eq!(verified.held, [Scope::parse("read:data:x").unwrap()]);
        let held = Vec::new();
        assert_eq!(Claims { held, ..verified }, claims(400));
        let payload = URL_SAFE_NO_PAD
            .decode(token.split('.').nth(1).unwrap())
            .unwrap();
        assert!(String::from_utf8(payload).unwrap().starts_with(
            r#"{"iss":"","sub":"spiffe://agentwrit.local/agent/o/t/0011223344556677","exp":400,"nbf":100,"iat":100,"jti":"#
        ));
        let header = URL_SAFE_NO_PAD
            .decode(token.split('.').next().unwrap())
            .unwrap();
        assert_eq!(
            String::from_utf8(header).unwrap(),
            format!(r#"{{"alg":"EdDSA","typ":"JWT","kid":"{}"}}"#, keys.kid)
        );
        assert_eq!(keys.kid.len(), 43);
    }

    #[test]
    fn rejects_expired_tampered_and_foreign_tokens() {
        let keys = Keys::generate();
        let token = sign(&keys, &claims(400));
        assert_eq!(verify(&keys, &token, "", 401), Err(Invalid::Expired));
        assert_eq!(
            verify(&Keys::generate(), &token, "", 100),
            Err(Invalid::KeyId)
        );
        let mut tampered = token.clone();
        tampered.pop();
        tampered.push(if token.ends_with('A') { 'B' } else { 'A' });
        assert!(verify(&keys, &tampered, "", 100).is_err());
        assert_eq!(verify(&keys, "garbage", "", 100), Err(Invalid::Malformed));
        assert_eq!(verify(&keys, &token, "iss", 100), Err(Invalid::Issuer));
    }
}

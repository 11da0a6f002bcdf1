//! cosign-format signatures with a tenant's ECDSA P-256 public key: a simple-signing payload
//! that names the plugin's manifest digest, signed by the key. The curve arithmetic is RustCrypto's
//! `p256`; this file only says which bytes must be signed and what they must say.

use p256::ecdsa::signature::Verifier as _;
use p256::ecdsa::{DerSignature, VerifyingKey};
use p256::pkcs8::{DecodePublicKey as _, EncodePublicKey as _};
use serde::Deserialize;

use crate::artifact::SignatureLayer;
use crate::digest::Digest;

/// The payload's `critical.type`.
pub const COSIGN_TYPE: &str = "cosign container image signature";

/// A signer's public key (PEM, SubjectPublicKeyInfo, P-256), and its fingerprint.
#[derive(Clone)]
pub struct SignerKey {
    key: VerifyingKey,
    fingerprint: String,
}

impl std::fmt::Debug for SignerKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SignerKey({})", self.fingerprint)
    }
}

impl SignerKey {
    /// The key in `pem`; the error says what the file should hold.
    pub fn from_pem(pem: &str) -> Result<SignerKey, String> {
        let key = VerifyingKey::from_public_key_pem(pem.trim()).map_err(|e| {
            format!(
                "not an ECDSA P-256 public key in PEM ({e}); `openssl ec -in KEY -pubout` or \
                 `cosign generate-key-pair` make one"
            )
        })?;
        let der = key
            .to_public_key_der()
            .map_err(|e| format!("encoding the key: {e}"))?;
        Ok(SignerKey {
            fingerprint: Digest::of(der.as_bytes()).to_string(),
            key,
        })
    }

    /// `sha256:<hex>` of the key's DER SubjectPublicKeyInfo (as `openssl pkey -pubin -outform
    /// DER | sha256sum` prints it).
    pub fn fingerprint(&self) -> &str {
        &self.fingerprint
    }

    /// Whether `signature` (DER) over `payload` is this key's.
    pub fn signed(&self, payload: &[u8], signature: &[u8]) -> bool {
        DerSignature::from_bytes(signature).is_ok_and(|sig| self.key.verify(payload, &sig).is_ok())
    }
}

#[derive(Deserialize)]
struct Payload {
    critical: Critical,
}

#[derive(Deserialize)]
struct Critical {
    image: Image,
    #[serde(rename = "type")]
    kind: String,
}

#[derive(Deserialize)]
struct Image {
    #[serde(rename = "docker-manifest-digest")]
    digest: String,
}

/// Why a plugin's signatures do not vouch for it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Unsigned {
    #[error("it has no signature (no {tag} tag in its repository); sign it with the tenant's key")]
    NoSignature { tag: String },
    #[error("none of its {count} signature(s) verifies with the tenant's key {fingerprint}{by}")]
    NotByKey {
        count: usize,
        fingerprint: String,
        /// ", but with <other>'s key" when the caller recognised the signer.
        by: String,
    },
    #[error("its signature by the tenant's key is for {signed}, not for this plugin's {digest}")]
    OtherDigest { signed: String, digest: Digest },
    #[error(
        "its signature by the tenant's key signs a payload that is not a cosign image signature ({0})"
    )]
    BadPayload(String),
}

/// The one signature by `key` that vouches for `digest`, among `layers` with their payloads.
pub fn verify(
    key: &SignerKey,
    digest: &Digest,
    layers: &[(SignatureLayer, Vec<u8>)],
) -> Result<(), Unsigned> {
    let mut verdict = None;
    for (layer, payload) in layers {
        if !key.signed(payload, &layer.signature) {
            continue;
        }
        // Signed by the key: now what it says must be this digest.
        let parsed: Payload = match serde_json::from_slice(payload) {
            Ok(p) => p,
            Err(e) => {
                verdict.get_or_insert(Unsigned::BadPayload(e.to_string()));
                continue;
            }
        };
        if parsed.critical.kind != COSIGN_TYPE {
            verdict.get_or_insert(Unsigned::BadPayload(format!(
                "critical.type is '{}'",
                parsed.critical.kind.chars().take(80).collect::<String>()
            )));
            continue;
        }
        if parsed.critical.image.digest == digest.to_string() {
            return Ok(());
        }
        verdict = Some(Unsigned::OtherDigest {
            signed: parsed.critical.image.digest.chars().take(80).collect(),
            digest: digest.clone(),
        });
    }
    Err(verdict.unwrap_or(Unsigned::NotByKey {
        count: layers.len(),
        fingerprint: key.fingerprint().to_string(),
        by: String::new(),
    }))
}

/// The simple-signing payload cosign signs for `digest` in `repository` (`registry/repo`).
pub fn payload_for(repository: &str, digest: &Digest) -> String {
    serde_json::json!({
        "critical": {
            "identity": { "docker-reference": repository },
            "image": { "docker-manifest-digest": digest.to_string() },
            "type": COSIGN_TYPE,
        },
        "optional": null,
    })
    .to_string()
}

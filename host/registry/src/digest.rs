//! `sha256:<64 lowercase hex>`: the one digest algorithm Sluice accepts, parsed once.

use std::fmt;

use sha2::{Digest as _, Sha256};

/// A content digest. Only SHA-256: an artifact digested otherwise is refused, never trusted.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest(String);

#[derive(Debug, thiserror::Error)]
#[error("'{0}' is not a sha256:<64 lowercase hex> digest")]
pub struct BadDigest(pub String);

impl Digest {
    pub fn parse(text: &str) -> Result<Digest, BadDigest> {
        match text.strip_prefix("sha256:") {
            Some(hex)
                if hex.len() == 64
                    && hex
                        .bytes()
                        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) =>
            {
                Ok(Digest(hex.to_string()))
            }
            _ => Err(BadDigest(text.chars().take(80).collect())),
        }
    }

    /// The digest of `bytes`.
    pub fn of(bytes: &[u8]) -> Digest {
        Digest(hex::encode(Sha256::digest(bytes)))
    }

    /// The 64 hex digits, without the algorithm.
    pub fn hex(&self) -> &str {
        &self.0
    }

    /// cosign's tag for this manifest's signatures: `sha256-<hex>.sig`.
    pub fn signature_tag(&self) -> String {
        format!("sha256-{}.sig", self.0)
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "sha256:{}", self.0)
    }
}

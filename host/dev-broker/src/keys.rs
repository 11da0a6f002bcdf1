//! The broker's Ed25519 signing key and its RFC 7638 thumbprint (`kid`).

use std::path::Path;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ed25519_dalek::SigningKey;
use ed25519_dalek::pkcs8::{DecodePrivateKey as _, EncodePrivateKey as _};
use sha2::{Digest, Sha256};

pub struct Keys {
    pub signing: SigningKey,
    pub kid: String,
}

impl Keys {
    pub fn generate() -> Keys {
        Keys::from_signing(SigningKey::generate(&mut rand::rngs::OsRng))
    }

    fn from_signing(signing: SigningKey) -> Keys {
        let x = URL_SAFE_NO_PAD.encode(signing.verifying_key().as_bytes());
        let jwk = format!(r#"{{"crv":"Ed25519","kty":"OKP","x":"{x}"}}"#);
        let kid = URL_SAFE_NO_PAD.encode(Sha256::digest(jwk.as_bytes()));
        Keys { signing, kid }
    }

    /// Loads the PKCS#8 PEM key at `path`, creating it (mode 0600) if it does not exist.
    pub fn load_or_create(path: &Path) -> anyhow::Result<Keys> {
        if path.exists() {
            let pem = std::fs::read_to_string(path)
                .map_err(|e| anyhow::anyhow!("reading signing key {}: {e}", path.display()))?;
            let signing = SigningKey::from_pkcs8_pem(&pem).map_err(|e| {
                anyhow::anyhow!(
                    "signing key {} is not an Ed25519 PKCS#8 PEM: {e}",
                    path.display()
                )
            })?;
            return Ok(Keys::from_signing(signing));
        }
        let keys = Keys::generate();
        let pem = keys
            .signing
            .to_pkcs8_pem(Default::default())
            .map_err(|e| anyhow::anyhow!("encoding signing key: {e}"))?;
        crate::store::write_private_file(path, pem.as_bytes())?;
        Ok(keys)
    }
}

//! Dev broker settings, with the real broker's defaults (contract section 10).

use std::path::PathBuf;

use agentwrit::AdminSecret;

#[derive(Clone, Debug)]
pub struct BrokerConfig {
    /// Where apps, revocations, the audit chain, the signing key and the admin secret persist.
    /// `None` keeps everything in memory (tests).
    pub state_dir: Option<PathBuf>,
    pub admin_secret: AdminSecret,
    /// SPIFFE trust domain (`AA_TRUST_DOMAIN`).
    pub trust_domain: String,
    /// `iss` claim; when non-empty, verification requires it (`AA_ISSUER`).
    pub issuer: String,
    /// When set, put in `aud` and required by bearer routes (`AA_AUDIENCE`).
    pub audience: Option<String>,
    /// Clamp on every token's lifetime, seconds; 0 = none (`AA_MAX_TTL`).
    pub max_ttl: i64,
    /// Fallback TTL for non-positive lifetimes (`AA_DEFAULT_TTL`).
    pub default_ttl: i64,
    pub admin_token_ttl: i64,
    /// Default app-token TTL for new apps (`AA_APP_TOKEN_TTL`).
    pub app_token_ttl: i64,
    /// bcrypt cost for app and admin secrets. The real broker uses 12 (~250 ms per check); the
    /// secrets are 256 random bits, so a lower cost costs no security.
    pub bcrypt_cost: u32,
    /// Token-bucket limits on the two auth endpoints, on by default as in the real broker.
    pub rate_limits: bool,
}

impl BrokerConfig {
    /// In-memory state and a given admin secret: what tests and the embedded pipeline use.
    pub fn in_memory(admin_secret: AdminSecret) -> BrokerConfig {
        BrokerConfig {
            state_dir: None,
            admin_secret,
            trust_domain: "agentwrit.local".into(),
            issuer: String::new(),
            audience: None,
            max_ttl: 86_400,
            default_ttl: 300,
            admin_token_ttl: 300,
            app_token_ttl: 1_800,
            bcrypt_cost: 6,
            rate_limits: true,
        }
    }

    /// Clamps a TTL by `max_ttl` (and replaces a non-positive one by `default_ttl`).
    pub(crate) fn clamp_ttl(&self, ttl: i64) -> i64 {
        let ttl = if ttl <= 0 { self.default_ttl } else { ttl };
        if self.max_ttl > 0 {
            ttl.min(self.max_ttl)
        } else {
            ttl
        }
    }
}

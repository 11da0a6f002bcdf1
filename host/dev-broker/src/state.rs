//! The broker's state: persistent parts in the [`Store`], the rest in memory as the real broker
//! keeps it (nonces, launch tokens, agent records and rate buckets are lost on restart).

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use rand::RngCore as _;

use crate::audit::{AuditEvent, GENESIS, NewEvent, chain};
use crate::config::BrokerConfig;
use crate::jwt::{self, Claims};
use crate::keys::Keys;
use crate::ratelimit::RateLimiter;
use crate::store::Store;

pub struct LaunchRecord {
    pub agent_name: String,
    pub allowed_scope: Vec<String>,
    pub max_ttl: i64,
    pub single_use: bool,
    pub expires_at: i64,
    pub consumed: bool,
    pub app_id: String,
}

pub struct AgentRecord {
    pub public_key: Vec<u8>,
}

#[derive(Default)]
pub struct Revocations {
    pub token: HashSet<String>,
    pub agent: HashSet<String>,
    pub task: HashSet<String>,
    pub chain: HashSet<String>,
}

impl Revocations {
    pub fn insert(&mut self, level: &str, target: &str) -> bool {
        let set = match level {
            "token" => &mut self.token,
            "agent" => &mut self.agent,
            "task" => &mut self.task,
            "chain" => &mut self.chain,
            _ => return false,
        };
        set.insert(target.to_string());
        true
    }

    /// Contract section 8, all four levels.
    pub fn revokes(&self, claims: &Claims) -> bool {
        self.token.contains(&claims.jti)
            || self.agent.contains(&claims.sub)
            || (!claims.task_id.is_empty() && self.task.contains(&claims.task_id))
            || claims
                .delegation_chain
                .first()
                .is_some_and(|root| self.chain.contains(&root.agent))
    }
}

#[derive(Default)]
pub struct Metrics {
    pub tokens_issued: HashMap<String, u64>,
    pub tokens_revoked: HashMap<String, u64>,
    pub registrations: HashMap<&'static str, u64>,
    pub admin_auth: HashMap<&'static str, u64>,
    pub launch_tokens_created: u64,
    pub active_agents: u64,
    pub audit_events: HashMap<String, u64>,
}

pub struct Mem {
    pub nonces: HashMap<String, (i64, bool)>,
    pub launch_tokens: HashMap<String, LaunchRecord>,
    pub agents: HashMap<String, AgentRecord>,
    pub revoked: Revocations,
    pub audit: Vec<AuditEvent>,
    pub metrics: Metrics,
    pub admin_limiter: RateLimiter,
    pub app_limiter: RateLimiter,
}

/// A freshly signed token.
pub struct Issued {
    pub token: String,
    pub ttl: i64,
    pub jti: String,
}

pub struct BrokerState {
    pub config: BrokerConfig,
    pub keys: Keys,
    pub admin_secret_hash: String,
    pub started: Instant,
    pub store: Mutex<Store>,
    pub mem: Mutex<Mem>,
    /// Tokens whose signature this broker already checked.
    pub verified: VerifiedTokens,
}

/// Claims of tokens whose signature, claims and issuer were verified, keyed by the token's
/// SHA-256: a keeper validating an agent every 50 ms costs one Ed25519 verification, not one
/// per call. Bounded: past [`VerifiedTokens::CAPACITY`] tokens it starts over (a token missing
/// is only verified again). Nothing a token's time or revocation decides is cached.
#[derive(Default)]
pub struct VerifiedTokens(Mutex<std::collections::HashMap<[u8; 32], Claims>>);

impl VerifiedTokens {
    pub const CAPACITY: usize = 10_000;

    fn key(token: &str) -> [u8; 32] {
        use sha2::Digest as _;
        sha2::Sha256::digest(token.as_bytes()).into()
    }

    fn get(&self, token: &str) -> Option<Claims> {
        let map = self.0.lock().unwrap_or_else(|p| p.into_inner());
        map.get(&Self::key(token)).cloned()
    }

    fn insert(&self, token: &str, claims: &Claims) {
        let mut map = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if map.len() >= Self::CAPACITY {
            map.clear();
        }
        map.insert(Self::key(token), claims.clone());
    }

    pub fn len(&self) -> usize {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Unix seconds now.
pub fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// `n` random bytes as lowercase hex.
pub fn random_hex(n: usize) -> String {
    let mut bytes = vec![0u8; n];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    hex::encode(bytes)
}

/// RFC 3339, UTC, whole seconds (`expires_at`, `created_at`, ...).
/// Longest id, path or resource kept in an audit event, in bytes.
pub const MAX_EVENT_ID: usize = 256;
/// Longest audit event detail, in bytes.
pub const MAX_EVENT_DETAIL: usize = 1024;

/// `text` cut to at most `max` bytes at a character boundary, marked when cut.
pub fn bounded(text: &str, max: usize) -> std::borrow::Cow<'_, str> {
    if text.len() <= max {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    std::borrow::Cow::Owned(format!("{}…[{} bytes]", &text[..end], text.len()))
}

pub fn rfc3339_seconds(unix: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(unix)
        .ok()
        .and_then(|t| {
            t.format(time::macros::format_description!(
                "[year]-[month]-[day]T[hour]:[minute]:[second]Z"
            ))
            .ok()
        })
        .unwrap_or_default()
}

/// RFC 3339, UTC, nanoseconds with trailing zeros trimmed (Go's RFC3339Nano).
pub fn rfc3339_nano(time: SystemTime) -> String {
    let t = time::OffsetDateTime::from(time);
    let base = t
        .format(time::macros::format_description!(
            "[year]-[month]-[day]T[hour]:[minute]:[second]"
        ))
        .unwrap_or_default();
    let nanos = t.nanosecond();
    if nanos == 0 {
        return format!("{base}Z");
    }
    let frac = format!("{nanos:09}");
    format!("{base}.{}Z", frac.trim_end_matches('0'))
}

/// Lists in Go's `[a b c]` format, as the broker writes them into details.
pub fn go_list(items: &[String]) -> String {
    format!("[{}]", items.join(" "))
}

impl BrokerState {
    pub fn new(config: BrokerConfig, keys: Keys, store: Store) -> anyhow::Result<BrokerState> {
        let admin_secret_hash = bcrypt::hash(config.admin_secret.secret(), config.bcrypt_cost)
            .map_err(|e| anyhow::anyhow!("hashing the admin secret: {e}"))?;
        let mut revoked = Revocations::default();
        for (level, target) in store.revocations()? {
            revoked.insert(&level, &target);
        }
        let audit = store.audit_events()?;
        Ok(BrokerState {
            config,
            keys,
            admin_secret_hash,
            started: Instant::now(),
            store: Mutex::new(store),
            mem: Mutex::new(Mem {
                nonces: HashMap::new(),
                launch_tokens: HashMap::new(),
                agents: HashMap::new(),
                revoked,
                audit,
                metrics: Metrics::default(),
                admin_limiter: RateLimiter::new(5.0, 10),
                app_limiter: RateLimiter::new(10.0 / 60.0, 3),
            }),
            verified: VerifiedTokens::default(),
        })
    }

    pub fn mem(&self) -> std::sync::MutexGuard<'_, Mem> {
        self.mem.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn store(&self) -> std::sync::MutexGuard<'_, Store> {
        self.store.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Appends an audit event to the chain, in memory and in SQLite (a failed write keeps the
    /// in-memory event, as the real broker does).
    pub fn audit(&self, new: NewEvent<'_>) {
        // Requests choose much of what an event says (paths, client ids, names): bounded here,
        // before anything is kept in memory, stored or hashed.
        let (agent_id, task_id, orch_id) = (
            bounded(new.agent_id, MAX_EVENT_ID),
            bounded(new.task_id, MAX_EVENT_ID),
            bounded(new.orch_id, MAX_EVENT_ID),
        );
        let resource = bounded(new.resource, MAX_EVENT_ID);
        let detail = bounded(&new.detail, MAX_EVENT_DETAIL).into_owned();
        let new = NewEvent {
            agent_id: &agent_id,
            task_id: &task_id,
            orch_id: &orch_id,
            resource: &resource,
            detail,
            ..new
        };
        let mut mem = self.mem();
        let prev = mem
            .audit
            .last()
            .map_or_else(|| GENESIS.to_string(), |e| e.hash.clone());
        let event = chain(
            mem.audit.len() as u64,
            &prev,
            rfc3339_nano(SystemTime::now()),
            new,
        );
        *mem.metrics
            .audit_events
            .entry(event.event_type.clone())
            .or_default() += 1;
        let _ = self
            .store()
            .insert_audit(mem.audit.len() as u64 + 1, &event);
        mem.audit.push(event);
    }

    /// Full verification, revocation included (contract 4.3 steps 1-7). A token's signature is
    /// checked once ([`VerifiedTokens`]); its times and revocation on every call.
    pub fn verify(&self, token: &str) -> Result<Claims, jwt::Invalid> {
        let claims = match self.verified.get(token) {
            Some(claims) => claims,
            None => {
                let claims = jwt::verify_signed(&self.keys, token, &self.config.issuer)?;
                self.verified.insert(token, &claims);
                claims
            }
        };
        jwt::check_times(&claims, now())?;
        if self.mem().revoked.revokes(&claims) {
            return Err(jwt::Invalid::Revoked);
        }
        Ok(claims)
    }

    /// Issues a token with fresh `iat`/`nbf`/`exp`/`jti`; `ttl` is clamped.
    /// Returns the token, its TTL and its `jti`.
    pub fn issue(&self, mut claims: Claims, ttl: i64) -> Issued {
        let ttl = self.config.clamp_ttl(ttl);
        let iat = now();
        claims.iss = self.config.issuer.clone();
        claims.iat = iat;
        claims.nbf = iat;
        claims.exp = iat.saturating_add(ttl);
        claims.jti = random_hex(16);
        let label = claims
            .scope
            .first()
            .cloned()
            .unwrap_or_else(|| "none".into());
        *self.mem().metrics.tokens_issued.entry(label).or_default() += 1;
        Issued {
            token: jwt::sign(&self.keys, &claims),
            ttl,
            jti: claims.jti,
        }
    }

    /// Persists and applies a revocation.
    pub fn revoke(&self, level: &str, target: &str) {
        self.mem().revoked.insert(level, target);
        *self
            .mem()
            .metrics
            .tokens_revoked
            .entry(level.to_string())
            .or_default() += 1;
        let _ = self.store().insert_revocation(level, target);
    }

    pub fn audience(&self) -> Vec<String> {
        self.config.audience.iter().cloned().collect()
    }
}

//! Token buckets for the auth endpoints (contract 1.5): a new key starts with `burst - 1` tokens
//! after its first request, refills at `rate` per second up to `burst`, a request takes one.

use std::collections::HashMap;
use std::time::Instant;

/// Keys tracked before full buckets are forgotten (the real broker never prunes).
const MAX_BUCKETS: usize = 10_000;

pub struct Bucket {
    tokens: f64,
    last: Instant,
}

pub struct RateLimiter {
    rate: f64,
    burst: f64,
    buckets: HashMap<String, Bucket>,
}

impl RateLimiter {
    pub fn new(rate_per_second: f64, burst: u32) -> RateLimiter {
        RateLimiter {
            rate: rate_per_second,
            burst: f64::from(burst),
            buckets: HashMap::new(),
        }
    }

    /// Whether a request for `key` may proceed now.
    pub fn allow(&mut self, key: &str, now: Instant) -> bool {
        if self.buckets.len() >= MAX_BUCKETS && !self.buckets.contains_key(key) {
            self.forget_fullest(now);
        }
        let bucket = self.buckets.entry(key.to_string()).or_insert(Bucket {
            tokens: self.burst,
            last: now,
        });
        let elapsed = now.saturating_duration_since(bucket.last).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * self.rate).min(self.burst);
        bucket.last = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

impl RateLimiter {
    /// Makes room: forgets full buckets (what a new key gets anyway, so no answer changes), then,
    /// if that is not enough, the fullest tenth, so a throttled key is the last one forgotten.
    fn forget_fullest(&mut self, now: Instant) {
        let (rate, burst) = (self.rate, self.burst);
        let level = |b: &Bucket| {
            (b.tokens + now.saturating_duration_since(b.last).as_secs_f64() * rate).min(burst)
        };
        self.buckets.retain(|_, b| level(b) < burst);
        if self.buckets.len() < MAX_BUCKETS {
            return;
        }
        let mut levels: Vec<f64> = self.buckets.values().map(level).collect();
        levels.sort_by(|a, b| b.total_cmp(a));
        let cutoff = levels[MAX_BUCKETS / 10];
        self.buckets.retain(|_, b| level(b) < cutoff);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn app_auth_allows_three_then_one_per_six_seconds() {
        let mut limiter = RateLimiter::new(10.0 / 60.0, 3);
        let t0 = Instant::now();
        assert!((0..3).all(|_| limiter.allow("sa-1", t0)));
        assert!(!limiter.allow("sa-1", t0));
        assert!(limiter.allow("other", t0));
        assert!(!limiter.allow("sa-1", t0 + Duration::from_secs(5)));
        assert!(limiter.allow("sa-1", t0 + Duration::from_secs(7)));
    }

    #[test]
    fn keys_are_bounded_without_forgetting_a_throttled_one() {
        let mut limiter = RateLimiter::new(10.0 / 60.0, 3);
        let t0 = Instant::now();
        assert!((0..3).all(|_| limiter.allow("sa-1", t0)));
        for i in 0..3 * MAX_BUCKETS {
            limiter.allow(&format!("k{i}"), t0 + Duration::from_secs(1));
        }
        assert!(limiter.buckets.len() <= MAX_BUCKETS + 1);
        assert!(!limiter.allow("sa-1", t0 + Duration::from_secs(2)));
    }
}

//! Token buckets for the auth endpoints (contract 1.5): a new key starts with `burst - 1` tokens
//! after its first request, refills at `rate` per second up to `burst`, a request takes one.

use std::collections::HashMap;
use std::time::Instant;

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
}

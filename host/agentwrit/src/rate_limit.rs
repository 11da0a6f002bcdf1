//! Waiting out a broker's rate limit instead of failing the night. The AgentWrit broker allows
//! an app 10 authentications a minute with a burst of 3 and answers 429 with `Retry-After: 60`
//! beyond that; the shards of one night share one app and start together. Each waits what the
//! broker asks plus a random share of it again, so that the waiting shards come back spread over
//! the refill instead of all at once, and tries again, for as long as `patience` allows.

use std::hash::{BuildHasher as _, Hasher as _};
use std::time::{Duration, Instant};

/// What the broker is assumed to ask when a 429 carries no `Retry-After`.
const DEFAULT_RETRY_AFTER: Duration = Duration::from_secs(60);

/// A uniformly random fraction in [0, 1), different in every process and call.
fn jitter() -> f64 {
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    (hasher.finish() >> 11) as f64 / (1u64 << 53) as f64
}

/// How long to wait after the broker asked for `retry_after`: that, plus up to as much again.
pub fn backoff(retry_after: Option<Duration>) -> Duration {
    let base = retry_after.unwrap_or(DEFAULT_RETRY_AFTER);
    base + base.mul_f64(jitter())
}

/// Runs `attempt` until it is not rate-limited, waiting [`backoff`] between tries (calling
/// `on_wait` first) for at most `patience` in all; any other outcome is returned as it is.
pub async fn patiently<T, F, Fut>(
    patience: Duration,
    mut on_wait: impl FnMut(Duration),
    mut attempt: F,
) -> crate::Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = crate::Result<T>>,
{
    let started = Instant::now();
    loop {
        match attempt().await {
            Err(crate::Error::RateLimited { retry_after, .. })
                if started.elapsed() + backoff(retry_after) / 2 < patience =>
            {
                let wait = backoff(retry_after).min(patience.saturating_sub(started.elapsed()));
                on_wait(wait);
                tokio::time::sleep(wait).await;
            }
            other => return other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_waits_what_was_asked_and_at_most_as_much_again() {
        let waits: Vec<Duration> = (0..200)
            .map(|_| backoff(Some(Duration::from_secs(60))))
            .collect();
        assert!(
            waits
                .iter()
                .all(|w| (60.0..120.0).contains(&w.as_secs_f64()))
        );
        // Spread, not all the same: the point of the jitter.
        let spread =
            waits.iter().max().unwrap().as_secs_f64() - waits.iter().min().unwrap().as_secs_f64();
        assert!(spread > 30.0, "spread {spread}");
        assert!(backoff(None) >= DEFAULT_RETRY_AFTER);
    }
}

//! Stopping runs from outside: Ctrl-C, SIGTERM, a pipeline giving up.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::sync::Notify;

/// A flag every run sharing it checks: when computing (at the next epoch tick, ≤ 10 ms), on
/// entering the host, and while waiting in a host call (clock pollables wake up on it).
#[derive(Clone, Default, Debug)]
pub struct Interrupt(Arc<Inner>);

#[derive(Default, Debug)]
struct Inner {
    set: AtomicBool,
    notify: Notify,
}

impl Interrupt {
    pub fn new() -> Interrupt {
        Interrupt::default()
    }

    /// Stops every run sharing this interrupt. Idempotent.
    pub fn trigger(&self) {
        self.0.set.store(true, Ordering::Release);
        self.0.notify.notify_waiters();
    }

    pub fn is_triggered(&self) -> bool {
        self.0.set.load(Ordering::Acquire)
    }

    /// Resolves once [`trigger`](Self::trigger) was called (at once if it already was).
    pub async fn triggered(&self) {
        loop {
            let notified = self.0.notify.notified();
            tokio::pin!(notified);
            // Registered before the flag is read, so a trigger in between is not lost.
            notified.as_mut().enable();
            if self.is_triggered() {
                return;
            }
            notified.await;
        }
    }
}

/// A run was stopped by its [`Interrupt`]: the trap that ends it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Interrupted;

impl std::fmt::Display for Interrupted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("interrupted: the run was stopped before it finished")
    }
}

impl std::error::Error for Interrupted {}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn waiters_wake_on_trigger_and_late_waiters_return_at_once() {
        let interrupt = Interrupt::new();
        let waiter = tokio::spawn({
            let i = interrupt.clone();
            async move { i.triggered().await }
        });
        tokio::task::yield_now().await;
        interrupt.trigger();
        tokio::time::timeout(std::time::Duration::from_secs(5), waiter)
            .await
            .expect("woken")
            .unwrap();
        interrupt.triggered().await;
        assert!(interrupt.is_triggered());
    }
}

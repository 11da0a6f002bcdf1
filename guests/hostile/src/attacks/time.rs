//! Outliving the deadline: computing, sleeping in the host, reading forever.

use std::time::Duration;

use sluice_guest::bindings::sluice::etl::datasets;
use sluice_guest::{Params, RunError, Summary};

use super::me;

/// Never returns and never calls the host: only the epoch deadline can stop it.
pub fn spin(_: &Params) -> Result<Summary, RunError> {
    let mut x: u64 = 1;
    loop {
        x = std::hint::black_box(x.wrapping_mul(6364136223846793005).wrapping_add(1));
    }
}

/// Sleeps for a day: it waits inside the host, where no epoch check runs.
pub fn sleep_forever(_: &Params) -> Result<Summary, RunError> {
    std::thread::sleep(Duration::from_secs(86_400));
    Err(RunError::Failed("woke up".into()))
}

/// Sleeps 50 ms at a time, forever.
pub fn sleep_in_a_loop(_: &Params) -> Result<Summary, RunError> {
    loop {
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Reads its own data one row every 5 ms, starting over at the end, until something stops it: a
/// deadline, or its agent being revoked.
pub fn read_forever(_: &Params) -> Result<Summary, RunError> {
    let me = me();
    let name = datasets::list(&me, "analytics")?
        .into_iter()
        .next()
        .ok_or_else(|| RunError::Failed("no dataset".into()))?;
    loop {
        let dataset = datasets::open(&me, "analytics", &name, None)?;
        while dataset.next_batch(1)?.is_some() {
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

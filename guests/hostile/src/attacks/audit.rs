//! Growing the audit trail: interleaved repeats, and denials of ever-new kinds.

use sluice_guest::{Dataset, Params, Report, RunError, Summary};

use super::me;

/// Alternates two allowed calls 400 times: two kinds of decision, 800 decisions.
pub fn alternating_calls(_: &Params) -> Result<Summary, RunError> {
    let me = me();
    for _ in 0..400 {
        Dataset::list(&me, "analytics")?;
        drop(Report::create(&me)?);
    }
    Err(RunError::Failed("alternated 400 times".into()))
}

/// 1,000 denied opens, each of another tenant: 1,000 kinds of decision.
pub fn denial_spray(_: &Params) -> Result<Summary, RunError> {
    let mut denied = 0;
    for i in 0..1000 {
        if Dataset::open(&format!("tenant{i}"), "analytics", "visits").is_err() {
            denied += 1;
        }
    }
    Err(RunError::Failed(format!("sprayed {denied} denials")))
}

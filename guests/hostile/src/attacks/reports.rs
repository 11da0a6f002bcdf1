//! Reports that are not JSON to their readers, and reports past the budget.

use sluice_guest::{Params, Report, RunError, Summary};

use super::me;

fn commit(bytes: &[u8]) -> Result<Summary, RunError> {
    let report = Report::create(&me())?;
    report.append(bytes)?;
    report.commit()?;
    Err(RunError::Failed("committed it".into()))
}

pub fn report_invalid_utf8(_: &Params) -> Result<Summary, RunError> {
    commit(b"{\"a\":\"\xff\"}")
}

pub fn report_lone_surrogate(_: &Params) -> Result<Summary, RunError> {
    commit(br#"{"a":"\ud800"}"#)
}

pub fn report_duplicate_keys(_: &Params) -> Result<Summary, RunError> {
    commit(br#"{"a":1,"a":2}"#)
}

pub fn report_huge_number(_: &Params) -> Result<Summary, RunError> {
    commit(br#"{"a":1e400}"#)
}

/// Arrays nested 100,000 deep: Python's `json.loads` fails on it.
pub fn report_deep_nesting(_: &Params) -> Result<Summary, RunError> {
    let mut doc = "[".repeat(100_000);
    doc.push_str(&"]".repeat(100_000));
    commit(doc.as_bytes())
}

/// Appends 64 KiB at a time until the report budget stops it.
pub fn report_flood(_: &Params) -> Result<Summary, RunError> {
    let report = Report::create(&me())?;
    let chunk = vec![b' '; 64 << 10];
    loop {
        report.append(&chunk)?;
    }
}

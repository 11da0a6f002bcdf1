//! Calls, handles and faults: flooding the host, hoarding and forging handles, crashing.

use std::time::Duration;

use sluice_guest::bindings::sluice::etl::datasets;
use sluice_guest::{Dataset, Params, Report, RunError, Summary};

use super::me;

/// Calls the host as fast as it can, forever.
pub fn host_call_flood(_: &Params) -> Result<Summary, RunError> {
    loop {
        std::hint::black_box(sluice_guest::whoami());
    }
}

/// Calls a WASI function as fast as it can, forever.
pub fn wasi_call_flood(_: &Params) -> Result<Summary, RunError> {
    loop {
        std::hint::black_box(wasip2::clocks::monotonic_clock::now());
    }
}

/// Writes 64 KiB to stdout, forever.
pub fn stdout_flood(_: &Params) -> Result<Summary, RunError> {
    let chunk = "o".repeat(64 << 10);
    loop {
        print!("{chunk}");
    }
}

/// Subscribes to the clock and keeps every pollable: each is a handle in the host's table.
pub fn pollable_hoard(_: &Params) -> Result<Summary, RunError> {
    let mut hoard = Vec::new();
    loop {
        hoard.push(wasip2::clocks::monotonic_clock::subscribe_duration(
            Duration::from_secs(3600).as_nanos() as u64,
        ));
    }
}

/// Opens its own dataset over and over, keeping every handle (each holds a host file descriptor).
pub fn dataset_hoard(_: &Params) -> Result<Summary, RunError> {
    let me = me();
    let mut hoard = Vec::new();
    loop {
        hoard.push(Dataset::open(&me, "analytics", "visits")?);
    }
}

/// Reads from a handle it made up.
pub fn forged_handle(_: &Params) -> Result<Summary, RunError> {
    // SAFETY: none; the handle is forged on purpose and the host must refuse it.
    let dataset = unsafe { datasets::Dataset::from_handle(0x00ad_beef) };
    dataset.next_batch(1)?;
    Err(RunError::Failed("read through a forged handle".into()))
}

/// Reads from a dataset handle after dropping it.
pub fn stale_handle(_: &Params) -> Result<Summary, RunError> {
    let me = me();
    let name = datasets::list(&me, "analytics")?.remove(0);
    let handle = datasets::open(&me, "analytics", &name, None)?.take_handle();
    // SAFETY: none, on purpose: this drops the dataset, so the host frees the handle.
    drop(unsafe { datasets::Dataset::from_handle(handle) });
    // SAFETY: none, on purpose: the handle is stale, which the host must refuse.
    let stale = unsafe { datasets::Dataset::from_handle(handle) };
    stale.next_batch(1)?;
    Err(RunError::Failed("read through a stale handle".into()))
}

/// Passes a report handle where a dataset handle belongs.
pub fn wrong_type_handle(_: &Params) -> Result<Summary, RunError> {
    let handle = sluice_guest::bindings::sluice::etl::reports::create(&me())?.take_handle();
    // SAFETY: none; a report's handle posing as a dataset's, on purpose.
    let dataset = unsafe { datasets::Dataset::from_handle(handle) };
    dataset.next_batch(1)?;
    Err(RunError::Failed("read through a report's handle".into()))
}

/// Writes half of its own report, then panics.
pub fn trap_mid_report(_: &Params) -> Result<Summary, RunError> {
    let report = Report::create(&me())?;
    report.append(b"{\"tenant\":\"hospital\",\"figures\":{\"patient_visits\":")?;
    panic!("transform crashed half-way through its report");
}

/// Commits a bogus report of its own, then panics: the commit must not be published.
pub fn trap_after_commit(_: &Params) -> Result<Summary, RunError> {
    Report::create(&me())?.write_json("{\"bogus\":true}")?;
    panic!("transform crashed after committing");
}

/// Exits the process with code 3 (WASI 0.2's `exit` carries only ok or error: the host sees 1).
pub fn exit_with_code(_: &Params) -> Result<Summary, RunError> {
    std::process::exit(3)
}

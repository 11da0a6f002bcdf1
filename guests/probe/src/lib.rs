//! The isolation probe: tries to read another tenant's data and write a third tenant's report
//! under its own agent, and reads its own data. The host's gate, not this guest, is the judge:
//! the pipeline checks the gate's decisions, whatever the probe reports.
//!
//! Parameters: `read-tenant`, `write-tenant` (required); `resource` (default `analytics`);
//! `read-dataset` (default `data`; the gate decides before any lookup, so the name only matters
//! if isolation is broken). With `mode=gated-calls` and `calls=N` it instead drains its own first
//! dataset and then makes N gated `next-batch` calls: the benchmark of the gate's cost. With
//! `mode=slow-report` and `sleep-ms=N` it reads its own data, sleeps N ms, then writes its report:
//! the test of an agent revoked mid-run. With `mode=cheapest-calls` and `calls=N` it makes N calls
//! of the cheapest host function (the benchmark's baseline).

use sluice_guest::{
    Dataset, Error, Figures, Params, Report, RunError, Summary, Transform, describe, param,
};

struct Probe;

fn verdict(result: Result<(), Error>) -> String {
    match result {
        Ok(()) => "ALLOWED".to_string(),
        Err(Error::Denied(_)) => "BLOCKED".to_string(),
        // Allowed by the gate, then not found: still access, still a violation.
        Err(other) => format!("ALLOWED ({})", describe(&other)),
    }
}

fn required<'a>(params: &'a Params, name: &str) -> Result<&'a str, RunError> {
    param(params, name).ok_or_else(|| RunError::Failed(format!("parameter '{name}' is required")))
}

fn gated_calls(params: &Params, tenant: &str, resource: &str) -> Result<Summary, RunError> {
    let calls: u64 = required(params, "calls")?
        .parse()
        .map_err(|_| RunError::Failed("parameter 'calls' must be a number".into()))?;
    let name = Dataset::list(tenant, resource)?
        .into_iter()
        .next()
        .ok_or_else(|| RunError::Failed(format!("tenant '{tenant}' has no datasets")))?;
    let dataset = Dataset::open(tenant, resource, &name)?;
    while dataset.next_batch()?.is_some() {}
    for _ in 0..calls {
        dataset.next_batch()?;
    }
    Ok(Figures::new()
        .add("gated_calls", calls.to_string())
        .into_summary())
}

/// `calls` of the cheapest host function there is (the monotonic clock's resolution: a constant,
/// no gate, no state): the baseline the gated call's cost is measured against.
fn cheapest_calls(params: &Params) -> Result<Summary, RunError> {
    let calls: u64 = required(params, "calls")?
        .parse()
        .map_err(|_| RunError::Failed("parameter 'calls' must be a number".into()))?;
    for _ in 0..calls {
        std::hint::black_box(wasip2::clocks::monotonic_clock::resolution());
    }
    Ok(Figures::new()
        .add("cheapest_calls", calls.to_string())
        .into_summary())
}

fn slow_report(params: &Params, tenant: &str, resource: &str) -> Result<Summary, RunError> {
    let sleep_ms: u64 = required(params, "sleep-ms")?
        .parse()
        .map_err(|_| RunError::Failed("parameter 'sleep-ms' must be a number".into()))?;
    let mut rows = 0u64;
    for name in Dataset::list(tenant, resource)? {
        for batch in Dataset::open(tenant, resource, &name)?.batches() {
            rows += u64::from(batch?.rows());
        }
    }
    std::thread::sleep(std::time::Duration::from_millis(sleep_ms));
    let figures = Figures::new().add("rows", rows.to_string());
    Report::create(tenant)?.write_json(&figures.to_json(tenant))?;
    Ok(figures.into_summary())
}

impl Transform for Probe {
    fn run(params: Params) -> Result<Summary, RunError> {
        let me = sluice_guest::whoami();
        let resource = param(&params, "resource").unwrap_or("analytics");
        match param(&params, "mode") {
            Some("gated-calls") => return gated_calls(&params, &me.tenant, resource),
            Some("cheapest-calls") => return cheapest_calls(&params),
            Some("slow-report") => return slow_report(&params, &me.tenant, resource),
            _ => {}
        }
        let read_tenant = required(&params, "read-tenant")?;
        let write_tenant = required(&params, "write-tenant")?;
        let read_dataset = param(&params, "read-dataset").unwrap_or("data");

        let cross_read = verdict(Dataset::open(read_tenant, resource, read_dataset).map(drop));
        let cross_write = verdict(Report::create(write_tenant).map(drop));
        let own_read = verdict((|| {
            for name in Dataset::list(&me.tenant, resource)? {
                Dataset::open(&me.tenant, resource, &name)?.next_batch()?;
            }
            Ok(())
        })());

        Ok(Figures::new()
            .add(&format!("read:{resource}:{read_tenant}"), cross_read)
            .add(&format!("write:reports:{write_tenant}"), cross_write)
            .add(&format!("read:{resource}:{}", me.tenant), own_read)
            .into_summary())
    }
}

sluice_guest::export_transform!(Probe);

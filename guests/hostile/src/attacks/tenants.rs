//! Reaching for another tenant's data and reports.

use sluice_guest::{Dataset, Params, Report, RunError, Summary};

use super::other_tenant;

/// Reads another tenant's transactions.
pub fn read_other_tenant(params: &Params) -> Result<Summary, RunError> {
    let txns = Dataset::open(&other_tenant(params), "analytics", "transactions")?;
    txns.next_batch()?;
    Err(RunError::Failed("read another tenant's data".into()))
}

/// Lists another tenant's datasets.
pub fn list_other_tenant(params: &Params) -> Result<Summary, RunError> {
    let names = Dataset::list(&other_tenant(params), "analytics")?;
    Err(RunError::Failed(format!("listed {} datasets", names.len())))
}

/// Writes the retailer's report.
pub fn write_other_tenant(params: &Params) -> Result<Summary, RunError> {
    let target = sluice_guest::param(params, "write-tenant").unwrap_or("retail");
    Report::create(target)?.write_json("{\"owned\":true}")?;
    Err(RunError::Failed("wrote another tenant's report".into()))
}

//! `sluice:etl/reports`: a tenant's report, drafted in memory and staged on commit.
//!
//! Nothing reaches disk from here. A committed draft is staged in the run's state and the caller
//! publishes it atomically only if the whole run succeeds, so a guest that traps after `commit`,
//! or a run that fails any other way, leaves the previous report untouched.

use std::sync::Arc;

use agentwrit_scope::Scope;
use wasmtime::component::Resource;

use crate::bindings::sluice::etl::reports;
use crate::bounds::check_name;
use crate::error::HostError;
use crate::gate::HostCall;
use crate::report_json;
use crate::state::{HostState, StagedReport};
use sluice_budget::Counter;

/// The host side of a guest's `report` handle.
pub struct ReportDraft {
    tenant: String,
    required: Arc<Scope>,
    bytes: Vec<u8>,
    committed: bool,
}

impl ReportDraft {
    fn ensure_open(&self) -> Result<(), HostError> {
        if self.committed {
            return Err(HostError::Invalid(format!(
                "the report of tenant '{}' was already committed",
                self.tenant
            )));
        }
        Ok(())
    }
}

impl reports::Host for HostState {
    fn create(&mut self, tenant: String) -> Result<Resource<ReportDraft>, HostError> {
        self.enter()?;
        check_name("tenant", &tenant)?;
        let required = Scope::new("write", "reports", &tenant)
            .map(Arc::new)
            .map_err(|e| HostError::Invalid(e.to_string()))?;
        self.gate.check(HostCall::ReportsCreate, &required)?;
        self.push(ReportDraft {
            tenant,
            required,
            bytes: Vec::new(),
            committed: false,
        })
    }
}

impl reports::HostReport for HostState {
    fn append(&mut self, report: Resource<ReportDraft>, bytes: Vec<u8>) -> Result<(), HostError> {
        self.enter()?;
        let draft = self.table.get_mut(&report)?;
        self.gate.check(HostCall::ReportAppend, &draft.required)?;
        draft.ensure_open()?;
        self.usage
            .charge(&self.budget, Counter::ReportBytes, bytes.len() as u64)?;
        draft.bytes.extend_from_slice(&bytes);
        Ok(())
    }

    fn commit(&mut self, report: Resource<ReportDraft>) -> Result<(), HostError> {
        self.enter()?;
        let draft = self.table.get_mut(&report)?;
        self.gate.check(HostCall::ReportCommit, &draft.required)?;
        draft.ensure_open()?;
        if let Err(e) = report_json::check(&draft.bytes) {
            return Err(HostError::Invalid(format!(
                "the report of tenant '{}' is not one JSON document every reader accepts \
                 (I-JSON, nesting at most {}): {e}",
                draft.tenant,
                report_json::MAX_DEPTH
            )));
        }
        if self.staged.iter().any(|s| s.tenant == draft.tenant) {
            return Err(HostError::Invalid(format!(
                "a report of tenant '{}' was already committed in this run",
                draft.tenant
            )));
        }
        draft.committed = true;
        let staged = StagedReport {
            tenant: draft.tenant.clone(),
            bytes: std::mem::take(&mut draft.bytes),
        };
        self.staged.push(staged);
        Ok(())
    }

    fn drop(&mut self, report: Resource<ReportDraft>) -> wasmtime::Result<()> {
        self.enter()?;
        // An uncommitted draft just disappears: abandoned reports leave nothing behind.
        self.table.delete(report)?;
        Ok(())
    }
}

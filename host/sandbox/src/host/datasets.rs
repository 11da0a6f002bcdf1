//! `sluice:etl/datasets`: tenant data, read in columnar batches behind the gate.
//!
//! Names are checked to be plain names first (a malformed call is `invalid`, not a gate
//! question). `open` then asks the gate for `read:<resource>:<tenant>` before the source is even
//! consulted, so a denied guest cannot learn whether another tenant's dataset exists; the source
//! reads only the columns the guest named. The open dataset keeps its
//! required scope and every `next-batch` asks the gate again: a revoked agent stops mid-stream.

use std::sync::Arc;

use agentwrit_scope::Scope;
use wasmtime::component::Resource;

use crate::bindings::sluice::etl::columns::{Batch, Column};
use crate::bindings::sluice::etl::datasets;
use crate::bounds::check_name;
use crate::budget::{Counter, Limit, LimitExceeded};
use crate::columns::{batch_bytes, wit_batch, wit_schema};
use crate::error::HostError;
use crate::gate::HostCall;
use crate::source::{DatasetCursor, SourceError};
use crate::state::HostState;

/// Most rows one `next-batch` returns, whatever the guest asks: bounds host-side allocation.
pub const MAX_BATCH_ROWS: u32 = 65_536;

/// Most columns a transform may name when it opens a dataset.
pub const MAX_OPEN_COLUMNS: usize = 1024;

/// The host side of a guest's `dataset` handle.
pub struct OpenDataset {
    cursor: Box<dyn DatasetCursor>,
    /// The schema as the guest sees it, checked when the dataset was opened.
    schema: Vec<Column>,
    name: String,
    required: Arc<Scope>,
}

fn read_scope(tenant: &str, resource: &str) -> Result<Arc<Scope>, HostError> {
    Scope::new("read", resource, tenant)
        .map(Arc::new)
        .map_err(|e| HostError::Invalid(e.to_string()))
}

impl From<SourceError> for HostError {
    fn from(e: SourceError) -> Self {
        match e {
            SourceError::NotFound(what) => HostError::NotFound(what),
            SourceError::Invalid(what) => HostError::Invalid(what),
            SourceError::Store(e) => HostError::Host(wasmtime::Error::msg(format!("{e:#}"))),
        }
    }
}

impl datasets::Host for HostState {
    fn open(
        &mut self,
        tenant: String,
        resource: String,
        name: String,
        columns: Option<Vec<String>>,
    ) -> Result<Resource<OpenDataset>, HostError> {
        self.enter()?;
        check_name("tenant", &tenant)?;
        check_name("resource", &resource)?;
        check_name("dataset", &name)?;
        if let Some(columns) = &columns
            && columns.len() > MAX_OPEN_COLUMNS
        {
            return Err(HostError::Invalid(format!(
                "{} columns named; at most {MAX_OPEN_COLUMNS}",
                columns.len()
            )));
        }
        let required = read_scope(&tenant, &resource)?;
        self.gate.check(HostCall::DatasetsOpen, &required)?;
        if self.open_datasets >= self.budget.open_datasets {
            return Err(HostError::Limit(LimitExceeded {
                limit: Limit::OpenDatasets,
                value: self.budget.open_datasets,
                requested: Some(self.open_datasets + 1),
            }));
        }
        let cursor = self
            .datasets
            .open(&tenant, &resource, &name, columns.as_deref())?;
        let schema = wit_schema(&name, cursor.schema())?;
        let handle = self.push(OpenDataset {
            cursor,
            schema,
            name,
            required,
        })?;
        self.open_datasets += 1;
        Ok(handle)
    }

    fn list(&mut self, tenant: String, resource: String) -> Result<Vec<String>, HostError> {
        self.enter()?;
        check_name("tenant", &tenant)?;
        check_name("resource", &resource)?;
        let required = read_scope(&tenant, &resource)?;
        self.gate.check(HostCall::DatasetsList, &required)?;
        Ok(self.datasets.list(&tenant, &resource)?)
    }
}

impl datasets::HostDataset for HostState {
    fn schema(&mut self, dataset: Resource<OpenDataset>) -> wasmtime::Result<Vec<Column>> {
        self.enter()?;
        Ok(self.table.get(&dataset)?.schema.clone())
    }

    fn next_batch(
        &mut self,
        dataset: Resource<OpenDataset>,
        max_rows: u32,
    ) -> Result<Option<Batch>, HostError> {
        self.enter()?;
        let open = self.table.get_mut(&dataset)?;
        self.gate
            .check(HostCall::DatasetNextBatch, &open.required)?;
        let Some(record) = open
            .cursor
            .next_batch(max_rows.clamp(1, MAX_BATCH_ROWS) as usize)?
        else {
            return Ok(None);
        };
        let batch = wit_batch(&open.name, &record)?;
        // Charged before the batch reaches the guest: a spent budget delivers nothing.
        self.charge(Counter::RowsRead, u64::from(batch.rows))?;
        self.charge(Counter::BytesRead, batch_bytes(&batch))?;
        Ok(Some(batch))
    }

    fn drop(&mut self, dataset: Resource<OpenDataset>) -> wasmtime::Result<()> {
        self.enter()?;
        self.table.delete(dataset)?;
        self.open_datasets = self.open_datasets.saturating_sub(1);
        Ok(())
    }
}

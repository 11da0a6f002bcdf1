//! `sluice:etl/datasets`: tenant data, read in columnar batches behind the gate.
//!
//! Names are checked to be plain names first (a malformed call is `invalid`, not a gate
//! question). `open` then asks the gate for `read:<resource>:<tenant>` before the source is even
//! consulted, so a denied guest cannot learn whether another tenant's dataset exists. The open dataset keeps its
//! required scope and every `next-batch` asks the gate again: a revoked agent stops mid-stream.

use std::sync::Arc;

use agentwrit_scope::Scope;
use wasmtime::component::Resource;

use crate::bindings::sluice::etl::datasets::{self, Batch, Column};
use crate::bounds::check_name;
use crate::budget::{Counter, Limit, LimitExceeded};
use crate::error::HostError;
use crate::gate::HostCall;
use crate::source::{DatasetCursor, SourceError, batch_bytes};
use crate::state::HostState;
use crate::text::{cut, escape};

/// Most rows one `next-batch` returns, whatever the guest asks: bounds host-side allocation.
pub const MAX_BATCH_ROWS: u32 = 65_536;

/// The host side of a guest's `dataset` handle.
pub struct OpenDataset {
    cursor: Box<dyn DatasetCursor>,
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
    ) -> Result<Resource<OpenDataset>, HostError> {
        self.enter()?;
        check_name("tenant", &tenant)?;
        check_name("resource", &resource)?;
        check_name("dataset", &name)?;
        let required = read_scope(&tenant, &resource)?;
        self.gate.check(HostCall::DatasetsOpen, &required)?;
        if self.open_datasets >= self.budget.open_datasets {
            return Err(HostError::Limit(LimitExceeded {
                limit: Limit::OpenDatasets,
                value: self.budget.open_datasets,
                requested: Some(self.open_datasets + 1),
            }));
        }
        let cursor = self.datasets.open(&tenant, &resource, &name)?;
        let handle = self.push(OpenDataset { cursor, required })?;
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
        Ok(self.table.get(&dataset)?.cursor.schema().to_vec())
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
        let Some(batch) = open
            .cursor
            .next_batch(max_rows.clamp(1, MAX_BATCH_ROWS) as usize)?
        else {
            return Ok(None);
        };
        // Charged before the batch reaches the guest: a spent budget delivers nothing.
        self.charge(Counter::RowsRead, u64::from(batch.rows))?;
        self.charge(Counter::BytesRead, batch_bytes(&batch))?;
        Ok(Some(batch))
    }

    fn select(
        &mut self,
        dataset: Resource<OpenDataset>,
        columns: Vec<String>,
    ) -> Result<(), HostError> {
        self.enter()?;
        let open = self.table.get_mut(&dataset)?;
        self.gate.check(HostCall::DatasetSelect, &open.required)?;
        let indices = column_indices(open.cursor.schema(), &columns)?;
        Ok(open.cursor.select(&indices)?)
    }

    fn drop(&mut self, dataset: Resource<OpenDataset>) -> wasmtime::Result<()> {
        self.enter()?;
        self.table.delete(dataset)?;
        self.open_datasets = self.open_datasets.saturating_sub(1);
        Ok(())
    }
}

/// The schema indices of `names`, or `invalid` naming the first that is unknown or repeated.
fn column_indices(schema: &[Column], names: &[String]) -> Result<Vec<usize>, HostError> {
    if names.is_empty() {
        return Err(HostError::Invalid(
            "select needs at least one column".into(),
        ));
    }
    let mut indices = Vec::with_capacity(names.len().min(schema.len()));
    for name in names {
        let index = schema.iter().position(|c| &c.name == name).ok_or_else(|| {
            HostError::Invalid(format!(
                "the dataset has no column '{}'",
                escape(&cut(name, 64))
            ))
        })?;
        if indices.contains(&index) {
            return Err(HostError::Invalid(format!(
                "column '{}' is selected twice",
                escape(name)
            )));
        }
        indices.push(index);
    }
    Ok(indices)
}

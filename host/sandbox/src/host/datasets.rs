//! `sluice:etl/datasets`: tenant data, read in columnar batches behind the gate.
//!
//! Names are checked to be plain names first (a malformed call is `invalid`, not a gate
//! question). `open` then asks the gate for `read:<resource>:<tenant>` before the source is even
//! consulted, so a denied guest cannot learn whether another tenant's dataset exists; the source
//! reads only the columns the guest named. The open dataset keeps its
//! required scope and every `next-batch` asks the gate again: a revoked agent stops mid-stream.
//!
//! Sources decode a tenant's own data, which is as hostile as its guest: they are bounded and
//! metered by the run's [`ReadContext`](crate::source::ReadContext) (they charge `bytes-read`
//! for what they decode, before decoding it), and a panic in one is caught here as this run's
//! failure.

use std::sync::Arc;

use agentwrit_scope::Scope;
use wasmtime::component::Resource;

use crate::bindings::sluice::etl::columns::{Batch, Column};
use crate::bindings::sluice::etl::datasets;
use crate::bounds::check_name;
use crate::columns::{wit_batch, wit_schema};
use crate::error::HostError;
use crate::gate::HostCall;
use crate::interrupt::Interrupted;
use crate::lowered::GuestBatch;
use crate::panics::Panicked;
use crate::source::{DatasetCursor, DatasetRef, SourceError};
use crate::state::HostState;
use sluice_budget::{Counter, Limit, LimitExceeded};

/// Most rows one `next-batch` returns, whatever the guest asks: bounds host-side allocation.
pub const MAX_BATCH_ROWS: u32 = 65_536;

/// Most columns a transform may name when it opens a dataset.
pub const MAX_OPEN_COLUMNS: usize = 1024;

/// Most dataset names one `list` returns.
pub const MAX_LISTED: usize = 4096;

/// The host side of a guest's `dataset` handle.
pub struct OpenDataset {
    cursor: Box<dyn DatasetCursor>,
    /// The schema as the guest sees it, checked when the dataset was opened.
    schema: Vec<Column>,
    name: String,
    required: Arc<Scope>,
}

/// `read:<resource>:<tenant>`: what listing a resource's datasets requires.
fn read_scope(tenant: &str, resource: &str) -> Result<Arc<Scope>, HostError> {
    Scope::new("read", resource, tenant)
        .map(Arc::new)
        .map_err(|e| HostError::Invalid(e.to_string()))
}

/// Conversions of the sandbox's own checks (schemas, batches), which never stop a read.
impl From<SourceError> for HostError {
    fn from(e: SourceError) -> Self {
        match e {
            SourceError::NotFound(what) => HostError::NotFound(what),
            SourceError::Invalid(what) => HostError::Invalid(what),
            SourceError::Limit(limit) => HostError::Limit(limit),
            SourceError::Stopped => HostError::Host(wasmtime::Error::new(Interrupted)),
            SourceError::Store(e) => HostError::Host(wasmtime::Error::msg(format!("{e:#}"))),
        }
    }
}

/// A source call that panicked: the run ends with a host error naming the dataset.
fn panicked(name: &str, panic: Panicked) -> HostError {
    HostError::Host(wasmtime::Error::msg(format!(
        "reading dataset '{name}' failed: the reader panicked ({})",
        sluice_text::escape(&panic.to_string())
    )))
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
        let dataset = DatasetRef::new(&tenant, &resource, &name)?;
        let required = Arc::clone(dataset.read_scope());
        self.gate.check(HostCall::DatasetsOpen, &required)?;
        if self.open_datasets >= self.budget.open_datasets {
            return Err(HostError::Limit(LimitExceeded::new(
                Limit::OpenDatasets,
                self.budget.open_datasets,
                Some(self.open_datasets + 1),
            )));
        }
        let (source, read) = (Arc::clone(&self.datasets), self.read.clone());
        let opened = crate::panics::catch(|| source.open(&dataset, columns.as_deref(), &read))
            .map_err(|message| panicked(&name, message))?;
        let cursor = opened.map_err(|e| self.source_error(e))?;
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
        let source = Arc::clone(&self.datasets);
        let listed = crate::panics::catch(|| source.list(&tenant, &resource))
            .map_err(|message| panicked(&resource, message))?;
        let names = listed.map_err(|e| self.source_error(e))?;
        if names.len() > MAX_LISTED {
            return Err(HostError::Invalid(format!(
                "resource '{resource}' holds {} datasets, more than the {MAX_LISTED} a list \
                 returns: open them by name",
                names.len()
            )));
        }
        Ok(names)
    }
}

impl HostState {
    /// `[method]dataset.next-batch`: the gate, then the source's next record batch as the
    /// guest's batch, sharing Arrow's buffers (see [`crate::lowered`]).
    pub(crate) fn read_batch(
        &mut self,
        dataset: Resource<OpenDataset>,
        max_rows: u32,
    ) -> Result<Option<GuestBatch>, HostError> {
        self.enter()?;
        let open = self.table.get_mut(&dataset)?;
        self.gate
            .check(HostCall::DatasetNextBatch, &open.required)?;
        let rows = max_rows.clamp(1, MAX_BATCH_ROWS) as usize;
        let cursor = &mut open.cursor;
        let next = match crate::panics::catch(|| cursor.next_batch(rows)) {
            Ok(next) => next,
            Err(message) => {
                let name = open.name.clone();
                return Err(panicked(&name, message));
            }
        };
        let record = match next {
            Ok(Some(record)) => record,
            Ok(None) => return Ok(None),
            Err(e) => return Err(self.source_error(e)),
        };
        let open = self.table.get_mut(&dataset)?;
        let batch = wit_batch(&open.name, &record)?;
        // Charged before the batch reaches the guest: a spent budget delivers nothing. The
        // bytes were charged by the source when it decoded them.
        self.charge(Counter::RowsRead, u64::from(batch.rows))?;
        Ok(Some(batch))
    }
}

impl datasets::HostDataset for HostState {
    fn schema(&mut self, dataset: Resource<OpenDataset>) -> wasmtime::Result<Vec<Column>> {
        self.enter()?;
        Ok(self.table.get(&dataset)?.schema.clone())
    }

    /// What the guest's `next-batch` calls is [`HostState::read_batch`], linked by hand in
    /// `linker.rs` so the batch is lowered from Arrow's buffers; bindgen's trait still asks for
    /// this owned-value version, which returns the same batch copied.
    fn next_batch(
        &mut self,
        dataset: Resource<OpenDataset>,
        max_rows: u32,
    ) -> Result<Option<Batch>, HostError> {
        Ok(self
            .read_batch(dataset, max_rows)?
            .map(|batch| batch.to_owned_batch()))
    }

    fn drop(&mut self, dataset: Resource<OpenDataset>) -> wasmtime::Result<()> {
        self.enter()?;
        self.table.delete(dataset)?;
        self.open_datasets = self.open_datasets.saturating_sub(1);
        Ok(())
    }
}

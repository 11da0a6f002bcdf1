//! `sluice:etl/tables`: output datasets, built in memory and staged on commit, like reports.
//!
//! `create` asks the gate for `write:<resource>:<tenant>`; every `append` and `commit` asks again.
//! A run creates at most `output-tables` tables of at most `columns` columns. Each appended
//! batch is checked against the declared schema and turned into an Arrow record batch before
//! anything is kept (see [`crate::columns`]), and what the host keeps of it (Arrow's buffers,
//! which an empty batch of many columns has too) counts against the `report-bytes` budget. The
//! caller publishes a run's staged tables and report together, only if the whole run succeeds.

use std::sync::Arc;

use agentwrit_scope::Scope;
use wasmtime::component::Resource;

use crate::bindings::sluice::etl::columns::{Batch, Column};
use crate::bindings::sluice::etl::tables;
use crate::bounds::check_name;
use crate::columns::{arrow_batch, batch_bytes, output_schema};
use crate::error::HostError;
use crate::gate::HostCall;
use crate::source::{RecordBatch, SchemaRef};
use crate::state::HostState;
use sluice_budget::{Counter, Limit, LimitExceeded};

/// An output table the guest committed; published by the caller only if the run succeeds.
#[derive(Clone, Debug)]
pub struct StagedTable {
    pub tenant: String,
    pub resource: String,
    pub name: String,
    pub schema: SchemaRef,
    pub batches: Vec<RecordBatch>,
}

impl StagedTable {
    pub fn rows(&self) -> usize {
        self.batches.iter().map(RecordBatch::num_rows).sum()
    }
}

/// The host side of a guest's `table` handle.
pub struct TableDraft {
    table: StagedTable,
    required: Arc<Scope>,
    committed: bool,
}

impl TableDraft {
    fn ensure_open(&self) -> Result<(), HostError> {
        if self.committed {
            return Err(HostError::Invalid(format!(
                "output table '{}' was already committed",
                self.table.name
            )));
        }
        Ok(())
    }
}

impl tables::Host for HostState {
    fn create(
        &mut self,
        tenant: String,
        resource: String,
        name: String,
        schema: Vec<Column>,
    ) -> Result<Resource<TableDraft>, HostError> {
        self.enter()?;
        check_name("tenant", &tenant)?;
        check_name("resource", &resource)?;
        check_name("table", &name)?;
        let required = Scope::new("write", &resource, &tenant)
            .map(Arc::new)
            .map_err(|e| HostError::Invalid(e.to_string()))?;
        self.gate.check(HostCall::TablesCreate, &required)?;
        if self.tables_created >= self.budget.output_tables {
            return Err(HostError::Limit(LimitExceeded::new(
                Limit::OutputTables,
                self.budget.output_tables,
                Some(self.tables_created + 1),
            )));
        }
        if schema.len() as u64 > self.budget.columns {
            return Err(HostError::Limit(
                LimitExceeded::new(
                    Limit::Columns,
                    self.budget.columns,
                    Some(schema.len() as u64),
                )
                .by(format!("output table '{name}'")),
            ));
        }
        self.tables_created += 1;
        let schema = output_schema(&schema)
            .map_err(|why| HostError::Invalid(format!("output table '{name}': {why}")))?;
        self.push(TableDraft {
            table: StagedTable {
                tenant,
                resource,
                name,
                schema,
                batches: Vec::new(),
            },
            required,
            committed: false,
        })
    }
}

impl tables::HostTable for HostState {
    fn append(&mut self, table: Resource<TableDraft>, rows: Batch) -> Result<(), HostError> {
        self.enter()?;
        let draft = self.table.get_mut(&table)?;
        self.gate.check(HostCall::TableAppend, &draft.required)?;
        draft.ensure_open()?;
        // What the guest handed over, before converting it; then what the host keeps of it,
        // which for an empty batch is still a buffer per column.
        self.usage
            .charge(&self.budget, Counter::ReportBytes, batch_bytes(&rows))?;
        let record = arrow_batch(&draft.table.schema, rows).map_err(|why| {
            HostError::Invalid(format!(
                "rows for output table '{}': {why}",
                draft.table.name
            ))
        })?;
        let kept = record.get_array_memory_size() as u64;
        self.usage
            .charge(&self.budget, Counter::ReportBytes, kept)?;
        let draft = self.table.get_mut(&table)?;
        draft.table.batches.push(record);
        Ok(())
    }

    fn commit(&mut self, table: Resource<TableDraft>) -> Result<(), HostError> {
        self.enter()?;
        let draft = self.table.get_mut(&table)?;
        self.gate.check(HostCall::TableCommit, &draft.required)?;
        draft.ensure_open()?;
        let t = &draft.table;
        // The writ is one tenant's, so (resource, name) names a table; one lookup however many
        // tables were committed.
        if !self
            .committed_tables
            .insert((t.resource.clone(), t.name.clone()))
        {
            return Err(HostError::Invalid(format!(
                "output table '{}' of tenant '{}' was already committed in this run",
                t.name, t.tenant
            )));
        }
        draft.committed = true;
        let staged = StagedTable {
            batches: std::mem::take(&mut draft.table.batches),
            ..draft.table.clone()
        };
        self.staged_tables.push(staged);
        Ok(())
    }

    fn drop(&mut self, table: Resource<TableDraft>) -> wasmtime::Result<()> {
        self.enter()?;
        // An uncommitted table just disappears, like an uncommitted report.
        self.table.delete(table)?;
        Ok(())
    }
}

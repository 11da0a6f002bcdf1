//! The backend the datasets capability reads from. The sandbox never sees SQL: the pipeline's
//! SQLite store implements these traits.

pub use crate::bindings::sluice::etl::datasets::{
    Batch, Column, ColumnData, ColumnType, ColumnValues,
};

/// Why a dataset could not be listed, opened or read.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// No such dataset for that tenant and resource: the guest sees `error::not-found`.
    #[error("{0}")]
    NotFound(String),
    /// The guest asked for something malformed (e.g. a name that is not an identifier).
    #[error("{0}")]
    Invalid(String),
    /// The store itself failed; the run traps with this message.
    #[error(transparent)]
    Store(#[from] anyhow::Error),
}

impl SourceError {
    /// The one wording of "no such dataset", for every source.
    pub fn not_found(tenant: &str, resource: &str, name: &str) -> SourceError {
        SourceError::NotFound(format!(
            "tenant '{tenant}' has no dataset '{name}' in resource '{resource}'"
        ))
    }
}

/// Tenant datasets, looked up by tenant, resource and name. Called only after the gate allowed
/// `read:<resource>:<tenant>`.
pub trait DatasetSource: Send + Sync {
    fn list(&self, tenant: &str, resource: &str) -> Result<Vec<String>, SourceError>;
    fn open(
        &self,
        tenant: &str,
        resource: &str,
        name: &str,
    ) -> Result<Box<dyn DatasetCursor>, SourceError>;
}

/// An open dataset, read forward in batches.
pub trait DatasetCursor: Send {
    fn schema(&self) -> &[Column];
    /// At most `max_rows` rows (at least one unless the dataset is exhausted), or `None` at the end.
    fn next_batch(&mut self, max_rows: usize) -> Result<Option<Batch>, SourceError>;
    /// Narrows the schema, and every batch after this call, to `columns`: distinct indices into
    /// the current schema, in the order wanted (the host has checked them).
    fn select(&mut self, columns: &[usize]) -> Result<(), SourceError>;
}

/// Bytes of column data in a batch, for the bytes-read budget.
pub fn batch_bytes(batch: &Batch) -> u64 {
    batch
        .columns
        .iter()
        .map(|c| {
            let values = match &c.values {
                ColumnValues::Int64(v) => v.len() * 8,
                ColumnValues::Float64(v) => v.len() * 8,
                ColumnValues::Boolean(v) => v.len(),
                ColumnValues::Text((data, offsets)) => data.len() + offsets.len() * 4,
            };
            (values + c.nulls.len() * 4) as u64
        })
        .sum()
}

/// A source with no datasets at all.
pub struct NoDatasets;

impl DatasetSource for NoDatasets {
    fn list(&self, _tenant: &str, _resource: &str) -> Result<Vec<String>, SourceError> {
        Ok(Vec::new())
    }
    fn open(
        &self,
        tenant: &str,
        resource: &str,
        name: &str,
    ) -> Result<Box<dyn DatasetCursor>, SourceError> {
        Err(SourceError::not_found(tenant, resource, name))
    }
}

//! The backend the datasets capability reads from: Arrow record batches. The sandbox never sees
//! SQL or files: the pipeline's sources (SQLite, PostgreSQL, Parquet, CSV) implement these traits.

pub use arrow_array::RecordBatch;
pub use arrow_schema::{DataType, Field, Schema, SchemaRef, TimeUnit};

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
/// `read:<resource>:<tenant>`. Every source yields Arrow record batches; the sandbox turns them
/// into the WIT's columns.
pub trait DatasetSource: Send + Sync {
    fn list(&self, tenant: &str, resource: &str) -> Result<Vec<String>, SourceError>;
    /// Opens dataset `name`, reading only `columns` (in that order) when given: a source reads
    /// nothing else from storage. [`projection`] checks the names against the schema.
    fn open(
        &self,
        tenant: &str,
        resource: &str,
        name: &str,
        columns: Option<&[String]>,
    ) -> Result<Box<dyn DatasetCursor>, SourceError>;
}

/// An open dataset, read forward in batches.
pub trait DatasetCursor: Send {
    /// The columns of every batch: the projection `open` was given, or all.
    fn schema(&self) -> &SchemaRef;
    /// At most `max_rows` rows (at least one unless the dataset is exhausted), or `None` at the
    /// end. Every batch has exactly [`schema`](Self::schema)'s columns.
    fn next_batch(&mut self, max_rows: usize) -> Result<Option<RecordBatch>, SourceError>;
}

/// The indices into `schema` of the `columns` a transform asked for (all, in order, for
/// `None`), or `invalid` naming the first unknown or repeated one and the columns there are;
/// `label` names the dataset in that error (`dataset 'orders'`, with its file if it has one).
pub fn projection(
    label: &str,
    schema: &Schema,
    columns: Option<&[String]>,
) -> Result<Vec<usize>, SourceError> {
    let Some(columns) = columns else {
        return Ok((0..schema.fields().len()).collect());
    };
    if columns.is_empty() {
        return Err(SourceError::Invalid(format!(
            "no columns asked of {label}: name at least one, or none to read all"
        )));
    }
    let mut indices = Vec::with_capacity(columns.len().min(schema.fields().len()));
    for name in columns {
        let Some(index) = schema.fields().iter().position(|f| f.name() == name) else {
            let known: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
            return Err(SourceError::Invalid(format!(
                "{label} has no column '{}'; it has: {}",
                crate::escape(&crate::cut(name, 64)),
                crate::escape(&crate::cut(&known.join(", "), 512))
            )));
        };
        if indices.contains(&index) {
            return Err(SourceError::Invalid(format!(
                "column '{}' of {label} is asked for twice",
                crate::escape(name)
            )));
        }
        indices.push(index);
    }
    Ok(indices)
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
        _columns: Option<&[String]>,
    ) -> Result<Box<dyn DatasetCursor>, SourceError> {
        Err(SourceError::not_found(tenant, resource, name))
    }
}

//! The backend the datasets capability reads from: Arrow record batches. The sandbox never sees
//! SQL or files: the pipeline's sources (SQLite, PostgreSQL, Parquet, CSV) implement these traits.
//!
//! A tenant's data is as hostile as its guest. So every `open` gets a [`ReadContext`]: the
//! tenant's bounds on what its data may be (schema depth, columns, row and page sizes), a meter
//! that sources charge what they decode to *before* decoding it (`bytes-read`) and the decoded
//! data they hold for it (`memory-mib`), and the signal that the run is over (interrupted, past
//! its deadline, abandoned by the watchdog), which sources check per batch, row group and line.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Instant;

pub use arrow_array::RecordBatch;
pub use arrow_schema::{DataType, Field, Schema, SchemaRef, TimeUnit};

use agentwrit_scope::Scope;

use crate::bounds::is_plain_name;
use crate::interrupt::Interrupt;
use sluice_budget::{Budget, Limit, LimitExceeded};

/// Why a dataset could not be listed, opened or read.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// No such dataset for that tenant and resource: the guest sees `error::not-found`.
    #[error("{0}")]
    NotFound(String),
    /// The guest asked for something malformed (e.g. a name that is not an identifier), or the
    /// data is (a bad value, a missing column): the guest sees `error::invalid`.
    #[error("{0}")]
    Invalid(String),
    /// The data is more than the tenant's bounds allow: the guest sees `error::limit` and the
    /// run ends with this one line.
    #[error("{0}")]
    Limit(LimitExceeded),
    /// The run is over (interrupted, past its deadline, abandoned): reading stops.
    #[error("the run was stopped while reading")]
    Stopped,
    /// The store itself failed; the run traps with this message.
    #[error(transparent)]
    Store(#[from] anyhow::Error),
}

impl From<LimitExceeded> for SourceError {
    fn from(limit: LimitExceeded) -> Self {
        SourceError::Limit(limit)
    }
}

/// The bounds a tenant's data must keep, from its [`Budget`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReadBounds {
    pub schema_depth: u64,
    pub columns: u64,
    pub row_bytes: u64,
    pub page_bytes: u64,
    pub decompression_ratio: u64,
    /// Decoded data sources may hold for the tenant at once (`memory-mib`).
    pub memory_bytes: u64,
    /// Threads that may decode the tenant's data at once, the reading thread included (at
    /// least 1; `decode-threads`, every core when the budget leaves it to the host).
    pub decode_threads: usize,
}

impl ReadBounds {
    pub fn of(budget: &Budget) -> ReadBounds {
        ReadBounds {
            schema_depth: budget.schema_depth,
            columns: budget.columns,
            row_bytes: budget.row_bytes,
            page_bytes: budget.page_bytes,
            decompression_ratio: budget.decompression_ratio,
            memory_bytes: budget.memory_bytes,
            decode_threads: match budget.decode_threads {
                0 => cores(),
                n => usize::try_from(n).unwrap_or(usize::MAX),
            },
        }
    }

    /// `value` past `limit`: the one-line error naming what hit it.
    pub fn exceeded(&self, limit: Limit, requested: Option<u64>, by: &str) -> SourceError {
        let value = match limit {
            Limit::SchemaDepth => self.schema_depth,
            Limit::Columns => self.columns,
            Limit::RowBytes => self.row_bytes,
            Limit::PageBytes => self.page_bytes,
            Limit::DecompressionRatio => self.decompression_ratio,
            Limit::Memory => self.memory_bytes,
            _ => 0,
        };
        SourceError::Limit(LimitExceeded::new(limit, value, requested).by(by))
    }
}

/// The cores this process may use, asked once: `available_parallelism` reads cgroup files, which
/// cost ~50 µs, and every run's read context needs it (measured: pooled instantiation went from
/// 16.6 to 74.6 µs when it was asked per run).
fn cores() -> usize {
    static CORES: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *CORES.get_or_init(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
}

impl Default for ReadBounds {
    fn default() -> Self {
        ReadBounds::of(&Budget::default())
    }
}

/// What one run's sources have used, and whether the run is over. Shared by every dataset the
/// run opens, and by any reader thread a source starts.
#[derive(Debug)]
struct ReadMeter {
    bytes_read: AtomicU64,
    bytes_read_limit: u64,
    held: AtomicU64,
    /// The most `held` has been: the run's page shows it against the memory limit.
    held_peak: AtomicU64,
    /// The run ended or was given up on: readers stop at their next check.
    stopped: AtomicBool,
    interrupt: Interrupt,
    deadline: Instant,
}

/// A run's sources' view of its budget and its end; see the module documentation. Cloning it
/// shares the meter.
#[derive(Clone, Debug)]
pub struct ReadContext {
    bounds: ReadBounds,
    meter: Arc<ReadMeter>,
}

impl ReadContext {
    /// The context of a run under `budget` that ends at `deadline` or when `interrupt` fires.
    pub fn new(budget: &Budget, interrupt: Interrupt, deadline: Instant) -> ReadContext {
        ReadContext {
            bounds: ReadBounds::of(budget),
            meter: Arc::new(ReadMeter {
                bytes_read: AtomicU64::new(0),
                bytes_read_limit: budget.bytes_read,
                held: AtomicU64::new(0),
                held_peak: AtomicU64::new(0),
                stopped: AtomicBool::new(false),
                interrupt,
                deadline,
            }),
        }
    }

    /// A context with the default budget and no deadline to speak of: for tools and tests
    /// that read datasets outside a run.
    pub fn unbounded() -> ReadContext {
        let now = Instant::now();
        let far = now
            .checked_add(std::time::Duration::from_secs(365 * 86_400))
            .unwrap_or(now);
        ReadContext::new(&Budget::default(), Interrupt::new(), far)
    }

    pub fn bounds(&self) -> &ReadBounds {
        &self.bounds
    }

    /// When the run (and its reads) ends: the one deadline of a run.
    pub fn deadline(&self) -> Instant {
        self.meter.deadline
    }

    /// The interrupt that ends the run (and its reads).
    pub fn interrupt(&self) -> &Interrupt {
        &self.meter.interrupt
    }

    /// `Err(Stopped)` once the run is over: interrupted, past its deadline, or given up on.
    #[inline]
    pub fn check(&self) -> Result<(), SourceError> {
        let m = &self.meter;
        if m.stopped.load(Ordering::Relaxed)
            || m.interrupt.is_triggered()
            || Instant::now() >= m.deadline
        {
            return Err(SourceError::Stopped);
        }
        Ok(())
    }

    /// Ends every read of this run: the watchdog gave up on it, or it finished.
    pub fn stop(&self) {
        self.meter.stopped.store(true, Ordering::Relaxed);
    }

    /// Whether [`stop`](Self::stop) was called (not whether the deadline passed).
    pub fn is_stopped(&self) -> bool {
        self.meter.stopped.load(Ordering::Relaxed)
    }

    /// Charges `bytes` a source is about to decode (decompress, parse, materialize) to the
    /// run's `bytes-read`, before it decodes them; `by` names the dataset in the error.
    pub fn charge(&self, bytes: u64, by: impl FnOnce() -> String) -> Result<(), SourceError> {
        self.check()?;
        let m = &self.meter;
        let before = m.bytes_read.fetch_add(bytes, Ordering::Relaxed);
        let after = before.saturating_add(bytes);
        if after > m.bytes_read_limit {
            m.bytes_read.fetch_sub(bytes, Ordering::Relaxed);
            return Err(SourceError::Limit(
                LimitExceeded::new(Limit::BytesRead, m.bytes_read_limit, Some(after)).by(by()),
            ));
        }
        Ok(())
    }

    /// Takes `bytes` of the tenant's memory for decoded data a source keeps (read ahead,
    /// pending for the guest) until the returned [`Held`] is dropped.
    pub fn hold(&self, bytes: u64, by: impl FnOnce() -> String) -> Result<Held, SourceError> {
        let m = &self.meter;
        let before = m.held.fetch_add(bytes, Ordering::Relaxed);
        let after = before.saturating_add(bytes);
        if after > self.bounds.memory_bytes {
            m.held.fetch_sub(bytes, Ordering::Relaxed);
            return Err(SourceError::Limit(
                LimitExceeded::new(Limit::Memory, self.bounds.memory_bytes, Some(after))
                    .by(format!("{}, decoded and not yet read", by())),
            ));
        }
        m.held_peak.fetch_max(after, Ordering::Relaxed);
        Ok(Held {
            meter: Arc::clone(&self.meter),
            bytes,
        })
    }

    /// Takes `bytes` of the tenant's memory only if every source's holdings stay within `cap`
    /// bytes: for work done ahead of the guest, which gives up rather than fail the run.
    pub fn try_hold_within(&self, bytes: u64, cap: u64) -> Option<Held> {
        let m = &self.meter;
        let cap = cap.min(self.bounds.memory_bytes);
        let before = m.held.fetch_add(bytes, Ordering::Relaxed);
        let after = before.saturating_add(bytes);
        if after > cap {
            m.held.fetch_sub(bytes, Ordering::Relaxed);
            return None;
        }
        m.held_peak.fetch_max(after, Ordering::Relaxed);
        Some(Held {
            meter: Arc::clone(&self.meter),
            bytes,
        })
    }

    /// Gives back `bytes` charged to `bytes-read` for work that was thrown away and will be
    /// charged again when it is redone.
    pub fn refund(&self, bytes: u64) {
        let _ = self
            .meter
            .bytes_read
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |b| {
                Some(b.saturating_sub(bytes))
            });
    }

    /// Bytes charged to `bytes-read` so far.
    pub fn bytes_read(&self) -> u64 {
        self.meter.bytes_read.load(Ordering::Relaxed)
    }

    /// Decoded bytes sources hold now.
    pub fn held(&self) -> u64 {
        self.meter.held.load(Ordering::Relaxed)
    }

    /// The most decoded bytes sources held at once.
    pub fn held_peak(&self) -> u64 {
        self.meter.held_peak.load(Ordering::Relaxed)
    }
}

/// Memory a source holds for the tenant; given back when dropped.
#[derive(Debug)]
pub struct Held {
    meter: Arc<ReadMeter>,
    bytes: u64,
}

impl Drop for Held {
    fn drop(&mut self) {
        self.meter.held.fetch_sub(self.bytes, Ordering::Relaxed);
    }
}

impl SourceError {
    /// The one wording of "no such dataset", for every source.
    pub fn not_found(dataset: &DatasetRef) -> SourceError {
        SourceError::NotFound(format!(
            "tenant '{}' has no dataset '{}' in resource '{}'",
            dataset.tenant, dataset.name, dataset.resource
        ))
    }
}

/// A tenant's dataset as a guest names it: tenant, resource and name, each a plain name
/// (checked when it is made, so a source can put them in a path or a query), and the scope
/// reading it requires, `read:<resource>:<tenant>`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DatasetRef {
    tenant: String,
    resource: String,
    name: String,
    read: Arc<Scope>,
}

impl DatasetRef {
    /// `name` of `tenant`'s `resource`, or which of the three is not a plain name.
    pub fn new(tenant: &str, resource: &str, name: &str) -> Result<DatasetRef, SourceError> {
        for (what, value) in [
            ("tenant", tenant),
            ("resource", resource),
            ("dataset", name),
        ] {
            if !is_plain_name(value) {
                return Err(SourceError::Invalid(format!(
                    "{what} name '{}' is not 1-64 letters, digits, '-' or '_'",
                    crate::escape(&crate::cut(value, 64))
                )));
            }
        }
        let read = Scope::new("read", resource, tenant)
            .map_err(|e| SourceError::Invalid(e.to_string()))?;
        Ok(DatasetRef {
            tenant: tenant.to_string(),
            resource: resource.to_string(),
            name: name.to_string(),
            read: Arc::new(read),
        })
    }

    pub fn tenant(&self) -> &str {
        &self.tenant
    }

    pub fn resource(&self) -> &str {
        &self.resource
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// What the gate must allow before anything of it is read.
    pub fn read_scope(&self) -> &Arc<Scope> {
        &self.read
    }
}

/// Tenant datasets, looked up by tenant, resource and name. `open` is called only after the gate
/// allowed the dataset's [`read_scope`](DatasetRef::read_scope). Every source yields Arrow record batches; the sandbox turns them
/// into the WIT's columns.
pub trait DatasetSource: Send + Sync {
    fn list(&self, tenant: &str, resource: &str) -> Result<Vec<String>, SourceError>;
    /// Opens dataset `name`, reading only `columns` (in that order) when given: a source reads
    /// nothing else from storage. [`projection`] checks the names against the schema. `cx`
    /// bounds and meters everything the cursor decodes.
    fn open(
        &self,
        dataset: &DatasetRef,
        columns: Option<&[String]>,
        cx: &ReadContext,
    ) -> Result<Box<dyn DatasetCursor>, SourceError>;
}

/// An open dataset, read forward in batches.
pub trait DatasetCursor: Send {
    /// The columns of every batch: the projection `open` was given, or all.
    fn schema(&self) -> &SchemaRef;
    /// At most `max_rows` rows (at least one unless the dataset is exhausted, fewer when their
    /// values are large), or `None` at the end. Every batch has exactly
    /// [`schema`](Self::schema)'s columns.
    fn next_batch(&mut self, max_rows: usize) -> Result<Option<RecordBatch>, SourceError>;
}

/// Cells a source decodes per batch: its rows per batch are this divided by its columns (at
/// most 16,384 rows), so a wide dataset takes no more memory per batch than a narrow one.
pub const BATCH_CELLS: usize = 1 << 20;
/// Most rows a source decodes per batch.
pub const BATCH_ROWS: usize = 16_384;
/// Bytes of values a row-decoding source gathers before it ends a batch early.
pub const BATCH_BYTES: usize = 16 << 20;

/// Rows per decoded batch for a dataset of `columns` columns (see [`BATCH_CELLS`]).
pub fn batch_rows(columns: usize) -> usize {
    (BATCH_CELLS / columns.max(1)).clamp(1, BATCH_ROWS)
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
        dataset: &DatasetRef,
        _columns: Option<&[String]>,
        _cx: &ReadContext,
    ) -> Result<Box<dyn DatasetCursor>, SourceError> {
        Err(SourceError::not_found(dataset))
    }
}

//! Sluice guest SDK: write a tenant transform as ordinary Rust.
//!
//! ```ignore
//! use sluice_guest::{Dataset, Error, Figures, Report, RunError, Summary, Transform};
//!
//! struct Visits;
//! impl Transform for Visits {
//!     fn run(_params: Params) -> Result<Summary, RunError> {
//!         let me = sluice_guest::whoami();
//!         let mut rows = 0u64;
//!         for batch in Dataset::open(&me.tenant, "analytics", "visits")?.batches() {
//!             rows += u64::from(batch?.rows());
//!         }
//!         let figures = Figures::new().add("visits", sluice_guest::fmt::thousands(rows));
//!         Report::create(&me.tenant)?.write_json(&figures.to_json(&me.tenant))?;
//!         Ok(figures.into_summary())
//!     }
//! }
//! sluice_guest::export_transform!(Visits);
//! ```

#[cfg(feature = "arrow")]
mod arrow;
pub mod fmt;
pub mod json;

#[doc(hidden)]
pub mod bindings {
    wit_bindgen::generate!({
        path: "../../wit",
        world: "transform",
        pub_export_macro: true,
        export_macro_name: "export_bindings",
        default_bindings_module: "sluice_guest::bindings",
    });
}

use bindings::sluice::etl::{datasets, identity, log as wit_log, reports, tables};

pub use bindings::sluice::etl::columns::{
    Column, ColumnData, ColumnType, ColumnValues, DecimalType,
};
pub use bindings::sluice::etl::types::{Denial, Error, LimitExceeded};
pub use bindings::{Figure, RunError, Summary};
pub use identity::Agent;

/// The tenant's configured parameters, name and value.
pub type Params = Vec<(String, String)>;

/// Implement this for your transform and export it with [`export_transform!`].
pub trait Transform {
    fn run(params: Params) -> Result<Summary, RunError>;
}

/// Exports a [`Transform`] as the component's `run`.
#[macro_export]
macro_rules! export_transform {
    ($ty:ident) => {
        #[doc(hidden)]
        pub struct __SluiceExport;
        impl $crate::bindings::Guest for __SluiceExport {
            fn run(
                params: ::std::vec::Vec<(::std::string::String, ::std::string::String)>,
            ) -> ::std::result::Result<$crate::Summary, $crate::RunError> {
                <$ty as $crate::Transform>::run(params)
            }
        }
        $crate::bindings::export_bindings!(__SluiceExport with_types_in $crate::bindings);
    };
}

/// Who this run is: agent SPIFFE ID, tenant, task id and held scopes.
pub fn whoami() -> Agent {
    identity::whoami()
}

/// The value of parameter `name`, if configured.
pub fn param<'a>(params: &'a Params, name: &str) -> Option<&'a str> {
    params
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

pub mod log {
    //! The run's log (size-capped by the host).
    use super::wit_log::{Level, log};

    pub fn debug(message: &str) {
        log(Level::Debug, message)
    }
    pub fn info(message: &str) {
        log(Level::Info, message)
    }
    pub fn warn(message: &str) {
        log(Level::Warn, message)
    }
    pub fn error(message: &str) {
        log(Level::Error, message)
    }
}

impl From<Error> for RunError {
    fn from(e: Error) -> Self {
        RunError::Host(e)
    }
}

/// A one-line description of a host error, e.g. `denied: requires read:analytics:bank, holds [...]`.
pub fn describe(error: &Error) -> String {
    match error {
        Error::Denied(d) => format!(
            "denied: requires {}, holds [{}]",
            d.required,
            d.held.join(", ")
        ),
        Error::Limit(l) => format!("limit {} ({}) exceeded", l.name, l.limit),
        Error::NotFound(what) => format!("not found: {what}"),
        Error::Invalid(what) => format!("invalid: {what}"),
    }
}

/// Rows per batch the SDK asks for: large enough that host calls are noise next to the work.
pub const BATCH_ROWS: u32 = 16_384;

/// An open dataset of a tenant.
pub struct Dataset {
    inner: datasets::Dataset,
    schema: Vec<Column>,
}

impl Dataset {
    /// Opens dataset `name` of `resource` for `tenant`, every column; needs
    /// `read:<resource>:<tenant>`.
    pub fn open(tenant: &str, resource: &str, name: &str) -> Result<Dataset, Error> {
        Self::open_inner(tenant, resource, name, None)
    }

    /// Opens dataset `name` reading only `columns`, in that order: the source reads nothing
    /// else, and column `i` of every batch is `columns[i]`.
    pub fn open_columns(
        tenant: &str,
        resource: &str,
        name: &str,
        columns: &[&str],
    ) -> Result<Dataset, Error> {
        let names: Vec<String> = columns.iter().map(|c| c.to_string()).collect();
        Self::open_inner(tenant, resource, name, Some(&names))
    }

    fn open_inner(
        tenant: &str,
        resource: &str,
        name: &str,
        columns: Option<&[String]>,
    ) -> Result<Dataset, Error> {
        let inner = datasets::open(tenant, resource, name, columns)?;
        let schema = inner.schema();
        Ok(Dataset { inner, schema })
    }

    /// The dataset names of `resource` for `tenant`; needs `read:<resource>:<tenant>`.
    pub fn list(tenant: &str, resource: &str) -> Result<Vec<String>, Error> {
        datasets::list(tenant, resource)
    }

    pub fn schema(&self) -> &[Column] {
        &self.schema
    }

    /// The index of column `name`.
    pub fn column(&self, name: &str) -> Result<usize, Error> {
        self.schema
            .iter()
            .position(|c| c.name == name)
            .ok_or_else(|| Error::Invalid(format!("dataset has no column '{name}'")))
    }

    /// The next batch of rows, or `None` at the end.
    pub fn next_batch(&self) -> Result<Option<Batch>, Error> {
        Ok(self.inner.next_batch(BATCH_ROWS)?.map(Batch))
    }

    /// Iterates over all remaining batches.
    pub fn batches(&self) -> impl Iterator<Item = Result<Batch, Error>> + '_ {
        std::iter::from_fn(move || self.next_batch().transpose())
    }
}

/// The null rows of a column in one batch: Arrow's validity bitmap.
#[derive(Clone, Copy, Debug)]
pub struct Nulls<'a> {
    validity: Option<&'a [u8]>,
    count: u32,
}

impl<'a> Nulls<'a> {
    /// How many rows are null.
    pub fn len(&self) -> usize {
        self.count as usize
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Whether row `row` is null.
    pub fn contains(&self, row: usize) -> bool {
        match self.validity {
            None => false,
            Some(bits) => bits.get(row / 8).is_some_and(|b| b & (1 << (row % 8)) == 0),
        }
    }

    /// The null rows, ascending (none past `rows`).
    pub fn iter(&self, rows: usize) -> impl Iterator<Item = usize> + 'a {
        let validity = self.validity;
        (0..if validity.is_some() { rows } else { 0 }).filter(move |&row| {
            validity
                .is_some_and(|bits| bits.get(row / 8).is_some_and(|b| b & (1 << (row % 8)) == 0))
        })
    }
}

/// A batch of rows, column by column. A null row holds some value in the slices (0 from the
/// sources Sluice ships); [`Nulls`] says which rows are null.
pub struct Batch(bindings::sluice::etl::columns::Batch);

impl Batch {
    pub fn rows(&self) -> u32 {
        self.0.rows
    }

    fn col(&self, index: usize) -> Result<(&ColumnValues, Nulls<'_>), Error> {
        let c = self
            .0
            .columns
            .get(index)
            .ok_or_else(|| Error::Invalid(format!("batch has no column {index}")))?;
        Ok((
            &c.values,
            Nulls {
                validity: c.validity.as_deref(),
                count: c.null_count,
            },
        ))
    }

    fn mismatch(index: usize, want: &str) -> Error {
        Error::Invalid(format!("column {index} is not {want}"))
    }

    /// Int64 column `index`: values and null rows.
    pub fn int64(&self, index: usize) -> Result<(&[i64], Nulls<'_>), Error> {
        match self.col(index)? {
            (ColumnValues::Int64(v), nulls) => Ok((v, nulls)),
            _ => Err(Self::mismatch(index, "int64")),
        }
    }

    /// Float64 column `index`: values and null rows.
    pub fn float64(&self, index: usize) -> Result<(&[f64], Nulls<'_>), Error> {
        match self.col(index)? {
            (ColumnValues::Float64(v), nulls) => Ok((v, nulls)),
            _ => Err(Self::mismatch(index, "float64")),
        }
    }

    /// Boolean column `index`: one byte per row (1 true, 0 false) and null rows.
    pub fn boolean(&self, index: usize) -> Result<(&[u8], Nulls<'_>), Error> {
        match self.col(index)? {
            (ColumnValues::Boolean(v), nulls) => Ok((v, nulls)),
            _ => Err(Self::mismatch(index, "boolean")),
        }
    }

    /// Date column `index`: days since 1970-01-01, and null rows.
    pub fn date(&self, index: usize) -> Result<(&[i32], Nulls<'_>), Error> {
        match self.col(index)? {
            (ColumnValues::Date(v), nulls) => Ok((v, nulls)),
            _ => Err(Self::mismatch(index, "date")),
        }
    }

    /// Timestamp column `index`: microseconds since 1970-01-01T00:00:00Z, and null rows.
    pub fn timestamp(&self, index: usize) -> Result<(&[i64], Nulls<'_>), Error> {
        match self.col(index)? {
            (ColumnValues::Timestamp(v), nulls) => Ok((v, nulls)),
            _ => Err(Self::mismatch(index, "timestamp")),
        }
    }

    /// Decimal column `index`: unscaled values (the scale is the schema's), and null rows.
    pub fn decimal(&self, index: usize) -> Result<(Vec<i128>, Nulls<'_>), Error> {
        match self.col(index)? {
            (ColumnValues::Decimal(bytes), nulls) => Ok((
                bytes
                    .chunks_exact(16)
                    .map(|c| i128::from_le_bytes(c.try_into().unwrap_or([0; 16])))
                    .collect(),
                nulls,
            )),
            _ => Err(Self::mismatch(index, "decimal")),
        }
    }

    /// Text column `index` as a [`BytesColumn`] of UTF-8 strings.
    pub fn text(&self, index: usize) -> Result<BytesColumn<'_>, Error> {
        match self.col(index)? {
            (ColumnValues::Text((data, offsets)), nulls) => Ok(BytesColumn {
                data,
                offsets,
                nulls,
            }),
            _ => Err(Self::mismatch(index, "text")),
        }
    }

    /// Binary column `index` as a [`BytesColumn`].
    pub fn binary(&self, index: usize) -> Result<BytesColumn<'_>, Error> {
        match self.col(index)? {
            (ColumnValues::Binary((data, offsets)), nulls) => Ok(BytesColumn {
                data,
                offsets,
                nulls,
            }),
            _ => Err(Self::mismatch(index, "binary")),
        }
    }

    /// The batch as an Arrow record batch of `schema` (the dataset's), with no copy beyond
    /// Arrow's own buffers.
    #[cfg(feature = "arrow")]
    pub fn to_record_batch(&self, schema: &[Column]) -> Result<arrow_array::RecordBatch, Error> {
        arrow::record_batch(&self.0, schema)
    }
}

/// A text or binary column: values back to back plus offsets.
pub struct BytesColumn<'a> {
    data: &'a [u8],
    offsets: &'a [u32],
    pub nulls: Nulls<'a>,
}

impl BytesColumn<'_> {
    pub fn len(&self) -> usize {
        self.offsets.len().saturating_sub(1)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Row `row`'s bytes (empty for a null row).
    pub fn bytes(&self, row: usize) -> &[u8] {
        let (start, end) = (self.offsets[row] as usize, self.offsets[row + 1] as usize);
        &self.data[start..end]
    }

    /// Row `row`'s text (empty for a null row); lossless for UTF-8 data.
    pub fn get(&self, row: usize) -> &str {
        std::str::from_utf8(self.bytes(row)).unwrap_or("")
    }
}

/// An output dataset being written: published when the run returns `Ok` after
/// [`Table::commit`], like a report.
pub struct Table(tables::Table);

impl Table {
    /// Starts output `name` of `resource` for `tenant` with `schema`; needs
    /// `write:<resource>:<tenant>`.
    pub fn create(
        tenant: &str,
        resource: &str,
        name: &str,
        schema: &[Column],
    ) -> Result<Table, Error> {
        Ok(Table(tables::create(tenant, resource, name, schema)?))
    }

    /// Appends `rows` rows, one [`ColumnData`] per column of the schema (see [`values`]).
    pub fn append(&self, rows: u32, columns: Vec<ColumnData>) -> Result<(), Error> {
        self.0
            .append(&bindings::sluice::etl::columns::Batch { rows, columns })
    }

    pub fn commit(self) -> Result<(), Error> {
        self.0.commit()
    }
}

/// Columns for [`Table::append`].
pub mod values {
    use super::{ColumnData, ColumnValues};

    fn plain(values: ColumnValues) -> ColumnData {
        ColumnData {
            values,
            validity: None,
            null_count: 0,
        }
    }

    pub fn int64(values: Vec<i64>) -> ColumnData {
        plain(ColumnValues::Int64(values))
    }

    pub fn float64(values: Vec<f64>) -> ColumnData {
        plain(ColumnValues::Float64(values))
    }

    pub fn boolean(values: &[bool]) -> ColumnData {
        plain(ColumnValues::Boolean(
            values.iter().map(|&b| u8::from(b)).collect(),
        ))
    }

    /// Days since 1970-01-01.
    pub fn date(values: Vec<i32>) -> ColumnData {
        plain(ColumnValues::Date(values))
    }

    /// Microseconds since 1970-01-01T00:00:00Z.
    pub fn timestamp(values: Vec<i64>) -> ColumnData {
        plain(ColumnValues::Timestamp(values))
    }

    /// Unscaled values at the column's scale.
    pub fn decimal(values: &[i128]) -> ColumnData {
        plain(ColumnValues::Decimal(
            values.iter().flat_map(|v| v.to_le_bytes()).collect(),
        ))
    }

    pub fn text<S: AsRef<str>>(values: &[S]) -> ColumnData {
        let mut data = Vec::new();
        let mut offsets = vec![0u32];
        for v in values {
            data.extend_from_slice(v.as_ref().as_bytes());
            offsets.push(data.len() as u32);
        }
        plain(ColumnValues::Text((data, offsets)))
    }

    /// `column` with the rows where `valid` is false made null.
    pub fn with_nulls(mut column: ColumnData, valid: &[bool]) -> ColumnData {
        let mut bits = vec![0u8; valid.len().div_ceil(8)];
        for (row, &v) in valid.iter().enumerate() {
            if v {
                bits[row / 8] |= 1 << (row % 8);
            }
        }
        column.null_count = valid.iter().filter(|&&v| !v).count() as u32;
        column.validity = (column.null_count > 0).then_some(bits);
        column
    }
}

/// A tenant's report, published when the run returns `Ok` after [`Report::commit`].
pub struct Report(reports::Report);

impl Report {
    /// Starts the report of `tenant`; needs `write:reports:<tenant>`.
    pub fn create(tenant: &str) -> Result<Report, Error> {
        Ok(Report(reports::create(tenant)?))
    }

    /// Appends bytes, in host calls of at most 64 KiB.
    pub fn append(&self, bytes: &[u8]) -> Result<(), Error> {
        for chunk in bytes.chunks(64 * 1024) {
            self.0.append(chunk)?;
        }
        Ok(())
    }

    pub fn commit(self) -> Result<(), Error> {
        self.0.commit()
    }

    /// Appends `json` and commits.
    pub fn write_json(self, json: &str) -> Result<(), Error> {
        self.append(json.as_bytes())?;
        self.commit()
    }
}

/// Named figures of a transform, in order: the report's content and the run's summary.
#[derive(Default, Clone, Debug)]
pub struct Figures(Vec<(String, String)>);

impl Figures {
    pub fn new() -> Figures {
        Figures::default()
    }

    pub fn add(mut self, name: &str, value: impl Into<String>) -> Figures {
        self.0.push((name.to_string(), value.into()));
        self
    }

    /// `{"tenant":…,"figures":{…}}` with keys in insertion order.
    pub fn to_json(&self, tenant: &str) -> String {
        let figures: Vec<(&str, json::Value)> = self
            .0
            .iter()
            .map(|(k, v)| (k.as_str(), json::Value::Str(v)))
            .collect();
        json::object(&[
            ("tenant", json::Value::Str(tenant)),
            ("figures", json::Value::Object(&figures)),
        ])
    }

    pub fn into_summary(self) -> Summary {
        Summary {
            figures: self
                .0
                .into_iter()
                .map(|(name, value)| Figure { name, value })
                .collect(),
        }
    }
}

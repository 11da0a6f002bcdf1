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

use bindings::sluice::etl::{datasets, identity, log as wit_log, reports};

pub use bindings::sluice::etl::datasets::{Column, ColumnType, ColumnValues};
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
    /// Opens dataset `name` of `resource` for `tenant`; needs `read:<resource>:<tenant>`.
    pub fn open(tenant: &str, resource: &str, name: &str) -> Result<Dataset, Error> {
        let inner = datasets::open(tenant, resource, name)?;
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

    /// Reads only `columns`, in that order, from the next batch on: unread columns cost neither
    /// storage reads nor copies. Column indices refer to the narrowed schema.
    pub fn select(&mut self, columns: &[&str]) -> Result<(), Error> {
        let names: Vec<String> = columns.iter().map(|c| c.to_string()).collect();
        self.inner.select(&names)?;
        self.schema = self.inner.schema();
        Ok(())
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

/// A batch of rows, column by column.
pub struct Batch(datasets::Batch);

impl Batch {
    pub fn rows(&self) -> u32 {
        self.0.rows
    }

    fn col(&self, index: usize) -> Result<&datasets::ColumnData, Error> {
        self.0
            .columns
            .get(index)
            .ok_or_else(|| Error::Invalid(format!("batch has no column {index}")))
    }

    fn mismatch(index: usize, want: &str) -> Error {
        Error::Invalid(format!("column {index} is not {want}"))
    }

    /// Int64 column `index`: values, and the sorted indices of null rows.
    pub fn int64(&self, index: usize) -> Result<(&[i64], &[u32]), Error> {
        let c = self.col(index)?;
        match &c.values {
            ColumnValues::Int64(v) => Ok((v, &c.nulls)),
            _ => Err(Self::mismatch(index, "int64")),
        }
    }

    /// Float64 column `index`: values, and the sorted indices of null rows.
    pub fn float64(&self, index: usize) -> Result<(&[f64], &[u32]), Error> {
        let c = self.col(index)?;
        match &c.values {
            ColumnValues::Float64(v) => Ok((v, &c.nulls)),
            _ => Err(Self::mismatch(index, "float64")),
        }
    }

    /// Boolean column `index`: one byte per row (1 true, 0 false), and the sorted indices of
    /// null rows.
    pub fn boolean(&self, index: usize) -> Result<(&[u8], &[u32]), Error> {
        let c = self.col(index)?;
        match &c.values {
            ColumnValues::Boolean(v) => Ok((v, &c.nulls)),
            _ => Err(Self::mismatch(index, "boolean")),
        }
    }

    /// Text column `index` as a [`TextColumn`].
    pub fn text(&self, index: usize) -> Result<TextColumn<'_>, Error> {
        let c = self.col(index)?;
        match &c.values {
            ColumnValues::Text((data, offsets)) => Ok(TextColumn {
                data,
                offsets,
                nulls: &c.nulls,
            }),
            _ => Err(Self::mismatch(index, "text")),
        }
    }
}

/// A text column: strings back to back plus offsets.
pub struct TextColumn<'a> {
    data: &'a [u8],
    offsets: &'a [u32],
    pub nulls: &'a [u32],
}

impl TextColumn<'_> {
    pub fn len(&self) -> usize {
        self.offsets.len().saturating_sub(1)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Row `row`'s text (empty for a null row); lossless for UTF-8 data.
    pub fn get(&self, row: usize) -> &str {
        let (start, end) = (self.offsets[row] as usize, self.offsets[row + 1] as usize);
        std::str::from_utf8(&self.data[start..end]).unwrap_or("")
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

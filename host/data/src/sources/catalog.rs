//! Datasets a configuration lists explicitly (tenant, resource, name → where the data is), with
//! the conventional layout (SQLite, Parquet, CSV under one directory) as the fallback for
//! tenants that list none.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use sluice_sandbox::{DatasetCursor, DatasetRef, DatasetSource, ReadContext, SourceError};

use super::files::{FileKind, open_listed};
use super::layout::LayoutSource;
use super::postgres::PostgresTable;
use super::sqlite::open_table;
use crate::pg_login::PgLogin;

/// Where one dataset's rows are.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DatasetLocation {
    /// Table `name` of the SQLite database at this path.
    Sqlite(PathBuf),
    /// A Parquet file.
    Parquet(PathBuf),
    /// A CSV file with a header row (and its types in `<file>.types`).
    Csv(PathBuf),
    /// A PostgreSQL table, read through the tenant's role.
    Postgres(PostgresTable),
}

#[derive(Clone, Debug, Default)]
pub struct CatalogSource {
    listed: HashMap<String, Vec<(String, String, DatasetLocation)>>,
    fallback: Option<LayoutSource>,
}

impl CatalogSource {
    /// A catalog falling back to `fallback`'s layout for tenants with no listed datasets.
    pub fn new(fallback: Option<LayoutSource>) -> CatalogSource {
        CatalogSource {
            listed: HashMap::new(),
            fallback,
        }
    }

    /// Adds dataset `name` of `tenant`'s `resource`, found at `location`.
    pub fn add(&mut self, tenant: &str, resource: &str, name: &str, location: DatasetLocation) {
        self.listed.entry(tenant.to_string()).or_default().push((
            resource.to_string(),
            name.to_string(),
            location,
        ));
    }
}

impl CatalogSource {
    /// Where dataset `name` of `tenant`'s `resource` is: `Some` for a listed tenant, `None` for
    /// one left to the fallback layout.
    fn locate(&self, dataset: &DatasetRef) -> Result<Option<&DatasetLocation>, SourceError> {
        match (self.listed.get(dataset.tenant()), &self.fallback) {
            (Some(entries), _) => entries
                .iter()
                .find(|(r, n, _)| r == dataset.resource() && n == dataset.name())
                .map(|(_, _, location)| Some(location))
                .ok_or_else(|| SourceError::not_found(dataset)),
            (None, Some(_)) => Ok(None),
            (None, None) => Err(SourceError::not_found(dataset)),
        }
    }

    /// The catalog as the run of a tenant that logs in to PostgreSQL with `login` sees it.
    pub fn for_tenant(self: &Arc<Self>, login: Option<PgLogin>) -> TenantView {
        TenantView {
            catalog: Arc::clone(self),
            login,
        }
    }
}

/// Opens dataset `name` where `location` says. A file's directory is its jail: the file
/// itself must be there, not reached through a link (see [`super::files`]).
fn open_at(
    location: &DatasetLocation,
    dataset: &DatasetRef,
    columns: Option<&[String]>,
    cx: &ReadContext,
) -> Result<Box<dyn DatasetCursor>, SourceError> {
    let name = dataset.name();
    match location {
        DatasetLocation::Sqlite(path) => {
            let conn = super::sqlite::open_listed(path, name, cx)?
                .ok_or_else(|| SourceError::not_found(dataset))?;
            open_table(conn, dataset, columns, cx)
        }
        DatasetLocation::Parquet(path) => open_listed(FileKind::Parquet, name, path, columns, cx),
        DatasetLocation::Csv(path) => open_listed(FileKind::Csv, name, path, columns, cx),
        DatasetLocation::Postgres(table) => table.open(dataset, columns, cx),
    }
}

impl DatasetSource for CatalogSource {
    fn list(&self, tenant: &str, resource: &str) -> Result<Vec<String>, SourceError> {
        match (self.listed.get(tenant), &self.fallback) {
            (Some(entries), _) => Ok(entries
                .iter()
                .filter(|(r, _, _)| r == resource)
                .map(|(_, n, _)| n.clone())
                .collect()),
            (None, Some(fallback)) => fallback.list(tenant, resource),
            (None, None) => Ok(Vec::new()),
        }
    }

    fn open(
        &self,
        dataset: &DatasetRef,
        columns: Option<&[String]>,
        cx: &ReadContext,
    ) -> Result<Box<dyn DatasetCursor>, SourceError> {
        match (self.locate(dataset)?, &self.fallback) {
            (Some(location), _) => open_at(location, dataset, columns, cx),
            (None, Some(fallback)) => fallback.open(dataset, columns, cx),
            (None, None) => Err(SourceError::not_found(dataset)),
        }
    }
}

/// One tenant's run's view of the catalog: every PostgreSQL dataset, whoever's schema it is in,
/// is read through the running tenant's own role. The gate decides first; if it ever wrongly
/// allowed a cross-tenant read, the database refuses it (the role cannot see other schemas).
pub struct TenantView {
    catalog: Arc<CatalogSource>,
    login: Option<PgLogin>,
}

impl DatasetSource for TenantView {
    fn list(&self, tenant: &str, resource: &str) -> Result<Vec<String>, SourceError> {
        self.catalog.list(tenant, resource)
    }

    fn open(
        &self,
        dataset: &DatasetRef,
        columns: Option<&[String]>,
        cx: &ReadContext,
    ) -> Result<Box<dyn DatasetCursor>, SourceError> {
        match self.catalog.locate(dataset)? {
            Some(DatasetLocation::Postgres(table)) => {
                let Some(login) = &self.login else {
                    // A tenant with no PostgreSQL role of its own reads no PostgreSQL data.
                    return Err(SourceError::not_found(dataset));
                };
                let as_runner = PostgresTable {
                    login: login.clone(),
                    ..table.clone()
                };
                as_runner.open(dataset, columns, cx)
            }
            _ => self.catalog.open(dataset, columns, cx),
        }
    }
}

//! The attacks, one module per family.

mod audit;
mod calls;
mod data;
#[cfg(any(feature = "filesystem", feature = "sockets", feature = "wasi_surface"))]
pub mod imports;
mod input;
mod memory;
mod output;
mod reports;
mod tables;
mod tenants;
mod time;

pub use audit::*;
pub use calls::*;
pub use data::*;
pub use input::*;
pub use memory::*;
pub use output::*;
pub use reports::*;
pub use tables::*;
pub use tenants::*;
pub use time::*;

use sluice_guest::{Params, param};

/// The tenant an attack reaches for: `other-tenant`, default `bank`.
fn other_tenant(params: &Params) -> String {
    param(params, "other-tenant").unwrap_or("bank").to_string()
}

/// The tenant this run is for.
fn me() -> String {
    sluice_guest::whoami().tenant
}

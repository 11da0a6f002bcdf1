//! Errors of host functions: either a typed WIT error the guest sees, or a trap.
//!
//! `HostError` is what host functions return. One conversion (`types::Host::convert_error`)
//! decides which channel each case takes: denials, unknown datasets and malformed calls go back to
//! the guest; an exhausted budget goes back as `error::limit` *and* ends the run; host faults
//! (a broken database, a full disk) trap so the guest never sees host internals.

use crate::gate::Denied;
use sluice_budget::LimitExceeded;

#[derive(Debug)]
pub enum HostError {
    Denied(Denied),
    Limit(LimitExceeded),
    NotFound(String),
    Invalid(String),
    /// A fault of the host, not of the guest: becomes a trap.
    Host(wasmtime::Error),
}

impl From<Denied> for HostError {
    fn from(d: Denied) -> Self {
        HostError::Denied(d)
    }
}

impl From<LimitExceeded> for HostError {
    fn from(l: LimitExceeded) -> Self {
        HostError::Limit(l)
    }
}

impl From<wasmtime::Error> for HostError {
    fn from(e: wasmtime::Error) -> Self {
        HostError::Host(e)
    }
}

impl From<wasmtime::component::ResourceTableError> for HostError {
    fn from(e: wasmtime::component::ResourceTableError) -> Self {
        // A bad handle can only come from a broken guest; wasmtime validates handles it owns.
        HostError::Host(wasmtime::Error::new(e))
    }
}

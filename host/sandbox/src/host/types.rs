//! `sluice:etl/types`: the single place that turns a [`HostError`] into a guest error or a trap.

use crate::bindings::sluice::etl::types::{self, Denial, Error};
use crate::error::HostError;
use crate::state::HostState;

impl types::Host for HostState {
    fn convert_error(&mut self, err: HostError) -> wasmtime::Result<Error> {
        match err {
            HostError::Denied(denied) => Ok(Error::Denied(Denial {
                required: denied.required.as_str().to_string(),
                held: denied.held_strings(),
            })),
            HostError::Limit(limit) => {
                // The guest learns which limit, but the run is over: later calls trap.
                self.tripped.get_or_insert(limit.clone());
                Ok(Error::Limit(types::LimitExceeded {
                    name: limit.limit.name().to_string(),
                    limit: limit.value,
                }))
            }
            HostError::NotFound(what) => Ok(Error::NotFound(what)),
            HostError::Invalid(what) => {
                self.usage.invalid_calls += 1;
                Ok(Error::Invalid(what))
            }
            HostError::Host(trap) => Err(trap),
        }
    }
}

/// `sluice:etl/columns` declares types only; the host has nothing to provide for it.
impl crate::bindings::sluice::etl::columns::Host for HostState {}

//! One module per WIT interface of the `transform` world, each implementing its generated
//! `Host` trait on [`HostState`](crate::state::HostState).

pub(crate) mod clocks;
pub(crate) mod datasets;
pub(crate) mod identity;
pub(crate) mod log;
pub(crate) mod reports;
pub(crate) mod tables;
pub(crate) mod types;

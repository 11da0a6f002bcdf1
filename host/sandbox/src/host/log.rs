//! `sluice:etl/log`: the run's log. Needs no scope; messages and total bytes are capped, and the
//! text is the guest's ([`GuestText`](crate::GuestText)): it is shown escaped.

use crate::bindings::sluice::etl::log::{self, Level};
use crate::output::LogLevel;
use crate::state::HostState;

impl log::Host for HostState {
    fn log(&mut self, level: Level, message: String) -> wasmtime::Result<()> {
        self.enter()?;
        let level = match level {
            Level::Debug => LogLevel::Debug,
            Level::Info => LogLevel::Info,
            Level::Warn => LogLevel::Warn,
            Level::Error => LogLevel::Error,
        };
        self.log.push(level, "log", &message);
        Ok(())
    }
}

//! `wasi:clocks/monotonic-clock` with waits that end at the run's deadline.
//!
//! Epoch interruption stops a guest that computes, but not one that waits: `thread::sleep` is a
//! clock pollable the guest blocks on inside the host, where no epoch check runs. Here every
//! pollable this clock hands out is ready at the sooner of what the guest asked for and the
//! run's deadline, and at once when the run is interrupted or its agent revoked; the guest then
//! resumes, and the epoch callback ends an interrupted run while a revoked one finds every data
//! call denied. Wall-clock time comes from `wasmtime-wasi` unchanged: it never blocks.

use std::time::Instant;

use wasmtime::component::{HasData, Resource, ResourceTable};
use wasmtime_wasi::p2::DynPollable;
use wasmtime_wasi::p2::bindings::clocks::monotonic_clock;
use wasmtime_wasi_io::poll::{Pollable, subscribe};

use crate::interrupt::Interrupt;

/// When the run started and must end, and what stops it early.
pub(crate) struct RunClock {
    pub(crate) start: Instant,
    pub(crate) deadline: Instant,
    pub(crate) interrupt: Interrupt,
    /// The agent's revocation: a sleep ends with it too, so a revoked run gives back its slot.
    pub(crate) revoked: Interrupt,
}

/// What the monotonic-clock functions see of the run's state.
pub(crate) struct RunClockView<'a> {
    pub(crate) table: &'a mut ResourceTable,
    pub(crate) clock: &'a RunClock,
}

pub(crate) struct RunClocks;

impl HasData for RunClocks {
    type Data<'a> = RunClockView<'a>;
}

/// A sleep the guest subscribed to, cut short at the deadline or by an interrupt.
struct CappedSleep {
    until: tokio::time::Instant,
    interrupt: Interrupt,
    revoked: Interrupt,
}

#[wasmtime_wasi::async_trait]
impl Pollable for CappedSleep {
    async fn ready(&mut self) {
        tokio::select! {
            () = tokio::time::sleep_until(self.until) => {}
            () = self.interrupt.triggered() => {}
            () = self.revoked.triggered() => {}
        }
    }
}

impl RunClockView<'_> {
    fn sleep_until(&mut self, wanted: Option<Instant>) -> wasmtime::Result<Resource<DynPollable>> {
        let until = wanted.map_or(self.clock.deadline, |w| w.min(self.clock.deadline));
        let sleep = self.table.push(CappedSleep {
            until: tokio::time::Instant::from_std(until),
            interrupt: self.clock.interrupt.clone(),
            revoked: self.clock.revoked.clone(),
        })?;
        subscribe(self.table, sleep)
    }
}

impl monotonic_clock::Host for RunClockView<'_> {
    fn now(&mut self) -> wasmtime::Result<monotonic_clock::Instant> {
        Ok(self.clock.start.elapsed().as_nanos() as u64)
    }

    fn resolution(&mut self) -> wasmtime::Result<monotonic_clock::Duration> {
        Ok(1)
    }

    fn subscribe_instant(
        &mut self,
        when: monotonic_clock::Instant,
    ) -> wasmtime::Result<Resource<DynPollable>> {
        // An instant too far to represent waits for the deadline, as one that never comes would.
        let wanted = self
            .clock
            .start
            .checked_add(std::time::Duration::from_nanos(when));
        self.sleep_until(wanted)
    }

    fn subscribe_duration(
        &mut self,
        duration: monotonic_clock::Duration,
    ) -> wasmtime::Result<Resource<DynPollable>> {
        let wanted = Instant::now().checked_add(std::time::Duration::from_nanos(duration));
        self.sleep_until(wanted)
    }
}

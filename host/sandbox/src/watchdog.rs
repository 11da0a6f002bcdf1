//! The last line behind a run's deadline: a run on its own thread, waited for no longer than its
//! wall-time limit plus a grace.
//!
//! The deadline is enforced inside the run (epoch callback, capped clock waits), which holds as
//! long as every host call returns. If one never does (a store that hangs), the watchdog gives
//! up on the thread: the caller gets an `Abandoned` outcome on time and goes on releasing the
//! agent and running other tenants. The run's sources are told to stop (they check per batch,
//! row group and line) and its guest traps at its next epoch check, so the thread ends soon
//! after and its memory is returned.

use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::failure::RunFailure;
use crate::gate::Writ;
use crate::runtime::{RunOutcome, RunRequest, Transform};
use crate::source::ReadContext;

/// How long past its deadline a run may take before the watchdog gives up on it.
pub const WATCHDOG_GRACE: Duration = Duration::from_millis(500);

/// A run started on its own thread.
pub struct RunTicket {
    outcome: mpsc::Receiver<RunOutcome>,
    /// The run's sources' context: stopped when the run is given up on.
    read: ReadContext,
    writ: Writ,
    started: Instant,
    wall_time: Duration,
}

impl Transform {
    /// Starts the run on a thread of its own. `keep` is dropped when that thread ends, not when
    /// the caller stops waiting: hand it what must stay taken while the guest may still run (a
    /// concurrency permit, so an abandoned run keeps its slot of the pool).
    pub fn spawn(&self, request: RunRequest, keep: impl Send + 'static) -> RunTicket {
        let (tx, rx) = mpsc::sync_channel(1);
        let read = self.read_context(&request);
        let ticket = RunTicket {
            outcome: rx,
            read: read.clone(),
            writ: request.writ.clone(),
            started: Instant::now(),
            wall_time: request.budget.wall_time,
        };
        let transform = self.clone();
        // If the thread cannot start, the closure and its sender are dropped: `wait` says so.
        let _ = std::thread::Builder::new()
            .name(format!("sluice-run-{}", request.writ.tenant))
            .spawn(move || {
                let writ = request.writ.clone();
                let started = Instant::now();
                // A panic the host functions did not catch is this run's failure, not the end
                // of the night.
                let outcome = crate::panics::catch(|| transform.run_reading(request, read))
                    .unwrap_or_else(|message| {
                        RunOutcome::failed(
                            writ,
                            RunFailure::Host(format!("the run panicked: {message}")),
                            started.elapsed(),
                        )
                    });
                let _ = tx.send(outcome);
                drop(keep);
            });
        ticket
    }
}

impl RunTicket {
    /// The run's outcome, or `Abandoned` once its deadline plus [`WATCHDOG_GRACE`] passed.
    pub fn wait(self) -> RunOutcome {
        let limit = self.wall_time.saturating_add(WATCHDOG_GRACE);
        let left = limit.saturating_sub(self.started.elapsed());
        match self.outcome.recv_timeout(left) {
            Ok(outcome) => outcome,
            Err(mpsc::RecvTimeoutError::Timeout) => {
                self.read.stop();
                RunOutcome::failed(
                    self.writ,
                    RunFailure::Abandoned {
                        wall_time: self.wall_time,
                        grace: WATCHDOG_GRACE,
                    },
                    self.started.elapsed(),
                )
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => RunOutcome::failed(
                self.writ,
                RunFailure::Host("the run's thread could not start or died".into()),
                self.started.elapsed(),
            ),
        }
    }

    /// [`wait`](Self::wait) without blocking an async runtime's worker.
    pub async fn outcome(self) -> RunOutcome {
        let writ = self.writ.clone();
        let started = self.started;
        tokio::task::spawn_blocking(move || self.wait())
            .await
            .unwrap_or_else(|e| {
                RunOutcome::failed(
                    writ,
                    RunFailure::Host(format!("waiting for the run failed: {e}")),
                    started.elapsed(),
                )
            })
    }
}

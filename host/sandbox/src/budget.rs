//! Per-tenant budgets: what one run may consume before the host ends it.

use std::fmt;
use std::time::Duration;

/// Limits for one tenant run. `Budget::default()` is what the pipeline uses unless configured.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Budget {
    /// Wall-clock time the guest may run, enforced by epoch interruption, so a loop that never
    /// calls the host still stops. Default 60 s: the bank transform reads 2.4 M rows in ~1 s.
    pub cpu_time: Duration,
    /// Linear memory the guest may grow to. Default 256 MiB.
    pub memory_bytes: u64,
    /// Rows the guest may read across all datasets. Default 50 M.
    pub rows_read: u64,
    /// Bytes of column data the guest may read across all datasets. Default 4 GiB.
    pub bytes_read: u64,
    /// Bytes the guest may append to reports. Default 16 MiB.
    pub report_bytes: u64,
    /// Calls into the host (every import of the `transform` world). Default 100,000: the bank
    /// transform makes ~300.
    pub host_calls: u64,
    /// Bytes of log output (the log interface plus stdout/stderr) kept; the rest is dropped.
    /// Default 64 KiB.
    pub log_bytes: u64,
    /// Datasets open at once. Each holds a database connection (a file descriptor of the host
    /// process), so a guest hoarding handles must not starve other tenants. Default 16.
    pub open_datasets: u64,
}

impl Default for Budget {
    fn default() -> Self {
        Budget {
            cpu_time: Duration::from_secs(60),
            memory_bytes: 256 << 20,
            rows_read: 50_000_000,
            bytes_read: 4 << 30,
            report_bytes: 16 << 20,
            host_calls: 100_000,
            log_bytes: 64 << 10,
            open_datasets: 16,
        }
    }
}

/// The budgeted quantities, named as they appear in errors and configuration.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Limit {
    CpuTime,
    Memory,
    RowsRead,
    BytesRead,
    ReportBytes,
    HostCalls,
    OpenDatasets,
}

impl Limit {
    pub fn name(self) -> &'static str {
        match self {
            Limit::CpuTime => "cpu-time-ms",
            Limit::Memory => "memory-bytes",
            Limit::RowsRead => "rows-read",
            Limit::BytesRead => "bytes-read",
            Limit::ReportBytes => "report-bytes",
            Limit::HostCalls => "host-calls",
            Limit::OpenDatasets => "open-datasets",
        }
    }
}

/// A budget ran out. Its Display names the limit, its value and what was asked for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LimitExceeded {
    pub limit: Limit,
    /// The configured value.
    pub value: u64,
    /// What the run would have used had the host allowed it.
    pub requested: u64,
}

impl fmt::Display for LimitExceeded {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = self.limit.name();
        if self.limit == Limit::CpuTime {
            // Epoch interruption stops the guest; how much more it wanted is unknowable.
            return write!(
                f,
                "limit {name} exceeded: limit is {}, the guest was still running",
                self.value
            );
        }
        write!(
            f,
            "limit {name} exceeded: limit is {}, run needed {}",
            self.value, self.requested
        )
    }
}

impl std::error::Error for LimitExceeded {}

/// The limits the host counts itself (CPU time and memory are enforced by Wasmtime).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Counter {
    RowsRead,
    BytesRead,
    ReportBytes,
    HostCalls,
}

/// What a run has used so far, checked against its [`Budget`].
#[derive(Debug, Default, Clone)]
pub struct Usage {
    pub rows_read: u64,
    pub bytes_read: u64,
    pub report_bytes: u64,
    pub host_calls: u64,
}

impl Usage {
    /// Adds `amount` to `counter` if it stays within `budget`; otherwise leaves it unchanged.
    pub fn charge(
        &mut self,
        budget: &Budget,
        counter: Counter,
        amount: u64,
    ) -> Result<(), LimitExceeded> {
        let (used, value, limit) = match counter {
            Counter::RowsRead => (&mut self.rows_read, budget.rows_read, Limit::RowsRead),
            Counter::BytesRead => (&mut self.bytes_read, budget.bytes_read, Limit::BytesRead),
            Counter::ReportBytes => (
                &mut self.report_bytes,
                budget.report_bytes,
                Limit::ReportBytes,
            ),
            Counter::HostCalls => (&mut self.host_calls, budget.host_calls, Limit::HostCalls),
        };
        let requested = used.saturating_add(amount);
        if requested > value {
            return Err(LimitExceeded {
                limit,
                value,
                requested,
            });
        }
        *used = requested;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn charge_within_budget_accumulates() {
        let budget = Budget {
            rows_read: 10,
            ..Budget::default()
        };
        let mut usage = Usage::default();
        usage.charge(&budget, Counter::RowsRead, 6).unwrap();
        usage.charge(&budget, Counter::RowsRead, 4).unwrap();
        assert_eq!(usage.rows_read, 10);
    }

    #[test]
    fn charge_past_budget_names_the_limit_and_keeps_usage() {
        let budget = Budget {
            rows_read: 10,
            ..Budget::default()
        };
        let mut usage = Usage::default();
        usage.charge(&budget, Counter::RowsRead, 8).unwrap();
        let err = usage.charge(&budget, Counter::RowsRead, 5).unwrap_err();
        assert_eq!(
            err.to_string(),
            "limit rows-read exceeded: limit is 10, run needed 13"
        );
        assert_eq!(usage.rows_read, 8);
    }
}

//! Per-tenant budgets: what one run may consume before the host ends it.

use std::fmt;
use std::time::Duration;

/// Limits for one tenant run. `Budget::default()` is what the pipeline uses unless configured.
///
/// Every quantity a guest can drive is here, so a hostile transform fails itself and nothing
/// else: time, memory, data read, bytes handed to the host, host calls, handles, log and audit.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Budget {
    /// Wall-clock time the run may take, from instantiation to `run` returning, enforced while
    /// the guest computes (epoch interruption), while it waits in a host call (clock pollables
    /// end at the deadline) and, as a last line, by a watchdog. Default 60 s: the bank transform
    /// reads 2.4 M rows in ~1 s.
    pub wall_time: Duration,
    /// Linear memory the guest may grow to, across all its memories; and, separately, decoded
    /// data the run's sources may hold at once (read ahead, pending, being copied). Default
    /// 256 MiB.
    pub memory_bytes: u64,
    /// Rows the guest may read across all datasets. Default 50 M.
    pub rows_read: u64,
    /// Bytes sources may decompress and materialize for the run across all datasets (pages,
    /// decoded batches, values copied out), charged before they are decoded, whatever the guest
    /// takes of them. Default 4 GiB.
    pub bytes_read: u64,
    /// Bytes the guest may append to reports. Default 16 MiB.
    pub report_bytes: u64,
    /// Calls into the host: every `sluice:etl` and WASI call. Default 100,000: the bank
    /// transform makes ~300.
    pub host_calls: u64,
    /// Bytes a guest may hand the host in one call (strings, lists, the summary it returns),
    /// checked by Wasmtime before anything is copied. Default 1 MiB: the SDK appends reports in
    /// 64 KiB chunks and a summary is a few hundred bytes.
    pub call_bytes: u64,
    /// Bytes of log output (the log interface plus stdout/stderr) kept; the rest is counted and
    /// dropped. Default 64 KiB.
    pub log_bytes: u64,
    /// Datasets open at once. Each holds a database connection (a file descriptor of the host
    /// process), so a guest hoarding handles must not starve other tenants. Default 16.
    pub open_datasets: u64,
    /// Host resource handles alive at once (datasets, reports, pollables, streams). Default 1,024.
    pub handles: u64,
    /// Distinct gate decisions (host call, scope, decision) itemized in the audit trail per run;
    /// repeats are counted in their entry, and decisions beyond this many distinct kinds are
    /// counted in one overflow entry. Default 64.
    pub audit_entries: u64,
    /// Levels of nesting a dataset's schema may have (a Parquet schema's groups and lists),
    /// checked before anything recurses into it. Default 64.
    pub schema_depth: u64,
    /// Columns a dataset (Parquet leaves, CSV fields) or an output table may have, checked
    /// before anything is allocated per column. Default 4,096.
    pub columns: u64,
    /// Bytes of one row as stored: a CSV line (its header and `.types` sidecar lines too), a
    /// SQLite or PostgreSQL row. Checked before the row is held whole. Default 4 MiB.
    pub row_bytes: u64,
    /// Bytes of one Parquet page or dictionary, decompressed. Default 16 MiB.
    pub page_bytes: u64,
    /// How many times its stored size a Parquet page may decompress to. Default 100 (Snappy
    /// cannot pass about 21).
    pub decompression_ratio: u64,
    /// Output tables a run may create. Default 16.
    pub output_tables: u64,
    /// Threads that decode one tenant's data at once (Parquet row groups), its run's own
    /// included; each thread's decoded data is held against `memory_bytes`. 0, the default,
    /// means the cores the night leaves idle: a night runs the tenant with
    /// `max(1, cores - concurrency + 1)`, `sluice try` with every core.
    pub decode_threads: u64,
}

impl Default for Budget {
    fn default() -> Self {
        Budget {
            wall_time: Duration::from_secs(60),
            memory_bytes: 256 << 20,
            rows_read: 50_000_000,
            bytes_read: 4 << 30,
            report_bytes: 16 << 20,
            host_calls: 100_000,
            call_bytes: 1 << 20,
            log_bytes: 64 << 10,
            open_datasets: 16,
            handles: 1024,
            audit_entries: 64,
            schema_depth: 64,
            columns: 4096,
            row_bytes: 4 << 20,
            page_bytes: 16 << 20,
            decompression_ratio: 100,
            output_tables: 16,
            decode_threads: 0,
        }
    }
}

/// The budgeted quantities. Each is one row of [`LIMITS`], which names it for errors, flags,
/// configuration keys and the README alike.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Limit {
    WallTime,
    Memory,
    RowsRead,
    BytesRead,
    ReportBytes,
    HostCalls,
    CallBytes,
    LogBytes,
    OpenDatasets,
    Handles,
    AuditEntries,
    SchemaDepth,
    Columns,
    RowBytes,
    PageBytes,
    DecompressionRatio,
    OutputTables,
    DecodeThreads,
}

impl Limit {
    /// Its name in errors and flags (`wall-time-ms`); in configuration, `-` is `_`.
    pub fn name(self) -> &'static str {
        self.spec().name
    }

    /// Its row of [`LIMITS`].
    pub fn spec(self) -> &'static LimitSpec {
        LIMITS
            .iter()
            .find(|spec| spec.limit == self)
            .expect("every limit has a row in LIMITS")
    }
}

/// One limit as users write it: its name, whether 0 is allowed, what it bounds, and how it reads
/// and writes a [`Budget`] in the unit it is written in (milliseconds, MiB, a count, bytes).
pub struct LimitSpec {
    pub limit: Limit,
    /// The name in errors and on the command line (`--wall-time-ms`).
    pub name: &'static str,
    /// Whether the limit must be at least 1 (0 would make every run fail or the host divide).
    pub at_least_one: bool,
    /// One line: what it bounds.
    pub help: &'static str,
    get: fn(&Budget) -> u64,
    set: fn(&mut Budget, u64),
}

impl LimitSpec {
    /// The configuration key: the name with `_` for `-` (`wall_time_ms`).
    pub fn key(&self) -> String {
        self.name.replace('-', "_")
    }

    /// Its value in `budget`, in the unit it is written in.
    pub fn get(&self, budget: &Budget) -> u64 {
        (self.get)(budget)
    }

    /// Sets it in `budget`, `value` being in the unit it is written in.
    pub fn set(&self, budget: &mut Budget, value: u64) {
        (self.set)(budget, value)
    }

    /// Sluice's default.
    pub fn default_value(&self) -> u64 {
        self.get(&Budget::default())
    }

    /// The default as a person reads it: bytes in KiB, MiB or GiB where exact, other numbers
    /// with thousands separated.
    pub fn shown_default(&self) -> String {
        let value = self.default_value();
        if self.limit == Limit::DecodeThreads && value == 0 {
            return "the cores left idle".to_string();
        }
        if self.name.contains("bytes") {
            for (unit, shift) in [("GiB", 30), ("MiB", 20), ("KiB", 10)] {
                if value >= 1 << shift && value.is_multiple_of(1 << shift) {
                    return format!("{} {unit}", value >> shift);
                }
            }
        }
        let digits = value.to_string();
        let mut shown = String::new();
        for (i, digit) in digits.chars().enumerate() {
            if i > 0 && (digits.len() - i).is_multiple_of(3) {
                shown.push(',');
            }
            shown.push(digit);
        }
        shown
    }
}

/// `true` for a limit marked `at_least_one` in [`limits!`].
macro_rules! at_least_one {
    () => {
        false
    };
    (at_least_one) => {
        true
    };
}

macro_rules! limits {
    ($($limit:ident $name:literal $($one:ident)?: $help:literal,
       |$b:ident| $get:expr, |$s:ident, $v:ident| $set:expr;)*) => {
        /// Every limit, in the order the README, `--help` and the configuration list them: the
        /// one table the budget, configuration keys, flags and error names come from.
        pub static LIMITS: &[LimitSpec] = &[$(LimitSpec {
            limit: Limit::$limit,
            name: $name,
            at_least_one: at_least_one!($($one)?),
            help: $help,
            get: |$b| $get,
            set: |$s, $v| $set,
        }),*];
    };
}

limits! {
    WallTime "wall-time-ms" at_least_one:
        "Wall-clock time a run may take, waiting in the host included, in milliseconds",
        |b| b.wall_time.as_millis() as u64, |b, v| b.wall_time = Duration::from_millis(v);
    Memory "memory-mib" at_least_one:
        "Linear memory across the guest's memories, and decoded data its sources hold, in MiB",
        |b| b.memory_bytes >> 20, |b, v| b.memory_bytes = v.saturating_mul(1 << 20);
    RowsRead "rows-read":
        "Rows a run may read across all datasets",
        |b| b.rows_read, |b, v| b.rows_read = v;
    BytesRead "bytes-read":
        "Bytes sources may decompress and materialize for a run, charged before decoding",
        |b| b.bytes_read, |b, v| b.bytes_read = v;
    ReportBytes "report-bytes":
        "Bytes a run may append to reports",
        |b| b.report_bytes, |b, v| b.report_bytes = v;
    HostCalls "host-calls":
        "Calls into the host, WASI included",
        |b| b.host_calls, |b, v| b.host_calls = v;
    CallBytes "call-bytes" at_least_one:
        "Bytes a guest may hand the host in one call, checked before anything is copied",
        |b| b.call_bytes, |b, v| b.call_bytes = v;
    LogBytes "log-bytes":
        "Bytes of log output kept (log interface, stdout, stderr); the rest is counted",
        |b| b.log_bytes, |b, v| b.log_bytes = v;
    OpenDatasets "open-datasets":
        "Datasets open at once",
        |b| b.open_datasets, |b, v| b.open_datasets = v;
    Handles "handles" at_least_one:
        "Host resource handles alive at once",
        |b| b.handles, |b, v| b.handles = v;
    AuditEntries "audit-entries" at_least_one:
        "Kinds of gate decision itemized in the audit per run; the rest are counted",
        |b| b.audit_entries, |b, v| b.audit_entries = v;
    SchemaDepth "schema-depth" at_least_one:
        "Levels of nesting a dataset's schema may have",
        |b| b.schema_depth, |b, v| b.schema_depth = v;
    Columns "columns" at_least_one:
        "Columns a dataset or an output table may have",
        |b| b.columns, |b, v| b.columns = v;
    RowBytes "row-bytes" at_least_one:
        "Bytes of one stored row: a CSV line, a SQLite or PostgreSQL row",
        |b| b.row_bytes, |b, v| b.row_bytes = v;
    PageBytes "page-bytes" at_least_one:
        "Bytes of one Parquet page or dictionary, decompressed",
        |b| b.page_bytes, |b, v| b.page_bytes = v;
    DecompressionRatio "decompression-ratio" at_least_one:
        "Times its stored size a Parquet page may decompress to",
        |b| b.decompression_ratio, |b, v| b.decompression_ratio = v;
    OutputTables "output-tables":
        "Output tables a run may create",
        |b| b.output_tables, |b, v| b.output_tables = v;
    DecodeThreads "decode-threads" at_least_one:
        "Threads decoding one tenant's data at once, its run's own included",
        |b| b.decode_threads, |b, v| b.decode_threads = v;
}

/// [`LIMITS`] as the README's table: `| key | default | what it bounds |`.
pub fn limits_table() -> String {
    let mut table = String::from(
        "| limit (config key, `--flag`) | default | what it bounds |\n|---|---|---|\n",
    );
    for spec in LIMITS {
        table.push_str(&format!(
            "| `{}`, `--{}` | {} | {} |\n",
            spec.key(),
            spec.name,
            spec.shown_default(),
            spec.help
        ));
    }
    table
}

/// A budget ran out. Its Display names the limit, its value and what was asked for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LimitExceeded {
    pub limit: Limit,
    /// The configured value (for memory, in bytes; shown in MiB as it is configured).
    pub value: u64,
    /// What the run would have used had the host allowed it; `None` when unknowable (a guest
    /// stopped by the clock, or one call that wanted more than the limit).
    pub requested: Option<u64>,
    /// What hit it, when that is not the guest's own call: the dataset, file, line or column
    /// (`dataset 'visits' (visits.csv) line 1`), already escaped.
    pub by: Option<String>,
}

impl LimitExceeded {
    /// `limit` of `value` exceeded by the run, which needed `requested`.
    pub fn new(limit: Limit, value: u64, requested: Option<u64>) -> LimitExceeded {
        LimitExceeded {
            limit,
            value,
            requested,
            by: None,
        }
    }

    /// The same, naming what hit it.
    pub fn by(mut self, what: impl Into<String>) -> LimitExceeded {
        self.by = Some(what.into());
        self
    }
}

impl fmt::Display for LimitExceeded {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = self.limit.name();
        if let Some(by) = &self.by {
            let (value, requested) = match self.limit {
                Limit::Memory => (
                    self.value.div_ceil(1 << 20),
                    self.requested.map(|r| r.div_ceil(1 << 20)),
                ),
                _ => (self.value, self.requested),
            };
            return match requested {
                Some(requested) => write!(
                    f,
                    "limit {name} exceeded by {by}: limit is {value}, it needs {requested}"
                ),
                None => write!(f, "limit {name} exceeded by {by}: limit is {value}"),
            };
        }
        match (self.limit, self.requested) {
            (Limit::Memory, Some(requested)) => write!(
                f,
                "limit {name} exceeded: limit is {}, run needed {} ({requested} bytes)",
                self.value.div_ceil(1 << 20),
                requested.div_ceil(1 << 20)
            ),
            (_, Some(requested)) => write!(
                f,
                "limit {name} exceeded: limit is {}, run needed {requested}",
                self.value
            ),
            (Limit::WallTime, None) => write!(
                f,
                "limit {name} exceeded: limit is {}, the guest was still running",
                self.value
            ),
            (Limit::CallBytes, None) => write!(
                f,
                "limit {name} exceeded: limit is {}, the guest passed more in one call",
                self.value
            ),
            (_, None) => write!(f, "limit {name} exceeded: limit is {}", self.value),
        }
    }
}

impl std::error::Error for LimitExceeded {}

/// The limits the host counts itself (time, memory and call bytes are enforced by Wasmtime).
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
    /// Calls refused as malformed (`error::invalid`): a bad name, a handle used after commit.
    pub invalid_calls: u64,
    /// The most memory the run held, in the two ways `memory-mib` bounds it (linear memory
    /// across the guest's memories, decoded data its sources held at once): the larger.
    pub memory_peak: u64,
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
            return Err(LimitExceeded::new(limit, value, Some(requested)));
        }
        *used = requested;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The README's table of limits is the one [`limits_table`] renders from [`LIMITS`].
    #[test]
    fn the_readme_lists_every_limit_as_the_code_has_it() {
        let readme = include_str!("../../../README.md");
        let start = "<!-- limits: generated from sluice_budget::LIMITS -->\n";
        let table = readme
            .split_once(start)
            .and_then(|(_, rest)| rest.split_once("<!-- /limits -->"))
            .map(|(table, _)| table)
            .expect("the README's limits table, between its markers");
        assert_eq!(
            table,
            limits_table(),
            "regenerate the README's table: it is `sluice_budget::limits_table()`"
        );
    }

    #[test]
    fn every_limit_has_one_row_and_reads_back_what_it_sets() {
        for (i, spec) in LIMITS.iter().enumerate() {
            assert!(
                LIMITS[..i]
                    .iter()
                    .all(|other| other.limit != spec.limit && other.name != spec.name)
            );
            assert_eq!(spec.limit.name(), spec.name);
            let mut budget = Budget::default();
            spec.set(&mut budget, 7);
            assert_eq!(spec.get(&budget), 7, "{}", spec.name);
            assert_ne!(budget, Budget::default(), "{} sets nothing", spec.name);
        }
    }

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

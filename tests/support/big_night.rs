//! A large night made up record by record, for what only scale shows: the night page of 1,000
//! tenants (its size, its order, the time to draw it). Deterministic, so two calls agree.

use sluice_pipeline::outcome::{BudgetUse, FailureKind, Gauge, TenantError};
use sluice_pipeline::record::{
    CheckRecord, IsolationRecord, NightRecord, PastNight, ShardRecord, TenantRecord, Verdict,
};
use sluice_sandbox::GuestText;

/// Shards a big night is spread over.
pub const SHARDS: u32 = 4;
/// Every `FAIL_EVERY`th tenant failed.
pub const FAIL_EVERY: usize = 40;
/// Every `NEAR_EVERY`th tenant (that did not fail) used 93% of its memory.
pub const NEAR_EVERY: usize = 13;

/// A night starting at this time, each earlier one a day before it.
const NIGHT_MS: u64 = 1_796_356_708_000;
const DAY_MS: u64 = 86_400_000;

pub fn tenant_id(i: usize) -> String {
    format!("tenant-{i:04}")
}

/// Night `age` nights before the newest (0) of `tenants` tenants, as its shards recorded it.
fn records(tenants: usize, age: u64) -> Vec<TenantRecord> {
    let started = NIGHT_MS - age * DAY_MS;
    (0..tenants)
        .map(|i| {
            let shard = (i % SHARDS as usize) as u32;
            let slot = (i / SHARDS as usize) as u64;
            // Durations vary by tenant and by night; every 97th tenant is slow tonight only.
            let mut elapsed = 120 + (i as u64 * 37) % 900 + age * 11;
            if age == 0 && i % 97 == 5 {
                elapsed *= 4;
            }
            let rows = 10_000 + (i as u64 * 7_919) % 2_000_000 + age * 13;
            let failed = i % FAIL_EVERY == 7 && age == 0;
            let near = i % NEAR_EVERY == 3;
            let memory_limit = 256 << 20;
            let memory = if near {
                memory_limit / 100 * 93
            } else {
                (8 << 20) + ((i as u64 % 40) << 20)
            };
            let gauge = |used, limit| Gauge { used, limit };
            TenantRecord {
                id: tenant_id(i),
                shard,
                error: failed.then(|| {
                    TenantError::new(
                        FailureKind::Run,
                        format!(
                            "transform failed: limit rows-read ({rows}) reached while reading \
                             analytics.transactions of {}: raise limits.rows_read for this tenant \
                             or have its transform read fewer columns; {}",
                            tenant_id(i),
                            "<b>its own words</b> ".repeat(40)
                        ),
                    )
                }),
                agent_id: Some(format!(
                    "spiffe://agentwrit.local/agent/nightly-pipeline/etl-{}-{}/{:016x}",
                    tenant_id(i),
                    started / 1000,
                    i as u64 * 0x9e37_79b9
                )),
                agent_end: Some("released".into()),
                language: Some(["rust", "python", "javascript"][i % 3].into()),
                digest: Some(format!("sha256:{:064x}", i as u128 * 0x1234_5678_9abc)),
                origin: Some("cached".into()),
                started_at_ms: started + slot * 1_100,
                elapsed_ms: elapsed,
                rows_read: rows,
                bytes_read: rows * 16,
                allowed: 4 + rows / 16_384,
                denied: u64::from(i % 50 == 0),
                budget: Some(BudgetUse {
                    wall_time_ms: gauge(elapsed, 60_000),
                    memory_bytes: gauge(memory, memory_limit),
                    rows_read: gauge(rows, 50_000_000),
                    bytes_read: gauge(rows * 16, 4 << 30),
                    host_calls: gauge(4 + rows / 16_384, 100_000),
                    report_bytes: gauge(600, 16 << 20),
                }),
                figures: (0..6)
                    .map(|f| {
                        // One figure in five changes from night to night.
                        let value = if f == 0 && i % 5 == 0 {
                            rows.to_string()
                        } else {
                            format!("{}", (i * 31 + f * 7) % 10_000)
                        };
                        (GuestText::new(format!("figure_{f}")), GuestText::new(value))
                    })
                    .collect(),
                figures_dropped: 0,
                log_tail: if failed {
                    (0..5)
                        .map(|l| GuestText::new(format!("batch {l}: <i>still reading</i>")))
                        .collect()
                } else {
                    Vec::new()
                },
            }
        })
        .collect()
}

/// The newest night of `tenants` tenants over [`SHARDS`] shards, and the `past` nights stored
/// before it, oldest first.
pub fn big_night(tenants: usize, past: usize) -> (NightRecord, Vec<PastNight>) {
    let shards = (0..SHARDS)
        .map(|shard| ShardRecord {
            shard,
            state: "ok".into(),
            audit_ok: true,
            audit: format!("runs/night-0/audit-{shard}.jsonl"),
            audit_entries: tenants as u64 / u64::from(SHARDS) * 9,
            audit_head: format!("{:064x}", u64::from(shard) + 1),
            started_at_ms: NIGHT_MS,
            elapsed_ms: 300_000,
        })
        .collect();
    let night = NightRecord {
        run_id: Some("night-0".into()),
        verdict: Verdict::Failed,
        started_at_ms: NIGHT_MS,
        elapsed_ms: 300_000,
        shards,
        tenants: records(tenants, 0),
        never_ran: Vec::new(),
        isolation: Some(IsolationRecord {
            violated: false,
            error: None,
            checks: vec![CheckRecord {
                claim: "hospital cannot read bank data".into(),
                required: "read:analytics:bank".into(),
                decision: Some("BLOCKED".into()),
                holds: true,
            }],
        }),
        interrupted: false,
    };
    let past = (1..=past as u64)
        .rev()
        .map(|age| PastNight {
            run_id: format!("night-{age}"),
            started_at_ms: NIGHT_MS - age * DAY_MS,
            tenants: records(tenants, age)
                .into_iter()
                .map(|r| (r.id.clone(), r))
                .collect(),
        })
        .collect();
    (night, past)
}

//! The chaos guest over many seeds: random, mostly invalid, host calls. Whatever it does, the host
//! does not panic, the run ends within its deadline, the gate allows nothing of another tenant,
//! and every denial the guest was told of is in the audit trail.
//!
//! `SLUICE_CHAOS_SEEDS` (default 300) sets how many seeds run; `SLUICE_CHAOS_FIRST` where they
//! start, to replay a failing one.

use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use sluice_audit::AuditLog;
use sluice_data::SqliteSource;
use sluice_sandbox::{AuditSink as _, Budget, Decision, Interrupt, RunRequest, WATCHDOG_GRACE};
use sluice_tests::{demo_data, own_scopes, writ};

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[test]
fn chaos_seeds_never_break_the_hosts_invariants() {
    let seeds = env_u64("SLUICE_CHAOS_SEEDS", 300);
    let first = env_u64("SLUICE_CHAOS_FIRST", 0);
    let transform = sluice_tests::transform("chaos");
    let source = Arc::new(SqliteSource::new(demo_data()));
    let scopes = own_scopes("hospital");
    let scopes: Vec<&str> = scopes.iter().map(String::as_str).collect();
    let budget = Budget {
        wall_time: Duration::from_secs(2),
        memory_bytes: 64 << 20,
        host_calls: 5_000,
        ..Budget::default()
    };
    let dir = tempfile::tempdir().unwrap();
    let (mut completed, mut faulted) = (0, 0);
    for seed in first..first + seeds {
        let outcome = transform
            .spawn(
                RunRequest {
                    writ: writ("hospital", &scopes),
                    budget: budget.clone(),
                    datasets: source.clone(),
                    params: vec![("seed".into(), seed.to_string())],
                    interrupt: Interrupt::new(),
                },
                (),
            )
            .wait();
        let replay =
            format!("seed {seed} (replay: SLUICE_CHAOS_FIRST={seed} SLUICE_CHAOS_SEEDS=1)");
        assert!(
            outcome.elapsed <= budget.wall_time + WATCHDOG_GRACE,
            "{replay}: ran {:?}",
            outcome.elapsed
        );
        for event in &outcome.events {
            assert!(
                event.decision != Decision::Allowed || event.required.identifier() == "hospital",
                "{replay}: the gate allowed {} on {}",
                event.call.name(),
                event.required
            );
        }
        if let Err(failure) = &outcome.result {
            let text = failure.to_string();
            assert!(!text.contains('\n'), "{replay}: {text:?}");
            assert!(!text.starts_with("host error"), "{replay}: {text}");
            faulted += 1;
            continue;
        }
        completed += 1;

        // Every denial the guest was told of is in the audit trail, itemized or counted.
        let told: u64 = outcome.result.as_ref().unwrap().figures[0]
            .value
            .as_raw()
            .parse()
            .unwrap();
        let path = dir.path().join(format!("audit-{seed}.jsonl"));
        let audit = AuditLog::open(&path).unwrap();
        audit
            .record_gate_events(&outcome.writ, &outcome.events, &outcome.overflow)
            .unwrap();
        audit.flush().unwrap();
        let audited: u64 = std::fs::read_to_string(&path)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str::<Value>(l).unwrap())
            .map(|e| match (e["event"].as_str(), e["decision"].as_str()) {
                (Some("gate"), Some("BLOCKED" | "REVOKED")) => e["count"].as_u64().unwrap(),
                (Some("gate_overflow"), _) => e["denied"].as_u64().unwrap(),
                _ => 0,
            })
            .sum();
        assert_eq!(audited, told, "{replay}: denials told vs audited");
    }
    // Chaos that never completes, or never faults, tests less than it claims.
    assert!(completed > 0, "no seed completed");
    eprintln!("chaos: {completed} seeds completed, {faulted} failed on a limit or fault");
}

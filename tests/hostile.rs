//! Hostile guests: each is stopped with an error naming the cause, the host carries on, and the
//! tenants' reports are exactly what a clean run writes.

use std::path::Path;

use sluice_pipeline::ReportDir;
use sluice_sandbox::{Budget, RunOutcome};
use sluice_tests::{expected_report, files_under, guest, root, run_as, sandbox};

/// Every hostile guest and the one line it must fail with. A guest built by `cargo xtask guests`
/// without an entry here fails `every_hostile_guest_has_a_case`.
const CASES: &[(&str, &str)] = &[
    (
        "read-other-tenant",
        "denied: scope 'read:analytics:bank' is not covered by held scopes [read:analytics:hospital, write:reports:hospital]",
    ),
    (
        "write-other-tenant",
        "denied: scope 'write:reports:retail' is not covered by held scopes [read:analytics:hospital, write:reports:hospital]",
    ),
    (
        "spin",
        "limit wall-time-ms exceeded: limit is 500, the guest was still running",
    ),
    (
        "memory-hog",
        "limit memory-bytes exceeded: limit is 67108864, run needed ",
    ),
    (
        "trap-mid-report",
        "guest panicked: transform crashed half-way through its report",
    ),
    (
        "trap-after-commit",
        "guest panicked: transform crashed after committing",
    ),
    (
        "flood",
        "limit host-calls exceeded: limit is 2000, run needed 2001",
    ),
    (
        "handle-hoard",
        "limit open-datasets exceeded: limit is 16, run needed 17",
    ),
    (
        "filesystem",
        "imports wasi:filesystem/types@0.2.6, wasi:filesystem/preopens@0.2.6, which Sluice does not provide",
    ),
    ("sockets", "wasi:sockets/tcp@0.2.6"),
];

/// Limits low enough for the attacks to hit them quickly.
fn hostile_budget() -> Budget {
    Budget {
        wall_time: std::time::Duration::from_millis(500),
        memory_bytes: 64 << 20,
        host_calls: 2_000,
        ..Budget::default()
    }
}

fn run_hostile(attack: &str) -> Result<RunOutcome, String> {
    let name = format!("hostile-{attack}");
    // Loading is where import policy bites; run the rest as the hospital.
    match sandbox().load_file(&guest(&name)) {
        Err(e) => Err(format!("{e:#}")),
        Ok(_) => Ok(run_as(&name, "hospital", hostile_budget(), &[])),
    }
}

#[test]
fn every_hostile_guest_fails_with_an_error_naming_its_cause() {
    for (attack, want) in CASES {
        let message = match run_hostile(attack) {
            Err(load_error) => load_error,
            Ok(outcome) => {
                assert!(outcome.staged.is_empty(), "{attack}: nothing may be staged");
                outcome.result.expect_err(attack).to_string()
            }
        };
        assert!(
            message.contains(want),
            "{attack}: expected the error to contain\n  {want}\ngot\n  {message}"
        );
    }
}

#[test]
fn every_hostile_guest_has_a_case() {
    let built: Vec<String> = std::fs::read_dir(root().join("target").join("guests"))
        .expect("target/guests exists: run `cargo xtask guests`")
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter_map(|n| {
            Some(
                n.strip_prefix("hostile-")?
                    .strip_suffix(".wasm")?
                    .to_string(),
            )
        })
        .collect();
    assert!(!built.is_empty());
    for attack in built {
        assert!(
            CASES.iter().any(|(a, _)| *a == attack),
            "hostile-{attack}.wasm has no case in CASES"
        );
    }
}

fn publish_all(reports: &ReportDir, outcome: &RunOutcome) {
    for staged in &outcome.staged {
        reports.publish(&staged.tenant, &staged.bytes).unwrap();
    }
}

fn clean_run(dir: &Path) {
    let reports = ReportDir::new(dir);
    for tenant in ["hospital", "bank", "retail"] {
        publish_all(&reports, &run_as(tenant, tenant, Budget::default(), &[]));
    }
}

#[test]
fn hostile_guests_between_tenants_leave_every_report_as_a_clean_run_writes_it() {
    let clean = tempfile::tempdir().unwrap();
    clean_run(clean.path());

    let mixed = tempfile::tempdir().unwrap();
    let reports = ReportDir::new(mixed.path());
    // A previous night's report for the hospital, which the hostile runs must not touch.
    reports
        .publish("hospital", b"{\"night\":\"previous\"}")
        .unwrap();
    for (attack, _) in CASES {
        if let Ok(outcome) = run_hostile(attack) {
            publish_all(&reports, &outcome);
        }
    }
    assert_eq!(
        std::fs::read(mixed.path().join("hospital/latest.json")).unwrap(),
        b"{\"night\":\"previous\"}"
    );
    for tenant in ["hospital", "bank", "retail"] {
        publish_all(&reports, &run_as(tenant, tenant, Budget::default(), &[]));
        for (attack, _) in CASES.iter().take(3) {
            if let Ok(outcome) = run_hostile(attack) {
                publish_all(&reports, &outcome);
            }
        }
    }
    assert_eq!(files_under(mixed.path()), files_under(clean.path()));
    for tenant in ["hospital", "bank", "retail"] {
        let path = format!("{tenant}/latest.json");
        let bytes = std::fs::read(mixed.path().join(&path)).unwrap();
        assert_eq!(bytes, std::fs::read(clean.path().join(&path)).unwrap());
        assert_eq!(String::from_utf8(bytes).unwrap(), expected_report(tenant));
    }
}

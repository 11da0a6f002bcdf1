//! The sandbox over real tenant data: the seed's figures, the gate's decisions, the budgets.

use sluice_audit::{self as audit, AuditLog, Verdict};
use sluice_data::ReportDir;
use sluice_sandbox::{AuditSink, Budget, Decision, HostCall, RunFailure};
use sluice_tests::{expected_report, run_as, run_with, writ};

#[test]
fn each_tenant_transform_reproduces_the_seed_figures_under_its_own_scopes() {
    for tenant in ["hospital", "bank", "retail"] {
        let outcome = run_as(tenant, tenant, Budget::default(), &[]);
        assert!(outcome.is_ok(), "{tenant}: {:?}", outcome.result);
        assert_eq!(outcome.staged.len(), 1);
        assert_eq!(outcome.staged[0].tenant, tenant);
        assert_eq!(
            String::from_utf8(outcome.staged[0].bytes.clone()).unwrap(),
            expected_report(tenant)
        );
        assert!(
            outcome
                .events
                .iter()
                .all(|e| e.decision == Decision::Allowed),
            "{tenant}: a tenant's own calls are all allowed"
        );
    }
}

#[test]
fn figures_follow_the_data_not_a_constant() {
    let dir = tempfile::tempdir().unwrap();
    let scale = sluice_demo::SeedScale {
        visits: 1_000,
        transactions: 1_000,
        orders: 1_000,
    };
    sluice_demo::seed_demo(dir.path(), scale).unwrap();
    let db = rusqlite_path(dir.path());
    let conn = sluice_data::sources::sqlite::open_for_update(&db).unwrap();
    conn.execute_batch(
        "UPDATE visits SET stay_days = 5.0 WHERE stay_days IS NOT NULL;
         UPDATE visits SET readmitted = (visit_id % 4 = 0);",
    )
    .unwrap();
    drop(conn);
    let outcome = sluice_tests::transform("hospital").run(sluice_sandbox::RunRequest {
        writ: writ(
            "hospital",
            &["read:analytics:hospital", "write:reports:hospital"],
        ),
        budget: Budget::default(),
        datasets: std::sync::Arc::new(sluice_data::SqliteSource::new(dir.path())),
        params: vec![],
        interrupt: sluice_sandbox::Interrupt::new(),
    });
    let report = String::from_utf8(outcome.staged[0].bytes.clone()).unwrap();
    assert_eq!(
        report,
        r#"{"tenant":"hospital","figures":{"patient_visits":"1,000","avg_stay":"5.0 days","readmit_rate":"25.0%"}}"#
    );
}

fn rusqlite_path(dir: &std::path::Path) -> std::path::PathBuf {
    dir.join("hospital").join("analytics.db")
}

#[test]
fn probe_under_hospital_scopes_is_blocked_from_bank_and_retail_and_allowed_its_own() {
    let outcome = run_as(
        "probe",
        "hospital",
        Budget::default(),
        &[
            ("read-tenant", "bank"),
            ("write-tenant", "retail"),
            ("read-dataset", "transactions"),
        ],
    );
    assert!(outcome.is_ok(), "{:?}", outcome.result);
    let decisions: Vec<(HostCall, &str, Decision)> = outcome
        .events
        .iter()
        .map(|e| (e.call, e.required.as_str(), e.decision))
        .collect();
    assert_eq!(
        decisions,
        [
            (
                HostCall::DatasetsOpen,
                "read:analytics:bank",
                Decision::Blocked
            ),
            (
                HostCall::ReportsCreate,
                "write:reports:retail",
                Decision::Blocked
            ),
            (
                HostCall::DatasetsList,
                "read:analytics:hospital",
                Decision::Allowed
            ),
            (
                HostCall::DatasetsOpen,
                "read:analytics:hospital",
                Decision::Allowed
            ),
            (
                HostCall::DatasetNextBatch,
                "read:analytics:hospital",
                Decision::Allowed
            ),
        ]
    );
    // The probe reads nothing of the bank's: only the hospital's rows were counted.
    assert_eq!(outcome.usage.rows_read, 12_847);

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.jsonl");
    let log = AuditLog::open(&path).unwrap();
    log.record_gate_events(&outcome.writ, &outcome.events, &outcome.overflow)
        .unwrap();
    log.flush().unwrap();
    assert_eq!(audit::verify(&path).unwrap(), Verdict::Intact(5));
    let entries = audit::read_entries(&path).unwrap().entries;
    assert_eq!(entries[0]["decision"], "BLOCKED");
    assert_eq!(entries[0]["required"], "read:analytics:bank");
    assert_eq!(
        entries[0]["held"],
        serde_json::json!(["read:analytics:hospital", "write:reports:hospital"])
    );
    assert_eq!(entries[0]["agent_id"], outcome.writ.agent_id.as_str());
    assert_eq!(entries[0]["task_id"], "test-hospital");
    assert_eq!(entries[1]["decision"], "BLOCKED");
    assert_eq!(entries[1]["required"], "write:reports:retail");
    assert_eq!(entries[2]["decision"], "ALLOWED");
}

#[test]
fn a_writ_without_scopes_reads_nothing_and_fails_with_the_denial() {
    let outcome = run_with("hospital", writ("hospital", &[]), Budget::default(), &[]);
    assert_eq!(
        outcome.result.unwrap_err().to_string(),
        "denied: scope 'read:analytics:hospital' is not covered by held scopes []"
    );
    assert!(outcome.staged.is_empty());
    assert_eq!(outcome.usage.rows_read, 0);
}

#[test]
fn read_scope_alone_cannot_write_the_report() {
    let outcome = run_with(
        "bank",
        writ("bank", &["read:analytics:bank"]),
        Budget::default(),
        &[],
    );
    assert_eq!(
        outcome.result.unwrap_err().to_string(),
        "denied: scope 'write:reports:bank' is not covered by held scopes [read:analytics:bank]"
    );
    assert!(outcome.staged.is_empty());
}

#[test]
fn wildcard_identifier_in_held_scope_covers_every_tenant() {
    let outcome = run_with(
        "retail",
        writ("retail", &["read:analytics:*", "write:reports:*"]),
        Budget::default(),
        &[],
    );
    assert!(outcome.is_ok(), "{:?}", outcome.result);
}

#[test]
fn revoked_agent_is_denied_even_for_its_own_data() {
    let w = writ(
        "hospital",
        &["read:analytics:hospital", "write:reports:hospital"],
    );
    w.revoked.trigger();
    let outcome = run_with("hospital", w, Budget::default(), &[]);
    let failure = outcome.result.unwrap_err();
    assert!(matches!(&failure, RunFailure::Denied(_)), "{failure}");
    assert_eq!(outcome.events[0].decision, Decision::Revoked);
    assert!(outcome.staged.is_empty());
}

#[test]
fn rows_budget_stops_the_run_before_the_batch_reaches_the_guest() {
    let budget = Budget {
        rows_read: 1_000,
        ..Budget::default()
    };
    let outcome = run_as("hospital", "hospital", budget, &[]);
    assert_eq!(
        outcome.result.unwrap_err().to_string(),
        "limit rows-read exceeded: limit is 1000, run needed 12847"
    );
    assert_eq!(outcome.usage.rows_read, 0);
    assert!(outcome.staged.is_empty());
}

#[test]
fn report_bytes_budget_names_the_limit() {
    let budget = Budget {
        report_bytes: 10,
        ..Budget::default()
    };
    // Retail appends its daily table before its report, and output tables count against the
    // same budget: 28 days × (date 4 + orders 8 + revenue 16 + returns 8 bytes) = 1,008.
    let outcome = run_as("retail", "retail", budget, &[]);
    let want = 28 * (4 + 8 + 16 + 8);
    assert_eq!(
        outcome.result.unwrap_err().to_string(),
        format!("limit report-bytes exceeded: limit is 10, run needed {want}")
    );
    assert!(outcome.staged.is_empty());
}

#[test]
fn published_reports_are_the_staged_bytes() {
    let outcome = run_as("bank", "bank", Budget::default(), &[]);
    let dir = tempfile::tempdir().unwrap();
    let reports = ReportDir::new(dir.path());
    let path = reports
        .publish(
            &outcome.staged[0].tenant,
            outcome.staged[0].bytes.as_slice(),
        )
        .unwrap();
    assert_eq!(
        path.as_local(),
        Some(dir.path().join("bank").join("latest.json").as_path())
    );
    assert_eq!(
        std::fs::read_to_string(path.as_local().unwrap()).unwrap(),
        expected_report("bank")
    );
}

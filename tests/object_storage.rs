//! Reports, output files and the audit trail on S3-compatible storage (moto's server on
//! loopback, started by `cargo xtask test`), with disk's guarantees: a report is visible whole or
//! not at all, a failed run keeps the previous one, and an audit chain can be neither forked by a
//! second writer nor cut without `verify` saying so.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use serde_json::json;
use sluice_audit::{AuditLog, Verdict, read_entries, verify, verify_head};
use sluice_data::ReportDir;
use sluice_storage::Location;
use sluice_tests::night::{broker, demo_tenants, night_config, run};
use sluice_tests::{demo_data, expected_report, pipeline_tenant, s3};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_night_on_object_storage_publishes_the_seed_reports_its_table_and_a_chain() {
    let dir = tempfile::tempdir().unwrap();
    let (_broker, creds) = broker().await;
    let root = s3::location("night");
    let mut config = night_config(dir.path(), demo_tenants());
    config.reports = root.child("reports");
    config.audit = root.child("audit");
    let night = run(config.clone(), &creds, 2).await;
    assert_eq!(night.failed, 0, "{:?}", night.tenants);
    assert_eq!(night.audit_error, None);

    for id in ["hospital", "bank", "retail"] {
        let report = config.reports.child(id).child("latest.json");
        assert_eq!(
            String::from_utf8(s3::get(&report).unwrap()).unwrap(),
            expected_report(id)
        );
        let result = night.tenants.iter().find(|t| t.id == id).unwrap();
        assert_eq!(result.report.as_ref(), Some(&report));
    }
    // Retail's daily table, as the same Parquet bytes a run on disk writes.
    let table = s3::get(&config.reports.child("retail/reports/daily.parquet")).unwrap();
    let on_disk = {
        let local = tempfile::tempdir().unwrap();
        let mut config = night_config(local.path(), demo_tenants());
        config.isolation = None;
        let night = run(config.clone(), &creds, 2).await;
        assert_eq!(night.failed, 0);
        std::fs::read(local.path().join("reports/retail/reports/daily.parquet")).unwrap()
    };
    assert_eq!(table, on_disk);

    // The chain: segments named by their first entry, verified up to the head the night printed,
    // and telling where each report went.
    assert_eq!(
        verify_head(&config.audit, &night.audit.hash).unwrap(),
        Verdict::Intact(night.audit.entries)
    );
    let Location::Object(chain) = &config.audit else {
        unreachable!()
    };
    let segments: Vec<String> = chain
        .list()
        .unwrap()
        .iter()
        .map(|s| s.name().into())
        .collect();
    assert_eq!(segments[0], "00000000000000000001.jsonl", "{segments:?}");
    assert!(
        segments
            .iter()
            .all(|s| s.len() == 26 && s.ends_with(".jsonl")),
        "{segments:?}"
    );
    let committed: Vec<String> = read_entries(&config.audit)
        .unwrap()
        .entries
        .iter()
        .filter(|e| e["event"] == "report_committed")
        .map(|e| e["report"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(committed.len(), 3);
    assert!(
        committed.contains(&format!("{}/bank/latest.json", config.reports)),
        "{committed:?}"
    );

    // A second night continues the same chain, and the first night's head is still in it.
    let again = run(config.clone(), &creds, 2).await;
    assert_eq!(again.failed, 0);
    assert!(again.audit.entries > night.audit.entries);
    assert_eq!(
        verify_head(&config.audit, &night.audit.hash).unwrap(),
        Verdict::Intact(again.audit.entries)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_run_keeps_the_previous_report_and_table_on_object_storage() {
    let dir = tempfile::tempdir().unwrap();
    let (_broker, creds) = broker().await;
    let data = dir.path().join("data");
    std::fs::create_dir_all(data.join("shop")).unwrap();
    std::fs::copy(
        demo_data().join("retail/analytics.db"),
        data.join("shop/analytics.db"),
    )
    .unwrap();
    let mut tenants = demo_tenants();
    tenants.push(pipeline_tenant("shop", "retail", "orders", &data));
    let mut config = night_config(dir.path(), tenants);
    config.reports = s3::location("keep").child("reports");
    config.isolation = None;

    let good = run(config.clone(), &creds, 2).await;
    assert_eq!(good.failed, 0, "{:?}", good.tenants);
    let report = config.reports.child("shop/latest.json");
    let table = config.reports.child("shop/reports/daily.parquet");
    let before = (s3::get(&report).unwrap(), s3::get(&table).unwrap());

    let conn =
        sluice_data::sources::sqlite::open_for_update(&data.join("shop/analytics.db")).unwrap();
    conn.execute_batch("DROP TABLE orders").unwrap();
    drop(conn);
    let bad = run(config.clone(), &creds, 2).await;
    assert_eq!(bad.failed, 1);
    let shop = bad.tenants.iter().find(|t| t.id == "shop").unwrap();
    assert_eq!(
        shop.error_message(),
        Some(
            "transform failed: not found: tenant 'shop' has no dataset 'orders' in resource \
             'analytics'"
        )
    );
    assert_eq!(shop.report, None);
    assert_eq!(
        (s3::get(&report).unwrap(), s3::get(&table).unwrap()),
        before
    );
    for id in ["hospital", "bank", "retail"] {
        assert_eq!(
            String::from_utf8(s3::get(&config.reports.child(id).child("latest.json")).unwrap())
                .unwrap(),
            expected_report(id)
        );
    }
}

#[test]
fn a_reader_never_sees_a_partial_report_on_object_storage() {
    const SIZE: usize = 4 << 20;
    const VERSIONS: u8 = 12;
    let reports = ReportDir::new(s3::location("reader"));
    let report = reports.report_path("bank");
    let writing = Arc::new(AtomicBool::new(true));
    let reader = {
        let (report, writing) = (report.clone(), Arc::clone(&writing));
        std::thread::spawn(move || {
            let mut seen = Vec::new();
            while writing.load(Ordering::Relaxed) {
                if let Some(bytes) = report.get().unwrap() {
                    // Whole: one version's every byte, and all of them.
                    assert_eq!(bytes.len(), SIZE, "a report of {} bytes", bytes.len());
                    assert!(bytes.iter().all(|&b| b == bytes[0]), "a mixed report");
                    seen.push(bytes[0]);
                }
            }
            seen
        })
    };
    for version in 0..VERSIONS {
        reports.publish("bank", vec![b'a' + version; SIZE]).unwrap();
    }
    writing.store(false, Ordering::Relaxed);
    let seen = reader.join().unwrap();
    assert!(
        !seen.is_empty(),
        "the reader never read while the writer wrote"
    );
    assert!(seen.windows(2).all(|w| w[0] <= w[1]), "went back: {seen:?}");
    assert_eq!(
        report.get().unwrap().unwrap(),
        vec![b'a' + VERSIONS - 1; SIZE]
    );
}

fn entries(log: &AuditLog, n: usize, what: &str) -> sluice_audit::AuditHead {
    log.append_all((0..n).map(|i| json!({"event": what, "n": i})));
    log.flush().unwrap()
}

#[test]
fn two_writers_cannot_fork_a_chain_on_object_storage() {
    let chain = s3::location("fork").child("audit");
    let first = AuditLog::open(&chain).unwrap();
    assert_eq!(entries(&first, 3, "first").entries, 3);
    // A second writer opens the chain at the same head, as a second pod of the same shard would.
    let second = AuditLog::open(&chain).unwrap();
    assert_eq!(entries(&first, 2, "first").entries, 5);
    second.append(json!({"event": "second"}));
    let refused = second.flush().unwrap_err().to_string();
    assert_eq!(
        refused,
        format!(
            "appending to audit chain {chain}: {chain}/00000000000000000004.jsonl already exists, \
             so another writer continued this chain from the same entry (two runs of one shard \
             at once?); this run wrote no more audit entries"
        )
    );
    // The chain holds the first writer's five entries, intact; a new open continues it.
    assert_eq!(verify(&chain).unwrap(), Verdict::Intact(5));
    drop((first, second));
    let reopened = AuditLog::open(&chain).unwrap();
    assert_eq!(entries(&reopened, 1, "later").entries, 6);
    assert_eq!(verify(&chain).unwrap(), Verdict::Intact(6));
    let trail = read_entries(&chain).unwrap();
    assert!(trail.entries.iter().all(|e| e["event"] != "second"));
}

#[test]
fn a_segment_deleted_from_a_chain_on_object_storage_is_caught() {
    // From the middle: the links break where it was.
    let chain = s3::location("cut").child("audit");
    let log = AuditLog::open(&chain).unwrap();
    entries(&log, 3, "a");
    entries(&log, 2, "b");
    entries(&log, 1, "c");
    s3::delete(&format!("{chain}/00000000000000000004.jsonl"));
    assert_eq!(
        verify(&chain).unwrap(),
        Verdict::Broken {
            line: 4,
            reason: "sequence number 6 where 4 was expected: an entry was deleted, inserted or \
                     moved"
                .into()
        }
    );

    // From the end: the chain alone cannot tell, the head a summary recorded can.
    let chain = s3::location("cut").child("audit");
    let log = AuditLog::open(&chain).unwrap();
    entries(&log, 3, "a");
    let head = entries(&log, 2, "b");
    s3::delete(&format!("{chain}/00000000000000000004.jsonl"));
    assert_eq!(verify(&chain).unwrap(), Verdict::Intact(3));
    assert!(matches!(
        verify_head(&chain, &head.hash).unwrap(),
        Verdict::Broken { line: 4, .. }
    ));
}

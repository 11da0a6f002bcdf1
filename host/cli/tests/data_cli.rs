//! `sluice data seed` as a user runs it: every format, then `sluice try` over what it wrote.

use std::process::{Command, Output};

use sluice_tests::{expected_report, guest};

fn sluice(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args(args)
        .env_remove("SLUICE_NO_SUCH_URL")
        .output()
        .expect("running sluice")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn seeding_csv_gives_data_the_seed_transforms_read_to_the_seeds_reports() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let out = sluice(&[
        "data",
        "seed",
        "--format",
        "csv",
        "--dir",
        data.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(stdout.contains("retail/analytics/orders.csv"), "{stdout}");
    // Its declared types sit beside it, so nothing is guessed.
    let types = std::fs::read_to_string(data.join("retail/analytics/orders.csv.types")).unwrap();
    assert_eq!(
        types,
        "order_id int64\ncustomer_id int64\nregion text\ntotal_cents int64\nreturned boolean\n\
         ordered_on date\nordered_at timestamp(+00:00)\ntotal decimal(12,2)\nreceipt binary\n"
    );
    let reports = dir.path().join("reports");
    for tenant in ["hospital", "retail"] {
        let out = sluice(&[
            "try",
            guest(tenant).to_str().unwrap(),
            "--tenant",
            tenant,
            "--scope",
            &format!("read:analytics:{tenant}"),
            "--scope",
            &format!("write:reports:{tenant}"),
            "--data",
            data.to_str().unwrap(),
            "--reports",
            reports.to_str().unwrap(),
        ]);
        assert!(out.status.success(), "{tenant}: {}", text(&out.stderr));
        assert_eq!(
            std::fs::read_to_string(reports.join(tenant).join("latest.json")).unwrap(),
            expected_report(tenant)
        );
    }
    assert!(reports.join("retail/reports/daily.parquet").is_file());
}

#[test]
fn seeding_asks_for_what_each_format_needs_and_never_prints_a_url() {
    let out = sluice(&[
        "data",
        "seed",
        "--format",
        "postgres",
        "--url-env",
        "SLUICE_NO_SUCH_URL",
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stderr).trim(),
        "sluice: environment variable SLUICE_NO_SUCH_URL is not set; it must hold the PostgreSQL \
         connection URL (postgres://role:password@host:port/database)"
    );

    let out = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args([
            "data",
            "seed",
            "--format",
            "postgres",
            "--url-env",
            "SLUICE_BAD_URL",
        ])
        .env(
            "SLUICE_BAD_URL",
            "postgres://someone:hunter2-secret@127.0.0.1:1/db",
        )
        .output()
        .unwrap();
    let stderr = text(&out.stderr);
    assert!(
        stderr.starts_with("sluice: connecting to PostgreSQL with SLUICE_BAD_URL: "),
        "{stderr}"
    );
    assert!(!stderr.contains("hunter2"), "the password leaked: {stderr}");

    let out = sluice(&["data", "seed", "--format", "parquet", "--url-env", "X"]);
    assert_eq!(
        text(&out.stderr).trim(),
        "sluice: --format sqlite, parquet and csv write files: give --dir DIR"
    );
}

//! The nightly pipeline end to end over HTTP against the dev broker: agents released on every path,
//! revocation mid-run, tampered plugins, misconfigured tenants, reproducible reports.

use std::path::PathBuf;

use agentwrit::AdminSecret;
use agentwrit::operator::AdminClient;
use sluice_pipeline::config::{PluginSource, TenantConfig};
use sluice_pipeline::outcome::{AgentEnd, FailureKind};
use sluice_sandbox::Decision;
use sluice_tests::night::{
    ADMIN, audit_lines, broker, broker_events, demo_tenants, night_config as config,
    registered_agent, run,
};
use sluice_tests::{demo_data, expected_report, guest, pipeline_tenant};

fn tenant(id: &str, plugin: &str, dataset: &str) -> TenantConfig {
    pipeline_tenant(id, plugin, dataset, demo_data())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_agent_is_released_at_the_broker_even_when_its_guest_traps_or_hits_a_limit() {
    let (b, creds) = broker().await;
    let dir = tempfile::tempdir().unwrap();
    let attack = |id: &str, dataset: &str, attack: &str| {
        let mut t = tenant(id, "hostile", dataset);
        t.params = vec![("attack".into(), attack.into())];
        t
    };
    let tenants = vec![
        tenant("hospital", "hospital", "visits"),
        attack("bank", "transactions", "trap_mid_report"),
        attack("retail", "orders", "memory_hog"),
    ];
    let report = run(config(dir.path(), tenants), &creds, 2).await;
    assert_eq!(report.failed, 2);
    assert!(report.tenants[0].ok(), "{:?}", report.tenants[0].error);
    // Typed: a failed transform is the run's failure, whatever its message says.
    for failed in &report.tenants[1..3] {
        let error = failed.error.as_ref().expect("a failed tenant");
        assert_eq!(error.kind, FailureKind::Run, "{error:?}");
    }
    assert!(
        report.tenants[1]
            .error_message()
            .unwrap()
            .contains("transform crashed half-way")
    );
    assert!(
        report.tenants[2]
            .error_message()
            .unwrap()
            .starts_with("limit memory-mib exceeded: limit is ")
    );

    let admin = AdminClient::authenticate(&b.url(), &AdminSecret::new(ADMIN))
        .await
        .unwrap();
    let mut agents: Vec<String> = report
        .tenants
        .iter()
        .map(|t| t.agent_id.clone().unwrap())
        .collect();
    agents.push(report.isolation.as_ref().unwrap().agent_id.clone().unwrap());
    for agent in &agents {
        let events = broker_events(&admin, agent).await;
        assert_eq!(
            events.last().map(String::as_str),
            Some("token_released"),
            "{agent}: {events:?}"
        );
    }
    for t in &report.tenants {
        assert!(t.released(), "{}", t.id);
    }
    // Nothing of the failed tenants reached the reports directory.
    assert!(dir.path().join("reports/hospital/latest.json").exists());
    assert!(!dir.path().join("reports/bank").exists());
    assert!(!dir.path().join("reports/retail").exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_revoked_mid_run_cannot_commit_and_the_previous_report_stays() {
    let (b, creds) = broker().await;
    let dir = tempfile::tempdir().unwrap();
    let mut slow = tenant("hospital", "probe", "visits");
    slow.params = vec![
        ("mode".into(), "slow-report".into()),
        ("sleep-ms".into(), "4000".into()),
    ];
    let previous = dir.path().join("reports/hospital/latest.json");
    std::fs::create_dir_all(previous.parent().unwrap()).unwrap();
    std::fs::write(&previous, "{\"night\":\"previous\"}").unwrap();

    let cfg = config(dir.path(), vec![slow]);
    let audit_path = cfg.audit.as_local().unwrap().to_path_buf();
    let running = tokio::spawn({
        let creds = creds.clone();
        async move { run(cfg, &creds, 1).await }
    });
    let admin = AdminClient::authenticate(&b.url(), &AdminSecret::new(ADMIN))
        .await
        .unwrap();
    let agent_id = registered_agent(&admin, "etl-hospital-").await;
    // Mid-run, not mid-open: right after registering, the pipeline validates the new agent once
    // (a revoke landing before that fails the open instead, as it did once under CI load). The
    // guest then sleeps 4 s; 1.5 s in, the open is long done and the guest still running.
    tokio::time::sleep(std::time::Duration::from_millis(1_500)).await;
    admin.revoke("agent", &agent_id).await.unwrap();
    let report = running.await.unwrap();

    let hospital = &report.tenants[0];
    let error = hospital.error_message().unwrap();
    assert!(
        error.contains(&format!(
            "agent {agent_id} stopped mid-run: the broker revoked it"
        )),
        "the run must fail because the agent was revoked: {error}"
    );
    assert_eq!(
        std::fs::read_to_string(&previous).unwrap(),
        "{\"night\":\"previous\"}"
    );
    let audit = audit_lines(&audit_path);
    assert!(
        audit
            .iter()
            .any(|e| e["event"] == "commit_refused" || e["decision"] == "REVOKED"),
        "the refusal is audited"
    );
    assert_eq!(
        hospital.agent_end,
        Some(AgentEnd::Revoked),
        "a revoked agent is reported as revoked, not released"
    );
}

/// A guest asleep in the host when its agent is revoked wakes up, as it does for Ctrl-C: the
/// revoked tenant gives back its slot at once instead of after its sleep. And the audit's times
/// are true: the reads ended before the revocation, and say so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revocation_wakes_a_guest_asleep_in_the_host_and_the_audit_times_are_true() {
    let (b, creds) = broker().await;
    let dir = tempfile::tempdir().unwrap();
    let mut sleeper = tenant("hospital", "probe", "visits");
    // Reads its data, then sleeps 20 s (within its 30 s) before writing its report.
    sleeper.params = vec![
        ("mode".into(), "slow-report".into()),
        ("sleep-ms".into(), "20000".into()),
    ];
    let cfg = config(dir.path(), vec![sleeper]);
    let audit_path = cfg.audit.as_local().unwrap().to_path_buf();
    let running = tokio::spawn({
        let creds = creds.clone();
        async move { run(cfg, &creds, 1).await }
    });
    let admin = AdminClient::authenticate(&b.url(), &AdminSecret::new(ADMIN))
        .await
        .unwrap();
    let agent_id = registered_agent(&admin, "etl-hospital-").await;
    tokio::time::sleep(std::time::Duration::from_millis(1_500)).await;
    let revoked_at = std::time::SystemTime::now();
    admin.revoke("agent", &agent_id).await.unwrap();
    let report = running.await.unwrap();

    let hospital = &report.tenants[0];
    assert_eq!(hospital.agent_end, Some(AgentEnd::Revoked));
    // Woken, not slept out: far sooner than the 20 s sleep, however busy the machine is.
    assert!(
        hospital.elapsed_ms < 12_000,
        "the revoked guest slept on: {} ms",
        hospital.elapsed_ms
    );
    let parse = |t: &serde_json::Value| {
        let text = t.as_str().unwrap();
        let at = time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
            .unwrap();
        std::time::SystemTime::from(at)
    };
    let audit = audit_lines(&audit_path);
    let reads: Vec<&serde_json::Value> = audit
        .iter()
        .filter(|e| e["event"] == "gate" && e["call"] == "dataset.next-batch")
        .collect();
    assert!(!reads.is_empty());
    for read in reads {
        let last = read.get("last_time").unwrap_or(&read["time"]);
        assert!(
            parse(last) < revoked_at,
            "the audit puts a read after the revocation: {read}"
        );
    }
    let denied = audit
        .iter()
        .find(|e| e["event"] == "gate" && e["decision"] == "REVOKED")
        .expect("the woken guest's report was refused, and audited");
    assert!(parse(&denied["time"]) >= revoked_at);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tampered_plugin_is_refused_while_the_other_tenants_run() {
    let (_b, creds) = broker().await;
    let dir = tempfile::tempdir().unwrap();
    let mut tenants = demo_tenants();
    let tampered: PathBuf = dir.path().join("retail.wasm");
    let mut bytes = std::fs::read(guest("retail")).unwrap();
    bytes.push(0);
    std::fs::write(&tampered, bytes).unwrap();
    let PluginSource::File { path, .. } = &mut tenants[2].plugin else {
        unreachable!("the demo tenants' plugins are files")
    };
    *path = tampered.clone();
    let report = run(config(dir.path(), tenants), &creds, 2).await;
    let error = report.tenants[2].error_message().unwrap();
    assert!(
        error.starts_with(&format!(
            "plugin {} refused: its sha256 is ",
            tampered.display()
        )),
        "{error}"
    );
    assert!(error.contains("but the configuration pins"));
    assert!(
        report.tenants[2].agent_id.is_none(),
        "no agent for a refused plugin"
    );
    assert!(report.tenants[0].ok() && report.tenants[1].ok());
    assert_eq!(
        std::fs::read_to_string(dir.path().join("reports/bank/latest.json")).unwrap(),
        expected_report("bank")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenant_outside_the_apps_ceiling_fails_alone_with_the_brokers_403_explained() {
    let (_b, creds) = broker().await;
    let dir = tempfile::tempdir().unwrap();
    let mut tenants = demo_tenants();
    tenants[1].read_scope = sluice_tests::scope("read:billing:bank");
    let report = run(config(dir.path(), tenants), &creds, 2).await;
    let error = report.tenants[1].error_message().unwrap();
    assert_eq!(
        error,
        "the broker refused an agent with scopes [read:billing:bank, write:reports:bank] (403 forbidden: requested scopes exceed app ceiling): the app's ceiling does not cover this tenant's read_scope/write_scope; fix them or widen the app's ceiling at the broker (it needs read:analytics:*, write:reports:* for the demo)"
    );
    assert!(report.tenants[0].ok() && report.tenants[2].ok());
    assert!(!report.isolation_violated());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrency_one_and_four_write_byte_identical_reports() {
    let (_b, creds) = broker().await;
    let (one, four) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let r1 = run(config(one.path(), demo_tenants()), &creds, 1).await;
    let r4 = run(config(four.path(), demo_tenants()), &creds, 4).await;
    assert_eq!((r1.failed, r4.failed), (0, 0));
    for t in ["hospital", "bank", "retail"] {
        let path = format!("reports/{t}/latest.json");
        let a = std::fs::read(one.path().join(&path)).unwrap();
        assert_eq!(a, std::fs::read(four.path().join(&path)).unwrap(), "{t}");
        assert_eq!(String::from_utf8(a).unwrap(), expected_report(t));
    }
    let isolation = r4.isolation.unwrap();
    assert!(!isolation.violated);
    let decisions: Vec<Option<Decision>> = isolation.checks.iter().map(|c| c.decision).collect();
    assert_eq!(
        decisions,
        [
            Some(Decision::Blocked),
            Some(Decision::Blocked),
            Some(Decision::Allowed)
        ]
    );
}

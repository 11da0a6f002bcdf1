//! The broker misbehaving under a running night, over real HTTP: a revocation stops data access
//! within 100 ms of the broker's answer; a broker that goes down or hangs fails the tenant on
//! time, saying why; a broker restarted with its state costs the tenant nothing.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime};

use agentwrit::AdminSecret;
use agentwrit::operator::AdminClient;
use serde_json::Value;
use sluice_dev_broker::{AppCredentials, BrokerConfig, DevBroker, load_or_create_admin_secret};
use sluice_pipeline::config::TenantConfig;
use sluice_pipeline::nightly::RunOptions;
use sluice_pipeline::outcome::{AgentEnd, FailureKind, PipelineReport};
use sluice_tests::night::{
    ADMIN, audit_lines, broker, broker_with, night_config, pipeline, registered_agent,
};
use sluice_tests::{demo_data, pipeline_tenant};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// The hospital, reading its own data one row every 5 ms until stopped.
fn reader() -> TenantConfig {
    let mut t = pipeline_tenant("hospital", "hostile", "visits", demo_data());
    t.params = vec![("attack".into(), "read_forever".into())];
    t
}

fn time_of(entry: &Value) -> SystemTime {
    let text = entry["time"].as_str().unwrap();
    let parsed = time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|e| panic!("{text}: {e}"));
    SystemTime::from(parsed)
}

/// Waits until `tenant`'s agent exists (the pipeline audits it at once), then a little longer,
/// so its transform is running. Gate decisions are audited when the run ends, not before.
async fn running_tenant(audit: &std::path::Path, tenant: &str) {
    for _ in 0..600 {
        let created = std::fs::read_to_string(audit).is_ok_and(|t| {
            t.lines().any(|l| {
                l.contains("\"event\":\"agent_created\"")
                    && l.contains(&format!("\"tenant\":\"{tenant}\""))
            })
        });
        if created {
            tokio::time::sleep(Duration::from_millis(500)).await;
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("{tenant}'s agent was never created");
}

/// A night of `tenant` alone over `dir`, against the broker `creds` name (each broker call given
/// `timeout`), run in the background; and where its audit trail is.
fn night_in_background(
    dir: &Path,
    tenant: TenantConfig,
    creds: &AppCredentials,
    timeout: Duration,
) -> (JoinHandle<PipelineReport>, PathBuf) {
    let cfg = night_config(dir, vec![tenant]);
    let audit = cfg.audit.as_local().unwrap().to_path_buf();
    let creds = creds.clone();
    let night = tokio::spawn(async move {
        pipeline(cfg, &creds, 1, timeout)
            .run(RunOptions::default())
            .await
    });
    (night, audit)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_agent_reads_nothing_more_within_100_ms_of_the_brokers_answer() {
    let (b, creds) = broker().await;
    let dir = tempfile::tempdir().unwrap();
    let (night, audit) =
        night_in_background(dir.path(), reader(), &creds, agentwrit::DEFAULT_TIMEOUT);
    let admin = AdminClient::authenticate(&b.url(), &AdminSecret::new(ADMIN))
        .await
        .unwrap();
    let agent = registered_agent(&admin, "etl-hospital-").await;
    running_tenant(&audit, "hospital").await;
    admin.revoke("agent", &agent).await.unwrap();
    let answered = SystemTime::now();
    let report = night.await.unwrap();

    let hospital = &report.tenants[0];
    assert_eq!(hospital.agent_end, Some(AgentEnd::Revoked));
    assert_eq!(hospital.error.as_ref().unwrap().kind, FailureKind::Agent);
    assert!(
        hospital.error_message().unwrap().starts_with(&format!(
            "agent {agent} stopped mid-run: the broker revoked it"
        )),
        "{:?}",
        hospital.error
    );
    let entries = audit_lines(&audit);
    let first_revoked = entries
        .iter()
        .find(|e| e["decision"] == "REVOKED")
        .expect("the gate denied the revoked agent");
    // The gate's clock is the kernel's coarse one: a few ms early at most.
    let stopped = time_of(first_revoked)
        .duration_since(answered)
        .unwrap_or(Duration::ZERO);
    eprintln!(
        "revocation: data access stopped {} ms after the broker answered",
        stopped.as_millis()
    );
    assert!(
        stopped < Duration::from_millis(100),
        "data access stopped {} ms after the broker answered the revoke",
        stopped.as_millis()
    );
    // Nothing was read after that: every allowed read comes before the first denial.
    let allowed_after = entries.iter().any(|e| {
        e["decision"] == "ALLOWED" && time_of(e) > time_of(first_revoked) + Duration::from_millis(5)
    });
    assert!(!allowed_after, "an allowed read after the revocation");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_that_goes_down_mid_run_fails_the_tenant_on_time_and_says_why() {
    let (b, creds) = broker().await;
    let dir = tempfile::tempdir().unwrap();
    let previous = dir.path().join("reports/hospital/latest.json");
    std::fs::create_dir_all(previous.parent().unwrap()).unwrap();
    std::fs::write(&previous, "{\"night\":\"previous\"}").unwrap();
    let (night, audit) = night_in_background(dir.path(), reader(), &creds, Duration::from_secs(1));
    running_tenant(&audit, "hospital").await;
    let down = Instant::now();
    b.shutdown().await;
    let report = night.await.unwrap();
    let took = down.elapsed();

    let hospital = &report.tenants[0];
    let error = hospital.error_message().unwrap();
    assert!(
        error.contains("stopped mid-run: the broker could not confirm it for 3 s"),
        "{error}"
    );
    match &hospital.agent_end {
        Some(AgentEnd::NotReleased(why)) => {
            assert!(
                why.contains("broker unreachable") && why.contains("it expires in"),
                "{why}"
            )
        }
        other => panic!("the agent cannot have been released: {other:?}"),
    }
    assert_eq!(
        std::fs::read_to_string(&previous).unwrap(),
        "{\"night\":\"previous\"}"
    );
    // 3 s without confirmation, then 3 s of release retries, and the isolation proof's agent
    // cannot even be created: bounded, not hanging.
    assert!(took < Duration::from_secs(20), "took {took:?}");
    assert!(report.isolation.is_none() || report.isolation.as_ref().unwrap().error.is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_restarted_with_its_state_mid_run_costs_the_tenant_nothing() {
    let state = tempfile::tempdir().unwrap();
    let secret = load_or_create_admin_secret(state.path()).unwrap();
    let mut config = BrokerConfig::in_memory(secret);
    config.state_dir = Some(state.path().to_path_buf());
    let (b, creds) = broker_with(config.clone()).await;
    let addr = b.addr();
    let dir = tempfile::tempdir().unwrap();
    let mut slow = pipeline_tenant("hospital", "probe", "visits", demo_data());
    slow.params = vec![
        ("mode".into(), "slow-report".into()),
        ("sleep-ms".into(), "2500".into()),
    ];
    let (night, audit) = night_in_background(dir.path(), slow, &creds, Duration::from_secs(1));
    running_tenant(&audit, "hospital").await;
    b.shutdown().await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let restarted = DevBroker::start(config, addr).await.unwrap();
    let report = night.await.unwrap();
    drop(restarted);

    let hospital = &report.tenants[0];
    assert!(hospital.ok(), "{:?}", hospital.error);
    assert_eq!(hospital.agent_end, Some(AgentEnd::Released));
    let written = std::fs::read_to_string(dir.path().join("reports/hospital/latest.json")).unwrap();
    assert!(written.contains("\"tenant\":\"hospital\""), "{written}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_agents_are_released_on_demand_while_their_tenants_run() {
    let (b, creds) = broker().await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = night_config(dir.path(), vec![reader()]);
    let audit = cfg.audit.as_local().unwrap().to_path_buf();
    let night = pipeline(cfg, &creds, 1, agentwrit::DEFAULT_TIMEOUT);
    let running = tokio::spawn({
        let night = std::sync::Arc::clone(&night);
        async move { night.run(RunOptions::default()).await }
    });
    running_tenant(&audit, "hospital").await;
    // What a second Ctrl-C does: release every live agent, at once.
    assert_eq!(
        night.release_live_agents(Duration::from_secs(2)).await,
        (1, 1)
    );
    let report = running.await.unwrap();
    let admin = AdminClient::authenticate(&b.url(), &AdminSecret::new(ADMIN))
        .await
        .unwrap();
    let agent = report.tenants[0].agent_id.clone().unwrap();
    let events = sluice_tests::night::broker_events(&admin, &agent).await;
    assert!(events.contains(&"token_released".to_string()), "{events:?}");
    // Released behind its session's back, the agent stopped reading: the broker no longer
    // honoured it.
    assert!(
        report.tenants[0]
            .error_message()
            .unwrap()
            .contains("the broker revoked it"),
        "{:?}",
        report.tenants[0].error
    );
    let trail = std::fs::read_to_string(&audit).unwrap();
    assert!(trail.contains("on a second interrupt"), "{trail}");
}

/// A TCP proxy to the broker that can be told to hang: accept, read, never answer.
struct HangingProxy {
    addr: SocketAddr,
    hang: Arc<AtomicBool>,
}

impl HangingProxy {
    async fn start(upstream: SocketAddr) -> HangingProxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let hang = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&hang);
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let flag = Arc::clone(&flag);
                tokio::spawn(async move {
                    let Ok(server) = TcpStream::connect(upstream).await else {
                        return;
                    };
                    let (cr, cw) = client.into_split();
                    let (sr, sw) = server.into_split();
                    tokio::join!(pump(cr, sw, Arc::clone(&flag)), pump(sr, cw, flag));
                });
            }
        });
        HangingProxy { addr, hang }
    }
}

/// Copies bytes until told to hang; then holds the connection open, forwarding nothing.
async fn pump(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    hang: Arc<AtomicBool>,
) {
    let mut buf = vec![0u8; 16 << 10];
    loop {
        let Ok(n) = from.read(&mut buf).await else {
            return;
        };
        if n == 0 {
            return;
        }
        if hang.load(Ordering::Acquire) {
            std::future::pending::<()>().await;
        }
        if to.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hanging_broker_fails_the_tenant_instead_of_hanging_it() {
    let (b, creds) = broker().await;
    let proxy = HangingProxy::start(b.addr()).await;
    let through_proxy = AppCredentials {
        broker_url: format!("http://{}", proxy.addr),
        ..creds
    };
    let dir = tempfile::tempdir().unwrap();
    let (night, audit) =
        night_in_background(dir.path(), reader(), &through_proxy, Duration::from_secs(1));
    running_tenant(&audit, "hospital").await;
    let hung = Instant::now();
    proxy.hang.store(true, Ordering::Release);
    let report: PipelineReport = night.await.unwrap();
    let took = hung.elapsed();

    let hospital = &report.tenants[0];
    let error = hospital.error_message().unwrap();
    assert!(
        error.contains("the broker could not confirm it for 3 s"),
        "{error}"
    );
    assert!(
        matches!(&hospital.agent_end, Some(AgentEnd::NotReleased(why)) if why.contains("it expires in")),
        "{:?}",
        hospital.agent_end
    );
    assert!(took < Duration::from_secs(20), "took {took:?}");
}

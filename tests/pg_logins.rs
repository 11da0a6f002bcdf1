//! PostgreSQL logins minted per tenant run, against the throwaway server: a login reads its own
//! tenant's schema and no other even with the gate out of the way, dies at its expiry and at its
//! drop; a night reads and publishes through them and leaves none behind; a revoked agent's
//! sessions are terminated within 200 ms of the broker's answer; no password is ever shown.

use std::path::Path;
use std::time::{Duration, Instant, SystemTime};

use agentwrit::AdminSecret;
use agentwrit::operator::AdminClient;
use serde_json::Value;
use sluice_data::PgLogin;
use sluice_data::logins::{PASSWORD_PREFIX, Provisioner};
use sluice_pipeline::nightly::RunOptions;
use sluice_pipeline::outcome::{AgentEnd, FailureKind};
use sluice_pipeline::record::NightRecord;
use sluice_tests::expected_report;
use sluice_tests::night::{
    ADMIN, audit_lines, broker, night_config, pipeline, registered_agent, run,
};
use sluice_tests::pg::{
    LONG_TABLE, PROVISIONER, PROVISIONER_ENV, RETAIL_OUTPUTS, admin, minted_logins, per_run_setup,
    per_run_tenant, sessions_of,
};

/// Held by a test that runs a night: the revocation's latency is measured with no other night
/// of this binary on the same two cores.
static ONE_NIGHT: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// `f` on a thread of its own (the blocking client runs a runtime of its own).
fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    std::thread::spawn(f).join().unwrap()
}

/// Connects as `login` and runs `sql`, returning the first column of the first row as text,
/// or the error's text.
fn query_as(login: &PgLogin, sql: &'static str) -> Result<String, String> {
    let login = login.clone();
    blocking(move || {
        let mut client = login.connect().map_err(|e| format!("{e:#}"))?;
        client
            .query_one(sql, &[])
            .map(|row| row.get::<_, String>(0))
            .map_err(|e| {
                e.as_db_error()
                    .map_or_else(|| e.to_string(), |db| db.message().to_string())
            })
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_minted_login_reads_only_its_tenants_schema_and_dies_at_its_expiry_or_drop() {
    per_run_setup();
    let provisioner = Provisioner::connect(PROVISIONER_ENV).await.unwrap();

    // Valid for 3 s: what a copy taken now is worth once the agent has expired.
    let short = provisioner
        .mint("hospital", SystemTime::now() + Duration::from_secs(3), 4)
        .await
        .unwrap();
    let copy = PgLogin::Minted(short.clone());
    assert_eq!(
        query_as(&copy, "SELECT count(*)::text FROM hospital.visits").unwrap(),
        "12847"
    );
    // The gate out of the way, straight to another tenant's table: the database refuses.
    assert_eq!(
        query_as(&copy, "SELECT count(*)::text FROM bank.transactions").unwrap_err(),
        "permission denied for schema bank"
    );
    // What its sessions create is the group's: the login owns nothing that could outlive it.
    assert_eq!(
        query_as(
            &copy,
            "SELECT current_user::text || ' as ' || session_user::text"
        )
        .unwrap(),
        format!("hospital as {}", short.name())
    );
    tokio::time::sleep(Duration::from_millis(3_500)).await;
    let expired = query_as(&copy, "SELECT 'in'").unwrap_err();
    assert!(
        expired.contains("password authentication failed"),
        "{expired}"
    );
    assert!(!expired.contains(PASSWORD_PREFIX), "{expired}");

    // Dropped with a session open: the session is terminated, then the login is gone.
    let login = provisioner
        .mint("bank", SystemTime::now() + Duration::from_secs(300), 4)
        .await
        .unwrap();
    let minted = PgLogin::Minted(login.clone());
    let (opened, closed) = std::sync::mpsc::channel::<()>();
    let (dropped_tx, dropped) = std::sync::mpsc::channel::<()>();
    let session = {
        let minted = minted.clone();
        std::thread::spawn(move || {
            let mut client = minted.connect().unwrap();
            client.query_one("SELECT 1", &[]).unwrap();
            opened.send(()).unwrap();
            dropped.recv().unwrap();
            client.query_one("SELECT 1", &[]).map(|_| ())
        })
    };
    closed.recv().unwrap();
    assert_eq!(provisioner.drop_login(&login).await.unwrap(), 1);
    dropped_tx.send(()).unwrap();
    let after = session.join().unwrap().unwrap_err().to_string();
    assert!(
        after.contains("terminating connection") || after.contains("closed"),
        "{after}"
    );
    assert!(!minted_logins().contains(&login.name().to_string()));
    let gone = query_as(&minted, "SELECT 'in'").unwrap_err();
    assert!(gone.contains("password authentication failed"), "{gone}");
    provisioner.drop_login(&short).await.unwrap();
}

/// The audit entries of `event`, as (tenant, agent, login) triples.
fn logins_in(entries: &[Value], event: &str) -> Vec<(String, String, String)> {
    entries
        .iter()
        .filter(|e| e["event"] == event)
        .map(|e| {
            (
                e["tenant"].as_str().unwrap().to_string(),
                e["agent_id"].as_str().unwrap().to_string(),
                e["login"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_night_reads_and_publishes_through_logins_minted_per_run_and_leaves_none() {
    per_run_setup();
    let _alone = ONE_NIGHT.lock().await;
    let (_b, creds) = broker().await;
    let dir = tempfile::tempdir().unwrap();
    let tenants = vec![
        per_run_tenant("hospital", "hospital", "visits"),
        per_run_tenant("bank", "bank", "transactions"),
        per_run_tenant("retail", "retail", "orders"),
    ];
    let config = night_config(dir.path(), tenants);
    let audit = config.audit.clone();
    let report = run(config, &creds, 2).await;
    for t in &report.tenants {
        assert!(t.ok(), "{}: {:?}", t.id, t.error);
        assert_eq!(t.agent_end, Some(AgentEnd::Released));
        let bytes =
            std::fs::read_to_string(dir.path().join(format!("reports/{}/latest.json", t.id)))
                .unwrap();
        assert_eq!(bytes, expected_report(&t.id), "{}", t.id);
    }

    // Each tenant's login: created and dropped under its own agent, in its own group role.
    let entries = audit_lines(audit.as_local().unwrap());
    let created = logins_in(&entries, "login_created");
    let dropped = logins_in(&entries, "login_dropped");
    assert_eq!(created.len(), 3, "{created:?}");
    for t in &report.tenants {
        let agent = t.agent_id.clone().unwrap();
        let mine: Vec<_> = created
            .iter()
            .filter(|(tenant, ..)| *tenant == t.id)
            .collect();
        assert_eq!(mine.len(), 1, "{mine:?}");
        let (_, agent_of_login, login) = mine[0];
        assert_eq!(*agent_of_login, agent);
        assert!(login.starts_with("sluice_run_"), "{login}");
        assert!(
            dropped.contains(&(t.id.clone(), agent.clone(), login.clone())),
            "{login} was not dropped under {agent}: {dropped:?}"
        );
        let role = entries
            .iter()
            .find(|e| e["event"] == "login_created" && e["login"] == login.as_str())
            .unwrap()["role"]
            .clone();
        assert_eq!(role, t.id.as_str());
        assert!(!minted_logins().contains(login), "{login} outlived its run");
    }
    // The retailer's table was published through its login, owned by its group.
    let owner = blocking(|| {
        admin()
            .query_one(
                &format!(
                    "SELECT tableowner::text, (SELECT count(*) FROM {RETAIL_OUTPUTS}.reports_daily) \
                     FROM pg_tables WHERE schemaname = '{RETAIL_OUTPUTS}' \
                     AND tablename = 'reports_daily'"
                ),
                &[],
            )
            .map(|r| (r.get::<_, String>(0), r.get::<_, i64>(1)))
            .unwrap()
    });
    assert_eq!(owner.0, "retail");
    assert!(owner.1 > 0, "{owner:?}");

    // No password anywhere the night shows: its JSON, its audit, its page.
    let json = serde_json::to_string(&report).unwrap();
    let page = sluice_page::render(&NightRecord::of_report(&report, None, 0, &audit), &[]);
    let audit_text = std::fs::read_to_string(audit.as_local().unwrap()).unwrap();
    for (what, text) in [("--json", &json), ("page", &page), ("audit", &audit_text)] {
        assert!(!text.contains(PASSWORD_PREFIX), "a password in the {what}");
        assert!(text.contains("sluice_run_") || what == "--json" || what == "page");
    }
}

/// Waits until `tenant`'s login has been minted (the audit says so) and has a session open;
/// returns its name.
async fn open_session(audit: &Path, tenant: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        // The night creates its audit file when it writes the first entry.
        let entries = if audit.exists() {
            audit_lines(audit)
        } else {
            Vec::new()
        };
        let login = entries
            .into_iter()
            .find(|e| e["event"] == "login_created" && e["tenant"] == tenant)
            .map(|e| e["login"].as_str().unwrap().to_string());
        if let Some(login) = login {
            let name = login.clone();
            if blocking(move || sessions_of(&mut admin(), &name)) > 0 {
                return login;
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let seen: Vec<String> = audit_lines(audit)
        .iter()
        .filter(|e| e["event"] != "gate")
        .map(|e| e.to_string())
        .collect();
    panic!("{tenant}'s login never opened a session; the audit has: {seen:?}");
}

/// A night of the hospital reading its own long table one row every 5 ms until something
/// stops it, its session open all the while (the reader waits two batches ahead).
fn reading_forever(dir: &Path) -> sluice_pipeline::config::PipelineConfig {
    let mut reader = per_run_tenant("hospital", "hostile", LONG_TABLE);
    reader.params = vec![("attack".into(), "read_forever".into())];
    night_config(dir, vec![reader])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_agents_sessions_are_terminated_within_200_ms_of_the_brokers_answer() {
    per_run_setup();
    let _alone = ONE_NIGHT.lock().await;
    let (b, creds) = broker().await;
    let dir = tempfile::tempdir().unwrap();
    let config = reading_forever(dir.path());
    let audit = config.audit.as_local().unwrap().to_path_buf();
    let night = tokio::spawn(async move {
        pipeline(config, &creds, 1, agentwrit::DEFAULT_TIMEOUT)
            .run(RunOptions::default())
            .await
    });
    let admin_api = AdminClient::authenticate(&b.url(), &AdminSecret::new(ADMIN))
        .await
        .unwrap();
    let agent = registered_agent(&admin_api, "etl-hospital-").await;
    let login = open_session(&audit, "hospital").await;

    // Polled on a connection of its own, opened before the revoke.
    let (revoked_tx, revoked_rx) = std::sync::mpsc::channel::<Instant>();
    let watcher = {
        let login = login.clone();
        std::thread::spawn(move || {
            let mut client = admin();
            let answered = revoked_rx.recv().unwrap();
            loop {
                if sessions_of(&mut client, &login) == 0 {
                    return answered.elapsed();
                }
                assert!(
                    answered.elapsed() < Duration::from_secs(10),
                    "never terminated"
                );
                std::thread::sleep(Duration::from_millis(2));
            }
        })
    };
    admin_api.revoke("agent", &agent).await.unwrap();
    revoked_tx.send(Instant::now()).unwrap();
    let gone_after = blocking(move || watcher.join().unwrap());
    eprintln!(
        "revocation: {login}'s sessions gone {} ms after the broker answered",
        gone_after.as_millis()
    );
    assert!(
        gone_after <= Duration::from_millis(200),
        "{login}'s sessions outlived the revocation by {} ms",
        gone_after.as_millis()
    );

    let report = night.await.unwrap();
    let hospital = &report.tenants[0];
    assert_eq!(hospital.agent_end, Some(AgentEnd::Revoked));
    assert_eq!(hospital.error.as_ref().unwrap().kind, FailureKind::Agent);
    let entries = audit_lines(&audit);
    let cut = entries
        .iter()
        .find(|e| e["event"] == "login_cut" && e["login"] == login.as_str())
        .expect("the login was cut");
    assert_eq!(cut["agent_id"], agent.as_str());
    // How many it terminated depends on whether the guest, stopped by the gate a moment
    // earlier, had already closed its dataset: the session being gone is what the watcher saw.
    assert!(cut["sessions"].as_u64().is_some(), "{cut}");
    assert!(cut["detail"].as_str().unwrap().contains("revoked"), "{cut}");
    assert!(
        logins_in(&entries, "login_dropped")
            .iter()
            .any(|(_, a, l)| *a == agent && *l == login)
    );
    assert!(!minted_logins().contains(&login));
}

/// `login`'s `VALID UNTIL` as the server has it, in seconds since the epoch.
fn valid_until(login: &str) -> Option<i64> {
    let login = login.to_string();
    blocking(move || {
        admin()
            .query_opt(
                "SELECT extract(epoch FROM rolvaliduntil)::int8 FROM pg_roles WHERE rolname = $1",
                &[&login],
            )
            .unwrap()
            .map(|r| r.get(0))
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_renewed_agents_login_is_renewed_with_it() {
    per_run_setup();
    let _alone = ONE_NIGHT.lock().await;
    let (_b, creds) = broker().await;
    let dir = tempfile::tempdir().unwrap();
    let mut config = reading_forever(dir.path());
    // The keeper renews an agent with less than a third of its lifetime left: 4 s in here,
    // and the run stops at 8 s, after the login's first expiry.
    config.agent_ttl = Duration::from_secs(6);
    config.tenants[0].budget.wall_time = Duration::from_secs(8);
    let audit = config.audit.as_local().unwrap().to_path_buf();
    let night = tokio::spawn(async move {
        pipeline(config, &creds, 1, agentwrit::DEFAULT_TIMEOUT)
            .run(RunOptions::default())
            .await
    });
    let login = open_session(&audit, "hospital").await;
    let first = valid_until(&login).expect("the login exists");
    let renewed = loop {
        let now = valid_until(&login).expect("the login lives while its agent is renewed");
        if now > first {
            break now;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(renewed - first >= 3, "moved by {} s only", renewed - first);
    // Past the first expiry, its session is still reading.
    let past_first = Duration::from_secs(
        u64::try_from(first + 1 - SystemTime::UNIX_EPOCH.elapsed().unwrap().as_secs() as i64)
            .unwrap_or(0),
    );
    tokio::time::sleep(past_first).await;
    let name = login.clone();
    assert!(blocking(move || sessions_of(&mut admin(), &name)) > 0);

    let report = night.await.unwrap();
    assert!(
        report.tenants[0]
            .error
            .as_ref()
            .unwrap()
            .message
            .contains("wall-time"),
        "{:?}",
        report.tenants[0].error
    );
    let entries = audit_lines(&audit);
    let renewals: Vec<_> = entries
        .iter()
        .filter(|e| e["event"] == "login_renewed" && e["login"] == login.as_str())
        .collect();
    assert!(!renewals.is_empty(), "no login_renewed entry");
    let agent_renewals = entries
        .iter()
        .filter(|e| e["event"] == "agent_renewed")
        .count();
    assert_eq!(renewals.len(), agent_renewals, "{renewals:?}");
    assert!(
        logins_in(&entries, "login_dropped")
            .iter()
            .any(|(_, _, l)| *l == login)
    );
    assert!(!minted_logins().contains(&login));
}

/// `tenant` reading through logins minted in group role `role` instead of its own.
fn in_group(
    mut tenant: sluice_pipeline::config::TenantConfig,
    role: &str,
) -> sluice_pipeline::config::TenantConfig {
    use sluice_pipeline::config::DatasetLocation;
    for dataset in &mut tenant.datasets {
        if let DatasetLocation::Postgres(table) = &mut dataset.location {
            table.login = PgLogin::PerRun {
                provisioner_env: PROVISIONER_ENV.into(),
                role: role.into(),
            };
        }
    }
    tenant
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_role_that_is_missing_or_can_log_in_fails_only_its_tenant() {
    per_run_setup();
    let _alone = ONE_NIGHT.lock().await;
    let (_b, creds) = broker().await;
    let dir = tempfile::tempdir().unwrap();
    let tenants = vec![
        in_group(per_run_tenant("hospital", "hospital", "visits"), "ghost"),
        // The provisioner itself: a role that can log in and create roles.
        in_group(per_run_tenant("bank", "bank", "transactions"), PROVISIONER),
        per_run_tenant("retail", "retail", "orders"),
    ];
    let config = night_config(dir.path(), tenants);
    let audit = config.audit.clone();
    let report = run(config, &creds, 2).await;
    let error = |i: usize| {
        let t = &report.tenants[i];
        assert_eq!(t.agent_end, Some(AgentEnd::Released), "{}", t.id);
        let e = t.error.as_ref().unwrap();
        assert_eq!(e.kind, FailureKind::Agent, "{}", t.id);
        e.message.clone()
    };
    assert!(
        error(0).contains("group role 'ghost' does not exist"),
        "{}",
        error(0)
    );
    assert!(
        error(1).contains(&format!("group role '{PROVISIONER}' can log in")),
        "{}",
        error(1)
    );
    let retail = &report.tenants[2];
    assert!(retail.ok(), "{:?}", retail.error);
    let entries = audit_lines(audit.as_local().unwrap());
    let created = logins_in(&entries, "login_created");
    assert_eq!(created.len(), 1, "{created:?}");
    assert_eq!(created[0].0, "retail");
}

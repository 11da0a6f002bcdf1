//! `sluice run`, `verify-isolation` and `audit verify` as a user runs them: the real binary, the
//! shipped example configuration pointed at seeded data, the embedded broker.

use std::collections::HashSet;
use std::process::{Command, Output};

use sluice_tests::{demo_data, example_config, expected_report, root};

fn sluice(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args(args)
        // The embedded broker is the point here, whatever the developer's shell exports.
        .env_remove("AGENTWRIT_BROKER_URL")
        .env_remove("AGENTWRIT_CLIENT_ID")
        .env_remove("AGENTWRIT_CLIENT_SECRET")
        .output()
        .expect("running sluice")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn the_example_pipeline_prints_the_seeds_run_and_exits_zero() {
    let dir = tempfile::tempdir().unwrap();
    let config = example_config(dir.path(), |t| t);
    let out = sluice(&["run", config.to_str().unwrap()]);
    let stdout = text(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}\n{}",
        text(&out.stderr)
    );
    for want in [
        "── Metro Health System (hospital) ──",
        "{'patient_visits': '12,847', 'avg_stay': '3.2 days', 'readmit_rate': '4.1%'}",
        "── First National Bank (bank) ──",
        "{'transactions': '2.4M', 'avg_balance': '$8,420', 'fraud_rate': '0.02%'}",
        "── ShopWave Corp (retail) ──",
        "{'orders': '847K', 'avg_order': '$67.30', 'return_rate': '8.4%'}",
        "  [BLOCKED] hospital agent cannot read bank data\n            Required: ['read:analytics:bank']\n            Held:     ['read:analytics:hospital', 'write:reports:hospital']",
        "  [BLOCKED] hospital agent cannot write retail reports\n            Required: ['write:reports:retail']",
        "  [ALLOWED] hospital agent can read its own data ✓",
        "Cross-tenant isolation verified.",
        "Pipeline complete. All tenants processed with isolated scopes.",
    ] {
        assert!(stdout.contains(want), "missing\n{want}\nin\n{stdout}");
    }
    let agents: HashSet<&str> = stdout
        .lines()
        .filter_map(|l| l.trim().strip_prefix("Agent:    "))
        .collect();
    assert_eq!(agents.len(), 3, "three distinct SPIFFE ids: {agents:?}");
    assert!(
        agents
            .iter()
            .all(|a| a.starts_with("spiffe://agentwrit.local/agent/nightly-pipeline/etl-"))
    );
    assert_eq!(stdout.matches("[RELEASE]  Agent released for").count(), 3);
    assert_eq!(stdout.matches("[BLOCKED]").count(), 2);
    for tenant in ["hospital", "bank", "retail"] {
        let report = dir.path().join(format!("reports/{tenant}/latest.json"));
        assert_eq!(
            std::fs::read_to_string(report).unwrap(),
            expected_report(tenant)
        );
    }

    // The audit trail it wrote verifies, and catches tampering.
    let audit = dir.path().join("audit.jsonl");
    let audit_s = audit.to_str().unwrap();
    let verify = sluice(&["audit", "verify", audit_s]);
    assert_eq!(verify.status.code(), Some(0), "{}", text(&verify.stdout));
    let original = std::fs::read_to_string(&audit).unwrap();
    let lines: Vec<&str> = original.lines().collect();
    assert!(lines.len() > 10);

    let edited = original.replacen("\"decision\":\"BLOCKED\"", "\"decision\":\"BLOCKEd\"", 1);
    let first_blocked = lines
        .iter()
        .position(|l| l.contains("\"decision\":\"BLOCKED\""))
        .unwrap()
        + 1;
    std::fs::write(&audit, &edited).unwrap();
    let out = text(&sluice(&["audit", "verify", audit_s]).stdout);
    assert_eq!(
        out,
        format!(
            "BROKEN at entry {first_blocked} of {audit_s}: its hash does not match its content: the entry was edited\n"
        )
    );

    let mut deleted = lines.clone();
    deleted.remove(4);
    std::fs::write(&audit, deleted.join("\n") + "\n").unwrap();
    let out = text(&sluice(&["audit", "verify", audit_s]).stdout);
    assert!(
        out.starts_with(&format!(
            "BROKEN at entry 5 of {audit_s}: sequence number 6 where 5 was expected"
        )),
        "{out}"
    );

    let head = stdout
        .lines()
        .find_map(|l| l.strip_prefix("Audit trail: "))
        .and_then(|l| l.split(", head ").nth(1))
        .and_then(|l| l.split_whitespace().next())
        .expect("the run prints the audit head");
    std::fs::write(&audit, lines[..lines.len() - 2].join("\n") + "\n").unwrap();
    assert_eq!(
        sluice(&["audit", "verify", audit_s]).status.code(),
        Some(0),
        "cut at a line boundary, the chain alone looks intact"
    );
    let cut = sluice(&["audit", "verify", audit_s, "--head", head]);
    assert_eq!(cut.status.code(), Some(1));
    assert!(
        text(&cut.stdout).contains("without reaching the expected head"),
        "{}",
        text(&cut.stdout)
    );
    std::fs::write(&audit, &original).unwrap();
    assert_eq!(
        sluice(&["audit", "verify", audit_s, "--head", head])
            .status
            .code(),
        Some(0)
    );

    let mut swapped = lines.clone();
    swapped.swap(6, 7);
    std::fs::write(&audit, swapped.join("\n") + "\n").unwrap();
    let verdict = sluice(&["audit", "verify", audit_s]);
    assert_eq!(verdict.status.code(), Some(1));
    assert!(text(&verdict.stdout).starts_with(&format!("BROKEN at entry 7 of {audit_s}")));
}

#[test]
fn json_summary_is_machine_readable() {
    let dir = tempfile::tempdir().unwrap();
    let config = example_config(dir.path(), |t| t);
    let out = sluice(&[
        "run",
        config.to_str().unwrap(),
        "--json",
        "--concurrency",
        "1",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(summary["failed"], 0);
    assert_eq!(summary["tenants"].as_array().unwrap().len(), 3);
    assert_eq!(summary["tenants"][1]["figures"][0]["value"], "2.4M");
    assert_eq!(summary["tenants"][1]["rows_read"], 2_400_000);
    assert_eq!(summary["tenants"][1]["agent_end"], "released");
    assert_eq!(summary["isolation"]["violated"], false);
}

#[test]
fn a_tenant_granted_every_tenants_data_is_an_isolation_violation_exit_3() {
    let dir = tempfile::tempdir().unwrap();
    let config = example_config(dir.path(), |t| {
        t.replacen(
            "read_scope = \"read:analytics:hospital\"",
            "read_scope = \"read:analytics:*\"",
            1,
        )
    });
    let out = sluice(&["verify-isolation", config.to_str().unwrap()]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(3), "{stdout}");
    assert!(
        stdout
            .contains("[ALLOWED] VIOLATION: hospital agent cannot read bank data is NOT enforced"),
        "{stdout}"
    );
    assert!(stdout.contains("CROSS-TENANT ISOLATION VIOLATED"));
}

#[test]
fn a_bad_configuration_is_exit_2_naming_file_line_and_key() {
    let dir = tempfile::tempdir().unwrap();
    let config = example_config(dir.path(), |t| {
        t.replacen("agent_ttl = 300", "agent_ttl = 300\nagent_tll = 5", 1)
    });
    let out = sluice(&["run", config.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = text(&out.stderr);
    assert!(
        stderr.starts_with(&format!(
            "sluice: {}:12: unknown field `agent_tll`",
            config.display()
        )),
        "{stderr}"
    );
}

#[test]
fn digest_prints_what_the_configuration_pins() {
    let probe = root().join("target/guests/probe.wasm");
    let out = sluice(&["digest", probe.to_str().unwrap()]);
    let line = text(&out.stdout);
    let example = std::fs::read_to_string(root().join("examples/nightly.toml")).unwrap();
    let digest = line.split_whitespace().next().unwrap();
    assert!(
        example.contains(&format!("sha256 = \"{digest}\"")),
        "examples/nightly.toml pins a stale probe digest: run `cargo xtask pin`"
    );
}

/// Starts `sluice run` on a tenant that sleeps 4 s before its report, waits until its agent
/// exists, sends `signals` one right after the other, and returns the output and the trail.
fn signalled_run(signals: &[&str]) -> (Output, String, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let probe = root().join("target/guests/probe.wasm");
    let digest = text(&sluice(&["digest", probe.to_str().unwrap()]).stdout);
    let digest = digest.split_whitespace().next().unwrap();
    let config = dir.path().join("slow.toml");
    std::fs::write(
        &config,
        format!(
            r#"reports = "reports"
audit = "audit.jsonl"

[[tenants]]
id = "hospital"
name = "Metro Health System"
data_type = "patient analytics"
plugin = "{probe}"
sha256 = "{digest}"
read_scope = "read:analytics:hospital"
write_scope = "write:reports:hospital"
params = {{ mode = "slow-report", sleep-ms = "4000" }}

[[tenants.datasets]]
name = "visits"
path = "{data}/hospital/analytics.db"
resource = "analytics"
"#,
            probe = probe.display(),
            data = demo_data().display()
        ),
    )
    .unwrap();
    let page = dir.path().join("night.html");
    let child = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args([
            "run",
            config.to_str().unwrap(),
            "--html",
            page.to_str().unwrap(),
        ])
        .env_remove("AGENTWRIT_BROKER_URL")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let audit = dir.path().join("audit.jsonl");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while !std::fs::read_to_string(&audit)
        .unwrap_or_default()
        .contains("agent_created")
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the agent was never created"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    for signal in signals {
        let killed = Command::new("kill")
            .args([*signal, &child.id().to_string()])
            .status()
            .unwrap();
        assert!(killed.success());
    }
    let out = child.wait_with_output().unwrap();
    let trail = std::fs::read_to_string(&audit).unwrap();
    (out, trail, dir)
}

#[test]
fn ctrl_c_stops_the_run_and_still_releases_the_agent() {
    let (out, trail, dir) = signalled_run(&["-INT"]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(
        text(&out.stderr).contains(
            "interrupted (Ctrl-C): starting no new tenant, stopping running guests, releasing every agent"
        ),
        "{}",
        text(&out.stderr)
    );
    // The guest was asleep for 4 s: it was woken and stopped, not waited for.
    assert!(
        stdout.contains("[FAILED]   interrupted: the run was stopped before it finished"),
        "{stdout}"
    );
    assert!(
        stdout.contains("[RELEASE]  Agent released for hospital"),
        "{stdout}"
    );
    assert!(stdout.contains("Pipeline INTERRUPTED: 1 of 1 tenants did not complete (hospital)"));
    assert!(
        stdout.contains("Audit trail: "),
        "the audit head is printed: {stdout}"
    );
    assert!(!dir.path().join("reports/hospital/latest.json").exists());
    assert!(trail.contains("\"event\":\"agent_released\""));
    // The night's page is written all the same, and says what happened.
    let page = std::fs::read_to_string(dir.path().join("night.html")).unwrap();
    assert!(
        page.contains("<span class=\"verdict interrupted\" id=\"verdict\">interrupted</span>"),
        "{page}"
    );
    assert!(
        page.contains("interrupted: the run was stopped before it finished"),
        "{page}"
    );
}

#[test]
fn sigterm_stops_the_run_as_ctrl_c_does() {
    let (out, trail, _dir) = signalled_run(&["-TERM"]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(
        text(&out.stderr).contains("terminated (SIGTERM): starting no new tenant"),
        "{}",
        text(&out.stderr)
    );
    assert!(
        stdout.contains("[RELEASE]  Agent released for hospital"),
        "{stdout}"
    );
    assert!(trail.contains("\"event\":\"agent_released\""));
}

#[test]
fn a_second_signal_releases_what_it_can_and_exits_at_once() {
    // Two different signals are never merged into one, however close together.
    let (out, trail, _dir) = signalled_run(&["-TERM", "-INT"]);
    let stderr = text(&out.stderr);
    // The first signal stops the guest within 10 ms, so the night's own release can win the race
    // against the second signal's (exit 1): either way the agent is released and audited.
    match out.status.code() {
        Some(130) => assert!(
            stderr.contains("sluice: exiting now: released 1 of 1 live agent(s)")
                || stderr.contains("sluice: exiting now: released 0 of 0 live agent(s)"),
            "{stderr}"
        ),
        Some(1) => assert!(text(&out.stdout).contains("Pipeline INTERRUPTED")),
        other => panic!("exit {other:?}: {stderr}"),
    }
    assert!(trail.contains("\"event\":\"agent_released\""), "{trail}");
}

#[test]
fn an_unreachable_external_broker_stops_the_run_before_any_tenant() {
    let dir = tempfile::tempdir().unwrap();
    let config = example_config(dir.path(), |t| t);
    let out = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args(["run", config.to_str().unwrap()])
        .env("AGENTWRIT_BROKER_URL", "http://127.0.0.1:1")
        .env("AGENTWRIT_CLIENT_ID", "sa-000000000000")
        .env("AGENTWRIT_CLIENT_SECRET", "not-a-real-secret")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = text(&out.stderr);
    assert!(
        stderr.starts_with(
            "sluice: cannot authenticate the app at AgentWrit broker at http://127.0.0.1:1"
        ),
        "{stderr}"
    );
    assert!(stderr.contains("broker unreachable at http://127.0.0.1:1: connection failed"));
    assert!(
        !stderr.contains("not-a-real-secret"),
        "the secret never appears in errors"
    );
    assert!(!dir.path().join("reports").exists());
}

#[test]
fn many_tenants_on_a_terminal_get_a_progress_line_and_a_compact_list() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let retail = root().join("target/guests/retail.wasm");
    let digest = text(&sluice(&["digest", retail.to_str().unwrap()]).stdout);
    let digest = digest.split_whitespace().next().unwrap().to_string();
    let mut config = String::from("reports = \"reports\"\naudit = \"audit.jsonl\"\n");
    for i in 0..21 {
        let id = format!("shop{i:02}");
        sluice_demo::seed_orders(&data, &id, 100).unwrap();
        config.push_str(&format!(
            "\n[[tenants]]\nid = \"{id}\"\nname = \"Shop {i}\"\ndata_type = \"sales analytics\"\n\
             plugin = \"{}\"\nsha256 = \"{digest}\"\nread_scope = \"read:analytics:{id}\"\n\
             write_scope = \"write:reports:{id}\"\n\n[[tenants.datasets]]\nname = \"orders\"\n\
             path = \"{}/{id}/analytics.db\"\nresource = \"analytics\"\n",
            retail.display(),
            data.display()
        ));
    }
    let path = dir.path().join("shops.toml");
    std::fs::write(&path, config).unwrap();
    // `script` gives the run a terminal, as a user's shell would.
    let command = format!("{} run {}", env!("CARGO_BIN_EXE_sluice"), path.display());
    let out = Command::new("script")
        .args(["-qec", &command, "/dev/null"])
        .env_remove("AGENTWRIT_BROKER_URL")
        .output()
        .expect("running script(1)");
    let shown = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{shown}");
    assert!(shown.contains("[21/21] tenants done"), "{shown}");
    assert!(
        shown.contains("  ok     shop00 (100 rows, report "),
        "{shown}"
    );
    assert!(
        !shown.contains("── Shop 0 (shop00) ──"),
        "no per-tenant blocks under a progress line"
    );
    assert!(shown.contains("Isolation not checked: the configuration has no [isolation] probe"));
    assert!(shown.contains("Pipeline complete."));
}

#[test]
fn audit_show_into_a_pipe_closed_early_stops_quietly() {
    // 2,000 entries print ~200 KiB, more than a pipe holds: the writes after `head` has gone
    // fail, as they would under `sluice audit show FILE | head`.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.jsonl");
    let log = sluice_audit::AuditLog::open(&path).unwrap();
    log.append_all((0..2_000).map(|i| serde_json::json!({"event": "test", "n": i})));
    log.flush().unwrap();
    drop(log);
    let mut child = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args(["audit", "show", path.to_str().unwrap()])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = [0u8; 64];
    std::io::Read::read_exact(child.stdout.as_mut().unwrap(), &mut first).unwrap();
    assert!(first.starts_with(b"#1 "), "{}", text(&first));
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(text(&out.stderr), "");
}

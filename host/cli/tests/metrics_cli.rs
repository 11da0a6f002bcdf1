//! `sluice run --pushgateway`: a night's metrics pushed to a real Prometheus Pushgateway (the
//! distribution's `prometheus-pushgateway`, which `cargo xtask test` installs) and read back from it.

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use sluice_tests::example_config;

struct Pushgateway {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Drop for Pushgateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn pushgateway() -> Pushgateway {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dir = tempfile::tempdir().unwrap();
    let child = Command::new("prometheus-pushgateway")
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .current_dir(dir.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect(
            "prometheus-pushgateway is not installed: `apt-get install prometheus-pushgateway` \
             (`cargo xtask test` does)",
        );
    let started = Instant::now();
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the Pushgateway did not start"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    Pushgateway {
        child,
        port,
        _dir: dir,
    }
}

/// `GET /metrics` from the Pushgateway, as Prometheus would scrape it (HTTP/1.0: no chunks).
fn scrape(port: u16) -> String {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(stream, "GET /metrics HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    response
}

/// The value of the sample of `name` whose labels include every one of `labels`.
fn sample(metrics: &str, name: &str, labels: &[&str]) -> Option<f64> {
    metrics.lines().find_map(|line| {
        let rest = line.strip_prefix(name)?;
        let (labels_text, value) = rest.strip_prefix('{')?.split_once("} ")?;
        labels
            .iter()
            .all(|l| labels_text.split(',').any(|have| have == *l))
            .then(|| value.trim().parse().ok())?
    })
}

#[test]
fn a_shards_metrics_reach_the_pushgateway_grouped_by_job_and_shard() {
    let gateway = pushgateway();
    let dir = tempfile::tempdir().unwrap();
    let config = example_config(dir.path(), |t| t);
    let out = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args([
            "run",
            config.to_str().unwrap(),
            "--shard",
            "1",
            "--shards",
            "2",
            "--run-id",
            "metrics-night",
            "--pushgateway",
            &format!("http://127.0.0.1:{}", gateway.port),
        ])
        .env_remove("AGENTWRIT_BROKER_URL")
        .env_remove("AGENTWRIT_CLIENT_ID")
        .env_remove("AGENTWRIT_CLIENT_SECRET")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(!stderr.contains("metrics not pushed"), "{stderr}");

    let metrics = scrape(gateway.port);
    let group = ["job=\"nightly-pipeline\"", "shard=\"1\""];
    fn with<'a>(group: &[&'a str], extra: &'a str) -> Vec<&'a str> {
        let mut labels = group.to_vec();
        labels.push(extra);
        labels
    }
    // The tenants shard 1 of 2 owns, by the same hashing the run used.
    let mine: Vec<&str> = ["hospital", "bank", "retail"]
        .into_iter()
        .filter(|t| sluice_pipeline::shards::owner(t, 2) == 1)
        .collect();
    assert_eq!(
        sample(&metrics, "sluice_tenants", &with(&group, "outcome=\"ok\"")),
        Some(mine.len() as f64),
        "{metrics}"
    );
    assert_eq!(
        sample(
            &metrics,
            "sluice_tenants",
            &with(&group, "outcome=\"failed\"")
        ),
        Some(0.0)
    );
    let rows: f64 = mine
        .iter()
        .map(|t| match *t {
            "hospital" => 12_847.0,
            "bank" => 2_400_000.0,
            _ => 847_000.0,
        })
        .sum();
    assert_eq!(
        sample(&metrics, "sluice_rows_read", &group),
        Some(rows),
        "{metrics}"
    );
    assert_eq!(
        sample(
            &metrics,
            "sluice_gate_decisions",
            &with(&group, "decision=\"denied\"")
        ),
        Some(0.0)
    );
    assert!(
        sample(
            &metrics,
            "sluice_gate_decisions",
            &with(&group, "decision=\"allowed\"")
        )
        .unwrap()
            > 0.0
    );
    for tenant in &mine {
        let label = format!("tenant=\"{tenant}\"");
        assert!(
            sample(
                &metrics,
                "sluice_tenant_duration_seconds",
                &with(&group, &label)
            )
            .unwrap()
                > 0.0
        );
        assert!(
            sample(
                &metrics,
                "sluice_agent_create_seconds",
                &with(&group, &label)
            )
            .unwrap()
                > 0.0
        );
    }
    assert!(sample(&metrics, "sluice_night_duration_seconds", &group).unwrap() > 0.0);
}

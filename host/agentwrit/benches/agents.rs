//! Agents created and released per second, sequentially, against one in-process dev broker:
//! this crate vs the official Python SDK (agentwrit==0.3.0), in the same run.
//!
//! Run: `cargo bench -p agentwrit --bench agents` (the Python side needs the venv that
//! `cargo xtask test` creates, or `SLUICE_VENV` pointing at one with agentwrit installed).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Instant;

use agentwrit::{AdminSecret, AgentRequest, AgentWritApp, Scope};
use sluice_dev_broker::{BrokerConfig, start_with_app};

const AGENTS: u32 = 300;

const PYTHON: &str = r#"
import sys, time
from agentwrit import AgentWritApp
url, cid, secret, n = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
app = AgentWritApp(url, cid, secret)
app.health()
start = time.perf_counter()
for i in range(n):
    agent = app.create_agent(orch_id="bench", task_id=f"py-{i}", requested_scope=["read:analytics:bank"])
    agent.release()
print(time.perf_counter() - start)
"#;

fn python() -> Option<PathBuf> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let venv = std::env::var_os("SLUICE_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target").join("venv"));
    let python = venv.join("bin").join("python");
    python.exists().then_some(python)
}

/// `POST /v1/token/validate` over HTTP, 60 agents: each one's first validation (the broker
/// verifies the Ed25519 signature) and the median of its next five (the broker has its claims;
/// it checks only expiry and revocation), paired per agent.
async fn validate(app: &AgentWritApp, scope: &Scope) {
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let (mut first, mut repeat, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
    for i in 0..60 {
        let mut agent = app
            .create_agent(AgentRequest::new(
                "bench",
                format!("v-{i}"),
                [scope.clone()],
            ))
            .await
            .unwrap();
        let token = agent.access_token().clone();
        let start = Instant::now();
        assert!(app.validate(&token).await.unwrap().is_valid());
        let once = start.elapsed().as_secs_f64() * 1e3;
        let mut again = Vec::new();
        for _ in 0..5 {
            let start = Instant::now();
            assert!(app.validate(&token).await.unwrap().is_valid());
            again.push(start.elapsed().as_secs_f64() * 1e3);
        }
        let again = median(&mut again);
        first.push(once);
        repeat.push(again);
        ratios.push(again / once);
        agent.release().await.unwrap();
    }
    println!("## Validate, over HTTP, 60 agents");
    println!(
        "first validation of a token: median {:.3} ms; repeats: median {:.3} ms; repeat/first, \
         median of 60 pairs: {:.2}",
        median(&mut first),
        median(&mut repeat),
        median(&mut ratios)
    );
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let addr: SocketAddr = "127.0.0.1:0".parse().unwrap();
    let mut config = BrokerConfig::in_memory(AdminSecret::new("bench-admin"));
    // Two apps authenticate once each; rate limits stay on as in production.
    config.rate_limits = true;
    let ceiling = vec!["read:analytics:*".to_string()];
    let (broker, rust_app) = start_with_app(config, addr, "bench-rust", &ceiling)
        .await
        .unwrap();
    let py_app = sluice_dev_broker::ensure_app(
        &broker.url(),
        &AdminSecret::new("bench-admin"),
        None,
        "bench-python",
        &ceiling,
    )
    .await
    .unwrap();

    let app = AgentWritApp::new(
        &broker.url(),
        &rust_app.client_id,
        rust_app.client_secret.clone(),
    )
    .unwrap();
    app.health().await.unwrap();
    // Warm the app session and the connection pool.
    let scope = Scope::parse("read:analytics:bank").unwrap();
    app.create_agent(AgentRequest::new("bench", "warm", [scope.clone()]))
        .await
        .unwrap()
        .release()
        .await
        .unwrap();
    let start = Instant::now();
    for _ in 0..AGENTS {
        app.health().await.unwrap();
    }
    let health = start.elapsed().as_secs_f64();
    let start = Instant::now();
    for i in 0..AGENTS {
        let mut agent = app
            .create_agent(AgentRequest::new(
                "bench",
                format!("rs-{i}"),
                [scope.clone()],
            ))
            .await
            .unwrap();
        agent.release().await.unwrap();
    }
    let rust = start.elapsed().as_secs_f64();
    validate(&app, &scope).await;
    println!("## Agents created + released, sequential, {AGENTS} each, same dev broker");
    println!(
        "rust client: {:.3} s => {:.0} agents/s",
        rust,
        f64::from(AGENTS) / rust
    );
    println!(
        "(one round trip, GET /v1/health: {:.0} µs; an agent takes 5 requests)",
        health / f64::from(AGENTS) * 1e6
    );

    let Some(python) = python() else {
        println!("python SDK: skipped (no venv with agentwrit; run `cargo xtask test` first)");
        return;
    };
    let script = std::env::temp_dir().join("sluice-agents-bench.py");
    std::fs::write(&script, PYTHON).unwrap();
    let url = broker.url();
    let secret = py_app.client_secret.secret().to_string();
    let output = tokio::process::Command::new(python)
        .arg(&script)
        .args([
            url.as_str(),
            py_app.client_id.as_str(),
            secret.as_str(),
            &AGENTS.to_string(),
        ])
        .output()
        .await
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let py: f64 = String::from_utf8_lossy(&output.stdout)
        .trim()
        .parse()
        .unwrap();
    println!(
        "python SDK:  {:.3} s => {:.0} agents/s",
        py,
        f64::from(AGENTS) / py
    );
    println!("rust client is {:.1}x the Python SDK's rate", py / rust);
}

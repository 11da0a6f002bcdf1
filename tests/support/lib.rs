//! Helpers shared by Sluice's cross-crate tests: built guests, seeded demo data, temp dirs.

pub use sluice_data::FileFormat;

pub mod bench;
pub mod big_night;
pub mod chromium;
pub mod counting_proxy;
pub mod hostile_files;
pub mod oci;
pub mod pg;
pub mod s3;

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use sluice_data::SqliteSource;
use sluice_demo::{SEED_SCALE, seed_demo};
use sluice_pipeline::config::{
    BrokerSetting, DatasetConfig, DatasetLocation, IsolationConfig, Language, OutputStore,
    PipelineConfig, PluginSource, PluginsConfig, TenantConfig, default_ceiling,
};
use sluice_pipeline::plugins::file_digest;
use sluice_sandbox::{
    Budget, Interrupt, RunOutcome, RunRequest, Sandbox, SandboxOptions, TenantShare, Transform,
    Writ,
};

/// The workspace root.
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default()
}

/// `target/guests/<name>.wasm`, which `cargo xtask guests` builds.
pub fn guest(name: &str) -> PathBuf {
    let path = root()
        .join("target")
        .join("guests")
        .join(format!("{name}.wasm"));
    assert!(
        path.is_file(),
        "{} is missing: run `cargo xtask guests` before the tests",
        path.display()
    );
    path
}

/// The demo tenants' databases at the seed's scale (`<tenant>/analytics.db`): see [`seeded`].
pub fn demo_data() -> &'static Path {
    static DATA: OnceLock<PathBuf> = OnceLock::new();
    DATA.get_or_init(|| seeded("sqlite", |dir| seed_demo(dir, SEED_SCALE).map(drop)))
}

/// The seed data as `format` files (`<tenant>/analytics/<dataset>.<ext>`): see [`seeded`].
pub fn demo_files(format: FileFormat) -> &'static Path {
    static PARQUET: OnceLock<PathBuf> = OnceLock::new();
    static CSV: OnceLock<PathBuf> = OnceLock::new();
    let cell = match format {
        FileFormat::Parquet => &PARQUET,
        FileFormat::Csv => &CSV,
    };
    cell.get_or_init(|| {
        seeded(format.extension(), |dir| {
            sluice_demo::seed_demo_files(dir, SEED_SCALE, format).map(drop)
        })
    })
}

/// Seed data of `kind`, written by `seed` once per version of the code that writes it and shared
/// by every test binary and run: `<target>/sluice-test-data/<key>/<kind>`, where the key hashes
/// that code. Tests only read it (they copy what they change). A copy per test binary in the
/// temp dir, never removed because statics are not dropped, was ~0.4 GB a binary and filled a CI
/// machine's disk over a few runs; one shared copy also saves each binary its seconds of
/// seeding. Seeding goes to a staging dir renamed into place, so concurrent test processes see
/// a whole copy or none; copies of older keys are removed.
fn seeded(kind: &str, seed: impl FnOnce(&Path) -> anyhow::Result<()>) -> PathBuf {
    let base = target_dir().join("sluice-test-data");
    let key = seed_code_key();
    let dir = base.join(&key).join(kind);
    if dir.is_dir() {
        return dir;
    }
    let staging = base
        .join(&key)
        .join(format!(".{kind}.{}.staging", std::process::id()));
    let _ = std::fs::remove_dir_all(&staging);
    std::fs::create_dir_all(&staging).expect("creating the seed data dir");
    seed(&staging).expect("seeding demo data");
    if let Err(e) = std::fs::rename(&staging, &dir) {
        // Another test process put a whole copy there first: use it.
        let _ = std::fs::remove_dir_all(&staging);
        assert!(dir.is_dir(), "moving seeded data to {}: {e}", dir.display());
    }
    for entry in std::fs::read_dir(&base).into_iter().flatten().flatten() {
        if entry.file_name() != key.as_str() {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
    dir
}

/// A hash of the code that writes the seed data (`host/demo` and the file writers of
/// `host/data`) and of `Cargo.lock`, so a change to any of them seeds afresh.
fn seed_code_key() -> String {
    use sha2::{Digest as _, Sha256};
    fn add(hasher: &mut Sha256, path: &Path) {
        let mut entries: Vec<PathBuf> = std::fs::read_dir(path)
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.path())
            .collect();
        entries.sort();
        for entry in entries {
            if entry.is_dir() {
                add(hasher, &entry);
            } else if let Ok(bytes) = std::fs::read(&entry) {
                // Relative to the workspace, so every clone of one version shares a key.
                let name = entry.strip_prefix(root()).unwrap_or(&entry);
                hasher.update(name.to_string_lossy().as_bytes());
                hasher.update(bytes);
            }
        }
    }
    let mut hasher = Sha256::new();
    add(&mut hasher, &root().join("host/demo/src"));
    add(&mut hasher, &root().join("host/data/src"));
    hasher.update(std::fs::read(root().join("Cargo.lock")).unwrap_or_default());
    let digest = hasher.finalize();
    digest[..8].iter().map(|b| format!("{b:02x}")).collect()
}

/// Cargo's target dir, where the tests keep what they share between binaries and runs.
fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("target"))
}

/// The compiled-plugin cache the tests share, in cargo's target dir: a Python or JS guest is
/// compiled once per build of it, not once per test binary and run.
pub fn test_cache_dir() -> PathBuf {
    target_dir().join("sluice-test-plugin-cache")
}

/// One sandbox per test binary: compiling guests is the slow part of these tests.
pub fn sandbox() -> &'static Sandbox {
    static SANDBOX: OnceLock<Sandbox> = OnceLock::new();
    SANDBOX.get_or_init(|| {
        let mut sandbox = Sandbox::new(SandboxOptions::default()).expect("creating the sandbox");
        sandbox
            .use_compiled_cache(&test_cache_dir())
            .expect("opening the tests' plugin cache");
        sandbox
    })
}

/// The language of built guest `name`: `-py` and `-js` guests are Python and JavaScript.
pub fn language_of(name: &str) -> Language {
    if name.ends_with("-py") {
        Language::Python
    } else if name.ends_with("-js") {
        Language::JavaScript
    } else {
        Language::Rust
    }
}

/// The compiled guest `name`, cached per test binary.
pub fn transform(name: &str) -> Transform {
    use std::collections::HashMap;
    use std::sync::Mutex;
    static CACHE: OnceLock<Mutex<HashMap<String, Transform>>> = OnceLock::new();
    let cache = CACHE.get_or_init(Default::default);
    if let Some(t) = cache.lock().unwrap().get(name) {
        return t.clone();
    }
    let t = sandbox()
        .load_file_as(&guest(name), language_of(name).surface())
        .unwrap_or_else(|e| panic!("loading {name}: {e:#}"));
    cache.lock().unwrap().insert(name.to_string(), t.clone());
    t
}

/// `text` as a scope; panics on a malformed one (tests only build valid ones).
pub fn scope(text: &str) -> agentwrit::Scope {
    agentwrit::Scope::parse(text).expect("test scope")
}

/// A writ for `tenant` holding `scopes`.
pub fn writ(tenant: &str, scopes: &[&str]) -> Writ {
    Writ::new(
        tenant,
        format!("spiffe://sluice.test/agent/test/{tenant}/0001"),
        format!("test-{tenant}"),
        scopes
            .iter()
            .map(|s| agentwrit::Scope::parse(s).expect("test scope"))
            .collect(),
    )
}

/// A tenant's own two scopes, as the pipeline grants them.
pub fn own_scopes(tenant: &str) -> Vec<String> {
    vec![
        format!("read:analytics:{tenant}"),
        format!("write:reports:{tenant}"),
    ]
}

/// Runs `guest` as `tenant` with its own scopes over the demo data.
pub fn run_as(guest: &str, tenant: &str, budget: Budget, params: &[(&str, &str)]) -> RunOutcome {
    let scopes = own_scopes(tenant);
    let scopes: Vec<&str> = scopes.iter().map(String::as_str).collect();
    run_with(guest, writ(tenant, &scopes), budget, params)
}

/// Runs `guest` under `writ` over the demo data.
pub fn run_with(guest: &str, writ: Writ, budget: Budget, params: &[(&str, &str)]) -> RunOutcome {
    transform(guest).run(RunRequest {
        writ,
        budget,
        datasets: Arc::new(SqliteSource::new(demo_data())),
        params: params
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        interrupt: Interrupt::new(),
    })
}

/// `examples/nightly.toml`, with its plugins, data, report and audit paths moved into `dir` (and
/// this build's guests), edited by `edit`; returns the file written.
pub fn example_config(dir: &Path, edit: impl Fn(String) -> String) -> PathBuf {
    let example = std::fs::read_to_string(root().join("examples/nightly.toml")).unwrap();
    let guests = root().join("target/guests");
    let text = example
        .replace("../target/guests", &guests.display().to_string())
        .replace("../.sluice/demo/data", &demo_data().display().to_string())
        .replace(
            "../.sluice/demo/reports",
            &dir.join("reports").display().to_string(),
        )
        .replace(
            "../.sluice/demo/audit.jsonl",
            &dir.join("audit.jsonl").display().to_string(),
        );
    let path = dir.join("nightly.toml");
    std::fs::write(&path, edit(text)).unwrap();
    path
}

/// The exact report bytes a correct transform writes for each demo tenant.
pub fn expected_report(tenant: &str) -> String {
    let t = sluice_demo::DEMO_TENANTS
        .iter()
        .find(|t| t.id == tenant)
        .unwrap_or_else(|| panic!("{tenant} is not a demo tenant"));
    let figures: Vec<String> = t
        .figures
        .iter()
        .map(|(k, v)| format!("\"{k}\":\"{v}\""))
        .collect();
    format!(
        "{{\"tenant\":\"{tenant}\",\"figures\":{{{}}}}}",
        figures.join(",")
    )
}

/// Every file under `dir`, relative, sorted: to prove nothing partial was left behind.
pub fn files_under(dir: &Path) -> Vec<String> {
    fn walk(base: &Path, dir: &Path, out: &mut Vec<String>) {
        if let Ok(entries) = std::fs::read_dir(dir) {
            for entry in entries.flatten() {
                let path = entry.path();
                if path.is_dir() {
                    walk(base, &path, out);
                } else if let Ok(rel) = path.strip_prefix(base) {
                    out.push(rel.display().to_string());
                }
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}

/// A pipeline tenant running guest `plugin` (pinned to its current digest) over its `dataset`,
/// a table of `<data>/<id>/analytics.db`, with the tenant's own two scopes.
pub fn pipeline_tenant(id: &str, plugin: &str, dataset: &str, data: &Path) -> TenantConfig {
    let plugin_path = guest(plugin);
    TenantConfig {
        id: id.into(),
        name: format!("{id} inc."),
        data_type: "analytics".into(),
        plugin: PluginSource::File {
            sha256: file_digest(&plugin_path).expect("digest of a built guest"),
            path: plugin_path,
        },
        signer: None,
        candidate: None,
        language: language_of(plugin),
        read_scope: scope(&format!("read:analytics:{id}")),
        write_scope: scope(&format!("write:reports:{id}")),
        datasets: vec![DatasetConfig {
            name: dataset.into(),
            resource: "analytics".into(),
            location: DatasetLocation::Sqlite(data.join(id).join("analytics.db")),
        }],
        outputs: OutputStore::Parquet,
        params: vec![],
        budget: Budget::default(),
    }
}

/// A pipeline over `tenants` writing into `dir`, with the embedded broker, default budgets and
/// the shipped probe.
pub fn pipeline_config(dir: &Path, tenants: Vec<TenantConfig>) -> PipelineConfig {
    let probe = guest("probe");
    PipelineConfig {
        path: dir.join("nightly.toml"),
        orch_id: "nightly-pipeline".into(),
        agent_ttl: std::time::Duration::from_secs(300),
        reports: dir.join("reports").into(),
        audit: dir.join("audit.jsonl").into(),
        runs: dir.join("runs").into(),
        shard: None,
        data_dir: None,
        concurrency: None,
        broker: BrokerSetting::Embedded {
            ceiling: default_ceiling(),
        },
        broker_timeout: agentwrit::DEFAULT_TIMEOUT,
        budget: Budget::default(),
        share: TenantShare::default(),
        isolation: Some(IsolationConfig {
            sha256: file_digest(&probe).expect("digest of the probe"),
            probe,
            language: Language::Rust,
        }),
        plugins: PluginsConfig::default(),
        tenants,
        cache_dir: Some(test_cache_dir()),
    }
}

pub mod night {
    //! A night against a dev broker on loopback, as production runs it: the pipeline connects
    //! over HTTP with an app's credentials.

    use std::path::Path;
    use std::sync::Arc;
    use std::time::Duration;

    use agentwrit::operator::AdminClient;
    use agentwrit::{AdminSecret, AgentWritApp};
    use serde_json::Value;
    use sluice_dev_broker::{AppCredentials, BrokerConfig, DevBroker, start_with_app};
    use sluice_pipeline::broker::Broker;
    use sluice_pipeline::config::{PipelineConfig, TenantConfig};
    use sluice_pipeline::nightly::{Pipeline, RunOptions};
    use sluice_pipeline::outcome::PipelineReport;
    use sluice_sandbox::Budget;

    use super::{demo_data, pipeline_config, pipeline_tenant};

    /// The admin secret of [`broker`]'s broker.
    pub const ADMIN: &str = "pipeline-test-admin";

    /// A dev broker on an ephemeral loopback port (`config` in memory, or with a state
    /// directory), with an app whose ceiling is every tenant's analytics and reports.
    pub async fn broker_with(config: BrokerConfig) -> (DevBroker, AppCredentials) {
        let ceiling = [
            "read:analytics:*".to_string(),
            "write:reports:*".to_string(),
        ];
        start_with_app(
            config,
            "127.0.0.1:0".parse().unwrap(),
            "pipeline-test",
            &ceiling,
        )
        .await
        .unwrap()
    }

    /// [`broker_with`] in memory, administered with [`ADMIN`].
    pub async fn broker() -> (DevBroker, AppCredentials) {
        broker_with(BrokerConfig::in_memory(AdminSecret::new(ADMIN))).await
    }

    /// What `sluice run` starts when no broker is configured: an embedded dev broker without rate
    /// limits, and the pipeline's view of it. Keep the `DevBroker` alive for the night.
    pub async fn embedded_broker() -> (Broker, DevBroker) {
        let mut config = BrokerConfig::in_memory(AdminSecret::new(ADMIN));
        config.rate_limits = false;
        let (dev, creds) = broker_with(config).await;
        let app =
            AgentWritApp::new(&creds.broker_url, creds.client_id, creds.client_secret).unwrap();
        (Broker::embedded(app), dev)
    }

    /// The seed tenants over the demo data.
    pub fn demo_tenants() -> Vec<TenantConfig> {
        vec![
            pipeline_tenant("hospital", "hospital", "visits", demo_data()),
            pipeline_tenant("bank", "bank", "transactions", demo_data()),
            pipeline_tenant("retail", "retail", "orders", demo_data()),
        ]
    }

    /// A night over `tenants` in `dir`, each tenant with 64 MiB and 30 s.
    pub fn night_config(dir: &Path, tenants: Vec<TenantConfig>) -> PipelineConfig {
        let mut config = pipeline_config(dir, tenants);
        config.budget = Budget {
            memory_bytes: 64 << 20,
            wall_time: Duration::from_secs(30),
            ..Budget::default()
        };
        for tenant in &mut config.tenants {
            tenant.budget = config.budget.clone();
        }
        config
    }

    /// The pipeline of `config`, connected to the broker of `creds` with `timeout` per request.
    pub fn pipeline(
        config: PipelineConfig,
        creds: &AppCredentials,
        concurrency: usize,
        timeout: Duration,
    ) -> Arc<Pipeline> {
        let app = AgentWritApp::with_timeout(
            &creds.broker_url,
            &creds.client_id,
            creds.client_secret.clone(),
            timeout,
        )
        .unwrap();
        Arc::new(Pipeline::with_broker(config, Broker::external(app), Some(concurrency)).unwrap())
    }

    /// Runs the night of `config` against the broker of `creds`.
    pub async fn run(
        config: PipelineConfig,
        creds: &AppCredentials,
        concurrency: usize,
    ) -> PipelineReport {
        pipeline(config, creds, concurrency, agentwrit::DEFAULT_TIMEOUT)
            .run(RunOptions::default())
            .await
    }

    /// The broker's audit event types for `agent_id`, oldest first.
    pub async fn broker_events(admin: &AdminClient, agent_id: &str) -> Vec<String> {
        admin
            .audit_events(&[("agent_id", agent_id), ("limit", "1000")])
            .await
            .unwrap()
            .events
            .iter()
            .map(|e| e["event_type"].as_str().unwrap().to_string())
            .collect()
    }

    /// The SPIFFE ID of the first agent registered for a task starting with `task_prefix`,
    /// waiting for it.
    pub async fn registered_agent(admin: &AdminClient, task_prefix: &str) -> String {
        for _ in 0..600 {
            let page = admin
                .audit_events(&[("event_type", "agent_registered")])
                .await
                .unwrap();
            if let Some(e) = page
                .events
                .iter()
                .find(|e| e["task_id"].as_str().unwrap_or("").starts_with(task_prefix))
            {
                return e["agent_id"].as_str().unwrap().to_string();
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("no agent was registered for {task_prefix}*");
    }

    /// Every entry of the audit file at `path`.
    pub fn audit_lines(path: &Path) -> Vec<Value> {
        std::fs::read_to_string(path)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }
}

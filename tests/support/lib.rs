//! Helpers shared by Sluice's cross-crate tests: built guests, seeded demo data, temp dirs.

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use sluice_pipeline::config::{
    BrokerSetting, DatasetConfig, IsolationConfig, PipelineConfig, TenantConfig, default_ceiling,
};
use sluice_pipeline::plugins::file_digest;
use sluice_pipeline::{SEED_SCALE, SqliteSource, seed_demo};
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

/// The demo tenants' databases at the seed's scale, generated once per test binary.
pub fn demo_data() -> &'static Path {
    static DATA: OnceLock<tempfile::TempDir> = OnceLock::new();
    DATA.get_or_init(|| {
        let dir = tempfile::tempdir().expect("creating a temp dir");
        seed_demo(dir.path(), SEED_SCALE).expect("seeding demo data");
        dir
    })
    .path()
}

/// One sandbox per test binary: compiling guests is the slow part of these tests.
pub fn sandbox() -> &'static Sandbox {
    static SANDBOX: OnceLock<Sandbox> = OnceLock::new();
    SANDBOX.get_or_init(|| Sandbox::new(SandboxOptions::default()).expect("creating the sandbox"))
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
        .load_file(&guest(name))
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

/// The exact report bytes a correct transform writes for each demo tenant.
pub fn expected_report(tenant: &str) -> String {
    let t = sluice_pipeline::DEMO_TENANTS
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
        sha256: file_digest(&plugin_path).expect("digest of a built guest"),
        plugin: plugin_path,
        read_scope: scope(&format!("read:analytics:{id}")),
        write_scope: scope(&format!("write:reports:{id}")),
        datasets: vec![DatasetConfig {
            name: dataset.into(),
            path: data.join(id).join("analytics.db"),
            resource: "analytics".into(),
        }],
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
        reports: dir.join("reports"),
        audit: dir.join("audit.jsonl"),
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
        }),
        tenants,
    }
}

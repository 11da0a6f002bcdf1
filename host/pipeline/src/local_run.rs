//! One transform run by hand, under scopes given directly, with no broker: `sluice try`.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use agentwrit::Scope;
use anyhow::Context as _;
use sluice_sandbox::{Budget, Interrupt, RunOutcome, RunRequest, Sandbox, SandboxOptions, Writ};

use crate::config::{Language, OutputStore};
use crate::outcome::PluginLoad;
use sluice_audit::{AuditLog, Lifecycle, gate_entries, writ_subject};
use sluice_data::outputs::{Published, publish_run};
use sluice_data::report_dir::ReportDir;
use sluice_data::sources::LayoutSource;
use sluice_storage::Location;

/// What `sluice try` runs.
#[derive(Clone, Debug)]
pub struct LocalRun {
    pub component: PathBuf,
    pub tenant: String,
    pub scopes: Vec<String>,
    pub data: PathBuf,
    pub reports: PathBuf,
    pub audit: Option<PathBuf>,
    pub params: Vec<(String, String)>,
    pub budget: Budget,
    pub language: Language,
    /// Where compiled plugins are kept between runs; `None` compiles every time.
    pub cache_dir: Option<PathBuf>,
}

/// The outcome, plus where its output tables and report went.
#[derive(Debug)]
pub struct LocalRunResult {
    pub outcome: RunOutcome,
    pub published: Vec<Location>,
    /// How the plugin was loaded.
    pub plugin: PluginLoad,
    /// Why the configured plugin cache was not used, if it was not.
    pub cache_warning: Option<String>,
}

/// Parses scopes given by a user, naming the first bad one.
pub fn parse_scopes(scopes: &[String]) -> anyhow::Result<Vec<Scope>> {
    scopes
        .iter()
        .map(|s| Scope::parse(s).map_err(anyhow::Error::from))
        .collect()
}

/// Runs `run.component` once as `run.tenant` holding `run.scopes`, publishes its report if it
/// succeeded, and appends its gate decisions to the audit file. Errors are about the setup
/// (unreadable component, bad scope, unwritable audit); a failing transform is in the outcome.
pub fn run_local(run: &LocalRun) -> anyhow::Result<LocalRunResult> {
    let held = parse_scopes(&run.scopes)?;
    let audit = run.audit.as_ref().map(AuditLog::open).transpose()?;
    let mut sandbox = Sandbox::new(SandboxOptions {
        pooling_slots: None,
        max_memory_bytes: run.budget.memory_bytes,
        ..SandboxOptions::default()
    })?;
    let cache_warning = run
        .cache_dir
        .as_deref()
        .and_then(|dir| sandbox.use_compiled_cache(dir).err())
        .map(|e| format!("{e}; compiling the plugin instead"));
    let transform = sandbox.load_file_as(&run.component, run.language.surface())?;
    let plugin = PluginLoad::new(run.language.name(), &transform);
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let task_id = format!("try-{}-{now}", run.tenant);
    let writ = Writ::new(
        &run.tenant,
        format!("spiffe://sluice.local/agent/try/{task_id}/local"),
        task_id,
        held,
    );
    let request = RunRequest {
        writ,
        budget: run.budget.clone(),
        datasets: Arc::new(LayoutSource::new(&run.data)),
        params: run.params.clone(),
        interrupt: Interrupt::new(),
    };
    let outcome = transform.spawn(request, ()).wait();
    if let Some(audit) = &audit {
        audit.append_all(gate_entries(
            &outcome.writ,
            &outcome.events,
            &outcome.overflow,
        ));
        audit.record(
            &writ_subject(&outcome.writ),
            Lifecycle::run_finished(&outcome),
        );
        audit
            .flush()
            .with_context(|| format!("writing audit {}", audit.location()))?;
    }
    let reports = ReportDir::new(&run.reports);
    // As in a night: all of the run's outputs or none, the report last.
    let published = publish_run(
        &OutputStore::Parquet,
        &reports,
        &outcome.tables,
        &outcome.staged,
        |_| {},
    )
    .map_err(|failure| failure.error)?
    .into_iter()
    .map(|item| match item {
        Published::Table(table) => Location::Local(table.location.into()),
        Published::Report { location, .. } => location,
    })
    .collect();
    Ok(LocalRunResult {
        outcome,
        published,
        plugin,
        cache_warning,
    })
}

/// The component path `target/guests/<name>.wasm` relative to `root`.
pub fn guest_path(root: &Path, name: &str) -> PathBuf {
    root.join("target")
        .join("guests")
        .join(format!("{name}.wasm"))
}

//! The nightly run: for each tenant, an agent with exactly its scopes, its plugin in the sandbox
//! under the scopes the broker issued, the report committed only by a still-valid agent, and the
//! agent released on every path. Then the isolation proof.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use agentwrit::{Agent, AgentRequest, AgentWritApp, Error as BrokerError, Scope};
use serde_json::json;
use sluice_sandbox::{AuditSink, RunOutcome, RunRequest, Sandbox, SandboxOptions, Transform, Writ};
use tokio::sync::{Mutex, Semaphore};

use crate::audit::{AuditLog, rfc3339};
use crate::broker::{self, Broker};
use crate::config::{PipelineConfig, TenantConfig};
use crate::outcome::{Figure, GateLine, PipelineReport, TenantResult};
use crate::plugins::PluginCache;
use crate::report_dir::ReportDir;
use crate::sqlite_source::{CatalogSource, SqliteSource};

/// How often a running tenant's agent is checked with the broker (and renewed when due).
const KEEPER_INTERVAL: Duration = Duration::from_secs(1);

/// Called in config order as each tenant's result becomes final.
pub type TenantCallback = Box<dyn FnMut(&TenantResult) + Send>;
/// Called with (done, total) as tenants finish, in any order.
pub type ProgressCallback = Box<dyn Fn(usize, usize) + Send + Sync>;

#[derive(Default)]
pub struct RunOptions {
    /// Tenants run at once; default: the configuration's, else the number of cores.
    pub concurrency: Option<usize>,
    pub on_tenant: Option<TenantCallback>,
    pub on_progress: Option<ProgressCallback>,
    /// Set (e.g. on Ctrl-C) to stop: tenants not started are skipped, running ones are denied
    /// every further data access; every agent is still released.
    pub cancel: Arc<AtomicBool>,
}

/// Everything the tenants share.
pub struct Pipeline {
    pub config: PipelineConfig,
    pub broker: Broker,
    pub sandbox: Sandbox,
    pub plugins: PluginCache,
    pub source: Arc<CatalogSource>,
    pub audit: AuditLog,
    pub reports: ReportDir,
    pub concurrency: usize,
}

pub(crate) fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

impl Pipeline {
    /// Connects to the broker, opens the audit trail and prepares the sandbox.
    pub async fn start(
        config: PipelineConfig,
        concurrency: Option<usize>,
    ) -> anyhow::Result<Pipeline> {
        let broker = broker::connect(&config.broker).await?;
        // Wrong credentials or an unreachable broker stop the night before any tenant starts.
        broker.app.authenticate().await.map_err(|e| {
            anyhow::anyhow!(
                "cannot authenticate the app at {} ({e}): check AGENTWRIT_BROKER_URL, AGENTWRIT_CLIENT_ID and AGENTWRIT_CLIENT_SECRET",
                broker.description
            )
        })?;
        Pipeline::with_broker(config, broker, concurrency)
    }

    /// [`start`](Self::start) with a broker connection of the caller's.
    pub fn with_broker(
        config: PipelineConfig,
        broker: Broker,
        concurrency: Option<usize>,
    ) -> anyhow::Result<Pipeline> {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        let concurrency = concurrency.or(config.concurrency).unwrap_or(cores).max(1);
        let audit = AuditLog::open(&config.audit)?;
        let sandbox = Sandbox::new(SandboxOptions {
            // One slot per concurrent tenant plus the isolation probe.
            pooling_slots: Some(concurrency as u32 + 1),
            max_memory_bytes: config.budget.memory_bytes,
        })?;
        let mut source = CatalogSource::new(config.data_dir.as_ref().map(SqliteSource::new));
        for tenant in &config.tenants {
            for ds in &tenant.datasets {
                source.add(&tenant.id, &ds.resource, &ds.name, ds.path.clone());
            }
        }
        Ok(Pipeline {
            reports: ReportDir::new(&config.reports),
            config,
            broker,
            sandbox,
            plugins: PluginCache::default(),
            source: Arc::new(source),
            audit,
            concurrency,
        })
    }

    /// The plugin at `path` if its digest is `sha256`, compiled once per digest, off the runtime.
    pub(crate) async fn load_plugin(
        self: &Arc<Self>,
        path: &std::path::Path,
        sha256: &str,
    ) -> Result<Transform, String> {
        let (pipeline, path, sha) = (Arc::clone(self), path.to_path_buf(), sha256.to_string());
        tokio::task::spawn_blocking(move || pipeline.plugins.load(&pipeline.sandbox, &path, &sha))
            .await
            .unwrap_or_else(|e| Err(format!("loading the plugin failed: {e}")))
    }

    /// Runs `transform` under `writ` on a blocking thread, with the pipeline's data and budget.
    pub(crate) fn run_sandboxed(
        &self,
        transform: Transform,
        writ: Writ,
        params: Vec<(String, String)>,
    ) -> tokio::task::JoinHandle<RunOutcome> {
        let (source, budget) = (Arc::clone(&self.source), self.config.budget.clone());
        tokio::task::spawn_blocking(move || {
            transform.run(RunRequest {
                writ,
                budget,
                datasets: source,
                params,
            })
        })
    }

    fn app(&self) -> &AgentWritApp {
        &self.broker.app
    }

    /// Appends a lifecycle event; a failing audit write is reported on stderr, never silently.
    pub(crate) fn audit_event(
        &self,
        event: &str,
        tenant: &str,
        agent_id: &str,
        task_id: &str,
        mut extra: serde_json::Value,
    ) {
        let mut entry = json!({
            "time": rfc3339(SystemTime::now()),
            "event": event,
            "tenant": tenant,
            "agent_id": agent_id,
            "task_id": task_id,
        });
        if let (Some(e), Some(x)) = (entry.as_object_mut(), extra.as_object_mut()) {
            e.append(x);
        }
        if let Err(err) = self.audit.append(entry) {
            eprintln!("sluice: audit write failed: {err:#}");
        }
    }

    /// Runs every tenant, at most `concurrency` at once, and returns their results in config
    /// order.
    pub async fn run_tenants(self: &Arc<Self>, options: &mut RunOptions) -> Vec<TenantResult> {
        let total = self.config.tenants.len();
        let semaphore = Arc::new(Semaphore::new(self.concurrency));
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(usize, TenantResult)>();
        for (index, tenant) in self.config.tenants.iter().cloned().enumerate() {
            let (pipeline, semaphore, tx, cancel) = (
                Arc::clone(self),
                Arc::clone(&semaphore),
                tx.clone(),
                Arc::clone(&options.cancel),
            );
            tokio::spawn(async move {
                let _permit = semaphore.acquire_owned().await;
                let result = if cancel.load(Ordering::Acquire) {
                    skipped(&tenant, "interrupted before it started")
                } else {
                    pipeline.run_tenant(&tenant, &cancel).await
                };
                let _ = tx.send((index, result));
            });
        }
        drop(tx);
        // Re-order: results arrive as tenants finish, callbacks see them in config order.
        let mut slots: Vec<Option<TenantResult>> = vec![None; total];
        let (mut next, mut done) = (0, 0);
        while let Some((index, result)) = rx.recv().await {
            slots[index] = Some(result);
            done += 1;
            if let Some(progress) = &options.on_progress {
                progress(done, total);
            }
            while next < total && slots[next].is_some() {
                if let (Some(cb), Some(r)) = (options.on_tenant.as_mut(), slots[next].as_ref()) {
                    cb(r);
                }
                next += 1;
            }
        }
        slots
            .into_iter()
            .zip(&self.config.tenants)
            .map(|(r, t)| r.unwrap_or_else(|| skipped(t, "its task ended without a result")))
            .collect()
    }

    /// One tenant: agent, run, commit, release.
    async fn run_tenant(
        self: &Arc<Self>,
        tenant: &TenantConfig,
        cancel: &Arc<AtomicBool>,
    ) -> TenantResult {
        let started = Instant::now();
        let mut result = skipped(tenant, "");
        result.error = None;
        result.task_id = format!("etl-{}-{}", tenant.id, unix_now());

        let transform = match self.load_plugin(&tenant.plugin, &tenant.sha256).await {
            Ok(t) => t,
            Err(e) => return self.fail(result, e, started),
        };

        let request = AgentRequest::new(
            &self.config.orch_id,
            &result.task_id,
            [tenant.read_scope.clone(), tenant.write_scope.clone()],
        )
        .max_ttl(self.config.agent_ttl.as_secs());
        let agent = match self.app().create_agent(request).await {
            Ok(agent) => agent,
            Err(e) => {
                let why = explain_create_error(&e, tenant, self.broker.is_embedded());
                return self.fail(result, why, started);
            }
        };
        result.agent_id = Some(agent.agent_id().to_string());
        result.expires_in = Some(agent.expires_in());
        self.audit_event(
            "agent_created",
            &tenant.id,
            agent.agent_id(),
            &result.task_id,
            json!({ "scope": agent.scope(), "expires_in": agent.expires_in() }),
        );
        let agent = Arc::new(Mutex::new(agent));

        // Everything between creation and release; the release below runs whatever happens here.
        if let Err(e) = self
            .work(tenant, &transform, &agent, &mut result, cancel)
            .await
        {
            result.error = Some(e);
        }

        let mut agent = agent.lock().await;
        match self.release(&mut agent, &tenant.id, &result.task_id).await {
            Ok(()) => result.released = true,
            Err(e) => {
                result.error.get_or_insert(e);
            }
        }
        if let Some(error) = &result.error {
            self.audit_event(
                "tenant_failed",
                &tenant.id,
                agent.agent_id(),
                &result.task_id,
                json!({ "detail": error }),
            );
        }
        result.elapsed_ms = started.elapsed().as_millis() as u64;
        result
    }

    async fn work(
        self: &Arc<Self>,
        tenant: &TenantConfig,
        transform: &Transform,
        agent: &Arc<Mutex<Agent>>,
        result: &mut TenantResult,
        cancel: &Arc<AtomicBool>,
    ) -> Result<(), String> {
        let (agent_id, token) = {
            let a = agent.lock().await;
            (
                a.agent_id().to_string(),
                a.access_token().secret().to_string(),
            )
        };
        // The gate enforces the scopes the broker issued, not the ones the config asked for.
        let claims = match self.app().validate(&token).await {
            Ok(r) if r.valid => r.claims.ok_or("the broker returned no claims")?,
            Ok(r) => {
                return Err(format!(
                    "the broker says the new agent is invalid: {}",
                    r.error.unwrap_or_default()
                ));
            }
            Err(e) => return Err(format!("validating the agent with the broker failed: {e}")),
        };
        result.scope = claims.scope.clone();
        let held = claims
            .scope
            .iter()
            .map(|s| Scope::parse(s))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| format!("the broker issued a malformed scope: {e}"))?;
        let writ = Writ::new(&tenant.id, &agent_id, &result.task_id, held);
        let revoked = Arc::clone(&writ.revoked);

        let run = self.run_sandboxed(transform.clone(), writ, tenant.params.clone());
        let keeper = tokio::spawn(keep_alive(
            Arc::clone(self),
            Arc::clone(agent),
            Arc::clone(&revoked),
            Arc::clone(cancel),
            tenant.id.clone(),
            result.task_id.clone(),
        ));
        let outcome = run.await;
        keeper.abort();
        result.renewals = keeper.await.unwrap_or(0);
        let outcome = outcome.map_err(|e| format!("the sandbox thread failed: {e}"))?;

        if let Err(e) = self
            .audit
            .record_gate_events(&outcome.writ, &outcome.events)
        {
            eprintln!("sluice: audit write failed: {e:#}");
        }
        result.gate = GateLine::from_events(&outcome.events);
        result.rows_read = outcome.usage.rows_read;
        result.host_calls = outcome.usage.host_calls;
        let summary = outcome.result.map_err(|f| f.to_string())?;
        result.figures = summary
            .figures
            .into_iter()
            .map(|f| Figure {
                name: f.name,
                value: f.value,
            })
            .collect();
        if outcome.staged.is_empty() {
            return Ok(());
        }

        // Commit only with an agent the broker still honours.
        let token = agent.lock().await.access_token().secret().to_string();
        let still_valid = !revoked.load(Ordering::Acquire)
            && matches!(self.app().validate(&token).await, Ok(r) if r.valid);
        if !still_valid {
            self.audit_event(
                "commit_refused",
                &tenant.id,
                &agent_id,
                &result.task_id,
                json!({ "outcome": "denied", "detail": "agent no longer valid at the broker" }),
            );
            return Err(format!(
                "report not committed: agent {agent_id} is no longer valid at the broker (revoked, released or expired); the previous report is kept"
            ));
        }
        for staged in &outcome.staged {
            let path = self
                .reports
                .publish(&staged.tenant, &staged.bytes)
                .map_err(|e| format!("{e:#}"))?;
            self.audit_event(
                "report_committed",
                &tenant.id,
                &agent_id,
                &result.task_id,
                json!({ "report": path.display().to_string(), "bytes": staged.bytes.len() }),
            );
            result.report = Some(path);
        }
        Ok(())
    }

    /// Releases `agent` and audits it. A token the broker already rejects (revoked, expired)
    /// counts as released: the agent is dead either way.
    pub(crate) async fn release(
        &self,
        agent: &mut Agent,
        tenant: &str,
        task_id: &str,
    ) -> Result<(), String> {
        let detail = match agent.release().await {
            Ok(()) => json!({}),
            Err(BrokerError::Authentication(_)) => {
                json!({ "detail": "token was already invalid at the broker" })
            }
            Err(e) => return Err(format!("releasing agent {} failed: {e}", agent.agent_id())),
        };
        self.audit_event("agent_released", tenant, agent.agent_id(), task_id, detail);
        Ok(())
    }

    fn fail(&self, mut result: TenantResult, error: String, started: Instant) -> TenantResult {
        self.audit_event(
            "tenant_failed",
            &result.id,
            "",
            &result.task_id,
            json!({ "detail": error }),
        );
        result.error = Some(error);
        result.elapsed_ms = started.elapsed().as_millis() as u64;
        result
    }

    /// The whole night: tenants, then the isolation proof.
    pub async fn run(self: &Arc<Self>, mut options: RunOptions) -> PipelineReport {
        let started = Instant::now();
        let tenants = self.run_tenants(&mut options).await;
        // Without an [isolation] probe in the configuration there is nothing to prove with.
        let isolation = if options.cancel.load(Ordering::Acquire) || self.config.isolation.is_none()
        {
            None
        } else {
            Some(self.verify_isolation().await)
        };
        PipelineReport {
            broker: self.broker.description.clone(),
            audit: self.audit.head(),
            failed: tenants.iter().filter(|t| !t.ok()).count(),
            tenants,
            isolation,
            elapsed_ms: started.elapsed().as_millis() as u64,
        }
    }
}

/// Renews the agent when less than a third of its lifetime is left, and checks it with the broker
/// every second: a revoked agent's writ is flagged, so the gate denies from then on.
async fn keep_alive(
    pipeline: Arc<Pipeline>,
    agent: Arc<Mutex<Agent>>,
    revoked: Arc<AtomicBool>,
    cancel: Arc<AtomicBool>,
    tenant: String,
    task_id: String,
) -> u32 {
    let ttl = pipeline.config.agent_ttl;
    let mut renewals = 0;
    loop {
        tokio::time::sleep(KEEPER_INTERVAL).await;
        if cancel.load(Ordering::Acquire) {
            revoked.store(true, Ordering::Release);
        }
        let mut a = agent.lock().await;
        if a.remaining() < ttl / 3 {
            match a.renew().await {
                Ok(()) => {
                    renewals += 1;
                    pipeline.audit_event(
                        "agent_renewed",
                        &tenant,
                        a.agent_id(),
                        &task_id,
                        json!({ "expires_in": a.expires_in() }),
                    );
                    continue;
                }
                Err(e) => {
                    revoked.store(true, Ordering::Release);
                    pipeline.audit_event(
                        "agent_invalidated",
                        &tenant,
                        a.agent_id(),
                        &task_id,
                        json!({ "detail": format!("renewal failed: {e}") }),
                    );
                    return renewals;
                }
            }
        }
        let token = a.access_token().secret().to_string();
        drop(a);
        if let Ok(r) = pipeline.app().validate(&token).await
            && !r.valid
        {
            revoked.store(true, Ordering::Release);
            let id = agent.lock().await.agent_id().to_string();
            pipeline.audit_event(
                "agent_invalidated",
                &tenant,
                &id,
                &task_id,
                json!({ "detail": "the broker no longer honours the agent" }),
            );
            return renewals;
        }
    }
}

fn skipped(tenant: &TenantConfig, why: &str) -> TenantResult {
    TenantResult {
        id: tenant.id.clone(),
        name: tenant.name.clone(),
        data_type: tenant.data_type.clone(),
        task_id: String::new(),
        agent_id: None,
        scope: Vec::new(),
        expires_in: None,
        rows_read: 0,
        host_calls: 0,
        figures: Vec::new(),
        gate: Vec::new(),
        report: None,
        renewals: 0,
        released: false,
        error: Some(why.to_string()),
        elapsed_ms: 0,
    }
}

/// Turns a failed `create_agent` into one line a user can act on.
fn explain_create_error(e: &BrokerError, tenant: &TenantConfig, embedded: bool) -> String {
    let scopes = format!("[{}, {}]", tenant.read_scope, tenant.write_scope);
    match e {
        BrokerError::Authorization(p) => {
            let fix = if embedded {
                "add a matching scope to [broker] ceiling in the config"
            } else {
                "widen the app's ceiling at the broker (it needs read:analytics:*, write:reports:* for the demo)"
            };
            format!(
                "the broker refused an agent with scopes {scopes} ({} {}: {}): the app's ceiling does not cover this tenant's read_scope/write_scope; fix them or {fix}",
                p.status,
                p.error_code.as_deref().unwrap_or("forbidden"),
                p.detail
            )
        }
        BrokerError::Authentication(p) => format!(
            "the broker rejected the app's credentials ({}): check AGENTWRIT_CLIENT_ID and AGENTWRIT_CLIENT_SECRET",
            p.detail
        ),
        other => format!("creating the agent failed: {other}"),
    }
}

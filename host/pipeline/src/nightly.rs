//! The nightly run: the pipeline's shared parts, the schedule over tenants, and each tenant's
//! session (agent, sandboxed run, commit, release) turned into a [`TenantResult`]. Then the
//! isolation proof.
//!
//! Interrupting the night ([`Pipeline::interrupt`] triggered, on Ctrl-C or SIGTERM) starts no new tenant,
//! stops running guests within one epoch tick, stops renewals, and still releases every agent.

use std::sync::Arc;
use std::time::{Duration, Instant};

use sluice_audit::{AuditLog, Lifecycle, Subject};
use sluice_data::ReportDir;
use sluice_data::outputs::Published;
use sluice_data::sources::{CatalogSource, LayoutSource};
use sluice_sandbox::{Interrupt, Sandbox, SandboxOptions, Transform};
use sluice_storage::Location;
use tokio::sync::Semaphore;

use crate::agents::AgentContext;
use crate::broker::Broker;
use crate::config::{Language, PipelineConfig, TenantConfig};
use crate::lock::{Lock, Slot};
use crate::outcome::{BudgetUse, FailureKind, GateLine, PipelineReport, TenantError, TenantResult};
use crate::plugin_source::PluginSource;
use crate::plugins::{LoadedPlugin, PluginCache};
use crate::session::{Runs, SessionError, TenantSession};

/// Called in config order as each tenant's result becomes final.
pub type TenantCallback = Box<dyn FnMut(&TenantResult) + Send>;
/// Called with (done, total) as tenants finish, in any order.
pub type ProgressCallback = Box<dyn Fn(usize, usize) + Send + Sync>;

#[derive(Default)]
pub struct RunOptions {
    pub on_tenant: Option<TenantCallback>,
    pub on_progress: Option<ProgressCallback>,
}

/// Everything the tenants share. Each part of the night gets only what it uses: a session and
/// its keeper the [`AgentContext`], a run the [`Runs`].
pub struct Pipeline {
    pub(crate) config: PipelineConfig,
    broker_description: String,
    sandbox: Sandbox,
    plugins: PluginCache,
    /// Registry plugins: the store they are read from (and fetched into, by digest, when it
    /// lacks one), the lock that pins them, and every tenant's signer key, to name a signer.
    registry: Option<PluginRegistry>,
    pub(crate) source: Arc<CatalogSource>,
    pub(crate) audit: Arc<AuditLog>,
    pub(crate) reports: ReportDir,
    concurrency: usize,
    pub(crate) agents: Arc<AgentContext>,
    pub(crate) runs: Runs,
    /// Why the configured compiled-plugin cache is not used, if it is not: the night runs
    /// anyway, compiling every plugin.
    cache_warning: Option<String>,
}

/// What a night with `oci://` plugins needs beside the sandbox.
struct PluginRegistry {
    registry: Arc<sluice_registry::Registry>,
    lock: Lock,
    signers: Vec<(String, sluice_registry::SignerKey)>,
}

impl PluginRegistry {
    /// The registry side of `config`, if any tenant has an `oci://` plugin or candidate.
    fn open(config: &PipelineConfig) -> anyhow::Result<Option<PluginRegistry>> {
        let any = config
            .tenants
            .iter()
            .any(|t| t.plugin.oci().is_some() || t.candidate.is_some());
        if !any {
            return Ok(None);
        }
        let lock = Lock::read(&config.path).map_err(anyhow::Error::msg)?;
        let dir = config.plugins.store_dir().ok_or_else(|| {
            anyhow::anyhow!("no plugin store: set [plugins] store, SLUICE_PLUGIN_STORE or HOME")
        })?;
        let store = sluice_registry::BlobStore::open(&dir)?;
        Ok(Some(PluginRegistry {
            registry: Arc::new(sluice_registry::Registry::new(
                store,
                config.plugins.insecure.clone(),
                config.plugins.max_bytes,
            )),
            lock,
            signers: config
                .tenants
                .iter()
                .filter_map(|t| Some((t.id.clone(), t.signer.as_ref()?.key.clone())))
                .collect(),
        }))
    }
}

/// Seconds since the Unix epoch, now.
pub(crate) fn unix_now() -> u64 {
    crate::record::unix_ms() / 1000
}

impl Pipeline {
    /// Authenticates the app with its broker, opens the audit trail and prepares the sandbox.
    pub async fn start(
        config: PipelineConfig,
        broker: Broker,
        concurrency: Option<usize>,
    ) -> anyhow::Result<Pipeline> {
        // Wrong credentials or an unreachable broker stop the night before any tenant starts.
        broker.app().authenticate().await.map_err(|e| {
            anyhow::anyhow!(
                "cannot authenticate the app at {} ({e}): check AGENTWRIT_BROKER_URL, AGENTWRIT_CLIENT_ID and AGENTWRIT_CLIENT_SECRET",
                broker.description()
            )
        })?;
        Pipeline::with_broker(config, broker, concurrency)
    }

    /// [`start`](Self::start) without authenticating first (the first agent will).
    pub fn with_broker(
        mut config: PipelineConfig,
        broker: Broker,
        concurrency: Option<usize>,
    ) -> anyhow::Result<Pipeline> {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        let concurrency = concurrency.or(config.concurrency).unwrap_or(cores).max(1);
        // A tenant's data is decoded on its run's thread plus the cores the night leaves idle,
        // unless its limits say otherwise.
        let idle = (cores + 1).saturating_sub(concurrency).max(1) as u64;
        for budget in std::iter::once(&mut config.budget)
            .chain(config.tenants.iter_mut().map(|t| &mut t.budget))
        {
            if budget.decode_threads == 0 {
                budget.decode_threads = idle;
            }
        }
        let audit = Arc::new(AuditLog::open(&config.audit)?);
        if let Location::Object(reports) = &config.reports {
            // Unreachable storage or a missing bucket stops the night before any tenant runs,
            // rather than failing every tenant at its commit.
            reports
                .check()
                .map_err(|e| anyhow::anyhow!("reports: {e:#}"))?;
        }
        // One slot per concurrent tenant plus the isolation probe.
        let slots = concurrency + 1;
        let mut sandbox = Sandbox::new(SandboxOptions {
            pooling_slots: Some(slots as u32),
            max_memory_bytes: config.budget.memory_bytes,
            share: config.share,
        })?;
        let cache_warning = config
            .cache_dir
            .as_deref()
            .and_then(|dir| sandbox.use_compiled_cache(dir).err())
            .map(|e| format!("{e}; compiling every plugin instead"));
        let mut source = CatalogSource::new(config.data_dir.as_ref().map(LayoutSource::new));
        for tenant in &config.tenants {
            for ds in &tenant.datasets {
                source.add(&tenant.id, &ds.resource, &ds.name, ds.location.clone());
            }
        }
        let agents = AgentContext::new(
            broker.app().clone(),
            broker.is_embedded(),
            config.orch_id.clone(),
            config.agent_ttl,
            Arc::clone(&audit),
        );
        let registry = PluginRegistry::open(&config)?;
        Ok(Pipeline {
            reports: ReportDir::new(&config.reports),
            broker_description: broker.description().to_string(),
            config,
            registry,
            sandbox,
            plugins: PluginCache::default(),
            source: Arc::new(source),
            audit,
            concurrency,
            agents: Arc::new(agents),
            runs: Runs {
                interrupt: Interrupt::new(),
                slots: Arc::new(Semaphore::new(slots)),
            },
            cache_warning,
        })
    }

    /// The night's configuration.
    pub fn config(&self) -> &PipelineConfig {
        &self.config
    }

    /// The broker the night's agents come from, described for the operator.
    pub fn broker_description(&self) -> &str {
        &self.broker_description
    }

    /// Why the configured compiled-plugin cache is not used, if it is not.
    pub fn cache_warning(&self) -> Option<&str> {
        self.cache_warning.as_deref()
    }

    /// Triggered to stop the night: see the module documentation.
    pub fn interrupt(&self) -> &Interrupt {
        &self.runs.interrupt
    }

    /// The plugin file at `path` if its digest is `sha256`, vetted once per file, off the
    /// runtime.
    pub(crate) async fn load_file_plugin(
        self: &Arc<Self>,
        path: &std::path::Path,
        sha256: &str,
        language: Language,
    ) -> Result<LoadedPlugin, String> {
        let (pipeline, path, sha) = (Arc::clone(self), path.to_path_buf(), sha256.to_string());
        tokio::task::spawn_blocking(move || {
            pipeline.plugins.load_file(
                &pipeline.sandbox,
                &path,
                &sha,
                language,
                pipeline.config.plugins.max_bytes,
            )
        })
        .await
        .unwrap_or_else(|e| Err(format!("loading the plugin failed: {e}")))
    }

    /// `tenant`'s plugin in `slot`: a file by its SHA-256, or a registry plugin by the digest
    /// the lock pins (fetched by that digest only if the store lacks it), its signature
    /// verified; vetted once per plugin; the verdict audited.
    pub(crate) async fn load_plugin(
        self: &Arc<Self>,
        tenant: &TenantConfig,
        slot: Slot,
        subject: &Subject,
    ) -> Result<LoadedPlugin, String> {
        let loaded = match (&tenant.plugin, slot) {
            (PluginSource::File { path, sha256 }, Slot::Current) => {
                self.load_file_plugin(path, sha256, tenant.language).await
            }
            _ => self.load_registry_plugin(tenant, slot).await,
        };
        let reference = match slot {
            Slot::Current => tenant.plugin.reference(),
            Slot::Candidate => tenant
                .candidate
                .as_ref()
                .map(ToString::to_string)
                .unwrap_or_default(),
        };
        self.audit.record(
            subject,
            Lifecycle::PluginChecked {
                plugin: slot.name(),
                reference,
                digest: loaded.as_ref().ok().map(|l| l.digest.clone()),
                signer: tenant
                    .signer
                    .as_ref()
                    .map(|s| s.key.fingerprint().to_string()),
                verdict: match &loaded {
                    Ok(l) => format!("accepted: {}", l.vet.summary()),
                    Err(e) => format!("refused: {e}"),
                },
            },
        );
        loaded
    }

    async fn load_registry_plugin(
        self: &Arc<Self>,
        tenant: &TenantConfig,
        slot: Slot,
    ) -> Result<LoadedPlugin, String> {
        let Some(plugins) = &self.registry else {
            return Err(format!(
                "tenant '{}' has no oci:// {}",
                tenant.id,
                slot.name()
            ));
        };
        let locked = plugins.lock.pinned(&self.config, tenant, slot)?;
        let reference = match slot {
            Slot::Current => tenant.plugin.oci().cloned(),
            Slot::Candidate => tenant.candidate.clone(),
        }
        .ok_or_else(|| format!("tenant '{}' has no oci:// {}", tenant.id, slot.name()))?;
        let (digest, signatures) = (locked.digest()?, locked.signatures()?);
        // Offline when the store has it; by digest (never by tag) when it does not.
        plugins
            .registry
            .fetch_pinned(&reference, &digest, signatures.as_ref())
            .await
            .map_err(|e| {
                format!(
                    "plugin {reference} ({digest}) is not in the plugin store and could not be                      fetched: {e}"
                )
            })?;
        let (pipeline, tenant) = (Arc::clone(self), tenant.clone());
        tokio::task::spawn_blocking(move || {
            let plugins = pipeline.registry.as_ref().expect("checked above");
            pipeline.plugins.load_stored(
                &pipeline.sandbox,
                plugins.registry.store(),
                &reference,
                &locked,
                tenant.signer.as_ref().map(|s| &s.key),
                &plugins.signers,
                tenant.language,
                pipeline.config.plugins.max_bytes,
            )
        })
        .await
        .unwrap_or_else(|e| Err(format!("loading the plugin failed: {e}")))
    }

    /// The tenants this process runs: all of them, or its shard's.
    pub fn own_tenants(&self) -> Vec<TenantConfig> {
        self.config
            .tenants
            .iter()
            .filter(|t| self.config.shard.is_none_or(|s| s.owns(&t.id)))
            .cloned()
            .collect()
    }

    /// Runs every tenant (of this shard), at most `concurrency` at once, and returns their
    /// results in config order.
    pub async fn run_tenants(self: &Arc<Self>, options: &mut RunOptions) -> Vec<TenantResult> {
        let tenants = self.own_tenants();
        let total = tenants.len();
        if let Some(shard) = self.config.shard {
            self.audit.record(
                &Subject::default(),
                Lifecycle::ShardStarted {
                    shard: shard.index,
                    shards: shard.count,
                    tenants: total as u64,
                    pid: std::process::id(),
                    host: std::env::var("HOSTNAME")
                        .ok()
                        .filter(|h| sluice_sandbox::is_plain_name(h)),
                },
            );
            // Written before any tenant starts, so even an attempt killed at once shows in its
            // chain; a write error surfaces at the night's final flush.
            let pipeline = Arc::clone(self);
            let _ = tokio::task::spawn_blocking(move || pipeline.audit.flush()).await;
        }
        let semaphore = Arc::new(Semaphore::new(self.concurrency));
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(usize, TenantResult)>();
        for (index, tenant) in tenants.iter().cloned().enumerate() {
            let (pipeline, semaphore, tx) = (Arc::clone(self), Arc::clone(&semaphore), tx.clone());
            tokio::spawn(async move {
                let _permit = semaphore.acquire_owned().await;
                let result = if pipeline.runs.interrupt.is_triggered() {
                    not_run(&tenant, "interrupted before it started")
                } else {
                    pipeline.run_tenant(&tenant).await
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
            .zip(&tenants)
            .map(|(r, t)| r.unwrap_or_else(|| not_run(t, "its task ended without a result")))
            .collect()
    }

    /// One tenant: agent, run, commit, release.
    async fn run_tenant(self: &Arc<Self>, tenant: &TenantConfig) -> TenantResult {
        let started = Instant::now();
        let mut result = TenantResult::new(&tenant.id, &tenant.name, &tenant.data_type);
        result.task_id = format!("etl-{}-{}", tenant.id, unix_now());
        let subject = Subject {
            tenant: tenant.id.clone(),
            agent_id: String::new(),
            task_id: result.task_id.clone(),
        };

        let outcome = match self.load_plugin(tenant, Slot::Current, &subject).await {
            Err(e) => Err(TenantError::new(FailureKind::Plugin, e)),
            Ok(loaded) => {
                result.plugin = Some(loaded.load());
                let transform = loaded.transform;
                let scopes = [&tenant.read_scope, &tenant.write_scope];
                let creating = Instant::now();
                let opened =
                    TenantSession::open(&self.agents, &tenant.id, &result.task_id, &scopes, None)
                        .await;
                result.agent_create_us = Some(creating.elapsed().as_micros() as u64);
                match opened {
                    Err((None, e)) => Err(e.into()),
                    Err((Some(session), e)) => {
                        result.agent_id = Some(session.agent_id().to_string());
                        result.agent_end = Some(session.close().await);
                        Err(e.into())
                    }
                    Ok(mut session) => {
                        let work = self
                            .work(&mut session, &transform, tenant, &mut result)
                            .await;
                        result.renewals = session.renewals();
                        result.agent_end = Some(session.close().await);
                        work.map_err(TenantError::from)
                    }
                }
            }
        };
        if let Err(error) = outcome {
            let subject = Subject {
                agent_id: result.agent_id.clone().unwrap_or_default(),
                ..subject
            };
            self.audit.record(
                &subject,
                Lifecycle::TenantFailed {
                    detail: error.message.clone(),
                },
            );
            result.error = Some(error);
        }
        // The candidate after the current version: the current report is final by now.
        if tenant.candidate.is_some() && !self.runs.interrupt.is_triggered() {
            result.candidate = Some(self.shadow(tenant, &result.figures).await);
        }
        result.elapsed_ms = started.elapsed().as_millis() as u64;
        result
    }

    /// Everything between opening and closing a tenant's session.
    async fn work(
        self: &Arc<Self>,
        session: &mut TenantSession,
        transform: &Transform,
        tenant: &TenantConfig,
        result: &mut TenantResult,
    ) -> Result<(), SessionError> {
        result.agent_id = Some(session.agent_id().to_string());
        result.expires_in = Some(session.expires_in());
        result.scope = session.issued();
        // A per-run PostgreSQL login lives with this session: one connection per open dataset,
        // and one to publish with.
        let login = session
            .login_for(tenant.postgres_role(), tenant.budget.open_datasets + 1)
            .await?;
        let datasets = Arc::new(self.source.for_tenant(login.clone()));
        let outcome = session
            .run(
                &self.runs,
                transform,
                tenant.budget.clone(),
                tenant.params.clone(),
                datasets,
            )
            .await;
        result.gate = GateLine::from_events(&outcome.events);
        result.gate_overflow = outcome.overflow;
        result.rows_read = outcome.usage.rows_read;
        result.host_calls = outcome.usage.host_calls;
        result.budget = Some(BudgetUse::of(
            &outcome.usage,
            outcome.elapsed,
            &tenant.budget,
        ));
        result.log = outcome.logs.iter().map(|l| l.message.clone()).collect();
        let summary = match outcome.result {
            Ok(summary) => summary,
            // A guest denied because the keeper cut its agent off fails for that reason.
            Err(failure) => {
                return Err(session.invalidated().unwrap_or(SessionError::Run(failure)));
            }
        };
        result.figures = summary.figures;
        if !outcome.staged.is_empty() || !outcome.tables.is_empty() {
            let (published, committed) = session
                .commit(
                    &outcome.staged,
                    &outcome.tables,
                    &tenant.outputs.with_login(login.as_ref()),
                    &self.reports,
                )
                .await;
            // What was published, whether or not all of it was: as the audit and storage say.
            for item in published {
                match item {
                    Published::Table(table) => result.tables.push(table),
                    Published::Report { location, .. } => result.report = Some(location),
                }
            }
            committed?;
        }
        Ok(())
    }

    /// The whole night: tenants, then the isolation proof.
    pub async fn run(self: &Arc<Self>, mut options: RunOptions) -> PipelineReport {
        let started = Instant::now();
        let started_at_ms = crate::record::unix_ms();
        let tenants = self.run_tenants(&mut options).await;
        let interrupted = self.runs.interrupt.is_triggered();
        // Without an [isolation] probe in the configuration there is nothing to prove with.
        // A sharded night proves isolation once, in shard 0 (see `shards`), with every tenant of
        // the configuration to reach for, not only its own.
        let proves = self.config.shard.is_none_or(|s| s.proves_isolation());
        let isolation = if interrupted || self.config.isolation.is_none() || !proves {
            None
        } else {
            Some(self.verify_isolation().await)
        };
        let (audit, audit_error) = match self.audit.flush() {
            Ok(head) => (head, None),
            Err(e) => (
                sluice_audit::AuditHead {
                    entries: 0,
                    hash: String::new(),
                },
                Some(format!("{e:#}")),
            ),
        };
        PipelineReport {
            broker: self.broker_description.clone(),
            audit,
            audit_error,
            failed: tenants.iter().filter(|t| !t.ok()).count(),
            tenants,
            isolation,
            interrupted,
            started_at_ms,
            elapsed_ms: started.elapsed().as_millis() as u64,
        }
    }

    /// Best-effort release of every agent still alive, each given at most `within`, audited:
    /// what a second Ctrl-C does before exiting at once. Returns (released, alive), with the
    /// audit trail flushed.
    pub async fn release_live_agents(&self, within: Duration) -> (usize, usize) {
        self.agents.release_live(within).await
    }
}

fn not_run(tenant: &TenantConfig, why: &str) -> TenantResult {
    let mut result = TenantResult::new(&tenant.id, &tenant.name, &tenant.data_type);
    result.error = Some(TenantError::new(FailureKind::NotRun, why));
    result
}

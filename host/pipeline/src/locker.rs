//! `sluice lock`: every `oci://` plugin and candidate of a configuration resolved to a manifest
//! digest, pulled into the store, its signature verified with the tenant's key and vetted
//! against the linker the tenant will get, then pinned in the lock. A tenant refused here keeps
//! its previous line, so the night goes on running the version that was last verified.

use std::sync::Arc;

use sluice_registry::{BlobStore, Digest, OciRef, Registry, Unsigned};
use sluice_sandbox::{Sandbox, SandboxOptions};

use crate::config::{PipelineConfig, TenantConfig};
use crate::lock::{Lock, Locked, Slot};
use crate::plugins::name_signer;
use crate::vet::{VetReport, vet};

/// What locking did for one plugin.
pub struct LockLine {
    pub tenant: String,
    pub slot: Slot,
    pub reference: String,
    /// The new line, or why not (with the line kept from the previous lock, if any).
    pub verdict: Result<(Locked, VetReport), String>,
    pub kept: Option<Locked>,
}

/// A registry client and a sandbox to vet with, for `config`.
pub struct Locker {
    registry: Arc<Registry>,
    sandbox: Sandbox,
}

impl Locker {
    pub fn new(config: &PipelineConfig) -> anyhow::Result<Locker> {
        let dir = config.plugins.store_dir().ok_or_else(|| {
            anyhow::anyhow!("no plugin store: set [plugins] store, SLUICE_PLUGIN_STORE or HOME")
        })?;
        let mut sandbox = Sandbox::new(SandboxOptions {
            pooling_slots: Some(1),
            max_memory_bytes: config.budget.memory_bytes,
            share: config.share,
        })?;
        // Vetting fills the compiled cache, so the night's first load is a cache hit.
        if let Some(cache) = &config.cache_dir {
            let _ = sandbox.use_compiled_cache(cache);
        }
        Ok(Locker {
            registry: Arc::new(Registry::new(
                BlobStore::open(&dir)?,
                config.plugins.insecure.clone(),
                config.plugins.max_bytes,
            )),
            sandbox,
        })
    }

    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    pub fn sandbox(&self) -> &Sandbox {
        &self.sandbox
    }

    /// Locks every registry plugin of `config`, starting from `previous`.
    pub async fn lock(&self, config: &PipelineConfig, previous: &Lock) -> (Lock, Vec<LockLine>) {
        let signers: Vec<_> = config
            .tenants
            .iter()
            .filter_map(|t| Some((t.id.clone(), t.signer.as_ref()?.key.clone())))
            .collect();
        let mut lock = Lock::default();
        let mut lines = Vec::new();
        for tenant in &config.tenants {
            for slot in [Slot::Current, Slot::Candidate] {
                let reference = match slot {
                    Slot::Current => tenant.plugin.oci().cloned(),
                    Slot::Candidate => tenant.candidate.clone(),
                };
                let Some(reference) = reference else { continue };
                let verdict = self.lock_one(config, tenant, &reference, &signers).await;
                let kept = match &verdict {
                    Ok((locked, _)) => {
                        lock.entries_mut(slot)
                            .insert(tenant.id.clone(), locked.clone());
                        None
                    }
                    Err(_) => previous
                        .entries(slot)
                        .get(&tenant.id)
                        .cloned()
                        .inspect(|old| {
                            lock.entries_mut(slot)
                                .insert(tenant.id.clone(), old.clone());
                        }),
                };
                lines.push(LockLine {
                    tenant: tenant.id.clone(),
                    slot,
                    reference: reference.to_string(),
                    verdict,
                    kept,
                });
            }
        }
        (lock, lines)
    }

    async fn lock_one(
        &self,
        config: &PipelineConfig,
        tenant: &TenantConfig,
        reference: &OciRef,
        signers: &[(String, sluice_registry::SignerKey)],
    ) -> Result<(Locked, VetReport), String> {
        let pulled = self
            .registry
            .pull(reference)
            .await
            .map_err(|e| e.to_string())?;
        let (registry, tenant, reference, signers, max) = (
            Arc::clone(&self.registry),
            tenant.clone(),
            reference.clone(),
            signers.to_vec(),
            config.plugins.max_bytes,
        );
        let refused = |why: String| format!("{reference} refused: {why}");
        let store = registry.store();
        let plugin = store
            .plugin(&pulled.digest, pulled.signatures.as_ref(), max)
            .map_err(&refused)?;
        if let Some(signer) = &tenant.signer {
            let verdict = match &pulled.signatures {
                None => Err(Unsigned::NoSignature {
                    tag: pulled.digest.signature_tag(),
                }),
                Some(_) => sluice_registry::signature::verify(
                    &signer.key,
                    &pulled.digest,
                    &plugin.signatures,
                )
                .map_err(|e| name_signer(e, &plugin.signatures, &signers)),
            };
            verdict.map_err(|e| refused(e.to_string()))?;
        }
        let vetted = vet(
            &self.sandbox,
            &plugin.wasm,
            plugin.wasm_digest.hex(),
            &reference.to_string(),
            tenant.language,
            max,
        )?;
        let report = vetted.report;
        Ok((
            Locked {
                reference: reference.to_string(),
                digest: pulled.digest.to_string(),
                signatures: tenant
                    .signer
                    .as_ref()
                    .and(pulled.signatures.as_ref().map(Digest::to_string)),
                signer: tenant
                    .signer
                    .as_ref()
                    .map_or("none".into(), |s| s.key.fingerprint().to_string()),
                size: report.size,
                language: tenant.language.name().to_string(),
            },
            report,
        ))
    }
}

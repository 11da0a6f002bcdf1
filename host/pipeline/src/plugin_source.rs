//! Where a tenant's plugin comes from: a file pinned by SHA-256 in the configuration, or an
//! `oci://` reference pinned by the lock file; who must have signed it; and the night's
//! `[plugins]` settings.

use std::path::PathBuf;

use sluice_registry::{OciRef, SignerKey};

/// A tenant's plugin.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PluginSource {
    /// A component file and the lowercase hex SHA-256 it must have.
    File { path: PathBuf, sha256: String },
    /// A registry artifact; its manifest digest comes from the lock (or the reference).
    Oci(OciRef),
}

impl PluginSource {
    /// The reference as the configuration writes it, for messages and the audit.
    pub fn reference(&self) -> String {
        match self {
            PluginSource::File { path, .. } => path.display().to_string(),
            PluginSource::Oci(r) => r.to_string(),
        }
    }

    pub fn oci(&self) -> Option<&OciRef> {
        match self {
            PluginSource::Oci(r) => Some(r),
            PluginSource::File { .. } => None,
        }
    }
}

/// The key whose signature a tenant's plugin must carry.
#[derive(Clone, Debug)]
pub struct Signer {
    /// The PEM file, as configured.
    pub path: PathBuf,
    pub key: SignerKey,
}

/// `[plugins]`: where pulled plugins are kept and how registries are reached.
#[derive(Clone, Debug)]
pub struct PluginsConfig {
    /// The content-addressed store (default: [`sluice_registry::default_store_dir`]).
    pub store: Option<PathBuf>,
    /// Registries (`host:port`) allowed over plain HTTP besides loopback ones.
    pub insecure: Vec<String>,
    /// Every tenant must name a `signer`.
    pub require_signer: bool,
    /// The largest plugin pulled or loaded from the store.
    pub max_bytes: u64,
}

impl Default for PluginsConfig {
    fn default() -> Self {
        PluginsConfig {
            store: None,
            insecure: Vec::new(),
            require_signer: false,
            max_bytes: sluice_registry::DEFAULT_MAX_PLUGIN_BYTES,
        }
    }
}

impl PluginsConfig {
    /// The store's directory.
    pub fn store_dir(&self) -> Option<PathBuf> {
        self.store
            .clone()
            .or_else(sluice_registry::default_store_dir)
    }
}

//! Tenant plugins: checked against their pinned SHA-256 before anything else, compiled once per
//! distinct digest (a thousand tenants sharing one transform compile it once).

use std::collections::HashMap;
use std::path::Path;
use std::sync::Mutex;

use sha2::{Digest, Sha256};
use sluice_sandbox::{Sandbox, Transform};

/// The lowercase hex SHA-256 of the file at `path`.
pub fn file_digest(path: &Path) -> std::io::Result<String> {
    Ok(hex::encode(Sha256::digest(std::fs::read(path)?)))
}

/// Compiled plugins by digest; failures are remembered too, so each is reported once per tenant
/// without being retried.
#[derive(Default)]
pub struct PluginCache {
    compiled: Mutex<HashMap<String, Result<Transform, String>>>,
}

impl PluginCache {
    /// The transform at `path`, if its digest is `sha256`; otherwise why not, in one line.
    pub fn load(&self, sandbox: &Sandbox, path: &Path, sha256: &str) -> Result<Transform, String> {
        let bytes = std::fs::read(path).map_err(|e| {
            format!(
                "plugin {} cannot be read ({e}); build guests with `cargo xtask guests`",
                path.display()
            )
        })?;
        let actual = hex::encode(Sha256::digest(&bytes));
        if actual != sha256 {
            return Err(format!(
                "plugin {} refused: its sha256 is {actual} but the configuration pins {sha256}; \
                 if you rebuilt it on purpose, update `sha256` (`sluice digest {}` prints it)",
                path.display(),
                path.display()
            ));
        }
        if let Some(known) = self.lock().get(sha256) {
            return known.clone();
        }
        let compiled = sandbox
            .load(&bytes, &path.display().to_string())
            .map_err(|e| format!("{e:#}"));
        self.lock().insert(sha256.to_string(), compiled.clone());
        compiled
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Result<Transform, String>>> {
        self.compiled.lock().unwrap_or_else(|p| p.into_inner())
    }
}

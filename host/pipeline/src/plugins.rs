//! Tenant plugins: checked against their pinned SHA-256 before anything else, and read, hashed and
//! compiled once per file per run (a thousand tenants sharing one transform pay for it once).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use sha2::{Digest, Sha256};
use sluice_sandbox::{Sandbox, Transform, WasiSurface};

/// The lowercase hex SHA-256 of the file at `path`.
pub fn file_digest(path: &Path) -> std::io::Result<String> {
    Ok(hex::encode(Sha256::digest(std::fs::read(path)?)))
}

/// What one plugin file turned out to be the first time a tenant needed it.
#[derive(Clone)]
struct Loaded {
    /// The file's actual digest, or why it could not be read.
    digest: Result<String, String>,
    /// The bytes that were hashed, until they are compiled.
    bytes: Option<Vec<u8>>,
    /// The compiled component (compiled only when the first tenant's pinned digest matched).
    compiled: Option<Result<Transform, String>>,
}

/// Plugins by path, for one run: files are read and hashed once, and compiled once, so tenants
/// see the same bytes even if the file is replaced mid-run.
#[derive(Default)]
pub(crate) struct PluginCache {
    loaded: Mutex<HashMap<(PathBuf, WasiSurface), Loaded>>,
}

impl PluginCache {
    /// The transform at `path`, if its digest is `sha256`; otherwise why not, in one line.
    pub(crate) fn load(
        &self,
        sandbox: &Sandbox,
        path: &Path,
        sha256: &str,
        surface: WasiSurface,
    ) -> Result<Transform, String> {
        // One lock for the whole load: a second tenant of the same plugin waits for the first
        // compile instead of compiling it again.
        let mut loaded = self.loaded.lock().unwrap_or_else(|p| p.into_inner());
        let entry = loaded
            .entry((path.to_path_buf(), surface))
            .or_insert_with(|| match std::fs::read(path) {
                Ok(bytes) => Loaded {
                    digest: Ok(hex::encode(Sha256::digest(&bytes))),
                    bytes: Some(bytes),
                    compiled: None,
                },
                Err(e) => Loaded {
                    digest: Err(format!(
                        "plugin {} cannot be read ({e}){}",
                        path.display(),
                        sluice_sandbox::missing_plugin_hint(path)
                    )),
                    bytes: None,
                    compiled: None,
                },
            });
        let actual = entry.digest.clone()?;
        if actual != sha256 {
            return Err(format!(
                "plugin {} refused: its sha256 is {actual} but the configuration pins {sha256}; \
                 if you rebuilt it on purpose, update `sha256` (`sluice digest {}` prints it)",
                path.display(),
                path.display()
            ));
        }
        if let Some(compiled) = &entry.compiled {
            return compiled.clone();
        }
        // Compile the bytes that were hashed, not whatever the file holds now.
        let bytes = entry.bytes.take().unwrap_or_default();
        let compiled = sandbox
            .load_pinned(&bytes, &actual, &path.display().to_string(), surface)
            .map_err(|e| format!("{e:#}"));
        entry.compiled = Some(compiled.clone());
        compiled
    }
}

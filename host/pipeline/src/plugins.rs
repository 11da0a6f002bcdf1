//! Tenant plugins: checked against their pin (a file's SHA-256, a registry plugin's locked
//! manifest digest and its signer's signature) before anything else, vetted, and read, hashed
//! and compiled once per plugin per run (a thousand tenants sharing one transform pay once).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use sha2::{Digest as _, Sha256};
use sluice_registry::{BlobStore, Digest, OciRef, SignerKey, Unsigned};
use sluice_sandbox::{Sandbox, Transform, WasiSurface};

use crate::config::Language;
use crate::lock::Locked;
use crate::outcome::PluginLoad;
use crate::vet::{VetReport, vet};

/// The lowercase hex SHA-256 of the file at `path`.
pub fn file_digest(path: &Path) -> std::io::Result<String> {
    Ok(hex::encode(Sha256::digest(std::fs::read(path)?)))
}

/// A plugin vetted and loaded, with where it came from.
#[derive(Clone)]
pub struct LoadedPlugin {
    pub transform: Transform,
    pub vet: VetReport,
    /// The reference as configured.
    pub reference: String,
    /// What was pinned: the manifest digest of a registry plugin, `sha256:<hex>` of a file.
    pub digest: String,
    /// The fingerprint of the key whose signature was verified.
    pub signer: Option<String>,
}

impl LoadedPlugin {
    /// How it was loaded, with where it came from, for the night's result.
    pub fn load(&self) -> PluginLoad {
        PluginLoad {
            reference: Some(self.reference.clone()),
            digest: Some(self.digest.clone()),
            signer: self.signer.clone(),
            ..self.vet.load.clone()
        }
    }
}

/// What one plugin turned out to be the first time a tenant needed it.
struct Loaded {
    /// The bytes' actual SHA-256 (hex), or why they could not be had.
    sha256: Result<String, String>,
    /// The bytes that were hashed, until they are compiled.
    bytes: Option<Vec<u8>>,
    /// The signatures that came with them (a registry plugin's).
    signatures: Vec<(sluice_registry::artifact::SignatureLayer, Vec<u8>)>,
    /// The vetted component (vetted only when the first tenant's pin matched).
    vetted: Option<Result<(Transform, VetReport), String>>,
}

#[derive(Clone, PartialEq, Eq, Hash)]
enum Key {
    File(PathBuf, WasiSurface),
    Stored(Digest, WasiSurface),
}

/// Plugins for one run: each read and hashed once, and vetted once, so tenants see the same
/// bytes even if a file is replaced mid-run.
#[derive(Default)]
pub(crate) struct PluginCache {
    loaded: Mutex<HashMap<Key, Loaded>>,
}

/// Who else's keys a signature might be by, to say so when it is not the tenant's.
pub(crate) type KnownSigners<'a> = &'a [(String, SignerKey)];

impl PluginCache {
    /// The transform at `path`, if its digest is `sha256`; otherwise why not, in one line.
    pub(crate) fn load_file(
        &self,
        sandbox: &Sandbox,
        path: &Path,
        sha256: &str,
        language: Language,
        max_bytes: u64,
    ) -> Result<LoadedPlugin, String> {
        // One lock for the whole load: a second tenant of the same plugin waits for the first
        // compile instead of compiling it again.
        let mut loaded = self.loaded.lock().unwrap_or_else(|p| p.into_inner());
        let entry = loaded
            .entry(Key::File(path.to_path_buf(), language.surface()))
            .or_insert_with(|| match std::fs::read(path) {
                Ok(bytes) => Loaded {
                    sha256: Ok(hex::encode(Sha256::digest(&bytes))),
                    bytes: Some(bytes),
                    signatures: Vec::new(),
                    vetted: None,
                },
                Err(e) => Loaded::failed(format!(
                    "plugin {} cannot be read ({e}){}",
                    path.display(),
                    sluice_sandbox::missing_plugin_hint(path)
                )),
            });
        let actual = entry.sha256.clone()?;
        if actual != sha256 {
            return Err(format!(
                "plugin {} refused: its sha256 is {actual} but the configuration pins {sha256}; \
                 if you rebuilt it on purpose, update `sha256` (`sluice digest {}` prints it)",
                path.display(),
                path.display()
            ));
        }
        let name = path.display().to_string();
        let (transform, vet) = entry.vet(sandbox, &name, language, max_bytes)?;
        Ok(LoadedPlugin {
            transform,
            vet,
            reference: name,
            digest: format!("sha256:{actual}"),
            signer: None,
        })
    }

    /// The registry plugin `locked` pins, from the store alone: its bytes verified by digest,
    /// its signature by `signer` verified, then vetted.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn load_stored(
        &self,
        sandbox: &Sandbox,
        store: &BlobStore,
        reference: &OciRef,
        locked: &Locked,
        signer: Option<&SignerKey>,
        others: KnownSigners<'_>,
        language: Language,
        max_bytes: u64,
    ) -> Result<LoadedPlugin, String> {
        let refused = |why: String| format!("plugin {reference} refused: {why}");
        let digest = locked.digest().map_err(&refused)?;
        let signatures = locked.signatures().map_err(&refused)?;
        let mut loaded = self.loaded.lock().unwrap_or_else(|p| p.into_inner());
        let entry = loaded
            .entry(Key::Stored(digest.clone(), language.surface()))
            .or_insert_with(
                || match store.plugin(&digest, signatures.as_ref(), max_bytes) {
                    Ok(plugin) => Loaded {
                        sha256: Ok(plugin.wasm_digest.hex().to_string()),
                        bytes: Some(plugin.wasm),
                        signatures: plugin.signatures,
                        vetted: None,
                    },
                    Err(e) => Loaded::failed(e),
                },
            );
        entry.sha256.clone().map_err(&refused)?;
        if let Some(key) = signer {
            sluice_registry::signature::verify(key, &digest, &entry.signatures)
                .map_err(|e| refused(name_signer(e, &entry.signatures, others).to_string()))?;
        }
        let (transform, vet) = entry.vet(sandbox, &reference.to_string(), language, max_bytes)?;
        Ok(LoadedPlugin {
            transform,
            vet,
            reference: reference.to_string(),
            digest: digest.to_string(),
            signer: signer.map(|k| k.fingerprint().to_string()),
        })
    }
}

/// `why`, saying whose key signed instead when one of `others` did.
pub(crate) fn name_signer(
    why: Unsigned,
    signatures: &[(sluice_registry::artifact::SignatureLayer, Vec<u8>)],
    others: KnownSigners<'_>,
) -> Unsigned {
    match why {
        Unsigned::NotByKey {
            count, fingerprint, ..
        } => {
            let by = others
                .iter()
                .find(|(_, key)| {
                    key.fingerprint() != fingerprint
                        && signatures.iter().any(|(l, p)| key.signed(p, &l.signature))
                })
                .map(|(who, key)| format!(": it is signed by {who}'s key {}", key.fingerprint()))
                .unwrap_or_default();
            Unsigned::NotByKey {
                count,
                fingerprint,
                by,
            }
        }
        other => other,
    }
}

impl Loaded {
    fn failed(why: String) -> Loaded {
        Loaded {
            sha256: Err(why),
            bytes: None,
            signatures: Vec::new(),
            vetted: None,
        }
    }

    /// Vets the bytes that were hashed (once), not whatever the file or store holds now.
    fn vet(
        &mut self,
        sandbox: &Sandbox,
        name: &str,
        language: Language,
        max_bytes: u64,
    ) -> Result<(Transform, VetReport), String> {
        if let Some(vetted) = &self.vetted {
            return vetted.clone();
        }
        let sha256 = self.sha256.clone()?;
        let bytes = self.bytes.take().unwrap_or_default();
        let vetted = vet(sandbox, &bytes, &sha256, name, language, max_bytes)
            .map(|v| (v.transform, v.report));
        self.vetted = Some(vetted.clone());
        vetted
    }
}

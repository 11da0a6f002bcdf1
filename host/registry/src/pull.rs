//! Pulling a plugin from a registry into the store: manifest, wasm layer and cosign signatures,
//! each bounded before it is held and verified by digest before it is stored.

use std::collections::HashMap;
use std::sync::Mutex;

use futures_util::StreamExt as _;
use oci_client::Client;
use oci_client::client::{ClientConfig, ClientProtocol};
use oci_client::errors::{OciDistributionError, OciErrorCode};
use oci_client::manifest::OciDescriptor;

use crate::artifact::{
    self, DOCKER_MANIFEST, MAX_MANIFEST_BYTES, MAX_PAYLOAD_BYTES, OCI_MANIFEST, PluginManifest,
};
use crate::credentials::auth_for;
use crate::digest::Digest;
use crate::reference::OciRef;
use crate::store::{BlobStore, StoreError};

/// What a pull put in the store.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pulled {
    /// The plugin's manifest digest: what a lock pins.
    pub digest: Digest,
    /// The wasm layer.
    pub wasm: artifact::Blob,
    /// The cosign signature manifest found beside it, if any.
    pub signatures: Option<Digest>,
}

/// Why a pull failed, in one line naming the reference.
#[derive(Debug, thiserror::Error)]
pub enum PullError {
    #[error("{reference}: the registry could not be reached or refused: {detail}")]
    Registry { reference: String, detail: String },
    #[error("{reference} is refused: {detail}")]
    Refused { reference: String, detail: String },
    #[error("{reference}: {source}")]
    Store {
        reference: String,
        #[source]
        source: StoreError,
    },
}

/// A registry client that pulls into one store.
pub struct Registry {
    store: BlobStore,
    /// Registries (`host:port`) the operator allows over plain HTTP besides loopback ones.
    insecure: Vec<String>,
    max_plugin_bytes: u64,
    clients: Mutex<HashMap<String, Client>>,
}

impl Registry {
    pub fn new(store: BlobStore, insecure: Vec<String>, max_plugin_bytes: u64) -> Registry {
        Registry {
            store,
            insecure,
            max_plugin_bytes,
            clients: Mutex::new(HashMap::new()),
        }
    }

    pub fn store(&self) -> &BlobStore {
        &self.store
    }

    /// The largest wasm layer pulled or read from the store.
    pub fn max_plugin_bytes(&self) -> u64 {
        self.max_plugin_bytes
    }

    fn client(&self, reference: &OciRef) -> Client {
        let mut clients = self.clients.lock().unwrap_or_else(|p| p.into_inner());
        clients
            .entry(reference.registry.clone())
            .or_insert_with(|| {
                let plain = reference.is_loopback() || self.insecure.contains(&reference.registry);
                Client::new(ClientConfig {
                    protocol: if plain {
                        ClientProtocol::Http
                    } else {
                        ClientProtocol::Https
                    },
                    connect_timeout: Some(std::time::Duration::from_secs(10)),
                    read_timeout: Some(std::time::Duration::from_secs(60)),
                    ..ClientConfig::default()
                })
            })
            .clone()
    }

    /// Resolves `reference` (a tag, or a digest) and stores its manifest, wasm layer and
    /// signatures.
    pub async fn pull(&self, reference: &OciRef) -> Result<Pulled, PullError> {
        let client = self.client(reference);
        let auth = auth_for(&reference.registry);
        let (manifest, digest) =
            self.manifest(&client, &auth, reference)
                .await?
                .ok_or_else(|| PullError::Registry {
                    reference: reference.to_string(),
                    detail: "no such manifest (is the tag pushed?)".into(),
                })?;
        let pinned = reference.at(&digest);
        let parsed = PluginManifest::parse(&manifest).map_err(|detail| PullError::Refused {
            reference: reference.to_string(),
            detail,
        })?;
        self.blob(&client, &pinned, &parsed.wasm, self.max_plugin_bytes)
            .await?;
        let signatures = self.signatures(&client, &auth, &pinned, None).await?;
        self.put(reference, &digest, &manifest)?;
        Ok(Pulled {
            digest,
            wasm: parsed.wasm,
            signatures,
        })
    }

    /// Makes sure the store holds `digest` and, if given, the signature manifest `signatures`
    /// with their blobs, fetching by digest what it lacks: a pinned plugin is never re-resolved.
    pub async fn fetch_pinned(
        &self,
        reference: &OciRef,
        digest: &Digest,
        signatures: Option<&Digest>,
    ) -> Result<(), PullError> {
        let pinned = reference.at(digest);
        let manifest = match self.store.get(digest, MAX_MANIFEST_BYTES) {
            Ok(bytes) => Some(bytes),
            Err(StoreError::NotStored { .. } | StoreError::Corrupt { .. }) => None,
            Err(source) => {
                return Err(PullError::Store {
                    reference: reference.to_string(),
                    source,
                });
            }
        };
        let wasm_stored = manifest
            .as_deref()
            .and_then(|m| PluginManifest::parse(m).ok())
            .is_some_and(|m| self.store.contains(&m.wasm.digest));
        let signatures_stored = signatures.is_none_or(|s| self.store.contains(s));
        if manifest.is_some() && wasm_stored && signatures_stored {
            return Ok(());
        }
        let client = self.client(reference);
        let auth = auth_for(&reference.registry);
        let manifest = match manifest {
            Some(m) => m,
            None => {
                let (bytes, _) =
                    self.manifest(&client, &auth, &pinned)
                        .await?
                        .ok_or_else(|| PullError::Registry {
                            reference: pinned.to_string(),
                            detail: "the registry no longer has this digest".into(),
                        })?;
                bytes
            }
        };
        let parsed = PluginManifest::parse(&manifest).map_err(|detail| PullError::Refused {
            reference: pinned.to_string(),
            detail,
        })?;
        self.blob(&client, &pinned, &parsed.wasm, self.max_plugin_bytes)
            .await?;
        if let Some(signatures) = signatures {
            self.signatures(&client, &auth, &pinned, Some(signatures))
                .await?;
        }
        self.put(reference, digest, &manifest)
    }

    fn put(&self, reference: &OciRef, digest: &Digest, bytes: &[u8]) -> Result<(), PullError> {
        self.store
            .put(digest, bytes)
            .map_err(|source| PullError::Store {
                reference: reference.to_string(),
                source,
            })
    }

    /// The manifest `reference` names and its digest (checked against the reference's own
    /// digest), or `None` if the registry has no such manifest.
    async fn manifest(
        &self,
        client: &Client,
        auth: &oci_client::secrets::RegistryAuth,
        reference: &OciRef,
    ) -> Result<Option<(Vec<u8>, Digest)>, PullError> {
        let fetched = client
            .pull_manifest_raw(
                &reference.client_ref(),
                auth,
                &[OCI_MANIFEST, DOCKER_MANIFEST],
            )
            .await;
        let (bytes, _) = match fetched {
            Ok(found) => found,
            Err(e) if is_unknown(&e) => return Ok(None),
            Err(e) => {
                return Err(PullError::Registry {
                    reference: reference.to_string(),
                    detail: e.to_string(),
                });
            }
        };
        if bytes.len() as u64 > MAX_MANIFEST_BYTES {
            return Err(PullError::Refused {
                reference: reference.to_string(),
                detail: format!(
                    "its manifest is {} bytes, more than {MAX_MANIFEST_BYTES}",
                    bytes.len()
                ),
            });
        }
        let digest = Digest::of(&bytes);
        if let Some(pinned) = &reference.digest
            && pinned != &digest
        {
            return Err(PullError::Refused {
                reference: reference.to_string(),
                detail: format!("the registry answered with a manifest whose digest is {digest}"),
            });
        }
        Ok(Some((bytes, digest)))
    }

    /// Stores the blob `blob` of `reference`, unless the store already holds it intact; at most
    /// `limit` bytes are taken, and the bytes must have the blob's digest and declared size.
    async fn blob(
        &self,
        client: &Client,
        reference: &OciRef,
        blob: &artifact::Blob,
        limit: u64,
    ) -> Result<(), PullError> {
        let refused = |detail: String| PullError::Refused {
            reference: reference.to_string(),
            detail,
        };
        if blob.size > limit {
            return Err(refused(format!(
                "its layer {} is {} bytes, more than the {limit} a plugin may be ([plugins] max_bytes)",
                blob.digest, blob.size
            )));
        }
        if self.store.get(&blob.digest, limit).is_ok() {
            return Ok(());
        }
        let descriptor = OciDescriptor {
            digest: blob.digest.to_string(),
            size: blob.size as i64,
            ..OciDescriptor::default()
        };
        let mut stream = client
            .pull_blob_stream(&reference.client_ref(), &descriptor)
            .await
            .map_err(|e| PullError::Registry {
                reference: reference.to_string(),
                detail: format!("fetching {}: {e}", blob.digest),
            })?;
        let mut bytes = Vec::with_capacity(blob.size as usize);
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|e| {
                refused(format!(
                    "its layer {} did not arrive whole ({} of {} bytes, truncated or changed \
                     on the way): {e}",
                    blob.digest,
                    bytes.len(),
                    blob.size
                ))
            })?;
            if bytes.len() as u64 + chunk.len() as u64 > blob.size {
                return Err(refused(format!(
                    "its layer {} is longer than the {} bytes its manifest declares",
                    blob.digest, blob.size
                )));
            }
            bytes.extend_from_slice(&chunk);
        }
        if bytes.len() as u64 != blob.size {
            return Err(refused(format!(
                "its layer {} is {} bytes, not the {} its manifest declares (truncated)",
                blob.digest,
                bytes.len(),
                blob.size
            )));
        }
        let actual = Digest::of(&bytes);
        if actual != blob.digest {
            return Err(refused(format!(
                "its layer {} arrived with other content ({actual})",
                blob.digest
            )));
        }
        self.put(reference, &blob.digest, &bytes)
    }

    /// Stores the cosign signature manifest of `reference` (by its `.sig` tag, or `pinned`)
    /// and its payloads; `None` if it has none.
    async fn signatures(
        &self,
        client: &Client,
        auth: &oci_client::secrets::RegistryAuth,
        reference: &OciRef,
        pinned: Option<&Digest>,
    ) -> Result<Option<Digest>, PullError> {
        let Some(digest) = &reference.digest else {
            return Ok(None);
        };
        let at = match pinned {
            Some(p) => reference.at(p),
            None => reference.tagged(&digest.signature_tag()),
        };
        let Some((bytes, sig_digest)) = self.manifest(client, auth, &at).await? else {
            return Ok(None);
        };
        let layers = artifact::signature_layers(&bytes).map_err(|detail| PullError::Refused {
            reference: at.to_string(),
            detail,
        })?;
        for layer in &layers {
            self.blob(client, &at, &layer.payload, MAX_PAYLOAD_BYTES)
                .await?;
        }
        self.put(&at, &sig_digest, &bytes)?;
        Ok(Some(sig_digest))
    }
}

fn is_unknown(e: &OciDistributionError) -> bool {
    match e {
        OciDistributionError::RegistryError { envelope, .. } => envelope.errors.iter().any(|e| {
            matches!(
                e.code,
                OciErrorCode::ManifestUnknown | OciErrorCode::NameUnknown
            )
        }),
        OciDistributionError::ServerError { code: 404, .. } => true,
        OciDistributionError::ImageManifestNotFoundError(_) => true,
        _ => false,
    }
}

/// A plugin as the store holds it, read offline: the wasm bytes (verified) and the signatures
/// with their payloads (verified).
pub struct StoredPlugin {
    pub digest: Digest,
    pub wasm_digest: Digest,
    pub wasm: Vec<u8>,
    pub signatures: Vec<(artifact::SignatureLayer, Vec<u8>)>,
}

impl BlobStore {
    /// The plugin whose manifest is `digest`, with the signatures of the signature manifest
    /// `signatures`, from the store alone.
    pub fn plugin(
        &self,
        digest: &Digest,
        signatures: Option<&Digest>,
        max_plugin_bytes: u64,
    ) -> Result<StoredPlugin, String> {
        let manifest = self
            .get(digest, MAX_MANIFEST_BYTES)
            .map_err(|e| e.to_string())?;
        let parsed = PluginManifest::parse(&manifest)?;
        let wasm = self
            .get(&parsed.wasm.digest, max_plugin_bytes)
            .map_err(|e| e.to_string())?;
        let mut signed = Vec::new();
        if let Some(signatures) = signatures {
            let bytes = self
                .get(signatures, MAX_MANIFEST_BYTES)
                .map_err(|e| e.to_string())?;
            for layer in artifact::signature_layers(&bytes)? {
                let payload = self
                    .get(&layer.payload.digest, MAX_PAYLOAD_BYTES)
                    .map_err(|e| e.to_string())?;
                signed.push((layer, payload));
            }
        }
        Ok(StoredPlugin {
            digest: digest.clone(),
            wasm_digest: parsed.wasm.digest,
            wasm,
            signatures: signed,
        })
    }
}

//! A content-addressed store of manifests and blobs on local disk, `blobs/sha256/<hex>`: written
//! atomically, and every read is hashed and compared with its name, so a file changed on disk
//! is never run.

use std::io::Read as _;
use std::path::{Path, PathBuf};

use sluice_jail::Jail;

use crate::digest::Digest;

/// The directory of blobs.
pub struct BlobStore {
    blobs: Jail,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{digest} is not in the plugin store {store}")]
    NotStored { digest: Digest, store: String },
    #[error(
        "{digest} in the plugin store {store} has other content ({actual}): removed; it is fetched again by the next `sluice lock` or run that can reach the registry"
    )]
    Corrupt {
        digest: Digest,
        actual: Digest,
        store: String,
    },
    #[error("{digest} in the plugin store is {size} bytes, more than the {limit} allowed")]
    TooBig {
        digest: Digest,
        size: u64,
        limit: u64,
    },
    #[error("the plugin store {store}: {detail}")]
    Io { store: String, detail: String },
}

impl BlobStore {
    /// Opens (creating) the store at `dir`.
    pub fn open(dir: &Path) -> Result<BlobStore, StoreError> {
        let io = |e: std::io::Error| StoreError::Io {
            store: dir.display().to_string(),
            detail: e.to_string(),
        };
        let blobs = Jail::create(&dir.join("blobs").join("sha256")).map_err(io)?;
        Ok(BlobStore { blobs })
    }

    /// The store's directory, for messages.
    pub fn dir(&self) -> PathBuf {
        self.blobs
            .root()
            .parent()
            .and_then(Path::parent)
            .map(Path::to_path_buf)
            .unwrap_or_default()
    }

    fn io(&self, detail: impl ToString) -> StoreError {
        StoreError::Io {
            store: self.dir().display().to_string(),
            detail: detail.to_string(),
        }
    }

    /// Whether `digest` is stored (not whether it is intact: [`get`](Self::get) checks that).
    pub fn contains(&self, digest: &Digest) -> bool {
        self.blobs.is_file(Path::new(digest.hex()))
    }

    /// Stores `bytes`, which must have `digest`.
    pub fn put(&self, digest: &Digest, bytes: &[u8]) -> Result<(), StoreError> {
        let actual = Digest::of(bytes);
        if &actual != digest {
            return Err(StoreError::Corrupt {
                digest: digest.clone(),
                actual,
                store: self.dir().display().to_string(),
            });
        }
        if self.contains(digest) {
            return Ok(());
        }
        self.blobs
            .replace(digest.hex(), bytes, 0o644)
            .map_err(|e| self.io(format!("writing {digest}: {e}")))
    }

    /// The bytes of `digest`, at most `limit` of them, verified against the digest.
    pub fn get(&self, digest: &Digest, limit: u64) -> Result<Vec<u8>, StoreError> {
        let mut file = match self.blobs.open_file(Path::new(digest.hex())) {
            Ok(file) => file,
            Err(e) if e.is_not_found() => {
                return Err(StoreError::NotStored {
                    digest: digest.clone(),
                    store: self.dir().display().to_string(),
                });
            }
            Err(e) => return Err(self.io(format!("opening {digest}: {e}"))),
        };
        let size = file
            .metadata()
            .map_err(|e| self.io(format!("reading {digest}: {e}")))?
            .len();
        if size > limit {
            return Err(StoreError::TooBig {
                digest: digest.clone(),
                size,
                limit,
            });
        }
        let mut bytes = Vec::with_capacity(size as usize);
        // Bounded even if the file grows after the size was read.
        file.by_ref()
            .take(limit + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| self.io(format!("reading {digest}: {e}")))?;
        let actual = Digest::of(&bytes);
        if &actual != digest {
            let _ = self.blobs.remove(digest.hex());
            return Err(StoreError::Corrupt {
                digest: digest.clone(),
                actual,
                store: self.dir().display().to_string(),
            });
        }
        Ok(bytes)
    }
}

/// Where the store is by default: `$SLUICE_PLUGIN_STORE`, else `$XDG_CACHE_HOME/sluice/oci`,
/// else `~/.cache/sluice/oci`.
pub fn default_store_dir() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("SLUICE_PLUGIN_STORE").filter(|d| !d.is_empty()) {
        return Some(PathBuf::from(dir));
    }
    let cache = std::env::var_os("XDG_CACHE_HOME")
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))?;
    Some(cache.join("sluice").join("oci"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_blob_changed_on_disk_is_refused_and_removed() {
        let dir = tempfile::tempdir().unwrap();
        let store = BlobStore::open(dir.path()).unwrap();
        let d = Digest::of(b"plugin bytes");
        store.put(&d, b"plugin bytes").unwrap();
        assert_eq!(store.get(&d, 100).unwrap(), b"plugin bytes");
        assert!(matches!(
            store.get(&d, 5),
            Err(StoreError::TooBig { size: 12, .. })
        ));
        let path = dir.path().join("blobs/sha256").join(d.hex());
        std::fs::write(&path, b"plugin bytez").unwrap();
        let e = store.get(&d, 100).unwrap_err();
        assert!(matches!(e, StoreError::Corrupt { .. }), "{e}");
        assert!(
            !path.exists(),
            "a corrupt entry is removed so it can be fetched again"
        );
        assert!(matches!(
            store.get(&d, 100),
            Err(StoreError::NotStored { .. })
        ));
    }

    #[test]
    fn bytes_that_do_not_match_their_digest_are_not_stored() {
        let dir = tempfile::tempdir().unwrap();
        let store = BlobStore::open(dir.path()).unwrap();
        let d = Digest::of(b"a");
        assert!(matches!(
            store.put(&d, b"b"),
            Err(StoreError::Corrupt { .. })
        ));
        assert!(!store.contains(&d));
    }
}

//! Compiled plugins on disk, so a plugin is compiled once per (sha256, engine configuration)
//! instead of on every run: a Python or JS component takes seconds to compile and milliseconds to
//! load compiled.
//!
//! Loading compiled code is `unsafe` in Wasmtime for a reason: the bytes become machine code.
//! So the cache trusts nothing it did not write itself, and checks that before every use:
//! - the directory must belong to this user and be writable by no one else (it is created 0700);
//! - an entry is `<plugin sha256>-<engine key>.cwasm` plus a `.blake3` sidecar holding the BLAKE3
//!   of the `.cwasm`, each written to a temporary file and renamed into place, sidecar last;
//! - a load reads the whole `.cwasm`, checks it against the sidecar, and deserializes exactly
//!   the bytes it checked. A missing sidecar, a truncated, corrupt or foreign file is deleted
//!   and the plugin compiled again, never loaded.
//!
//! The engine key is a digest of [`Engine::precompile_compatibility_hash`], which covers
//! Wasmtime's version and every setting that changes generated code.

use std::hash::Hasher;
use std::io::Write as _;
use std::os::unix::fs::{
    DirBuilderExt as _, MetadataExt as _, OpenOptionsExt as _, PermissionsExt as _,
};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::SystemTime;

use wasmtime::Engine;
use wasmtime::component::Component;

/// Why the cache directory cannot be used; the sandbox then compiles every plugin.
#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    #[error("plugin cache {dir}: {what}")]
    Io {
        dir: PathBuf,
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "plugin cache {dir} is refused: {why}; compiled code is only loaded from a directory \
         only you can write (`chmod 700` it, or choose another with --cache-dir / SLUICE_CACHE_DIR)"
    )]
    Untrusted { dir: PathBuf, why: String },
}

/// Counts of what the cache did, for tests, benchmarks and `sluice` output.
#[derive(Debug, Default)]
pub struct CacheStats {
    hits: AtomicU64,
    compiled: AtomicU64,
    rejected: AtomicU64,
}

impl CacheStats {
    /// Plugins loaded compiled from disk.
    pub fn hits(&self) -> u64 {
        self.hits.load(Ordering::Relaxed)
    }
    /// Plugins compiled (and stored) because no usable entry existed.
    pub fn compiled(&self) -> u64 {
        self.compiled.load(Ordering::Relaxed)
    }
    /// Entries found unusable (incomplete, corrupt, foreign) and deleted.
    pub fn rejected(&self) -> u64 {
        self.rejected.load(Ordering::Relaxed)
    }
}

/// How a plugin's compiled code was obtained.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CodeOrigin {
    /// Loaded compiled from the cache.
    Cached,
    /// Compiled now (and stored, unless `stored` says why not).
    Compiled { stored: Result<(), String> },
    /// A cache entry existed but was unusable (`reason`); compiled again.
    Recompiled {
        reason: String,
        stored: Result<(), String>,
    },
    /// No cache is configured.
    Uncached,
}

/// One entry, as `sluice cache ls` shows it.
#[derive(Clone, Debug)]
pub struct CacheEntry {
    pub path: PathBuf,
    /// The plugin's SHA-256 (hex).
    pub plugin_sha256: String,
    /// The engine key it was compiled for.
    pub engine_key: String,
    /// Whether that is this engine's key (entries of other Wasmtime versions or settings are
    /// never loaded; `sluice cache clear` removes them).
    pub current_engine: bool,
    /// Whether the digest sidecar is present (an entry without one is never loaded).
    pub complete: bool,
    pub bytes: u64,
    pub modified: Option<SystemTime>,
}

/// A directory of compiled plugins for one engine.
#[derive(Debug)]
pub struct CompiledCache {
    dir: PathBuf,
    engine_key: String,
    stats: CacheStats,
}

const CODE_EXT: &str = "cwasm";
const DIGEST_EXT: &str = "blake3";
/// A sidecar is `blake3:` and 64 hex digits; anything longer is not ours.
const MAX_SIDECAR_BYTES: u64 = 128;

/// What a lookup found.
pub(crate) enum Lookup {
    Hit(Component),
    Miss,
    Rejected(String),
}

impl CompiledCache {
    /// The default directory: `$SLUICE_CACHE_DIR`, else `$XDG_CACHE_HOME/sluice/plugins`, else
    /// `~/.cache/sluice/plugins`; `None` without any of them.
    pub fn default_dir() -> Option<PathBuf> {
        let var = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty());
        if let Some(dir) = var("SLUICE_CACHE_DIR") {
            return Some(PathBuf::from(dir));
        }
        let base = var("XDG_CACHE_HOME")
            .map(PathBuf::from)
            .or_else(|| var("HOME").map(|h| PathBuf::from(h).join(".cache")))?;
        Some(base.join("sluice").join("plugins"))
    }

    /// Opens (creating, mode 0700) the cache at `dir` for `engine`'s compiled code.
    pub fn open(dir: &Path, engine: &Engine) -> Result<CompiledCache, CacheError> {
        let io = |what: &str| {
            let what = what.to_string();
            move |source| CacheError::Io {
                dir: dir.to_path_buf(),
                what,
                source,
            }
        };
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(io("creating the directory"))?;
        let meta = std::fs::metadata(dir).map_err(io("reading the directory"))?;
        let untrusted = |why: String| CacheError::Untrusted {
            dir: dir.to_path_buf(),
            why,
        };
        // SAFETY: geteuid has no preconditions and cannot fail.
        let me = unsafe { libc::geteuid() };
        if meta.uid() != me {
            return Err(untrusted(format!(
                "it belongs to uid {}, not to you (uid {me})",
                meta.uid()
            )));
        }
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o022 != 0 {
            return Err(untrusted(format!(
                "others can write to it (mode {mode:03o})"
            )));
        }
        Ok(CompiledCache {
            dir: dir.to_path_buf(),
            engine_key: engine_key(engine),
            stats: CacheStats::default(),
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// This engine's key, as entry names carry it.
    pub fn engine_key(&self) -> &str {
        &self.engine_key
    }

    pub fn stats(&self) -> &CacheStats {
        &self.stats
    }

    fn code_path(&self, plugin_sha256: &str) -> PathBuf {
        self.dir
            .join(format!("{plugin_sha256}-{}.{CODE_EXT}", self.engine_key))
    }

    /// The compiled code of the plugin whose SHA-256 is `plugin_sha256`, if a verified entry
    /// exists. An unusable entry is deleted and reported as `Rejected`.
    pub(crate) fn get(&self, engine: &Engine, plugin_sha256: &str) -> Lookup {
        let code = self.code_path(plugin_sha256);
        let sidecar = sidecar_path(&code);
        let reject = |reason: String| {
            let _ = std::fs::remove_file(&sidecar);
            let _ = std::fs::remove_file(&code);
            self.stats.rejected.fetch_add(1, Ordering::Relaxed);
            Lookup::Rejected(reason)
        };
        let recorded = match read_sidecar(&sidecar) {
            Ok(Some(digest)) => digest,
            Ok(None) if code.exists() => {
                return reject("its entry has no digest (an interrupted write)".into());
            }
            Ok(None) => return Lookup::Miss,
            Err(why) => return reject(why),
        };
        let mut file = match std::fs::File::open(&code) {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return reject("its digest has no compiled code".into());
            }
            Err(e) => return reject(format!("its compiled code cannot be read ({e})")),
        };
        // Hashed through a small buffer, then mapped by Wasmtime: a 33 MB entry costs one read
        // pass and no copy (reading it whole and deserializing the copy took 37 of 46 ms).
        let mut hasher = blake3::Hasher::new();
        let len = match hasher.update_reader(&mut file) {
            Ok(_) => hasher.count(),
            Err(e) => return reject(format!("its compiled code cannot be read ({e})")),
        };
        if hasher.finalize().to_hex().as_str() != recorded {
            return reject(format!(
                "its compiled code ({len} bytes) does not match its recorded digest (truncated, \
                 corrupt or not written by Sluice)"
            ));
        }
        // SAFETY: this is the very file (the inode behind `file`, reopened through /proc, so a
        // rename in between cannot swap it) whose bytes were just checked against the digest
        // this cache recorded when it serialized them with an engine of the same compatibility
        // key, in a directory only this user can write (checked by `open`); entries are replaced
        // by rename, never rewritten in place. Wasmtime checks the header again.
        match unsafe { deserialize_open(engine, &file) } {
            Ok(component) => {
                self.stats.hits.fetch_add(1, Ordering::Relaxed);
                Lookup::Hit(component)
            }
            Err(e) => reject(format!("Wasmtime refused its compiled code ({e})")),
        }
    }

    /// Stores `component`, compiled from the plugin whose SHA-256 is `plugin_sha256`.
    pub(crate) fn put(&self, plugin_sha256: &str, component: &Component) -> Result<(), String> {
        self.stats.compiled.fetch_add(1, Ordering::Relaxed);
        let bytes = component
            .serialize()
            .map_err(|e| format!("serializing the compiled plugin: {e}"))?;
        let code = self.code_path(plugin_sha256);
        let digest = format!("blake3:{}", blake3::hash(&bytes).to_hex());
        // Code first, digest last: an entry with a digest is complete.
        write_atomically(&code, &bytes)?;
        write_atomically(&sidecar_path(&code), digest.as_bytes())
    }

    /// Every entry in `dir` (for any engine), sorted by name.
    pub fn entries(&self) -> Result<Vec<CacheEntry>, CacheError> {
        let read = std::fs::read_dir(&self.dir).map_err(|source| CacheError::Io {
            dir: self.dir.clone(),
            what: "listing the directory".into(),
            source,
        })?;
        let mut entries = Vec::new();
        for item in read.flatten() {
            let path = item.path();
            let Some((plugin, engine)) = parse_code_name(&path) else {
                continue;
            };
            let meta = item.metadata().ok();
            entries.push(CacheEntry {
                complete: sidecar_path(&path).is_file(),
                current_engine: engine == self.engine_key,
                plugin_sha256: plugin,
                engine_key: engine,
                bytes: meta.as_ref().map_or(0, |m| m.len()),
                modified: meta.and_then(|m| m.modified().ok()),
                path,
            });
        }
        entries.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(entries)
    }

    /// Removes every entry and leftover temporary file; returns (files, bytes) removed. Files
    /// the cache did not name are left alone.
    pub fn clear(&self) -> Result<(usize, u64), CacheError> {
        let read = std::fs::read_dir(&self.dir).map_err(|source| CacheError::Io {
            dir: self.dir.clone(),
            what: "listing the directory".into(),
            source,
        })?;
        let (mut files, mut bytes) = (0, 0);
        for item in read.flatten() {
            let path = item.path();
            let name = item.file_name().to_string_lossy().into_owned();
            let ours = parse_code_name(&path).is_some()
                || name.ends_with(&format!(".{CODE_EXT}.{DIGEST_EXT}"))
                || name.starts_with(".tmp-");
            if !ours {
                continue;
            }
            let len = item.metadata().map_or(0, |m| m.len());
            std::fs::remove_file(&path).map_err(|source| CacheError::Io {
                dir: self.dir.clone(),
                what: format!("removing {}", path.display()),
                source,
            })?;
            files += 1;
            bytes += len;
        }
        Ok((files, bytes))
    }
}

/// A hex digest of the engine's compatibility hash: Wasmtime's version and code-affecting
/// settings.
fn engine_key(engine: &Engine) -> String {
    struct Blake3Hasher(blake3::Hasher);
    impl Hasher for Blake3Hasher {
        fn write(&mut self, bytes: &[u8]) {
            self.0.update(bytes);
        }
        fn finish(&self) -> u64 {
            unreachable!("only the full digest is read")
        }
    }
    let mut hasher = Blake3Hasher(blake3::Hasher::new());
    std::hash::Hash::hash(&engine.precompile_compatibility_hash(), &mut hasher);
    hasher.0.finalize().to_hex()[..16].to_string()
}

fn sidecar_path(code: &Path) -> PathBuf {
    let mut name = code.as_os_str().to_owned();
    name.push(format!(".{DIGEST_EXT}"));
    PathBuf::from(name)
}

/// `(plugin sha256, engine key)` of a `.cwasm` entry name, or `None` for anything else.
fn parse_code_name(path: &Path) -> Option<(String, String)> {
    let name = path.file_name()?.to_str()?;
    let stem = name.strip_suffix(&format!(".{CODE_EXT}"))?;
    let (plugin, engine) = stem.split_once('-')?;
    let hex = |s: &str, len: usize| s.len() == len && s.bytes().all(|b| b.is_ascii_hexdigit());
    (hex(plugin, 64) && hex(engine, 16)).then(|| (plugin.to_string(), engine.to_string()))
}

/// The recorded digest (hex), `None` if there is no sidecar, or why it is unusable.
fn read_sidecar(path: &Path) -> Result<Option<String>, String> {
    let meta = match std::fs::metadata(path) {
        Ok(meta) => meta,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("its digest cannot be read ({e})")),
    };
    if meta.len() > MAX_SIDECAR_BYTES {
        return Err(format!(
            "its digest file is {} bytes, not a digest",
            meta.len()
        ));
    }
    let text =
        std::fs::read_to_string(path).map_err(|e| format!("its digest cannot be read ({e})"))?;
    let hex = text
        .trim_end()
        .strip_prefix("blake3:")
        .filter(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()))
        .ok_or_else(|| "its digest file is not a BLAKE3 digest".to_string())?;
    Ok(Some(hex.to_ascii_lowercase()))
}

/// Writes `bytes` to `path` through a temporary file in the same directory, synced, then
/// renamed: readers see the old file or the whole new one.
fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), String> {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let dir = path.parent().unwrap_or(Path::new("."));
    let tmp = dir.join(format!(
        ".tmp-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ));
    let result = (|| {
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    result.map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        format!("writing {}: {e}", path.display())
    })
}

/// Deserializes the compiled component in the open `file`, mapping it rather than copying it.
///
/// # Safety
/// As [`Component::deserialize_file`]: the file must hold Wasmtime's own output for this engine
/// and must not change while the component lives.
unsafe fn deserialize_open(engine: &Engine, file: &std::fs::File) -> wasmtime::Result<Component> {
    use std::os::fd::AsRawFd as _;
    let reopened = PathBuf::from(format!("/proc/self/fd/{}", file.as_raw_fd()));
    if reopened.exists() {
        // SAFETY: forwarded to the caller.
        return unsafe { Component::deserialize_file(engine, &reopened) };
    }
    // No /proc (not Linux): read the same open file again and deserialize the copy.
    let mut bytes = Vec::new();
    std::io::Seek::rewind(&mut (&*file))
        .and_then(|()| std::io::Read::read_to_end(&mut (&*file), &mut bytes))
        .map_err(wasmtime::Error::from)?;
    // SAFETY: forwarded to the caller.
    unsafe { Component::deserialize(engine, &bytes) }
}

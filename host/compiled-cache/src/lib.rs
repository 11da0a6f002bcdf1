//! Compiled plugins on disk, so a plugin is compiled once per (sha256, engine configuration)
//! instead of on every run: a Python or JS component takes seconds to compile and milliseconds to
//! load compiled.
//!
//! Loading compiled code is `unsafe` in Wasmtime for a reason: the bytes become machine code.
//! So the cache trusts nothing it did not write itself, and checks that before every use:
//! - the directory and every directory above it must belong to this user or root and be
//!   writable by no one else (ssh's StrictModes; a sticky ancestor such as `/tmp` is allowed),
//!   checked each time the cache is opened; the directory is then held open, and every entry is
//!   opened beneath it without following links, so swapping it (or a parent) for a link later
//!   changes nothing;
//! - a key of 32 random bytes, `key` in the directory, created 0600 on first use and refused
//!   unless it is this user's and readable by no one else;
//! - an entry is `<plugin sha256>-<engine key>.cwasm` plus a `.blake3` sidecar holding a keyed
//!   BLAKE3 MAC over the plugin's digest, the engine key and the `.cwasm` bytes, each written to
//!   a temporary file and renamed into place, sidecar last. Someone who can replace files but
//!   not read the key cannot make an entry; an entry renamed to another plugin's name fails its
//!   MAC;
//! - a load reads the whole `.cwasm`, checks its MAC, and deserializes exactly the bytes it
//!   checked. A missing sidecar, a truncated, corrupt, foreign or renamed entry is deleted and
//!   the plugin compiled again, never loaded.
//!
//! The engine key is a digest of [`Engine::precompile_compatibility_hash`], which covers
//! Wasmtime's version and every setting that changes generated code.

use std::hash::Hasher;
use std::io::Read as _;
use std::os::unix::fs::{DirBuilderExt as _, MetadataExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::SystemTime;

use sluice_jail::Jail;

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

/// Why a compiled plugin was not stored: the run goes on with the code compiled in memory.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct NotStored(String);

/// How a plugin's compiled code was obtained.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CodeOrigin {
    /// Loaded compiled from the cache.
    Cached,
    /// Compiled now (and stored, unless `stored` says why not).
    Compiled { stored: Result<(), NotStored> },
    /// A cache entry existed but was unusable (`reason`); compiled again.
    Recompiled {
        reason: String,
        stored: Result<(), NotStored>,
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
pub struct CompiledCache {
    dir: PathBuf,
    /// The directory, held open since it was checked: entries are resolved beneath it.
    jail: Jail,
    key: [u8; 32],
    engine_key: String,
    stats: CacheStats,
}

impl std::fmt::Debug for CompiledCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the key.
        f.debug_struct("CompiledCache")
            .field("dir", &self.dir)
            .field("engine_key", &self.engine_key)
            .finish_non_exhaustive()
    }
}

const CODE_EXT: &str = "cwasm";
const DIGEST_EXT: &str = "blake3";
/// The MAC key's file in the cache directory.
const KEY_FILE: &str = "key";
/// A sidecar is `blake3-mac:` and 64 hex digits; anything longer is not ours.
const MAX_SIDECAR_BYTES: u64 = 128;
const SIDECAR_PREFIX: &str = "blake3-mac:";

/// What a lookup found.
pub enum Lookup {
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
        let untrusted = |why: String| CacheError::Untrusted {
            dir: dir.to_path_buf(),
            why,
        };
        sluice_jail::check_private_dir(dir).map_err(|e| untrusted(e.to_string()))?;
        let jail = Jail::open(dir).map_err(io("opening the directory"))?;
        // What was checked by path is what is now held open.
        let (held, checked) = (
            std::fs::metadata(format!("/proc/self/fd/{}", jail_fd(&jail)))
                .map_err(io("reading the directory"))?,
            std::fs::metadata(dir).map_err(io("reading the directory"))?,
        );
        if (held.dev(), held.ino()) != (checked.dev(), checked.ino()) {
            return Err(untrusted("it changed while it was being opened".into()));
        }
        let key = load_key(&jail).map_err(untrusted)?;
        Ok(CompiledCache {
            dir: dir.to_path_buf(),
            jail,
            key,
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

    fn code_name(&self, plugin_sha256: &str) -> String {
        format!("{plugin_sha256}-{}.{CODE_EXT}", self.engine_key)
    }

    /// The MAC of an entry: the plugin it claims to be, for which engine, and its code.
    fn mac(&self, plugin_sha256: &str) -> blake3::Hasher {
        let mut mac = blake3::Hasher::new_keyed(&self.key);
        mac.update(plugin_sha256.as_bytes());
        mac.update(&[0]);
        mac.update(self.engine_key.as_bytes());
        mac.update(&[0]);
        mac
    }

    /// The compiled code of the plugin whose SHA-256 is `plugin_sha256`, if a verified entry
    /// exists. An unusable entry is deleted and reported as `Rejected`.
    pub fn get(&self, engine: &Engine, plugin_sha256: &str) -> Lookup {
        let code = self.code_name(plugin_sha256);
        let sidecar = sidecar_name(&code);
        let reject = |reason: String| {
            let _ = self.jail.remove(&sidecar);
            let _ = self.jail.remove(&code);
            self.stats.rejected.fetch_add(1, Ordering::Relaxed);
            Lookup::Rejected(reason)
        };
        let recorded = match read_sidecar(&self.jail, &sidecar) {
            Ok(Some(digest)) => digest,
            Ok(None) if self.jail.is_file(Path::new(&code)) => {
                return reject("its entry has no digest (an interrupted write)".into());
            }
            Ok(None) => return Lookup::Miss,
            Err(why) => return reject(why),
        };
        let mut file = match self.jail.open_file(Path::new(&code)) {
            Ok(file) => file,
            Err(e) if e.is_not_found() => {
                return reject("its digest has no compiled code".into());
            }
            Err(e) => return reject(format!("its compiled code cannot be used ({e})")),
        };
        // Hashed through a small buffer, then mapped by Wasmtime: a 33 MB entry costs one read
        // pass and no copy (reading it whole and deserializing the copy took 37 of 46 ms).
        let mut mac = self.mac(plugin_sha256);
        let len = match mac.update_reader(&mut file) {
            Ok(_) => mac.count(),
            Err(e) => return reject(format!("its compiled code cannot be read ({e})")),
        };
        let computed = mac.finalize();
        let matches = hex::decode(&recorded)
            .ok()
            .and_then(|bytes| <[u8; 32]>::try_from(bytes).ok())
            .is_some_and(|recorded| computed == blake3::Hash::from(recorded));
        if !matches {
            return reject(format!(
                "its compiled code ({len} bytes) does not match its recorded MAC (truncated, \
                 corrupt, renamed or not written by Sluice)"
            ));
        }
        // SAFETY: this is the very file (the inode behind `file`, opened beneath the directory
        // held since `open` checked it, reopened through /proc, so a rename in between cannot
        // swap it) whose bytes were just checked against a MAC only this cache's key makes,
        // over this plugin's digest and this engine's compatibility key; entries are replaced
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
    pub fn put(&self, plugin_sha256: &str, component: &Component) -> Result<(), NotStored> {
        self.stats.compiled.fetch_add(1, Ordering::Relaxed);
        let bytes = component
            .serialize()
            .map_err(|e| NotStored(format!("serializing the compiled plugin: {e}")))?;
        let code = self.code_name(plugin_sha256);
        let mut mac = self.mac(plugin_sha256);
        mac.update(&bytes);
        let sidecar = format!("{SIDECAR_PREFIX}{}", mac.finalize().to_hex());
        let write = |name: &str, bytes: &[u8]| {
            self.jail
                .replace(name, bytes, 0o600)
                .map_err(|e| NotStored(format!("writing {}: {e}", self.dir.join(name).display())))
        };
        // Code first, MAC last: an entry with a MAC is complete.
        write(&code, &bytes)?;
        write(&sidecar_name(&code), sidecar.as_bytes())
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

fn sidecar_name(code: &str) -> String {
    format!("{code}.{DIGEST_EXT}")
}

/// The descriptor number of the jail's directory, for `/proc/self/fd`.
fn jail_fd(jail: &Jail) -> i32 {
    use std::os::fd::{AsFd as _, AsRawFd as _};
    jail.as_fd().as_raw_fd()
}

/// The cache's MAC key: read, or created (32 random bytes, 0600) on first use. Refused unless it
/// is a regular file of this user's that no one else can read.
fn load_key(jail: &Jail) -> Result<[u8; 32], String> {
    let path = Path::new(KEY_FILE);
    let file = match jail.open_file(path) {
        Ok(file) => file,
        Err(e) if e.is_not_found() => {
            let mut key = [0u8; 32];
            getrandom::fill(&mut key).map_err(|e| format!("making its key: {e}"))?;
            // Created exclusively: two processes opening a new cache at once keep one key.
            match jail.create_new(KEY_FILE, &key, 0o600) {
                Ok(()) => return Ok(key),
                Err(e) if e.already_exists() => jail
                    .open_file(path)
                    .map_err(|e| format!("its key {KEY_FILE}: {e}"))?,
                Err(e) => return Err(format!("making its key: {e}")),
            }
        }
        Err(e) => return Err(format!("its key {KEY_FILE}: {e}")),
    };
    let meta = file
        .metadata()
        .map_err(|e| format!("its key {KEY_FILE}: {e}"))?;
    // SAFETY: geteuid has no preconditions and cannot fail.
    let me = unsafe { libc::geteuid() };
    if meta.uid() != me || meta.permissions().mode() & 0o077 != 0 || meta.len() != 32 {
        return Err(format!(
            "its key {KEY_FILE} must be 32 bytes of yours (uid {me}) that only you can read \
             (it is {} bytes of uid {}, mode {:03o}); delete it to make a new one",
            meta.len(),
            meta.uid(),
            meta.permissions().mode() & 0o777
        ));
    }
    let mut key = [0u8; 32];
    (&file)
        .read_exact(&mut key)
        .map_err(|e| format!("its key {KEY_FILE}: {e}"))?;
    Ok(key)
}

/// `(plugin sha256, engine key)` of a `.cwasm` entry name, or `None` for anything else.
fn parse_code_name(path: &Path) -> Option<(String, String)> {
    let name = path.file_name()?.to_str()?;
    let stem = name.strip_suffix(&format!(".{CODE_EXT}"))?;
    let (plugin, engine) = stem.split_once('-')?;
    let hex = |s: &str, len: usize| s.len() == len && s.bytes().all(|b| b.is_ascii_hexdigit());
    (hex(plugin, 64) && hex(engine, 16)).then(|| (plugin.to_string(), engine.to_string()))
}

/// The recorded MAC (hex), `None` if there is no sidecar, or why it is unusable.
fn read_sidecar(jail: &Jail, name: &str) -> Result<Option<String>, String> {
    let file = match jail.open_file(Path::new(name)) {
        Ok(file) => file,
        Err(e) if e.is_not_found() => return Ok(None),
        Err(e) => return Err(format!("its digest cannot be used ({e})")),
    };
    let mut text = String::new();
    file.take(MAX_SIDECAR_BYTES + 1)
        .read_to_string(&mut text)
        .map_err(|e| format!("its digest cannot be read ({e})"))?;
    if text.len() as u64 > MAX_SIDECAR_BYTES {
        return Err("its digest file is too long to be a digest".into());
    }
    let hex = text
        .trim_end()
        .strip_prefix(SIDECAR_PREFIX)
        .filter(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()))
        .ok_or_else(|| "its digest file is not a BLAKE3 MAC".to_string())?;
    Ok(Some(hex.to_ascii_lowercase()))
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

//! The compiled-plugin cache: a second load of a plugin does not compile it, and an entry that
//! is incomplete, corrupt, truncated, foreign or another plugin's is never loaded: it is
//! detected, deleted and rebuilt, and the rebuilt plugin still writes the right report. A cache
//! directory that someone else could swap or write is refused.

use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use sluice_data::SqliteSource;
use sluice_sandbox::{
    CacheError, CodeOrigin, RunRequest, Sandbox, SandboxOptions, Transform, WasiSurface,
};
use sluice_tests::{demo_data, expected_report, guest, own_scopes, writ};

fn sandbox(cache: &Path) -> Sandbox {
    let mut sandbox = Sandbox::new(SandboxOptions {
        pooling_slots: None,
        ..SandboxOptions::default()
    })
    .unwrap();
    sandbox.use_compiled_cache(cache).unwrap();
    sandbox
}

fn load(sandbox: &Sandbox, name: &str) -> Transform {
    sandbox
        .load_file_as(&guest(name), WasiSurface::Basic)
        .unwrap()
}

/// The one `.cwasm` entry in `dir`.
fn entry(dir: &Path) -> PathBuf {
    let entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "cwasm"))
        .collect();
    assert_eq!(entries.len(), 1, "{entries:?}");
    entries[0].clone()
}

fn sidecar(code: &Path) -> PathBuf {
    PathBuf::from(format!("{}.blake3", code.display()))
}

/// Runs the hospital transform and checks its report: the code that was loaded works.
fn assert_runs(transform: &Transform) {
    let scopes = own_scopes("hospital");
    let scopes: Vec<&str> = scopes.iter().map(String::as_str).collect();
    let outcome = transform.run(RunRequest::new(
        writ("hospital", &scopes),
        Arc::new(SqliteSource::new(demo_data())),
    ));
    assert!(outcome.is_ok(), "{:?}", outcome.result);
    assert_eq!(
        String::from_utf8(outcome.staged[0].bytes.clone()).unwrap(),
        expected_report("hospital")
    );
}

/// A cache holding the hospital plugin, compiled by a first "run".
fn warm_cache() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let first = sandbox(dir.path());
    let transform = load(&first, "hospital");
    assert!(
        matches!(transform.origin(), CodeOrigin::Compiled { stored: Ok(()) }),
        "{:?}",
        transform.origin()
    );
    assert_eq!(first.compiled_cache().unwrap().stats().compiled(), 1);
    dir
}

/// Loads the hospital plugin in a new sandbox (a later run) and says how its code was obtained.
fn second_load(dir: &Path) -> (CodeOrigin, Sandbox) {
    let second = sandbox(dir);
    let transform = load(&second, "hospital");
    assert_runs(&transform);
    (transform.origin().clone(), second)
}

#[test]
fn a_second_run_does_not_compile_the_plugin() {
    let dir = warm_cache();
    let (origin, second) = second_load(dir.path());
    assert_eq!(origin, CodeOrigin::Cached);
    let stats = second.compiled_cache().unwrap().stats();
    assert_eq!(
        (stats.hits(), stats.compiled(), stats.rejected()),
        (1, 0, 0)
    );
}

#[test]
fn entries_are_private_to_the_user() {
    let dir = warm_cache();
    let code = entry(dir.path());
    for path in [code.clone(), sidecar(&code)] {
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{} is mode {mode:03o}", path.display());
    }
    // A directory the cache creates is the user's alone.
    let parent = tempfile::tempdir().unwrap();
    let created = parent.path().join("sluice").join("plugins");
    sandbox(&created);
    let mode = std::fs::metadata(&created).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o700);
}

/// Loads after `damage`, expecting a rebuild for `reason`, then a clean hit.
fn assert_rebuilt(damage: impl FnOnce(&Path), reason: &str) {
    let dir = warm_cache();
    damage(&entry(dir.path()));
    let (origin, second) = second_load(dir.path());
    match &origin {
        CodeOrigin::Recompiled {
            reason: why,
            stored,
        } => {
            assert!(why.contains(reason), "{why}");
            assert_eq!(stored, &Ok(()));
        }
        other => panic!("expected a rebuild, got {other:?}"),
    }
    let stats = second.compiled_cache().unwrap().stats();
    assert_eq!(
        (stats.hits(), stats.compiled(), stats.rejected()),
        (0, 1, 1)
    );
    // The rebuilt entry is whole again.
    assert_eq!(second_load(dir.path()).0, CodeOrigin::Cached);
}

#[test]
fn a_corrupted_entry_is_detected_and_rebuilt() {
    assert_rebuilt(
        |code| {
            let mut bytes = std::fs::read(code).unwrap();
            let middle = bytes.len() / 2;
            bytes[middle] ^= 0x40;
            std::fs::write(code, bytes).unwrap();
        },
        "does not match its recorded MAC",
    );
}

#[test]
fn a_truncated_entry_is_detected_and_rebuilt() {
    assert_rebuilt(
        |code| {
            let bytes = std::fs::read(code).unwrap();
            std::fs::write(code, &bytes[..bytes.len() / 3]).unwrap();
        },
        "does not match its recorded MAC",
    );
}

#[test]
fn an_entry_without_its_digest_is_rebuilt() {
    assert_rebuilt(
        |code| std::fs::remove_file(sidecar(code)).unwrap(),
        "has no digest",
    );
}

/// Bytes that were not serialized by Wasmtime, with a digest that matches them (as if someone
/// with write access to the directory planted both): without the cache's key there is no MAC.
#[test]
fn a_planted_entry_with_an_unkeyed_digest_is_refused_and_rebuilt() {
    assert_rebuilt(
        |code| {
            let foreign = b"\x7fELF not a Wasmtime artifact".repeat(1000);
            std::fs::write(code, &foreign).unwrap();
            let digest = format!("blake3:{}", blake3::hash(&foreign).to_hex());
            std::fs::write(sidecar(code), digest).unwrap();
        },
        "its digest file is not a BLAKE3 MAC",
    );
}

/// The MAC of an entry as the cache makes it, for a test that holds the cache's key.
fn mac(dir: &Path, code: &Path, bytes: &[u8]) -> String {
    let key: [u8; 32] = std::fs::read(dir.join("key")).unwrap().try_into().unwrap();
    let name = code.file_name().unwrap().to_str().unwrap();
    let (plugin, engine) = name
        .strip_suffix(".cwasm")
        .unwrap()
        .split_once('-')
        .unwrap();
    let mut mac = blake3::Hasher::new_keyed(&key);
    mac.update(plugin.as_bytes());
    mac.update(&[0]);
    mac.update(engine.as_bytes());
    mac.update(&[0]);
    mac.update(bytes);
    format!("blake3-mac:{}", mac.finalize().to_hex())
}

/// Even with a MAC made with the key (someone who could read it), bytes Wasmtime did not write
/// are refused by Wasmtime's own header check.
#[test]
fn a_foreign_entry_with_a_valid_mac_is_refused_by_wasmtime_and_rebuilt() {
    assert_rebuilt(
        |code| {
            let foreign = b"\x7fELF not a Wasmtime artifact".repeat(1000);
            std::fs::write(code, &foreign).unwrap();
            let dir = code.parent().unwrap();
            std::fs::write(sidecar(code), mac(dir, code, &foreign)).unwrap();
        },
        "Wasmtime refused its compiled code",
    );
}

/// Anyone able to write the directory swaps the bank's entry (code and MAC) in under the
/// hospital's name: the MAC covers the plugin's digest, so the pinned plugin never runs the
/// other's code.
#[test]
fn another_plugins_entry_under_this_plugins_name_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let first = sandbox(dir.path());
    load(&first, "hospital");
    let hospital = entry(dir.path());
    std::fs::remove_file(&hospital).unwrap();
    std::fs::remove_file(sidecar(&hospital)).unwrap();
    load(&first, "bank");
    let bank = entry(dir.path());
    std::fs::rename(sidecar(&bank), sidecar(&hospital)).unwrap();
    std::fs::rename(&bank, &hospital).unwrap();
    let (origin, _) = second_load(dir.path());
    match origin {
        CodeOrigin::Recompiled { reason, .. } => {
            assert!(
                reason.contains("does not match its recorded MAC"),
                "{reason}"
            )
        }
        other => panic!("the bank's code was loaded as the hospital's: {other:?}"),
    }
}

/// A key others could read, or another user's, is not a key.
#[test]
fn a_key_others_can_read_is_refused() {
    let dir = warm_cache();
    let key = dir.path().join("key");
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let mut sandbox = Sandbox::new(SandboxOptions {
        pooling_slots: None,
        ..SandboxOptions::default()
    })
    .unwrap();
    let err = sandbox
        .use_compiled_cache(dir.path())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("its key key must be 32 bytes of yours") && err.contains("mode 644"),
        "{err}"
    );
}

/// The directory's parent belongs to someone else, who could swap the directory for a link to
/// one of their own after the first entry: refused from the start, however the directory
/// itself looks. (Needs root to give the parent away.)
#[test]
fn a_directory_whose_parent_is_someone_elses_is_refused() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("skipped: giving a directory to another user needs root");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let parent = dir.path().join("shared");
    std::fs::create_dir(&parent).unwrap();
    let cache = parent.join("cache");
    std::fs::create_dir(&cache).unwrap();
    std::fs::set_permissions(&cache, std::fs::Permissions::from_mode(0o700)).unwrap();
    std::os::unix::fs::chown(&parent, Some(65_534), Some(65_534)).unwrap();
    let mut sandbox = Sandbox::new(SandboxOptions {
        pooling_slots: None,
        ..SandboxOptions::default()
    })
    .unwrap();
    match sandbox.use_compiled_cache(&cache) {
        Err(e @ CacheError::Untrusted { .. }) => assert!(
            e.to_string()
                .contains("shared belongs to uid 65534, neither you (uid 0) nor root"),
            "{e}"
        ),
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_directory_others_can_write_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    let mut sandbox = Sandbox::new(SandboxOptions {
        pooling_slots: None,
        ..SandboxOptions::default()
    })
    .unwrap();
    match sandbox.use_compiled_cache(dir.path()) {
        Err(e @ CacheError::Untrusted { .. }) => {
            assert!(
                e.to_string().contains("is writable by others (mode 777)"),
                "{e}"
            );
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn ls_lists_entries_and_clear_removes_them() {
    let dir = warm_cache();
    let sandbox = sandbox(dir.path());
    let cache = sandbox.compiled_cache().unwrap();
    let entries = cache.entries().unwrap();
    assert_eq!(entries.len(), 1);
    let digest = sluice_pipeline::plugins::file_digest(&guest("hospital")).unwrap();
    assert_eq!(entries[0].plugin_sha256, digest);
    assert!(entries[0].complete && entries[0].current_engine);
    // A file the cache did not name survives a clear.
    std::fs::write(dir.path().join("notes.txt"), "mine").unwrap();
    let (files, bytes) = cache.clear().unwrap();
    assert_eq!(files, 2);
    assert!(bytes > 1000);
    assert!(cache.entries().unwrap().is_empty());
    assert!(dir.path().join("notes.txt").exists());
}

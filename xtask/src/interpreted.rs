//! Python and JavaScript guests: componentize-py (pinned in `guests/python/requirements.txt`,
//! installed in the project's venv) and ComponentizeJS (pinned by `guests/js/package-lock.json`,
//! installed with `npm ci`) build them into components.
//!
//! Neither tool is reproducible (each snapshots an initialized interpreter, whose heap differs run
//! to run) and each takes seconds, so a build is cached under the target dir by a digest of every
//! input: same inputs, same component, and the example configurations' pins stay valid.

use std::path::{Path, PathBuf};
use std::process::Command;

use sha2::{Digest, Sha256};

use crate::{run_in, workspace_root};

/// The interpreted guests: (language, module, output name). Hostile guests take the `attack`
/// parameter, as the Rust one does.
pub const GUESTS: &[(Lang, &str, &str)] = &[
    (Lang::Python, "hospital", "hospital-py"),
    (Lang::Python, "bank", "bank-py"),
    (Lang::Python, "retail", "retail-py"),
    (Lang::Python, "probe", "probe-py"),
    (Lang::Python, "hostile", "hostile-py"),
    (Lang::Js, "hospital", "hospital-js"),
    (Lang::Js, "bank", "bank-js"),
    (Lang::Js, "retail", "retail-js"),
    (Lang::Js, "probe", "probe-js"),
    (Lang::Js, "hostile", "hostile-js"),
];

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    Python,
    Js,
}

/// ComponentizeJS features a transform has no use for: with all of them off the component
/// imports no WASI at all.
const JS_DISABLED: &[&str] = &["stdio", "random", "clocks", "http", "fetch-event"];

/// The project's Python virtualenv (`SLUICE_VENV`, default `target/venv`) with the pinned
/// componentize-py and the conformance suite's packages installed.
pub fn venv() -> Result<PathBuf, String> {
    let root = workspace_root();
    let venv = std::env::var_os("SLUICE_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target").join("venv"));
    let bin = venv.join("bin");
    if !bin.join("python").exists() {
        let venv_s = venv.display().to_string();
        run_in(&root, "python3", &["-m", "venv", &venv_s]).map_err(|e| {
            format!("{e}: Python guests and the SDK suite need python3 with the venv module (apt-get install python3-venv)")
        })?;
    }
    let pip = bin.join("pip").display().to_string();
    run_in(
        &root,
        &pip,
        &[
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "-r",
            "guests/python/requirements.txt",
            "-r",
            "tests/python/requirements.txt",
        ],
    )?;
    Ok(venv)
}

/// `npm ci` in `guests/js` unless `node_modules` already holds this lockfile's packages.
fn node_modules() -> Result<PathBuf, String> {
    let dir = workspace_root().join("guests").join("js");
    let lock = std::fs::read(dir.join("package-lock.json"))
        .map_err(|e| format!("reading guests/js/package-lock.json: {e}"))?;
    let stamp = dir.join("node_modules").join(".sluice-lock-sha256");
    let want = hex::encode(Sha256::digest(&lock));
    if std::fs::read_to_string(&stamp).ok().as_deref() != Some(want.as_str()) {
        run_in(
            &dir,
            "npm",
            &["ci", "--no-audit", "--no-fund", "--loglevel=error"],
        )
        .map_err(|e| {
            format!("{e}: JavaScript guests need Node.js 18+ and npm (apt-get install nodejs npm)")
        })?;
        std::fs::write(&stamp, &want).map_err(|e| format!("writing {}: {e}", stamp.display()))?;
    }
    Ok(dir.join("node_modules"))
}

/// Every file under `dir` (sorted, recursively), skipping caches and installed packages.
fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut paths: Vec<PathBuf> = entries.flatten().map(|e| e.path()).collect();
    paths.sort();
    for path in paths {
        let name = path.file_name().unwrap_or_default().to_string_lossy();
        if name == "__pycache__" || name == "node_modules" {
            continue;
        }
        if path.is_dir() {
            sources(&path, out);
        } else {
            out.push(path);
        }
    }
}

/// The digest of everything a guest's component depends on: the tool pin, the WIT, the SDK and
/// the transform, and the command line.
fn input_digest(lang: Lang, module: &str) -> Result<String, String> {
    let root = workspace_root();
    let (lock, sdk, transform) = match lang {
        Lang::Python => (
            "guests/python/requirements.txt",
            "guests/python/sluice",
            format!("guests/python/transforms/{module}.py"),
        ),
        Lang::Js => (
            "guests/js/package-lock.json",
            "guests/js/sluice",
            format!("guests/js/transforms/{module}.js"),
        ),
    };
    let mut files = vec![root.join(lock)];
    sources(&root.join("wit"), &mut files);
    sources(&root.join(sdk), &mut files);
    files.push(root.join(transform));
    let mut hash = Sha256::new();
    hash.update(JS_DISABLED.join(",").as_bytes());
    for file in files {
        let bytes = std::fs::read(&file).map_err(|e| format!("reading {}: {e}", file.display()))?;
        let relative = file.strip_prefix(&root).unwrap_or(&file);
        hash.update(relative.to_string_lossy().as_bytes());
        hash.update((bytes.len() as u64).to_le_bytes());
        hash.update(&bytes);
    }
    Ok(hex::encode(hash.finalize()))
}

/// Builds (or takes from the cache) every interpreted guest into `out_dir/<name>.wasm`.
pub fn build(out_dir: &Path, cache_dir: &Path) -> Result<(), String> {
    let root = workspace_root();
    std::fs::create_dir_all(cache_dir)
        .map_err(|e| format!("creating {}: {e}", cache_dir.display()))?;
    let mut venv: Option<PathBuf> = None;
    let mut node: Option<PathBuf> = None;
    for &(lang, module, name) in GUESTS {
        let digest = input_digest(lang, module)?;
        let cached = cache_dir.join(format!("{name}-{}.wasm", &digest[..16]));
        let fresh = !cached.is_file();
        if fresh {
            let partial = cache_dir.join(format!("{name}.wasm.partial"));
            let partial_s = partial.display().to_string();
            match lang {
                Lang::Python => {
                    if venv.is_none() {
                        venv = Some(self::venv()?);
                    }
                    let tool = venv.as_ref().unwrap().join("bin").join("componentize-py");
                    let status = Command::new(&tool)
                        .current_dir(&root)
                        // Else componentize-py adds that venv's site-packages to the component.
                        .env_remove("VIRTUAL_ENV")
                        .args(["-d", "wit", "-w", "transform", "componentize"])
                        .args(["-p", "guests/python", "-p", "guests/python/transforms"])
                        .args([module, "-o", &partial_s])
                        .stdout(std::process::Stdio::null())
                        .status()
                        .map_err(|e| format!("running {}: {e}", tool.display()))?;
                    if !status.success() {
                        return Err(format!(
                            "componentize-py failed to build guests/python/transforms/{module}.py ({status})"
                        ));
                    }
                }
                Lang::Js => {
                    if node.is_none() {
                        node = Some(node_modules()?);
                    }
                    let tool = node.as_ref().unwrap().join(".bin").join("componentize-js");
                    let source = format!("guests/js/transforms/{module}.js");
                    let status = Command::new(&tool)
                        .current_dir(&root)
                        .args([source.as_str(), "--wit", "wit", "-n", "transform", "-d"])
                        .args(JS_DISABLED)
                        .args(["-o", &partial_s])
                        .stdout(std::process::Stdio::null())
                        .status()
                        .map_err(|e| format!("running {}: {e}", tool.display()))?;
                    if !status.success() {
                        return Err(format!(
                            "componentize-js failed to build {source} ({status})"
                        ));
                    }
                }
            }
            std::fs::rename(&partial, &cached)
                .map_err(|e| format!("renaming {}: {e}", partial.display()))?;
            forget_older(cache_dir, name, &cached);
        }
        let dest = out_dir.join(format!("{name}.wasm"));
        std::fs::copy(&cached, &dest)
            .map_err(|e| format!("copying {} to {}: {e}", cached.display(), dest.display()))?;
        println!(
            "built {}{}",
            dest.strip_prefix(&root).unwrap_or(&dest).display(),
            if fresh { "" } else { " (inputs unchanged)" }
        );
    }
    Ok(())
}

/// Removes the cached builds of `name` other than `keep`: only the latest inputs matter.
fn forget_older(cache_dir: &Path, name: &str, keep: &Path) {
    let Ok(entries) = std::fs::read_dir(cache_dir) else {
        return;
    };
    for entry in entries.flatten() {
        let file = entry.file_name().to_string_lossy().into_owned();
        let digest = file
            .strip_prefix(name)
            .and_then(|rest| rest.strip_prefix('-'))
            .and_then(|rest| rest.strip_suffix(".wasm"));
        let ours =
            digest.is_some_and(|d| d.len() == 16 && d.bytes().all(|b| b.is_ascii_hexdigit()));
        if ours && entry.path() != keep {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

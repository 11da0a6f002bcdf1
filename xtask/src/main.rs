//! Build tasks, so that the README's commands work on a fresh clone:
//! - `cargo xtask guests`: builds every guest component (Rust for wasm32-wasip2, Python with
//!   componentize-py, JavaScript with ComponentizeJS) and puts it at `target/guests/<name>.wasm`,
//!   the one place tests, the CLI and users look for them;
//! - `cargo xtask demo`: guests, host, demo data, then the demo runs (all-Rust, then polyglot);
//! - `cargo xtask test`: guests, then every test (with a throwaway PostgreSQL server);
//! - `cargo xtask bench [NAME...]`: guests, then the benchmarks, PostgreSQL likewise;
//! - `cargo xtask pin`: guests, then the plugin digests in `examples/*.toml` updated.

mod interpreted;
mod moto;
mod postgres;
mod registry;
mod system;

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

/// (package, cargo features, output name) of every guest: the demo tenants, the probe, the one
/// hostile component of run-time attacks, and one component per import attack (the list is
/// `sluice-hostile-list`'s, shared with the tests).
fn guests() -> Vec<(&'static str, &'static str, String)> {
    let mut guests = vec![
        ("guest-hospital", "", "hospital".to_string()),
        ("guest-bank", "", "bank".to_string()),
        ("guest-retail", "", "retail".to_string()),
        ("guest-probe", "", "probe".to_string()),
        ("guest-chaos", "", "chaos".to_string()),
        ("guest-hostile", "", "hostile".to_string()),
    ];
    for feature in sluice_hostile_list::IMPORT {
        guests.push((
            "guest-hostile",
            feature,
            format!("hostile-{}", feature.replace('_', "-")),
        ));
    }
    guests
}

const TARGET: &str = "wasm32-wasip2";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("guests") => build_guests(),
        Some("demo") => system::ensure(false)
            .and_then(|()| build_guests())
            .and_then(|()| demo()),
        Some("test") => system::ensure(true)
            .and_then(|()| build_guests())
            .and_then(|()| test(&args[1..])),
        Some("bench") => system::ensure(true)
            .and_then(|()| build_guests())
            .and_then(|()| bench(&args[1..])),
        Some("pin") => build_guests().and_then(|()| {
            for config in ["examples/nightly.toml", "examples/polyglot.toml"] {
                let changed = pin(config)?;
                println!("{config}: {changed} plugin digest(s) updated");
            }
            Ok(())
        }),
        _ => {
            eprintln!(
                "usage: cargo xtask <task>\n  guests  build every guest to target/guests/<name>.wasm\n  \
                 demo    build everything and run the nightly demo\n  test    build guests and run every test\n  \
                 bench   build guests and run the benchmarks (or `bench NAME...`) with a throwaway PostgreSQL\n  \
                 pin     build guests and update the plugin digests in examples/*.toml"
            );
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: {e}");
            ExitCode::FAILURE
        }
    }
}

fn cargo() -> String {
    std::env::var("CARGO").unwrap_or_else(|_| "cargo".into())
}

/// Runs `program args` in the workspace root, failing with the command line if it fails.
fn run(program: &str, args: &[&str]) -> Result<(), String> {
    run_in(&workspace_root(), program, args)
}

/// Runs `program args` in `dir`, failing with the command line if it fails.
fn run_in(dir: &Path, program: &str, args: &[&str]) -> Result<(), String> {
    let status = Command::new(program)
        .args(args)
        .current_dir(dir)
        .status()
        .map_err(|e| format!("running {program}: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("`{program} {}` failed ({status})", args.join(" ")))
    }
}

/// Waits until `ready` succeeds for the server `child` just started, failing with its last
/// error after `within`, or at once if it exits.
fn wait_ready(
    what: &str,
    child: &mut std::process::Child,
    within: std::time::Duration,
    mut ready: impl FnMut() -> Result<(), String>,
) -> Result<(), String> {
    let started = std::time::Instant::now();
    loop {
        match ready() {
            Ok(()) => return Ok(()),
            Err(e) if started.elapsed() > within => {
                return Err(format!("{what} did not start: {e}"));
            }
            Err(_) => {
                if let Ok(Some(status)) = child.try_wait() {
                    return Err(format!("{what} exited at start ({status})"));
                }
                std::thread::sleep(std::time::Duration::from_millis(100));
            }
        }
    }
}

/// Adds the guest target through rustup when it is missing (a fresh machine).
fn ensure_target() -> Result<(), String> {
    let installed = Command::new("rustup")
        .args(["target", "list", "--installed"])
        .output()
        .map(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .any(|l| l.trim() == TARGET)
        })
        .unwrap_or(false);
    if installed {
        return Ok(());
    }
    run("rustup", &["target", "add", TARGET])
}

/// The demo: seed the three tenants' data, then the nightly pipeline over them with the embedded
/// broker, then a check of the audit chain it wrote.
fn demo() -> Result<(), String> {
    let cargo = cargo();
    run(&cargo, &["build", "--quiet", "--package", "sluice-cli"])?;
    let sluice = |args: &[&str]| {
        let mut all = vec!["run", "--quiet", "--package", "sluice-cli", "--"];
        all.extend_from_slice(args);
        run(&cargo, &all)
    };
    sluice(&["data", "seed", "--dir", ".sluice/demo/data"])?;
    println!();
    sluice(&[
        "run",
        "examples/nightly.toml",
        "--html",
        ".sluice/demo/night.html",
    ])?;
    println!();
    sluice(&["audit", "verify", ".sluice/demo/audit.jsonl"])?;
    println!();
    // Python and JS builds are not bit-reproducible: pin what this machine built.
    let repinned = pin("examples/polyglot.toml")?;
    if repinned > 0 {
        println!(
            "pinned examples/polyglot.toml to this machine's Python/JS builds ({repinned} digest(s))"
        );
    }
    println!("The same night with the hospital in Python and the retailer in JavaScript:");
    println!();
    sluice(&["run", "examples/polyglot.toml"])
}

/// `cargo ARGS` with a throwaway PostgreSQL server (its URL in `SLUICE_TEST_PG_URL`) and a
/// throwaway S3 server (moto, in the `AWS_*` variables) on loopback, both stopped after it.
fn cargo_with_test_servers(args: &[&str]) -> Result<std::process::ExitStatus, String> {
    let server = postgres::TestServer::start()?;
    let s3 = moto::TestS3::start()?;
    let oci = registry::TestRegistry::start()?;
    let tmp = TestTmp::new()?;
    let status = Command::new(cargo())
        .args(args)
        .env("SLUICE_TEST_PG_URL", &server.url)
        .env("TMPDIR", &tmp.0)
        .envs(s3.env())
        .envs(oci.env())
        .envs(venv_env()?)
        .status()
        .map_err(|e| format!("running cargo: {e}"));
    drop((server, s3, oci, tmp));
    status
}

/// The temp dir the tests run with (`TMPDIR`), `<target>/sluice-test-tmp`, emptied before and
/// removed after: what a test leaves behind (a static's temp dir is never dropped, a hostile
/// night's dir is kept on purpose) stays bounded by one run instead of piling up in `/tmp`
/// run after run.
struct TestTmp(PathBuf);

impl TestTmp {
    fn new() -> Result<Self, String> {
        let dir = target_dir().join("sluice-test-tmp");
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir)
            .map_err(|e| format!("creating the tests' temp dir {}: {e}", dir.display()))?;
        Ok(TestTmp(dir))
    }
}

impl Drop for TestTmp {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// `cargo bench -p sluice-tests --bench NAME` (all benches without a name), with a throwaway
/// PostgreSQL server as for the tests.
fn bench(names: &[String]) -> Result<(), String> {
    let mut args = vec!["bench", "-p", "sluice-tests"];
    for name in names {
        args.extend(["--bench", name.as_str()]);
    }
    let status = cargo_with_test_servers(&args)?;
    status
        .success()
        .then_some(())
        .ok_or_else(|| format!("`cargo bench` failed ({status})"))
}

/// Every test: the Rust workspace (with a throwaway PostgreSQL server on loopback, its URL in
/// `SLUICE_TEST_PG_URL`, and a throwaway S3 server, moto, in the `AWS_*` variables), every suite
/// run even when one fails, then the official Python SDK against the dev broker; one summary
/// line at the end.
fn test(extra: &[String]) -> Result<(), String> {
    let cargo = cargo();
    let mut args = vec!["test", "--no-fail-fast"];
    args.extend(extra.iter().map(String::as_str));
    let (status, tally) = cargo_test_with_test_servers(&args)?;
    let python = run(&cargo, &["build", "--quiet", "--package", "sluice-cli"])
        .and_then(|()| python_conformance());
    let summary = format!(
        "tests: {} passed, {} failed, {} ignored in {} Rust test binaries ({} failed); the \
         official Python SDK's suite {}",
        tally.passed,
        tally.failed,
        tally.ignored,
        tally.binaries,
        tally.failed_binaries,
        if python.is_ok() { "passed" } else { "failed" }
    );
    println!("\n{summary}");
    match (status.success(), python) {
        (true, Ok(())) => Ok(()),
        (false, _) => Err(format!("`cargo test` failed ({status}); {summary}")),
        (true, Err(e)) => Err(e),
    }
}

/// What `cargo test` reported, summed over its test binaries.
#[derive(Default)]
struct Tally {
    passed: u64,
    failed: u64,
    ignored: u64,
    binaries: u64,
    failed_binaries: u64,
}

impl Tally {
    /// Adds a `test result: ok. 11 passed; 0 failed; 1 ignored; ...` line.
    fn add(&mut self, line: &str) {
        let Some(rest) = line.strip_prefix("test result: ") else {
            return;
        };
        self.binaries += 1;
        if rest.starts_with("FAILED") {
            self.failed_binaries += 1;
        }
        let count = |word: &str| {
            rest.split(';')
                .find_map(|part| {
                    part.trim()
                        .strip_suffix(word)?
                        .trim()
                        .rsplit(' ')
                        .next()?
                        .parse()
                        .ok()
                })
                .unwrap_or(0u64)
        };
        self.passed += count("passed");
        self.failed += count("failed");
        self.ignored += count("ignored");
    }
}

/// [`cargo_with_test_servers`] for `cargo test`, passing its output through as it comes and
/// counting its results.
fn cargo_test_with_test_servers(
    args: &[&str],
) -> Result<(std::process::ExitStatus, Tally), String> {
    use std::io::BufRead as _;
    let server = postgres::TestServer::start()?;
    let s3 = moto::TestS3::start()?;
    let oci = registry::TestRegistry::start()?;
    let tmp = TestTmp::new()?;
    let mut child = Command::new(cargo())
        .args(args)
        .env("SLUICE_TEST_PG_URL", &server.url)
        .env("TMPDIR", &tmp.0)
        .envs(s3.env())
        .envs(oci.env())
        .envs(venv_env()?)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .map_err(|e| format!("running cargo: {e}"))?;
    let mut tally = Tally::default();
    if let Some(out) = child.stdout.take() {
        for line in std::io::BufReader::new(out).lines().map_while(Result::ok) {
            tally.add(&line);
            println!("{line}");
        }
    }
    let status = child
        .wait()
        .map_err(|e| format!("waiting for cargo: {e}"))?;
    drop((server, s3, oci, tmp));
    Ok((status, tally))
}

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target"))
}

/// The project's virtualenv for tests that run PyPI tools (`oras`): `SLUICE_TEST_PYTHON`.
fn venv_env() -> Result<Vec<(&'static str, String)>, String> {
    let python = interpreted::venv()?.join("bin").join("python");
    Ok(vec![("SLUICE_TEST_PYTHON", python.display().to_string())])
}

/// `tests/python` in the project's virtualenv with the pinned `agentwrit==0.3.0` from PyPI.
fn python_conformance() -> Result<(), String> {
    let root = workspace_root();
    let bin = interpreted::venv()?.join("bin");
    let sluice = target_dir().join("debug").join("sluice");
    let status = Command::new(bin.join("pytest"))
        .args(["tests/python", "-q"])
        .current_dir(&root)
        .env("SLUICE_BIN", &sluice)
        .status()
        .map_err(|e| format!("running pytest: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!(
            "the Python SDK conformance suite failed ({status})"
        ))
    }
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives one level below the workspace root")
        .to_path_buf()
}

fn build_guests() -> Result<(), String> {
    ensure_target()?;
    let root = workspace_root();
    let cargo = cargo();
    // Guests get their own target dir: building them must not wait on, or invalidate, the host's.
    let target_dir = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"))
        .join("wasm-guests");
    let out_dir = root.join("target").join("guests");
    std::fs::create_dir_all(&out_dir)
        .map_err(|e| format!("creating {}: {e}", out_dir.display()))?;

    let guests = guests();
    // Components of guests that no longer exist would be loaded by nobody and confuse everyone.
    if let Ok(entries) = std::fs::read_dir(&out_dir) {
        for entry in entries.flatten() {
            let file = entry.file_name().to_string_lossy().into_owned();
            let known = guests
                .iter()
                .map(|(_, _, name)| name.as_str())
                .chain(interpreted::GUESTS.iter().map(|(_, _, name)| *name))
                .any(|name| file == format!("{name}.wasm"));
            if file.ends_with(".wasm") && !known {
                let _ = std::fs::remove_file(entry.path());
            }
        }
    }
    for (package, features, name) in &guests {
        let mut cmd = Command::new(&cargo);
        cmd.current_dir(&root)
            .args([
                "build",
                "--quiet",
                "--release",
                "--target",
                TARGET,
                "--package",
                package,
            ])
            .arg("--target-dir")
            .arg(&target_dir);
        if !features.is_empty() {
            cmd.args(["--features", features]);
        }
        let status = cmd.status().map_err(|e| format!("running cargo: {e}"))?;
        if !status.success() {
            return Err(format!(
                "building {name} failed; is the target installed? run `rustup target add {TARGET}`"
            ));
        }
        let artifact = target_dir
            .join(TARGET)
            .join("release")
            .join(format!("{}.wasm", package.replace('-', "_")));
        let dest = out_dir.join(format!("{name}.wasm"));
        std::fs::copy(&artifact, &dest)
            .map_err(|e| format!("copying {} to {}: {e}", artifact.display(), dest.display()))?;
        println!(
            "built {}",
            dest.strip_prefix(&root).unwrap_or(&dest).display()
        );
    }
    interpreted::build(&out_dir, &target_dir.join("interpreted"))
}

/// Rewrites each `sha256 = "..."` in `config` to the digest of the plugin or probe named just
/// before it: after changing a guest, the example configuration pins the new build. Returns how
/// many digests changed.
fn pin(config: &str) -> Result<usize, String> {
    use sha2::Digest as _;
    let root = workspace_root();
    let path = root.join(config);
    let text = std::fs::read_to_string(&path).map_err(|e| format!("reading {config}: {e}"))?;
    let dir = path.parent().unwrap_or(&root).to_path_buf();
    let mut plugin: Option<PathBuf> = None;
    let mut out = String::new();
    let mut changed = 0;
    for line in text.lines() {
        let trimmed = line.trim_start();
        let value = |l: &str| l.split('"').nth(1).map(str::to_string);
        if trimmed.starts_with("plugin =") || trimmed.starts_with("probe =") {
            plugin = value(trimmed).map(|p| dir.join(p));
        }
        if trimmed.starts_with("sha256 =")
            && let Some(p) = plugin.take()
        {
            let bytes = std::fs::read(&p).map_err(|e| format!("reading {}: {e}", p.display()))?;
            let pinned = format!("sha256 = \"{}\"", hex::encode(sha2::Sha256::digest(&bytes)));
            if trimmed != pinned {
                changed += 1;
            }
            out.push_str(&pinned);
            out.push('\n');
            continue;
        }
        out.push_str(line);
        out.push('\n');
    }
    if changed > 0 {
        std::fs::write(&path, out).map_err(|e| format!("writing {config}: {e}"))?;
    }
    Ok(changed)
}

//! Build tasks, so that the README's commands work on a fresh clone:
//! - `cargo xtask guests`: builds every guest component for wasm32-wasip2 and puts it at
//!   `target/guests/<name>.wasm`, the one place tests, the CLI and users look for them;
//! - `cargo xtask demo`: guests, host, demo data, then the demo run;
//! - `cargo xtask test`: guests, then every test.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

/// (package, cargo features, output name)
const GUESTS: &[(&str, &str, &str)] = &[
    ("guest-hospital", "", "hospital"),
    ("guest-bank", "", "bank"),
    ("guest-retail", "", "retail"),
    ("guest-probe", "", "probe"),
    (
        "guest-hostile",
        "read-other-tenant",
        "hostile-read-other-tenant",
    ),
    (
        "guest-hostile",
        "write-other-tenant",
        "hostile-write-other-tenant",
    ),
    ("guest-hostile", "spin", "hostile-spin"),
    ("guest-hostile", "memory-hog", "hostile-memory-hog"),
    ("guest-hostile", "filesystem", "hostile-filesystem"),
    ("guest-hostile", "sockets", "hostile-sockets"),
    (
        "guest-hostile",
        "trap-mid-report",
        "hostile-trap-mid-report",
    ),
    (
        "guest-hostile",
        "trap-after-commit",
        "hostile-trap-after-commit",
    ),
    ("guest-hostile", "flood", "hostile-flood"),
];

const TARGET: &str = "wasm32-wasip2";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("guests") => build_guests(),
        Some("demo") => build_guests().and_then(|()| demo()),
        Some("test") => build_guests().and_then(|()| test(&args[1..])),
        _ => {
            eprintln!(
                "usage: cargo xtask <task>\n  guests  build every guest to target/guests/<name>.wasm\n  \
                 demo    build everything and run the nightly demo\n  test    build guests and run every test"
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

/// Runs `program args`, failing with the command line if it fails.
fn run(program: &str, args: &[&str]) -> Result<(), String> {
    let status = Command::new(program)
        .args(args)
        .current_dir(workspace_root())
        .status()
        .map_err(|e| format!("running {program}: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("`{program} {}` failed ({status})", args.join(" ")))
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

/// The demo: the seed's three tenants through `sluice try` under their own scopes, then the
/// isolation probe under the hospital's scopes.
fn demo() -> Result<(), String> {
    let cargo = cargo();
    run(&cargo, &["build", "--quiet", "--package", "sluice-cli"])?;
    let sluice = |args: &[&str]| {
        let mut all = vec!["run", "--quiet", "--package", "sluice-cli", "--"];
        all.extend_from_slice(args);
        run(&cargo, &all)
    };
    let dir = ".sluice/demo";
    let (data, reports, audit) = (
        format!("{dir}/data"),
        format!("{dir}/reports"),
        format!("{dir}/audit.jsonl"),
    );
    sluice(&["data", "seed", "--dir", &data])?;
    println!();
    for tenant in ["hospital", "bank", "retail"] {
        let component = format!("target/guests/{tenant}.wasm");
        let (read, write) = (
            format!("read:analytics:{tenant}"),
            format!("write:reports:{tenant}"),
        );
        sluice(&[
            "try",
            &component,
            "--tenant",
            tenant,
            "--scope",
            &read,
            "--scope",
            &write,
            "--data",
            &data,
            "--reports",
            &reports,
            "--audit",
            &audit,
        ])?;
        println!();
    }
    println!("── Cross-tenant isolation: the probe under the hospital's scopes ──");
    sluice(&[
        "try",
        "target/guests/probe.wasm",
        "--tenant",
        "hospital",
        "--scope",
        "read:analytics:hospital",
        "--scope",
        "write:reports:hospital",
        "--data",
        &data,
        "--reports",
        &reports,
        "--audit",
        &audit,
        "--param",
        "read-tenant=bank",
        "--param",
        "read-dataset=transactions",
        "--param",
        "write-tenant=retail",
    ])?;
    println!();
    sluice(&["audit", "verify", &audit])
}

/// Every test: the Rust workspace, then the official Python SDK against the dev broker.
fn test(extra: &[String]) -> Result<(), String> {
    let cargo = cargo();
    let mut args = vec!["test"];
    args.extend(extra.iter().map(String::as_str));
    run(&cargo, &args)?;
    run(&cargo, &["build", "--quiet", "--package", "sluice-cli"])?;
    python_conformance()
}

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target"))
}

/// `tests/python` in a virtualenv (`SLUICE_VENV`, default `target/venv`) with the pinned
/// `agentwrit==0.3.0` from PyPI.
fn python_conformance() -> Result<(), String> {
    let root = workspace_root();
    let venv = std::env::var_os("SLUICE_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target").join("venv"));
    let bin = venv.join("bin");
    if !bin.join("python").exists() {
        let venv_s = venv.display().to_string();
        run("python3", &["-m", "venv", &venv_s])
            .map_err(|e| format!("{e}: the Python SDK suite needs python3 with the venv module"))?;
    }
    let pip = bin.join("pip").display().to_string();
    run(
        &pip,
        &[
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "-r",
            "tests/python/requirements.txt",
        ],
    )?;
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

    for (package, features, name) in GUESTS {
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
    Ok(())
}

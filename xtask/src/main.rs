//! `cargo xtask guests`: builds every guest component for wasm32-wasip2 and puts it at
//! `target/guests/<name>.wasm`, the one place tests, the CLI and users look for them.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

/// (package, cargo features, output name)
const GUESTS: &[(&str, &str, &str)] = &[
    ("guest-hospital", "", "hospital"),
    ("guest-bank", "", "bank"),
    ("guest-retail", "", "retail"),
    ("guest-probe", "", "probe"),
    ("guest-hostile", "read-other-tenant", "hostile-read-other-tenant"),
    ("guest-hostile", "write-other-tenant", "hostile-write-other-tenant"),
    ("guest-hostile", "spin", "hostile-spin"),
    ("guest-hostile", "memory-hog", "hostile-memory-hog"),
    ("guest-hostile", "filesystem", "hostile-filesystem"),
    ("guest-hostile", "sockets", "hostile-sockets"),
    ("guest-hostile", "trap-mid-report", "hostile-trap-mid-report"),
    ("guest-hostile", "trap-after-commit", "hostile-trap-after-commit"),
    ("guest-hostile", "flood", "hostile-flood"),
];

const TARGET: &str = "wasm32-wasip2";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("guests") => match build_guests() {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("xtask: {e}");
                ExitCode::FAILURE
            }
        },
        _ => {
            eprintln!("usage: cargo xtask guests    build every guest to target/guests/<name>.wasm");
            ExitCode::from(2)
        }
    }
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives one level below the workspace root")
        .to_path_buf()
}

fn build_guests() -> Result<(), String> {
    let root = workspace_root();
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    // Guests get their own target dir: building them must not wait on, or invalidate, the host's.
    let target_dir = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"))
        .join("wasm-guests");
    let out_dir = root.join("target").join("guests");
    std::fs::create_dir_all(&out_dir).map_err(|e| format!("creating {}: {e}", out_dir.display()))?;

    for (package, features, name) in GUESTS {
        let mut cmd = Command::new(&cargo);
        cmd.current_dir(&root)
            .args(["build", "--quiet", "--release", "--target", TARGET, "--package", package])
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
        println!("built {}", dest.strip_prefix(&root).unwrap_or(&dest).display());
    }
    Ok(())
}

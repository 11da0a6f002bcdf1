//! `sluice new` as a plugin author meets it: scaffold, `./build.sh`, `sluice try` on seeded data,
//! in each language. The toolchains are the ones `cargo xtask guests` installed (the project's
//! venv, `guests/js/node_modules`), so the test downloads nothing.

use std::path::{Path, PathBuf};
use std::process::Command;

use sluice_tests::{demo_data, root};

fn sluice(args: &[&str], cwd: &Path) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args(args)
        .current_dir(cwd)
        .output()
        .expect("running sluice");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "sluice {args:?}: {text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    text
}

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("target"))
}

#[test]
fn a_new_project_in_each_language_builds_with_one_command_and_runs_under_try() {
    let work = tempfile::tempdir().unwrap();
    let venv = std::env::var_os("SLUICE_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("target").join("venv"));
    for lang in ["rust", "python", "js"] {
        let name = format!("orders-{lang}");
        let created = sluice(&["new", "--lang", lang, &name], work.path());
        assert!(created.contains(&format!("./{name}/build.sh")), "{created}");
        let project = work.path().join(&name);
        if lang == "js" {
            std::os::unix::fs::symlink(
                root().join("guests").join("js").join("node_modules"),
                project.join("node_modules"),
            )
            .unwrap();
        }
        let build = Command::new(project.join("build.sh"))
            .env("SLUICE_VENV", &venv)
            .env("CARGO_TARGET_DIR", target_dir().join("sluice-new-test"))
            .output()
            .unwrap();
        assert!(
            build.status.success(),
            "{lang}: {}{}",
            String::from_utf8_lossy(&build.stdout),
            String::from_utf8_lossy(&build.stderr)
        );

        let reports = work.path().join(format!("reports-{lang}"));
        let component = project.join(format!("{name}.wasm"));
        let (component, data, reports_s) = (
            component.display().to_string(),
            demo_data().display().to_string(),
            reports.display().to_string(),
        );
        let out = sluice(
            &[
                "try",
                &component,
                "--lang",
                lang,
                "--tenant",
                "retail",
                "--scope",
                "read:analytics:retail",
                "--scope",
                "write:reports:retail",
                "--data",
                &data,
                "--reports",
                &reports_s,
                "--no-cache",
            ],
            work.path(),
        );
        assert!(
            out.contains("[RESULT]  ok: {'orders': '847K', 'avg_order': '$67.30'}"),
            "{lang}: {out}"
        );
        assert_eq!(
            std::fs::read_to_string(reports.join("retail/latest.json")).unwrap(),
            r#"{"tenant":"retail","figures":{"orders":"847K","avg_order":"$67.30"}}"#
        );
    }
}

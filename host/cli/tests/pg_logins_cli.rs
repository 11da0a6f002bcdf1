//! A night killed with SIGKILL while its tenant's PostgreSQL login (minted per run) is alive:
//! the login outlives the process, and the next `sluice run` finds it and drops it, saying so
//! in its audit. Neither night prints a password.

mod night;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use night::digest;
use sluice_data::logins::PASSWORD_PREFIX;
use sluice_tests::pg::{PROVISIONER_ENV, minted_logins, per_run_setup};
use sluice_tests::root;

/// A night of the hospital reading its table through a login minted per run, running `guest`
/// with `params`; reports and audit under `dir/<name>`.
fn config(dir: &Path, name: &str, guest: &str, params: &str) -> PathBuf {
    let plugin = root().join(format!("target/guests/{guest}.wasm"));
    let base = dir.join(name);
    let text = format!(
        "reports = \"{reports}\"\naudit = \"{audit}\"\n\n\
         [[tenants]]\nid = \"hospital\"\nname = \"Metro Health\"\ndata_type = \"analytics\"\n\
         plugin = \"{plugin}\"\nsha256 = \"{sha}\"\nread_scope = \"read:analytics:hospital\"\n\
         write_scope = \"write:reports:hospital\"\nparams = {{ {params} }}\n\n\
         [[tenants.datasets]]\nname = \"visits\"\nresource = \"analytics\"\nkind = \"postgres\"\n\
         credentials = \"per-run\"\nprovisioner_env = \"{PROVISIONER_ENV}\"\n",
        reports = base.join("reports").display(),
        audit = base.join("audit.jsonl").display(),
        plugin = plugin.display(),
        sha = digest(&plugin),
    );
    let path = dir.join(format!("{name}.toml"));
    std::fs::write(&path, text).unwrap();
    path
}

fn sluice() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_sluice"));
    cmd.env_remove("AGENTWRIT_BROKER_URL")
        .env_remove("AGENTWRIT_CLIENT_ID")
        .env_remove("AGENTWRIT_CLIENT_SECRET");
    cmd
}

#[test]
fn a_killed_nights_login_is_dropped_by_the_next_start() {
    per_run_setup();
    let dir = tempfile::tempdir().unwrap();
    let forever = config(dir.path(), "killed", "hostile", "attack = \"read_forever\"");
    let mut killed = sluice()
        .args(["run", forever.to_str().unwrap()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Its login's name carries its pid.
    let marker = format!("_{}_", killed.id());
    let deadline = Instant::now() + Duration::from_secs(60);
    let login = loop {
        if let Some(login) = minted_logins().into_iter().find(|l| l.contains(&marker)) {
            break login;
        }
        assert!(Instant::now() < deadline, "the night never minted a login");
        std::thread::sleep(Duration::from_millis(20));
    };
    killed.kill().unwrap();
    let out = killed.wait_with_output().unwrap();
    assert!(
        minted_logins().contains(&login),
        "{login} went with its process"
    );

    let next = config(dir.path(), "next", "hospital", "");
    let html = dir.path().join("night.html");
    let second = sluice()
        .args(["run", next.to_str().unwrap(), "--json", "--html"])
        .arg(&html)
        .output()
        .unwrap();
    assert!(
        second.status.success(),
        "{}",
        String::from_utf8_lossy(&second.stderr)
    );
    assert!(
        !minted_logins().contains(&login),
        "{login} survived the next start"
    );
    let audit = std::fs::read_to_string(dir.path().join("next/audit.jsonl")).unwrap();
    assert!(
        audit
            .lines()
            .any(|l| l.contains("\"event\":\"leftover_login_dropped\"")
                && l.contains(&format!("\"login\":\"{login}\""))),
        "{audit}"
    );
    // Nothing either night showed holds a password.
    let page = std::fs::read_to_string(&html).unwrap();
    for (what, bytes) in [
        ("killed stdout", &out.stdout),
        ("killed stderr", &out.stderr),
        ("--json", &second.stdout),
        ("stderr", &second.stderr),
        ("audit", &audit.clone().into_bytes()),
        ("page", &page.clone().into_bytes()),
    ] {
        assert!(
            !String::from_utf8_lossy(bytes).contains(PASSWORD_PREFIX),
            "a password in the {what}"
        );
    }
}

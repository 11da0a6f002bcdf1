//! A night through the real `sluice run --json` binary, with its peak memory: shared by the
//! tests that put a hostile tenant beside the seed tenants.

// Each test binary that includes this module uses part of it.
#![allow(dead_code)]

use std::os::unix::process::ExitStatusExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::Value;
use sluice_tests::{demo_data, root};

/// The seed tenants, as they appear in every night's configuration.
pub const SEED_TENANTS: [&str; 3] = ["hospital", "bank", "retail"];

pub fn digest(path: &Path) -> String {
    sluice_pipeline::plugins::file_digest(path).expect("digest")
}

/// The `[[tenants]]` tables of the seed tenants over the demo data, with their built plugins.
pub fn seed_tenants_toml() -> String {
    let guests = root().join("target/guests");
    let dataset = |t: &str| match t {
        "hospital" => "visits",
        "bank" => "transactions",
        _ => "orders",
    };
    let mut text = String::new();
    for t in SEED_TENANTS {
        let plugin = guests.join(format!("{t}.wasm"));
        text.push_str(&format!(
            "\n[[tenants]]\nid = \"{t}\"\nname = \"{t} inc.\"\ndata_type = \"analytics\"\n\
             plugin = \"{}\"\nsha256 = \"{}\"\nread_scope = \"read:analytics:{t}\"\n\
             write_scope = \"write:reports:{t}\"\n\n[[tenants.datasets]]\nname = \"{}\"\n\
             path = \"{}\"\nresource = \"analytics\"\n",
            plugin.display(),
            digest(&plugin),
            dataset(t),
            demo_data().join(t).join("analytics.db").display(),
        ));
    }
    text
}

/// What one `sluice run --json` did.
pub struct Night {
    pub code: i32,
    /// The signal that ended the process, if one did.
    pub signal: Option<i32>,
    pub summary: Value,
    pub stdout: String,
    pub stderr: String,
    /// Peak resident memory of the process, in KiB.
    pub max_rss_kib: i64,
    pub dir: PathBuf,
}

impl Night {
    pub fn tenant(&self, id: &str) -> &Value {
        self.summary["tenants"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["id"] == id)
            .unwrap_or_else(|| panic!("no tenant {id}: {}", self.summary))
    }

    pub fn report(&self, tenant: &str) -> Option<Vec<u8>> {
        std::fs::read(self.dir.join("reports").join(tenant).join("latest.json")).ok()
    }

    /// The audit trail's entries.
    pub fn audit(&self) -> Vec<Value> {
        std::fs::read_to_string(self.dir.join("audit.jsonl"))
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }
}

/// Runs `sluice run CONFIG --json` with `env` set and reads its peak RSS with `wait4` (which
/// reaps the child: `Child::wait` cannot return the usage).
#[allow(clippy::zombie_processes)]
pub fn run_night_env(dir: &Path, config: &Path, env: &[(&str, &str)]) -> Night {
    let stdout = dir.join("stdout.json");
    let stderr = dir.join("stderr.txt");
    let child = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args(["run", config.to_str().unwrap(), "--json"])
        .env_remove("AGENTWRIT_BROKER_URL")
        .env_remove("AGENTWRIT_CLIENT_ID")
        .env_remove("AGENTWRIT_CLIENT_SECRET")
        .envs(env.iter().copied())
        .stdout(Stdio::from(std::fs::File::create(&stdout).unwrap()))
        .stderr(Stdio::from(std::fs::File::create(&stderr).unwrap()))
        .spawn()
        .unwrap();
    let mut status = 0;
    // SAFETY: an all-zero rusage is a valid value for wait4 to fill in.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: waiting for our own child, with valid out-pointers; `child` is not waited elsewhere.
    let pid = unsafe { libc::wait4(child.id() as i32, &mut status, 0, &mut usage) };
    assert_eq!(pid, child.id() as i32, "wait4 failed");
    let status = std::process::ExitStatus::from_raw(status);
    let stderr = std::fs::read_to_string(&stderr).unwrap_or_default();
    let text = std::fs::read_to_string(&stdout).unwrap_or_default();
    let summary: Value = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("{e}: exit {status:?}, stdout {text:?}, stderr {stderr}"));
    Night {
        code: status.code().unwrap_or(-1),
        signal: status.signal(),
        summary,
        stdout: text,
        stderr,
        max_rss_kib: usage.ru_maxrss,
        dir: dir.to_path_buf(),
    }
}

/// [`run_night_env`] with the environment as it is.
pub fn run_night(dir: &Path, config: &Path) -> Night {
    run_night_env(dir, config, &[])
}

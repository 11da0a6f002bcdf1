//! The machine failing under `sluice run`: a full disk while reports are published, and the
//! process killed with SIGKILL mid-run. Nothing partial is visible, the previous reports stay,
//! the audit chain verifies up to the crash, and the next run continues cleanly.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use sluice_tests::{demo_data, expected_report, guest};

fn sluice(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args(args)
        .env_remove("AGENTWRIT_BROKER_URL")
        .output()
        .expect("running sluice")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A night of `tenants` (id, plugin, dataset, params) with reports in `reports`, audit in `dir`.
fn config(dir: &Path, reports: &Path, tenants: &[(&str, &str, &str, &str)]) -> PathBuf {
    let mut toml = format!(
        "reports = \"{}\"\naudit = \"{}\"\n",
        reports.display(),
        dir.join("audit.jsonl").display()
    );
    for (id, plugin, dataset, params) in tenants {
        let plugin = guest(plugin);
        toml.push_str(&format!(
            "\n[[tenants]]\nid = \"{id}\"\nname = \"{id}\"\ndata_type = \"analytics\"\n\
             plugin = \"{}\"\nsha256 = \"{}\"\nread_scope = \"read:analytics:{id}\"\n\
             write_scope = \"write:reports:{id}\"\nparams = {{ {params} }}\n\n\
             [[tenants.datasets]]\nname = \"{dataset}\"\npath = \"{}\"\nresource = \"analytics\"\n",
            plugin.display(),
            sluice_pipeline::plugins::file_digest(&plugin).unwrap(),
            demo_data().join(id).join("analytics.db").display(),
        ));
    }
    let path = dir.join("nightly.toml");
    std::fs::write(&path, toml).unwrap();
    path
}

const SEED: [(&str, &str, &str, &str); 3] = [
    ("hospital", "hospital", "visits", ""),
    ("bank", "bank", "transactions", ""),
    ("retail", "retail", "orders", ""),
];

/// A small tmpfs, unmounted when dropped.
struct SmallDisk(PathBuf);

impl SmallDisk {
    fn mount(at: PathBuf) -> SmallDisk {
        std::fs::create_dir_all(&at).unwrap();
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", "size=256k", "tmpfs"])
            .arg(&at)
            .status()
            .expect("running mount(8)");
        assert!(
            status.success(),
            "mounting a 256 KiB tmpfs needs root (CAP_SYS_ADMIN), as CI runs"
        );
        SmallDisk(at)
    }

    /// Fills the disk to the last byte.
    fn fill(&self) -> PathBuf {
        use std::io::Write as _;
        let filler = self.0.join("filler");
        let mut file = std::fs::File::create(&filler).unwrap();
        let block = vec![0u8; 4096];
        while file.write_all(&block).and_then(|()| file.flush()).is_ok() {}
        let _ = file.write_all(&[0]);
        filler
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

#[test]
fn a_full_disk_fails_publishing_clearly_and_keeps_every_previous_report() {
    let dir = tempfile::tempdir().unwrap();
    let disk = SmallDisk::mount(dir.path().join("reports"));
    std::fs::create_dir_all(disk.0.join("bank")).unwrap();
    std::fs::write(disk.0.join("bank/latest.json"), "{\"night\":\"previous\"}").unwrap();
    let filler = disk.fill();
    let config = config(dir.path(), &disk.0, &SEED);

    let out = sluice(&["run", config.to_str().unwrap(), "--json"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let bank = &summary["tenants"][1];
    let error = bank["error"]["message"].as_str().unwrap();
    let target = disk.0.join("bank/latest.json");
    assert_eq!(
        error,
        format!(
            "publishing the run's outputs failed: writing {}: No space left on device (os error \
             28); nothing was published: the previous report and tables are kept",
            target.display()
        )
    );
    assert_eq!(bank["agent_end"], "released");
    assert_eq!(
        std::fs::read_to_string(&target).unwrap(),
        "{\"night\":\"previous\"}"
    );
    // No temporary file is left behind to be mistaken for a report.
    let names: Vec<String> = std::fs::read_dir(disk.0.join("bank"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(names, ["latest.json"]);
    let audit = dir.path().join("audit.jsonl");
    assert_eq!(
        sluice(&["audit", "verify", audit.to_str().unwrap()])
            .status
            .code(),
        Some(0)
    );

    // With room again, the next night publishes every report.
    std::fs::remove_file(filler).unwrap();
    let out = sluice(&["run", config.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stdout));
    for tenant in ["hospital", "bank", "retail"] {
        assert_eq!(
            std::fs::read_to_string(disk.0.join(tenant).join("latest.json")).unwrap(),
            expected_report(tenant)
        );
    }
}

#[test]
fn sigkill_mid_run_leaves_no_partial_report_and_an_audit_the_next_run_continues() {
    let dir = tempfile::tempdir().unwrap();
    let reports = dir.path().join("reports");
    std::fs::create_dir_all(reports.join("hospital")).unwrap();
    std::fs::write(
        reports.join("hospital/latest.json"),
        "{\"night\":\"previous\"}",
    )
    .unwrap();
    let slow = [(
        "hospital",
        "probe",
        "visits",
        "mode = \"slow-report\", sleep-ms = \"30000\"",
    )];
    let config_path = config(dir.path(), &reports, &slow);
    let audit = dir.path().join("audit.jsonl");
    let mut child = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args(["run", config_path.to_str().unwrap()])
        .env_remove("AGENTWRIT_BROKER_URL")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while !std::fs::read_to_string(&audit)
        .unwrap_or_default()
        .contains("agent_created")
    {
        assert!(Instant::now() < deadline, "the agent was never created");
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(500));
    child.kill().unwrap();
    child.wait().unwrap();

    assert_eq!(
        std::fs::read_to_string(reports.join("hospital/latest.json")).unwrap(),
        "{\"night\":\"previous\"}"
    );
    let names: Vec<String> = std::fs::read_dir(reports.join("hospital"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(names, ["latest.json"], "nothing partial is visible");
    let verify = sluice(&["audit", "verify", audit.to_str().unwrap()]);
    assert_eq!(verify.status.code(), Some(0), "{}", text(&verify.stdout));
    let intact = text(&verify.stdout)
        .split_whitespace()
        .nth(1)
        .unwrap()
        .parse::<u64>()
        .unwrap();

    // SIGKILL during a write leaves the last entry cut short; the chain up to it still holds.
    {
        use std::io::Write as _;
        let mut file = std::fs::OpenOptions::new()
            .append(true)
            .open(&audit)
            .unwrap();
        file.write_all(b"{\"agent_id\":\"spiffe://agentwr").unwrap();
    }
    let verify = sluice(&["audit", "verify", audit.to_str().unwrap()]);
    assert_eq!(verify.status.code(), Some(1));
    assert_eq!(
        text(&verify.stdout),
        format!(
            "TORN: {intact} entries intact, then 29 bytes of an entry cut short (a run was killed \
             while writing it) in {}; the next run seals it and records what it cut\n",
            audit.display()
        )
    );

    // The next run seals the tear, records it, and continues the chain.
    let clean = config(dir.path(), &reports, &SEED[..1]);
    let out = sluice(&["run", clean.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stdout));
    let verify = sluice(&["audit", "verify", audit.to_str().unwrap()]);
    assert_eq!(verify.status.code(), Some(0), "{}", text(&verify.stdout));
    let trail = std::fs::read_to_string(&audit).unwrap();
    let repaired = trail
        .lines()
        .nth(intact as usize)
        .expect("an entry after the intact ones");
    assert!(
        repaired.contains("\"event\":\"audit_tail_repaired\"")
            && repaired.contains("\"torn_bytes\":29"),
        "{repaired}"
    );
    assert_eq!(
        std::fs::read_to_string(reports.join("hospital/latest.json")).unwrap(),
        expected_report("hospital")
    );
}

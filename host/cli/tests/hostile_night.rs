//! Every hostile guest as a fourth tenant ("mallory") in a night with the three seed tenants,
//! through the real `sluice run` binary: the other tenants' reports are byte-identical to a clean
//! night's, mallory ends within its deadline plus 1 s, the process's peak memory stays under
//! twice a clean night's, every agent is released or reported revoked, and the audit verifies.
//! One test per attack, generated from `sluice-hostile-list`.

mod night;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

use night::{Night, SEED_TENANTS, digest, run_night, seed_tenants_toml};
use sluice_tests::{demo_data, expected_report, guest, root};

/// Mallory's own budget: short, so attacks end fast; the seed tenants keep the defaults.
const MALLORY_WALL_MS: u64 = 1_000;
const MALLORY_MEMORY_MIB: i64 = 64;
const MALLORY_LIMITS: &str = "limits = { wall_time_ms = 1000, memory_mib = 64, host_calls = 2000 }";
/// Host memory a tenant's run may take beyond its linear memory (stores, batches, tables).
const HOST_SLACK_KIB: i64 = 16 << 10;

/// Mallory's data: a copy of the hospital's visits, as its own tenant.
fn mallory_data() -> &'static Path {
    static DATA: OnceLock<tempfile::TempDir> = OnceLock::new();
    DATA.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        std::fs::copy(
            demo_data().join("hospital/analytics.db"),
            dir.path().join("analytics.db"),
        )
        .unwrap();
        dir
    })
    .path()
}

/// A night's configuration in `dir`: the seed tenants, then mallory running `plugin` with
/// `params` (TOML inline-table members).
fn night_config(dir: &Path, plugin: &Path, params: &str) -> PathBuf {
    let guests = root().join("target/guests");
    let mut text = format!(
        "reports = \"{reports}\"\naudit = \"{audit}\"\nconcurrency = 2\n\n\
         [isolation]\nprobe = \"{probe}\"\nsha256 = \"{probe_sha}\"\n",
        reports = dir.join("reports").display(),
        audit = dir.join("audit.jsonl").display(),
        probe = guests.join("probe.wasm").display(),
        probe_sha = digest(&guests.join("probe.wasm")),
    );
    text.push_str(&seed_tenants_toml());
    text.push_str(&format!(
        "\n[[tenants]]\nid = \"mallory\"\nname = \"Mallory\"\ndata_type = \"analytics\"\n\
         plugin = \"{}\"\nsha256 = \"{}\"\nread_scope = \"read:analytics:mallory\"\n\
         write_scope = \"write:reports:mallory\"\nparams = {{ {params} }}\n{MALLORY_LIMITS}\n\n\
         [[tenants.datasets]]\nname = \"visits\"\npath = \"{}\"\nresource = \"analytics\"\n",
        plugin.display(),
        digest(plugin),
        mallory_data().join("analytics.db").display(),
    ));
    let path = dir.join("nightly.toml");
    std::fs::write(&path, text).unwrap();
    path
}

/// A clean night: mallory runs the hospital transform over its own data.
fn clean_night() -> &'static Night {
    static CLEAN: OnceLock<(tempfile::TempDir, Night)> = OnceLock::new();
    &CLEAN
        .get_or_init(|| {
            let dir = tempfile::tempdir().unwrap();
            let config = night_config(dir.path(), &guest("hospital"), "");
            let night = run_night(dir.path(), &config);
            assert_eq!(night.code, 0, "{}\n{}", night.summary, night.stderr);
            (dir, night)
        })
        .1
}

/// Everything a hostile tenant must not do to the night, whatever the attack.
fn assert_contained(attack: &str, night: &Night) {
    let clean = clean_night();
    assert!(
        night.code == 0 || night.code == 1,
        "{attack}: exit {} (2 is a usage error, 3 an isolation violation)\n{}",
        night.code,
        night.stderr
    );
    for t in SEED_TENANTS {
        let tenant = night.tenant(t);
        assert!(tenant["error"].is_null(), "{attack}: {t} failed: {tenant}");
        let report = night
            .report(t)
            .unwrap_or_else(|| panic!("{attack}: no {t} report"));
        assert_eq!(
            report,
            clean.report(t).unwrap(),
            "{attack}: {t} report differs"
        );
        assert_eq!(String::from_utf8(report).unwrap(), expected_report(t));
    }
    // Stopped by its own deadline inside the run, not given up on by the watchdog: that is what
    // holds however busy the machine. Its time is bounded too, loosely: agent creation and
    // release come on top, and on a loaded machine (other work on the same two cores) each of
    // them can take a second.
    let mallory = night.tenant("mallory");
    let error = mallory["error"]["message"].as_str().unwrap_or_default();
    assert!(!error.starts_with("abandoned"), "{attack}: {error}");
    let elapsed = mallory["elapsed_ms"].as_u64().unwrap();
    assert!(
        elapsed <= MALLORY_WALL_MS + 5_000,
        "{attack}: mallory took {elapsed} ms, past its deadline plus 5 s"
    );
    // A hostile tenant may cost the host its own memory budget, and no more.
    let allowed = clean.max_rss_kib + (MALLORY_MEMORY_MIB << 10) + HOST_SLACK_KIB;
    assert!(
        night.max_rss_kib <= allowed,
        "{attack}: peak RSS {} KiB, past a clean night's {} KiB plus mallory's {MALLORY_MEMORY_MIB}          MiB and {HOST_SLACK_KIB} KiB of slack",
        night.max_rss_kib,
        clean.max_rss_kib
    );
    for tenant in night.summary["tenants"].as_array().unwrap() {
        if !tenant["agent_id"].is_null() {
            assert!(
                tenant["agent_end"] == "released" || tenant["agent_end"] == "revoked",
                "{attack}: agent of {} ended {}",
                tenant["id"],
                tenant["agent_end"]
            );
        }
    }
    let isolation = &night.summary["isolation"];
    assert_eq!(isolation["violated"], false, "{attack}");
    assert!(isolation["error"].is_null(), "{attack}: {isolation}");
    let audit = night.dir.join("audit.jsonl");
    let verify = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args(["audit", "verify", audit.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(
        verify.status.code(),
        Some(0),
        "{attack}: {}",
        String::from_utf8_lossy(&verify.stdout)
    );
    let mallory_entries = std::fs::read_to_string(&audit)
        .unwrap()
        .lines()
        .filter(|l| l.contains("\"tenant\":\"mallory\""))
        .count();
    assert!(
        mallory_entries <= 64 + 8,
        "{attack}: {mallory_entries} audit entries for mallory"
    );
    assert!(
        night.report("mallory").is_none(),
        "{attack}: mallory's report was published"
    );
}

fn run_attack(attack: &str) -> Night {
    let dir = tempfile::tempdir().unwrap().keep();
    let config = night_config(&dir, &guest("hostile"), &format!("attack = \"{attack}\""));
    run_night(&dir, &config)
}

/// A component mallory cannot even load: refused before an agent exists.
fn refused(attack: &str, component: &Path) -> Night {
    let dir = tempfile::tempdir().unwrap().keep();
    let config = night_config(&dir, component, "");
    let night = run_night(&dir, &config);
    let mallory = night.tenant("mallory");
    assert!(mallory["agent_id"].is_null(), "{attack}: {mallory}");
    night
}

macro_rules! night_tests {
    (run: [$($run:ident),*], import: [$($import:ident),*], wat: [$($wat:ident),*] $(,)?) => {
        $(
            #[test]
            fn $run() {
                let night = run_attack(stringify!($run));
                assert_contained(stringify!($run), &night);
                let _ = std::fs::remove_dir_all(&night.dir);
            }
        )*
        $(
            #[test]
            fn $import() {
                let name = concat!("hostile-", stringify!($import));
                let night = refused(stringify!($import), &guest(&name.replace('_', "-")));
                assert_contained(stringify!($import), &night);
                let error = night.tenant("mallory")["error"]["message"].as_str().unwrap().to_string();
                assert!(error.contains("which Sluice does not provide"), "{error}");
                let _ = std::fs::remove_dir_all(&night.dir);
            }
        )*
        $(
            #[test]
            fn $wat() {
                let source = root().join("guests/hostile/wat").join(concat!(stringify!($wat), ".wat"));
                let dir = tempfile::tempdir().unwrap();
                let component = dir.path().join(concat!(stringify!($wat), ".wasm"));
                std::fs::write(&component, wat::parse_file(&source).unwrap()).unwrap();
                let night = refused(stringify!($wat), &component);
                assert_contained(stringify!($wat), &night);
                let error = night.tenant("mallory")["error"]["message"].as_str().unwrap().to_string();
                assert!(error.contains("is refused: it needs more than a tenant's share"), "{error}");
                let _ = std::fs::remove_dir_all(&night.dir);
            }
        )*
    };
}

sluice_hostile_list::foreach_hostile!(night_tests);

/// The forging guest under a real terminal: its text shows escaped, and the true verdict is the
/// last line.
#[test]
fn a_forging_tenant_cannot_draw_a_line_on_a_terminal() {
    let dir = tempfile::tempdir().unwrap();
    let config = night_config(dir.path(), &guest("hostile"), "attack = \"forged_output\"");
    let command = format!("{} run {}", env!("CARGO_BIN_EXE_sluice"), config.display());
    // `script` gives the run a pseudo-terminal, as a user's shell would.
    let out = Command::new("script")
        .args(["-qefc", &command, "/dev/null"])
        .env_remove("AGENTWRIT_BROKER_URL")
        .stdin(Stdio::null())
        .output()
        .expect("running script(1)");
    assert_eq!(out.status.code(), Some(1));
    // What the terminal received, as script(1) relays it.
    let screen = String::from_utf8_lossy(&out.stdout).into_owned();
    let lines: Vec<&str> = screen.lines().map(|l| l.trim_end_matches('\r')).collect();
    assert!(
        !screen.contains('\u{1b}'),
        "no escape sequence reaches the terminal: {screen:?}"
    );
    assert!(
        lines.iter().all(|l| !l.starts_with("   [ALLOWED]")),
        "a forged gate line: {screen}"
    );
    assert_eq!(
        lines
            .iter()
            .filter(|l| l.starts_with("Cross-tenant isolation verified."))
            .count(),
        1,
        "only the host's own verdict line: {screen}"
    );
    assert!(
        lines.iter().all(|l| !l.starts_with("Pipeline complete.")),
        "{screen}"
    );
    let failed = lines
        .iter()
        .find(|l| l.starts_with("   [FAILED]"))
        .unwrap_or_else(|| panic!("{screen}"));
    assert!(
        failed.starts_with("   [FAILED]   transform failed: \\n   [ALLOWED] datasets.open on read:analytics:bank\\n"),
        "{failed}"
    );
    assert_eq!(
        lines.iter().rev().find(|l| !l.is_empty()).copied(),
        Some(
            "Pipeline finished with failures: 1 of 4 tenants did not complete (mallory); the others ran; every agent created was released or is dead at the broker."
        ),
        "{screen}"
    );
    let show = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args([
            "audit",
            "show",
            dir.path().join("audit.jsonl").to_str().unwrap(),
            "--tenant",
            "mallory",
        ])
        .output()
        .unwrap();
    let shown = String::from_utf8_lossy(&show.stdout);
    assert!(shown.lines().all(|l| l.starts_with('#')), "{shown}");
    assert!(!shown.contains('\u{1b}'));
}

/// The baseline every attack is compared with: mallory, running the hospital's transform over
/// its copy of the hospital's data, writes the hospital's figures under its own name.
#[test]
fn a_clean_night_is_the_baseline() {
    let clean = clean_night();
    assert!(clean.tenant("mallory")["error"].is_null());
    assert_eq!(
        String::from_utf8(clean.report("mallory").unwrap()).unwrap(),
        expected_report("hospital").replace("\"tenant\":\"hospital\"", "\"tenant\":\"mallory\"")
    );
    assert!(clean.max_rss_kib > 0);
}

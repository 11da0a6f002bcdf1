//! A tenant's own data as the weapon, through the real `sluice run` and `sluice try` binaries.
//! One night per attack of `sluice-hostile-list`'s `foreach_hostile_data!` (an attack without a
//! test here does not compile): mallory, whose data directory holds the hostile file, runs
//! first at concurrency 1 with the seed tenants queued behind it. Each night must end normally
//! (no signal, no abort) with mallory's exact one-line cause, every seed tenant's report equal
//! to a clean night's bytes, the isolation verdict present, and peak memory under twice a clean
//! night's. Then `sluice try` reads the same file and must end normally too.

mod night;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use night::{Night, SEED_TENANTS, digest, run_night, run_night_env, seed_tenants_toml};
use serde_json::Value;
use sluice_tests::hostile_files as files;
use sluice_tests::{demo_data, expected_report, guest, root};

/// Mallory's budget: small, so that a bound it passes is reached quickly. Its wall time is not
/// what any attack here should hit: it is long enough that a debug build on a busy machine
/// reaches the bound under test first (the dictionary bomb takes ~3 s to reach `bytes-read`).
const MALLORY_LIMITS: &str =
    "limits = { wall_time_ms = 30000, memory_mib = 64, bytes_read = 268435456 }";
/// Something only the host's environment holds: it must appear nowhere a tenant can see.
const CANARY: &str = "canary-5f1e9a7c-host-secret";

macro_rules! assert_test_exists {
    ([$($attack:ident),*]) => {
        $( #[allow(unused_imports)] use self::$attack as _; )*
    };
}
sluice_hostile_list::foreach_hostile_data!(assert_test_exists);

/// Where mallory's data goes: `dataset` is how its configuration names it (a file in
/// `mallory/` with that extension), or a whole data directory for the layout.
enum Data<'a> {
    /// `[[tenants.datasets]] name = "visits", path = "mallory/visits.<ext>"`.
    File(&'a str),
    /// `data_dir = "data"`, mallory listing no datasets: `data/mallory/analytics.db`.
    Layout,
}

/// A night in `dir`: mallory first (the hostile guest with `reader`), then the seed tenants.
fn night_config(dir: &Path, data: Data<'_>, reader: &str) -> PathBuf {
    let guests = root().join("target/guests");
    let hostile = guests.join("hostile.wasm");
    let mut text = format!(
        "reports = \"{}\"\naudit = \"{}\"\nconcurrency = 1\n",
        dir.join("reports").display(),
        dir.join("audit.jsonl").display(),
    );
    if let Data::Layout = data {
        text.push_str(&format!("data_dir = \"{}\"\n", dir.join("data").display()));
    }
    text.push_str(&format!(
        "\n[isolation]\nprobe = \"{}\"\nsha256 = \"{}\"\n",
        guests.join("probe.wasm").display(),
        digest(&guests.join("probe.wasm")),
    ));
    text.push_str(&format!(
        "\n[[tenants]]\nid = \"mallory\"\nname = \"Mallory\"\ndata_type = \"analytics\"\n\
         plugin = \"{}\"\nsha256 = \"{}\"\nread_scope = \"read:analytics:mallory\"\n\
         write_scope = \"write:reports:mallory\"\nparams = {{ reader = \"{reader}\" }}\n\
         {MALLORY_LIMITS}\n",
        hostile.display(),
        digest(&hostile),
    ));
    if let Data::File(ext) = data {
        text.push_str(&format!(
            "\n[[tenants.datasets]]\nname = \"visits\"\npath = \"{}\"\nresource = \"analytics\"\n",
            dir.join("mallory").join(format!("visits.{ext}")).display(),
        ));
    }
    text.push_str(&seed_tenants_toml());
    let path = dir.join("nightly.toml");
    std::fs::write(&path, text).unwrap();
    path
}

/// A directory for one night, with mallory's data directory made.
fn night_dir() -> PathBuf {
    let dir = tempfile::tempdir().unwrap().keep();
    std::fs::create_dir_all(dir.join("mallory")).unwrap();
    dir
}

/// The baseline: mallory reads a small, clean CSV file of its own.
fn clean_night() -> &'static Night {
    static CLEAN: OnceLock<Night> = OnceLock::new();
    CLEAN.get_or_init(|| {
        let dir = night_dir();
        let rows: String = (0..1000).map(|i| format!("{i},{}\n", i % 7)).collect();
        std::fs::write(dir.join("mallory/visits.csv"), format!("id,ward\n{rows}")).unwrap();
        let config = night_config(&dir, Data::File("csv"), "everything");
        let night = run_night(&dir, &config);
        assert_eq!(night.code, 0, "{}\n{}", night.summary, night.stderr);
        assert_eq!(night.tenant("mallory")["figures"][0]["value"], "1000");
        night
    })
}

#[test]
fn a_clean_night_is_the_baseline() {
    let clean = clean_night();
    assert!(clean.tenant("mallory")["error"].is_null());
    assert!(clean.max_rss_kib > 0);
}

/// Runs the night of `config` with the canary in the host's environment.
fn run(dir: &Path, config: &Path) -> Night {
    run_night_env(dir, config, &[("SLUICE_TEST_CANARY", CANARY)])
}

/// Everything a tenant's data must not do to the night; returns mallory's error.
fn assert_contained(attack: &str, night: &Night) -> String {
    let clean = clean_night();
    assert_eq!(
        night.signal, None,
        "{attack}: the process was killed by a signal\n{}",
        night.stderr
    );
    for t in SEED_TENANTS {
        let tenant = night.tenant(t);
        assert!(tenant["error"].is_null(), "{attack}: {t} failed: {tenant}");
        let report = night
            .report(t)
            .unwrap_or_else(|| panic!("{attack}: no {t} report"));
        assert_eq!(
            String::from_utf8(report).unwrap(),
            expected_report(t),
            "{attack}: {t}'s report differs from a clean night's"
        );
    }
    // The verdict, whatever mallory's data did to the first tenant's proof.
    let isolation = &night.summary["isolation"];
    assert_eq!(isolation["tenant"], "mallory", "{attack}");
    assert_eq!(isolation["violated"], false, "{attack}: {isolation}");
    assert!(isolation["error"].is_null(), "{attack}: {isolation}");
    let decisions: Vec<&Value> = isolation["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| &c["decision"])
        .collect();
    assert_eq!(decisions, ["BLOCKED", "BLOCKED", "ALLOWED"], "{attack}");
    assert!(
        night.max_rss_kib < 2 * clean.max_rss_kib,
        "{attack}: peak RSS {} KiB, a clean night's is {} KiB",
        night.max_rss_kib,
        clean.max_rss_kib
    );
    // Nothing of the host's environment reached a tenant, its report, the output or the audit.
    let audit = std::fs::read_to_string(night.dir.join("audit.jsonl")).unwrap();
    for (what, text) in [
        ("stdout", &night.stdout),
        ("stderr", &night.stderr),
        ("audit", &audit),
    ] {
        assert!(
            !text.contains(CANARY),
            "{attack}: the host's secret in {what}"
        );
    }
    assert!(night.report("mallory").is_none(), "{attack}");
    night.tenant("mallory")["error"]["message"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

/// `sluice try` over mallory's data directory as the layout (`<data>/mallory/analytics/`),
/// reading everything: it must end with an exit code, never a signal.
fn try_reads(attack: &str, data: &Path) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args([
            "try",
            guest("hostile").to_str().unwrap(),
            "--tenant",
            "mallory",
            "--scope",
            "read:analytics:mallory",
            "--scope",
            "write:reports:mallory",
            "--data",
            data.to_str().unwrap(),
            "--reports",
            data.join("reports").to_str().unwrap(),
            "--param",
            "reader=everything",
            "--wall-time-ms",
            "30000",
            "--memory-mib",
            "64",
            "--bytes-read",
            "268435456",
        ])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.code().is_some(),
        "{attack}: sluice try was killed by a signal: {stderr}"
    );
    (out.status.code().unwrap(), format!("{stdout}{stderr}"))
}

/// Puts `make`'s file as mallory's `visits.<ext>` in a night and in a `sluice try` layout;
/// returns mallory's error in the night. `sluice try` must fail with the same cause: the same
/// line up to its first "it needs" (what was read may differ), or `try_says` where the layout
/// names the file otherwise.
fn data_attack(attack: &str, ext: &str, make: impl Fn(&Path)) -> (Night, String) {
    data_attack_saying(attack, ext, None, make)
}

fn data_attack_saying(
    attack: &str,
    ext: &str,
    try_says: Option<&str>,
    make: impl Fn(&Path),
) -> (Night, String) {
    let dir = night_dir();
    make(&dir.join("mallory").join(format!("visits.{ext}")));
    let night = run(&dir, &night_config(&dir, Data::File(ext), "everything"));
    let error = assert_contained(attack, &night);
    assert_eq!(night.code, 1, "{attack}: {}", night.stderr);

    // The layout keeps a database per resource, files per dataset.
    let layout = dir.join("layout");
    std::fs::create_dir_all(layout.join("mallory/analytics")).unwrap();
    make(&match ext {
        "db" => layout.join("mallory/analytics.db"),
        _ => layout
            .join("mallory/analytics")
            .join(format!("visits.{ext}")),
    });
    let (code, output) = try_reads(attack, &layout);
    assert_eq!(code, 1, "{attack}: {output}");
    let cause = try_says.unwrap_or_else(|| error.split("it needs").next().unwrap());
    assert!(output.contains(cause), "{attack}: sluice try said {output}");
    (night, error)
}

// The process must not end.

#[test]
fn parquet_deep_schema() {
    let (_, error) = data_attack("parquet_deep_schema", "parquet", |p| {
        files::deep_parquet(p, 200_000)
    });
    assert_eq!(
        error,
        "limit schema-depth exceeded by dataset 'visits' (visits.parquet): limit is 64, it needs 65"
    );
}

// Memory must not follow the file's claims.

#[test]
fn csv_wide() {
    let (_, error) = data_attack("csv_wide", "csv", |p| files::wide_csv(p, 200_000));
    assert_eq!(
        error,
        "limit columns exceeded by dataset 'visits' (visits.csv): limit is 4096, it needs 200000"
    );
}

#[test]
fn csv_huge_header() {
    let (_, error) = data_attack("csv_huge_header", "csv", |p| files::sparse(p, 1 << 30));
    assert_eq!(
        error,
        "limit row-bytes exceeded by dataset 'visits' (visits.csv) line 1: limit is 4194304"
    );
}

#[test]
fn csv_huge_types() {
    let (_, error) = data_attack("csv_huge_types", "csv", |p| {
        std::fs::write(p, "id,ward\n1,2\n").unwrap();
        files::sparse(&PathBuf::from(format!("{}.types", p.display())), 1 << 30);
    });
    assert_eq!(
        error,
        "limit row-bytes exceeded by dataset 'visits' (visits.csv.types): limit is 4194304"
    );
}

#[test]
fn csv_long_record() {
    let (_, error) = data_attack("csv_long_record", "csv", |p| {
        files::long_record_csv(p, 8 << 20)
    });
    assert_eq!(
        error,
        "limit row-bytes exceeded by dataset 'visits' (visits.csv) line 2: limit is 4194304"
    );
}

#[test]
fn parquet_wide() {
    let (_, error) = data_attack("parquet_wide", "parquet", |p| files::wide_parquet(p, 5000));
    assert_eq!(
        error,
        "limit columns exceeded by dataset 'visits' (visits.parquet): limit is 4096, it needs 4097"
    );
}

#[test]
fn parquet_dictionary_bomb() {
    // 16 KiB on disk, 1 GiB once its values are copied out: charged as they are.
    let (_, error) = data_attack("parquet_dictionary_bomb", "parquet", |p| {
        files::dictionary_bomb(p, "ward", &[b'w'; 16 << 10], 65_536, None)
    });
    assert!(
        error.starts_with(
            "limit bytes-read exceeded by dataset 'visits' (visits.parquet): limit is 268435456, \
             it needs "
        ),
        "{error}"
    );
}

#[test]
fn parquet_dictionary_bomb_opened_16_times() {
    // Each open decodes a batch ahead of the guest: 16 KiB values read as views cost 16 bytes a
    // row there, charged to bytes-read when decoded, not when (or if) the guest takes them.
    let dir = night_dir();
    files::dictionary_bomb(
        &dir.join("mallory/visits.parquet"),
        "ward",
        &[b'w'; 16 << 10],
        65_536,
        None,
    );
    let night = run(
        &dir,
        &night_config(&dir, Data::File("parquet"), "open-many"),
    );
    assert_eq!(night.signal, None);
    let mallory = night.tenant("mallory");
    assert!(mallory["error"].is_null(), "{mallory}");
    assert_eq!(mallory["figures"][0]["value"], "16");
    let finished = night
        .audit()
        .into_iter()
        .find(|e| e["tenant"] == "mallory" && e["event"] == "run_finished")
        .expect("mallory's run_finished entry");
    let charged = finished["bytes_read"].as_u64().unwrap();
    assert!(charged >= 16 * 16_384 * 16, "{finished}");
    let clean = clean_night();
    assert!(
        night.max_rss_kib < 2 * clean.max_rss_kib,
        "peak RSS {} KiB, a clean night's is {} KiB",
        night.max_rss_kib,
        clean.max_rss_kib
    );
}

#[test]
fn parquet_page_claims_2_gib() {
    let (_, error) = data_attack("parquet_page_claims_2_gib", "parquet", |p| {
        files::dictionary_bomb(p, "ward", b"w", 10, Some(i32::MAX))
    });
    assert_eq!(
        error,
        "limit page-bytes exceeded by dataset 'visits' (visits.parquet), a page at byte 4: limit \
         is 16777216, it needs 2147483647"
    );
}

// The data directory is a jail.

/// How `sluice try` says it of the layout's `mallory/analytics.db`.
const LINK: &str = "'mallory/analytics.db' leads through a symbolic link, a mount or outside its \
                    directory: refused";
const LINKS: &str = "'mallory/analytics.db' has 3 hard links: a file another name can reach is \
                     refused";

fn refused(file: &str, why: &str) -> String {
    format!("transform failed: invalid call: dataset 'visits' ({file}): '{file}' {why}: refused")
}

#[test]
fn symlink_to_host_environment() {
    let says = "'mallory/analytics/visits.csv' leads through a symbolic link, a mount or outside \
                its directory: refused";
    let (_, error) = data_attack_saying("symlink_to_host_environment", "csv", Some(says), |p| {
        std::os::unix::fs::symlink("/proc/self/environ", p).unwrap()
    });
    assert_eq!(
        error,
        refused(
            "visits.csv",
            "leads through a symbolic link, a mount or outside its directory"
        )
    );
}

#[test]
fn symlink_to_other_tenant() {
    let (_, error) = data_attack_saying("symlink_to_other_tenant", "db", Some(LINK), |p| {
        std::os::unix::fs::symlink(demo_data().join("bank/analytics.db"), p).unwrap()
    });
    assert_eq!(
        error,
        refused(
            "visits.db",
            "leads through a symbolic link, a mount or outside its directory"
        )
    );
}

#[test]
fn hard_link_to_other_tenant() {
    // The other tenant's file as it is kept on the same file system.
    let others = tempfile::tempdir().unwrap();
    let bank = others.path().join("bank.db");
    std::fs::copy(demo_data().join("hospital/analytics.db"), &bank).unwrap();
    let (_, error) = data_attack_saying("hard_link_to_other_tenant", "db", Some(LINKS), |p| {
        let _ = std::fs::remove_file(p);
        std::fs::hard_link(&bank, p).unwrap()
    });
    assert_eq!(
        error,
        "transform failed: invalid call: dataset 'visits' (visits.db): 'visits.db' has 2 hard \
         links: a file another name can reach is refused"
    );
}

#[test]
fn fifo_instead_of_a_file() {
    // Opened for reading, a FIFO would block until someone writes: the night would stall.
    let says = "'mallory/analytics/visits.csv' is a FIFO, not a regular file: refused";
    let (_, error) = data_attack_saying("fifo_instead_of_a_file", "csv", Some(says), |p| {
        let path = std::ffi::CString::new(p.to_str().unwrap()).unwrap();
        // SAFETY: a valid NUL-terminated path and mode.
        assert_eq!(unsafe { libc::mkfifo(path.as_ptr(), 0o600) }, 0);
    });
    assert_eq!(
        error,
        refused("visits.csv", "is a FIFO, not a regular file")
    );
}

#[test]
fn tenant_directory_is_a_symlink() {
    // In the layout, mallory's whole directory is a link to the bank's.
    let dir = night_dir();
    std::fs::create_dir_all(dir.join("data")).unwrap();
    std::os::unix::fs::symlink(demo_data().join("bank"), dir.join("data/mallory")).unwrap();
    let night = run(&dir, &night_config(&dir, Data::Layout, "everything"));
    let error = assert_contained("tenant_directory_is_a_symlink", &night);
    assert_eq!(night.code, 1);
    assert_eq!(
        error,
        "transform failed: invalid call: dataset 'analytics' (analytics.db): \
         'mallory/analytics.db' leads through a symbolic link, a mount or outside its directory: \
         refused"
    );
    let (code, output) = try_reads("tenant_directory_is_a_symlink", &dir.join("data"));
    assert_eq!(code, 1, "{output}");
    assert!(output.contains("leads through a symbolic link"), "{output}");
}

// Outputs: all of them or none.

/// Mallory commits a good table, then a second, then its report; the second cannot be staged (a
/// directory sits where its file goes). Nothing of the run is published: the first table and
/// the report keep the previous night's bytes, and `--json` and the audit say no table was
/// committed.
#[test]
fn outputs_are_published_all_or_nothing() {
    let dir = night_dir();
    std::fs::write(dir.join("mallory/visits.csv"), "id,ward\n1,2\n").unwrap();
    let config = night_config(&dir, Data::File("csv"), "two-tables");
    let first = run_night(&dir, &config);
    assert_eq!(first.code, 0, "{}", first.stderr);
    let tables = dir.join("reports/mallory/reports");
    let before = std::fs::read(tables.join("first.parquet")).unwrap();
    // Every publish renames a new file in: the same inode afterwards means it was not replaced.
    let inode = |p: &Path| std::os::unix::fs::MetadataExt::ino(&std::fs::metadata(p).unwrap());
    let first_inode = inode(&tables.join("first.parquet"));
    let report_inode = inode(&dir.join("reports/mallory/latest.json"));
    let report = std::fs::read(dir.join("reports/mallory/latest.json")).unwrap();
    assert!(tables.join("second.parquet").is_file());

    std::fs::remove_file(tables.join("second.parquet")).unwrap();
    std::fs::create_dir(tables.join("second.parquet")).unwrap();
    let audit_before = first.audit().len();
    let second = run_night(&dir, &config);
    assert_eq!(second.code, 1);
    let mallory = second.tenant("mallory");
    assert_eq!(mallory["error"]["kind"], "publish", "{mallory}");
    assert_eq!(
        mallory["error"]["message"],
        format!(
            "publishing the run's outputs failed: writing {}: 'second.parquet' is a directory, \
             not a regular file: refused; nothing was published: the previous report and tables \
             are kept",
            tables.join("second.parquet").display()
        )
    );
    assert_eq!(mallory["tables"], serde_json::json!([]));
    assert!(mallory["report"].is_null());
    assert_eq!(std::fs::read(tables.join("first.parquet")).unwrap(), before);
    assert_eq!(inode(&tables.join("first.parquet")), first_inode);
    assert_eq!(
        std::fs::read(dir.join("reports/mallory/latest.json")).unwrap(),
        report
    );
    assert_eq!(
        inode(&dir.join("reports/mallory/latest.json")),
        report_inode
    );
    let committed: Vec<Value> = second.audit()[audit_before..]
        .iter()
        .filter(|e| {
            e["tenant"] == "mallory"
                && (e["event"] == "table_committed" || e["event"] == "report_committed")
        })
        .cloned()
        .collect();
    assert_eq!(committed, Vec::<Value>::new());
    // No staged file was left behind either.
    let mut names: Vec<String> = std::fs::read_dir(&tables)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(names, ["first.parquet", "second.parquet"]);
}

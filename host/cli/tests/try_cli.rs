//! `sluice try` as a user runs it: the real binary, real guests, real SQLite data.

use std::path::Path;
use std::process::{Command, Output};

use sluice_tests::{demo_data, expected_report, guest};

fn sluice(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args(args)
        .output()
        .expect("running sluice")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn try_args<'a>(
    component: &'a str,
    tenant: &'a str,
    reports: &'a Path,
    extra: &[&'a str],
) -> Vec<String> {
    let mut args: Vec<String> = vec![
        "try".into(),
        component.into(),
        "--tenant".into(),
        tenant.into(),
        "--scope".into(),
        format!("read:analytics:{tenant}"),
        "--scope".into(),
        format!("write:reports:{tenant}"),
        "--data".into(),
        demo_data().display().to_string(),
        "--reports".into(),
        reports.display().to_string(),
    ];
    args.extend(extra.iter().map(|s| s.to_string()));
    args
}

fn run(args: &[String]) -> Output {
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    sluice(&args)
}

#[test]
fn try_writes_the_tenant_report_and_exits_zero() {
    let reports = tempfile::tempdir().unwrap();
    let component = guest("retail").display().to_string();
    let out = run(&try_args(&component, "retail", reports.path(), &[]));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains(
            "[RESULT]  ok: {'orders': '847K', 'avg_order': '$67.30', 'return_rate': '8.4%'}"
        ),
        "{stdout}"
    );
    assert_eq!(
        std::fs::read_to_string(reports.path().join("retail/latest.json")).unwrap(),
        expected_report("retail")
    );
}

#[test]
fn the_transforms_log_lines_are_shown() {
    let reports = tempfile::tempdir().unwrap();
    let component = guest("hospital").display().to_string();
    let out = run(&try_args(&component, "hospital", reports.path(), &[]));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("   [log info] 12847 visits, 12719 with a length of stay\n")
    );
}

#[test]
fn cross_tenant_probe_prints_blocked_with_required_and_held_and_audits_it() {
    let reports = tempfile::tempdir().unwrap();
    let audit = reports.path().join("audit.jsonl");
    let audit_s = audit.display().to_string();
    let component = guest("probe").display().to_string();
    let out = run(&try_args(
        &component,
        "hospital",
        reports.path(),
        &[
            "--audit",
            &audit_s,
            "--param",
            "read-tenant=bank",
            "--param",
            "write-tenant=retail",
        ],
    ));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    for want in [
        "[BLOCKED] datasets.open on read:analytics:bank\n             Required: ['read:analytics:bank']\n             Held:     ['read:analytics:hospital', 'write:reports:hospital']",
        "[BLOCKED] reports.create on write:reports:retail\n             Required: ['write:reports:retail']\n             Held:     ['read:analytics:hospital', 'write:reports:hospital']",
        "[ALLOWED] datasets.open on read:analytics:hospital",
    ] {
        assert!(stdout.contains(want), "missing\n{want}\nin\n{stdout}");
    }

    let verify = sluice(&["audit", "verify", &audit_s]);
    assert_eq!(verify.status.code(), Some(0));
    // Five kinds of gate decision, then what the run used.
    assert!(text(&verify.stdout).starts_with("OK: 6 entries, chain intact"));
    let denied = text(&sluice(&["audit", "show", &audit_s, "--denied"]).stdout);
    assert_eq!(denied.lines().count(), 2, "{denied}");
    assert!(denied.contains("BLOCKED  datasets.open requires read:analytics:bank"));
    assert!(denied.contains("BLOCKED  reports.create requires write:reports:retail"));
}

#[test]
fn failing_transform_exits_one_with_the_cause_on_one_line_and_keeps_the_old_report() {
    let reports = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(reports.path().join("hospital")).unwrap();
    std::fs::write(reports.path().join("hospital/latest.json"), "{\"old\":1}").unwrap();
    let component = guest("hostile").display().to_string();
    let out = run(&try_args(
        &component,
        "hospital",
        reports.path(),
        &["--param", "attack=trap_after_commit"],
    ));
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.ends_with("failed: guest panicked: transform crashed after committing\n"),
        "{stderr}"
    );
    assert_eq!(
        std::fs::read_to_string(reports.path().join("hospital/latest.json")).unwrap(),
        "{\"old\":1}"
    );
}

#[test]
fn component_with_forbidden_imports_is_refused_naming_them() {
    let reports = tempfile::tempdir().unwrap();
    let component = guest("hostile-sockets").display().to_string();
    let out = run(&try_args(&component, "hospital", reports.path(), &[]));
    assert_eq!(out.status.code(), Some(2));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("wasi:sockets/tcp@0.2.6"), "{stderr}");
    assert!(stderr.contains("which Sluice does not provide"), "{stderr}");
}

#[test]
fn bad_scope_is_a_usage_error_naming_it() {
    let reports = tempfile::tempdir().unwrap();
    let component = guest("hospital").display().to_string();
    let out = sluice(&[
        "try",
        &component,
        "--tenant",
        "hospital",
        "--scope",
        "read:analytics",
        "--data",
        "x",
        "--reports",
        &reports.path().display().to_string(),
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        text(&out.stderr),
        "sluice: invalid scope 'read:analytics': expected action:resource:identifier with three non-empty parts\n"
    );
}

#[test]
fn a_file_that_is_not_a_component_is_named_for_what_it_is() {
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("transform.wasm");
    std::fs::write(&script, "#!/bin/sh\necho hello\n").unwrap();
    let module = dir.path().join("module.wasm");
    std::fs::write(&module, b"\0asm\x01\0\0\0").unwrap();
    for (path, what) in [
        (
            &script,
            "is not a WebAssembly file (it does not begin with \\0asm)",
        ),
        (&module, "is a core WebAssembly module, not a component"),
    ] {
        let out = sluice(&[
            "try",
            path.to_str().unwrap(),
            "--tenant",
            "t",
            "--data",
            "d",
            "--reports",
            "r",
        ]);
        assert_eq!(out.status.code(), Some(2));
        let stderr = text(&out.stderr);
        assert!(
            stderr.starts_with(&format!("sluice: '{}' {what}", path.display())),
            "{stderr}"
        );
        assert!(
            !stderr.contains("expected=["),
            "the parser's byte array: {stderr}"
        );
    }
}

#[test]
fn missing_component_says_how_to_build_it() {
    let out = sluice(&[
        "try",
        "nope.wasm",
        "--tenant",
        "t",
        "--data",
        "d",
        "--reports",
        "r",
    ]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = text(&out.stderr);
    assert!(
        stderr.starts_with("sluice: reading transform 'nope.wasm': check the path"),
        "{stderr}"
    );
}

/// `AGENTWRIT_CLIENT_SECRET` is in the host's environment; the Python and JS guests see an empty
/// one (or none at all), and the secret is nowhere in what sluice prints.
#[test]
fn interpreted_guests_cannot_see_the_host_environment() {
    const SECRET: &str = "s3cret-the-guest-must-never-see";
    for (guest_name, lang, cause) in [
        (
            "hostile-py",
            "python",
            "transform failed: TransformFailed: environment {}, arguments []",
        ),
        (
            "hostile-js",
            "js",
            "transform failed: ReferenceError: process is not defined",
        ),
    ] {
        let reports = tempfile::tempdir().unwrap();
        let component = guest(guest_name).display().to_string();
        let args = try_args(
            &component,
            "hospital",
            reports.path(),
            &["--lang", lang, "--param", "attack=read_env"],
        );
        let out = Command::new(env!("CARGO_BIN_EXE_sluice"))
            .args(&args)
            .env("AGENTWRIT_CLIENT_SECRET", SECRET)
            .env("AGENTWRIT_CLIENT_ID", "sa-visible-to-nobody")
            .output()
            .unwrap();
        let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
        assert_eq!(out.status.code(), Some(1), "{stdout}{stderr}");
        assert!(
            stdout.contains(&format!("[FAILED]  {cause}")),
            "{guest_name}: {stdout}"
        );
        for output in [&stdout, &stderr] {
            assert!(!output.contains(SECRET), "{guest_name} leaked: {output}");
            assert!(!output.contains("sa-visible-to-nobody"), "{output}");
        }
    }
}

#[test]
fn a_second_try_loads_the_plugin_compiled_from_the_cache() {
    let cache = tempfile::tempdir().unwrap();
    let cache_dir = cache.path().display().to_string();
    let component = guest("hospital").display().to_string();
    let mut origins = Vec::new();
    for _ in 0..2 {
        let reports = tempfile::tempdir().unwrap();
        let out = run(&try_args(
            &component,
            "hospital",
            reports.path(),
            &["--cache-dir", &cache_dir],
        ));
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
        let stdout = text(&out.stdout);
        let line = stdout
            .lines()
            .find(|l| l.contains("[PLUGIN]"))
            .unwrap_or_else(|| panic!("{stdout}"))
            .to_string();
        origins.push(line);
        assert_eq!(
            std::fs::read_to_string(reports.path().join("hospital/latest.json")).unwrap(),
            expected_report("hospital")
        );
    }
    assert!(
        origins[0].contains("[PLUGIN]  rust, compiled in "),
        "{}",
        origins[0]
    );
    assert!(
        origins[1].contains("[PLUGIN]  rust, compiled code from the cache in "),
        "{}",
        origins[1]
    );

    let sha = sluice_pipeline::plugins::file_digest(&guest("hospital")).unwrap();
    let ls = sluice(&["cache", "ls", "--cache-dir", &cache_dir]);
    let listing = text(&ls.stdout);
    assert!(listing.contains(&sha[..16]), "{listing}");
    assert!(listing.contains("1 compiled plugin(s)"), "{listing}");
    let clear = sluice(&["cache", "clear", "--cache-dir", &cache_dir]);
    assert!(
        text(&clear.stdout).starts_with("removed 2 file(s), "),
        "{}",
        text(&clear.stdout)
    );
    let ls = sluice(&["cache", "ls", "--cache-dir", &cache_dir]);
    assert!(text(&ls.stdout).contains("0 compiled plugin(s)"));
}

/// A big tenant's Parquet on every decode thread it may use, as a user tries it: the report is
/// the one a one-thread read (and SQLite) gives, byte for byte, and the `[USAGE]` line still
/// says how long the transform took, to compare with another engine.
#[test]
fn try_over_parquet_on_two_decode_threads_prints_the_run_time_and_the_same_report() {
    let data = sluice_tests::demo_files(sluice_tests::FileFormat::Parquet)
        .display()
        .to_string();
    let component = guest("bank").display().to_string();
    for threads in ["1", "2"] {
        let reports = tempfile::tempdir().unwrap();
        let mut args = try_args(
            &component,
            "bank",
            reports.path(),
            &["--decode-threads", threads],
        );
        let at = args.iter().position(|a| a == "--data").unwrap();
        args[at + 1] = data.clone();
        let out = run(&args);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
        let stdout = text(&out.stdout);
        let usage = stdout
            .lines()
            .find(|l| l.contains("[USAGE]"))
            .unwrap_or_else(|| panic!("no [USAGE] line: {stdout}"));
        let ms = usage
            .strip_suffix(" ms")
            .and_then(|rest| rest.rsplit(", ").next())
            .and_then(|n| n.parse::<u64>().ok());
        assert!(
            usage.contains("rows read 2400000,") && ms.is_some(),
            "{threads} threads: {usage}"
        );
        assert_eq!(
            std::fs::read_to_string(reports.path().join("bank/latest.json")).unwrap(),
            expected_report("bank"),
            "{threads} threads"
        );
    }
}

/// `args` run to the end; its stdout and peak resident memory in bytes, from the kernel's own
/// accounting of that one child (`wait4`), not of every child the test process has.
#[allow(
    clippy::zombie_processes,
    reason = "reaped by wait4 below, which also reports its peak memory"
)]
fn run_measured(args: &[String]) -> (Option<i32>, String, u64) {
    use std::io::Read as _;
    let mut child = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args(args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("running sluice");
    let mut stdout = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut stdout)
        .unwrap();
    let mut status = 0;
    // SAFETY: rusage is plain integers and timevals: all zeroes is a valid value.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: our own child, not reaped yet; both pointers are to live locals.
    let pid = unsafe { libc::wait4(child.id() as libc::pid_t, &mut status, 0, &mut usage) };
    assert_eq!(pid, child.id() as libc::pid_t, "wait4");
    let code = libc::WIFEXITED(status).then(|| libc::WEXITSTATUS(status));
    // ru_maxrss is in KiB on Linux.
    (code, stdout, usage.ru_maxrss as u64 * 1024)
}

/// The bank tenant reading its 2.4 M Parquet rows on two decode threads stays within its
/// memory budget: the process's peak resident memory, less that of the same binary running the
/// hospital's 12,847 rows (the engine, the code, the runtime), is at most `memory-mib`.
#[test]
fn parallel_decode_keeps_the_bank_tenants_resident_memory_within_its_budget() {
    const BUDGET_MIB: u64 = 64;
    let parquet = sluice_tests::demo_files(sluice_tests::FileFormat::Parquet)
        .display()
        .to_string();
    let reports = tempfile::tempdir().unwrap();
    let hospital = guest("hospital").display().to_string();
    let (code, _, baseline) = run_measured(&try_args(&hospital, "hospital", reports.path(), &[]));
    assert_eq!(code, Some(0));
    let bank = guest("bank").display().to_string();
    let budget = BUDGET_MIB.to_string();
    let mut args = try_args(
        &bank,
        "bank",
        reports.path(),
        &["--decode-threads", "2", "--memory-mib", &budget],
    );
    let at = args.iter().position(|a| a == "--data").unwrap();
    args[at + 1] = parquet;
    let (code, stdout, peak) = run_measured(&args);
    assert_eq!(code, Some(0), "{stdout}");
    assert!(stdout.contains("rows read 2400000,"), "{stdout}");
    let tenant = peak.saturating_sub(baseline);
    eprintln!(
        "bank on 2 decode threads: peak RSS {} KiB, {} KiB over the hospital's {} KiB",
        peak / 1024,
        tenant / 1024,
        baseline / 1024
    );
    assert!(
        tenant <= BUDGET_MIB << 20,
        "the bank tenant took {} MiB of resident memory over the engine's, past its {BUDGET_MIB} MiB",
        tenant >> 20
    );
}

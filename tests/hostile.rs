//! Every hostile guest of `sluice-hostile-list`, one test each, named as the attack: an attack
//! without a test here does not compile. Each asserts the exact one-line cause, that nothing was
//! staged, and what the attack must not have reached; the last tests run them between clean
//! tenants and compare reports byte for byte.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use sluice_data::{ReportDir, SqliteSource};
use sluice_sandbox::{
    Budget, Decision, Interrupt, RunOutcome, RunRequest, SandboxOptions, TenantShare,
    WATCHDOG_GRACE, WasiSurface,
};
use sluice_tests::{demo_data, expected_report, files_under, guest, own_scopes, run_as, writ};

macro_rules! assert_test_exists {
    (run: [$($run:ident),*], import: [$($import:ident),*], wat: [$($wat:ident),*] $(,)?) => {
        $( #[allow(unused_imports)] use self::$run as _; )*
        $( #[allow(unused_imports)] use self::$import as _; )*
        $( #[allow(unused_imports)] use self::$wat as _; )*
    };
}
sluice_hostile_list::foreach_hostile!(assert_test_exists);

/// Limits low enough for the attacks to hit them quickly.
fn hostile_budget() -> Budget {
    Budget {
        wall_time: Duration::from_millis(500),
        memory_bytes: 64 << 20,
        host_calls: 2_000,
        ..Budget::default()
    }
}

/// Runs `attack` of `hostile.wasm` as the hospital, behind the watchdog (a run that escaped its
/// deadline would otherwise hang the test instead of failing it).
fn attack_with(attack: &str, budget: Budget) -> RunOutcome {
    let scopes = own_scopes("hospital");
    let scopes: Vec<&str> = scopes.iter().map(String::as_str).collect();
    let wall_time = budget.wall_time;
    let outcome = sluice_tests::transform("hostile")
        .spawn(
            RunRequest {
                writ: writ("hospital", &scopes),
                budget,
                datasets: Arc::new(SqliteSource::new(demo_data())),
                params: vec![("attack".into(), attack.into())],
                interrupt: Interrupt::new(),
            },
            (),
        )
        .wait();
    assert!(
        outcome.elapsed <= wall_time + WATCHDOG_GRACE,
        "{attack}: took {:?}",
        outcome.elapsed
    );
    assert!(outcome.staged.is_empty(), "{attack}: nothing may be staged");
    outcome
}

/// [`hostile_budget`] with time to spare: an attack on any other limit must reach that limit
/// before its deadline even on a busy machine (a debug build, other work on both cores).
fn unhurried_budget() -> Budget {
    Budget {
        wall_time: Duration::from_secs(20),
        ..hostile_budget()
    }
}

fn attack(attack: &str) -> RunOutcome {
    attack_with(attack, unhurried_budget())
}

/// The one-line cause `attack` fails with.
fn cause(name: &str) -> String {
    one_line(name, attack(name))
}

/// The one-line cause of an attack on time itself, under [`hostile_budget`]'s 500 ms.
fn timed_cause(name: &str) -> String {
    one_line(name, attack_with(name, hostile_budget()))
}

fn one_line(name: &str, outcome: RunOutcome) -> String {
    let message = outcome
        .result
        .expect_err("a hostile guest must fail")
        .to_string();
    assert!(!message.contains('\n'), "{name}: not one line: {message:?}");
    message
}

const HOSPITAL_DENIED: &str =
    "is not covered by held scopes [read:analytics:hospital, write:reports:hospital]";
const WALL_TIME: &str = "limit wall-time-ms exceeded: limit is 500, the guest was still running";
const HOST_CALLS: &str = "limit host-calls exceeded: limit is 2000, run needed 2001";
const CALL_BYTES: &str =
    "limit call-bytes exceeded: limit is 1048576, the guest passed more in one call";

fn invalid_report(reason: &str) -> String {
    format!(
        "transform failed: invalid call: the report of tenant 'hospital' is not one JSON document \
         every reader accepts (I-JSON, nesting at most 64): {reason}"
    )
}

// Reaching other tenants.

#[test]
fn read_other_tenant() {
    assert_eq!(
        cause("read_other_tenant"),
        format!("denied: scope 'read:analytics:bank' {HOSPITAL_DENIED}")
    );
}

#[test]
fn list_other_tenant() {
    assert_eq!(
        cause("list_other_tenant"),
        format!("denied: scope 'read:analytics:bank' {HOSPITAL_DENIED}")
    );
}

#[test]
fn write_other_tenant() {
    assert_eq!(
        cause("write_other_tenant"),
        format!("denied: scope 'write:reports:retail' {HOSPITAL_DENIED}")
    );
}

#[test]
fn write_other_tenant_table() {
    assert_eq!(
        cause("write_other_tenant_table"),
        format!("denied: scope 'write:reports:retail' {HOSPITAL_DENIED}")
    );
}

// Time.

#[test]
fn spin() {
    assert_eq!(timed_cause("spin"), WALL_TIME);
}

#[test]
fn sleep_forever() {
    assert_eq!(timed_cause("sleep_forever"), WALL_TIME);
}

#[test]
fn sleep_in_a_loop() {
    assert_eq!(timed_cause("sleep_in_a_loop"), WALL_TIME);
}

#[test]
fn read_forever() {
    let outcome = attack_with("read_forever", hostile_budget());
    let error = outcome.result.unwrap_err().to_string();
    // Stopped at its deadline, or (on a machine too busy to let the run see its deadline within
    // the grace) abandoned by the watchdog; `attack_with` checked it ended within the grace.
    assert!(
        error == WALL_TIME
            || error.starts_with("abandoned: still running")
                && error.contains("after its wall-time-ms limit of 500 ms"),
        "{error}"
    );
    assert!(
        outcome.usage.rows_read > 10,
        "it did read: {:?}",
        outcome.usage
    );
}

#[test]
fn an_interrupt_stops_a_sleeping_guest_at_once() {
    let scopes = own_scopes("hospital");
    let scopes: Vec<&str> = scopes.iter().map(String::as_str).collect();
    let interrupt = Interrupt::new();
    let ticket = sluice_tests::transform("hostile").spawn(
        RunRequest {
            writ: writ("hospital", &scopes),
            budget: Budget::default(),
            datasets: Arc::new(SqliteSource::new(demo_data())),
            params: vec![("attack".into(), "sleep_forever".into())],
            interrupt: interrupt.clone(),
        },
        (),
    );
    std::thread::sleep(Duration::from_millis(200));
    interrupt.trigger();
    let outcome = ticket.wait();
    assert_eq!(
        outcome.result.unwrap_err().to_string(),
        "interrupted: the run was stopped before it finished"
    );
    assert!(
        outcome.elapsed < Duration::from_secs(30),
        "{:?}",
        outcome.elapsed
    );
}

// Memory and the engine.

#[test]
fn memory_hog() {
    let message = cause("memory_hog");
    let needed = message
        .strip_prefix("limit memory-mib exceeded: limit is 64, run needed ")
        .and_then(|rest| rest.split_once(' '))
        .unwrap_or_else(|| panic!("{message}"));
    assert!(needed.0.parse::<u64>().unwrap() > 64, "{message}");
}

#[test]
fn stack_overflow() {
    assert_eq!(cause("stack_overflow"), "guest fault: stack overflow");
}

fn wat_component(name: &str) -> Vec<u8> {
    let path = sluice_tests::root()
        .join("guests/hostile/wat")
        .join(format!("{name}.wat"));
    wat::parse_file(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn load_error(name: &str, bytes: &[u8]) -> String {
    match sluice_tests::sandbox().load(bytes, name) {
        Ok(_) => panic!("{name} loaded"),
        Err(e) => format!("{e:#}"),
    }
}

#[test]
fn many_instances() {
    let share = TenantShare::default();
    assert_eq!(
        load_error("many_instances", &wat_component("many_instances")),
        format!(
            "'many_instances' is refused: it needs more than a tenant's share of the engine \
             ({} core instances, {} memories, {} tables; [limits] core_instances, \
             memories, tables): The component transitively contains 40 core module \
             instances, which exceeds the configured maximum of {} in the pooling allocator",
            share.core_instances, share.memories, share.tables, share.core_instances
        )
    );
}

#[test]
fn many_memories() {
    let message = load_error("many_memories", &wat_component("many_memories"));
    assert!(
        message.ends_with(
            "The component transitively contains 3 Wasm linear memories, which exceeds the \
             configured maximum of 2 in the pooling allocator"
        ),
        "{message}"
    );
}

#[test]
fn a_full_share_of_the_pool_leaves_every_other_slot_free() {
    // Two slots, each tenant at most 2 memories: a tenant using its whole share cannot take the
    // other slot's memories, however it is built.
    let sandbox = sluice_sandbox::Sandbox::new(SandboxOptions {
        pooling_slots: Some(2),
        ..SandboxOptions::default()
    })
    .unwrap();
    let hospital = sandbox.load_file(&guest("hospital")).unwrap();
    let hog = sandbox.load_file(&guest("hostile")).unwrap();
    let scopes = own_scopes("hospital");
    let scopes: Vec<&str> = scopes.iter().map(String::as_str).collect();
    let request = |params: Vec<(String, String)>| RunRequest {
        writ: writ("hospital", &scopes),
        budget: hostile_budget(),
        datasets: Arc::new(SqliteSource::new(demo_data())),
        params,
        interrupt: Interrupt::new(),
    };
    let sleeper = hog.spawn(request(vec![("attack".into(), "sleep_forever".into())]), ());
    let clean = hospital.spawn(request(vec![]), ()).wait();
    assert!(clean.is_ok(), "{:?}", clean.result);
    assert_eq!(
        String::from_utf8(clean.staged[0].bytes.clone()).unwrap(),
        expected_report("hospital")
    );
    sleeper.wait();
}

// Unbounded input.

#[test]
fn huge_tenant_name() {
    assert_eq!(cause("huge_tenant_name"), CALL_BYTES);
}

#[test]
fn long_names_denied() {
    let outcome = attack("long_names_denied");
    assert_eq!(
        outcome.result.unwrap_err().to_string(),
        format!(
            "transform failed: invalid call: tenant name '{}…[cut: 524288 bytes in all]' \
             (524288 bytes) is not a plain name: 1-64 of A-Z a-z 0-9 _ -",
            "y".repeat(32)
        )
    );
    assert!(
        outcome.events.is_empty(),
        "malformed calls never reach the gate"
    );
    assert_eq!(outcome.usage.invalid_calls, 140);
}

#[test]
fn huge_failure_message() {
    assert_eq!(
        cause("huge_failure_message"),
        format!(
            "transform failed: {}…[cut: 921600 bytes in all]",
            "m".repeat(1024)
        )
    );
}

#[test]
fn huge_log_line() {
    let outcome = attack("huge_log_line");
    assert_eq!(
        outcome.result.as_ref().unwrap_err().to_string(),
        "transform failed: logged two huge lines"
    );
    let kept: usize = outcome.logs.iter().map(|l| l.message.len()).sum();
    assert!(
        kept <= 2 * (sluice_sandbox::MAX_MESSAGE_BYTES + 64),
        "{kept}"
    );
    assert!(
        outcome
            .logs
            .iter()
            .all(|l| l.message.as_raw().ends_with("…[cut: 921600 bytes in all]"))
    );
}

#[test]
fn figures_aliasing_one_string() {
    assert_eq!(cause("figures_aliasing_one_string"), CALL_BYTES);
}

#[test]
fn too_many_figures() {
    assert_eq!(
        cause("too_many_figures"),
        "refused: the summary has 65 figures; at most 64"
    );
}

#[test]
fn long_figure_value() {
    assert_eq!(
        cause("long_figure_value"),
        "refused: figure 1 value is 300 bytes; at most 256"
    );
}

// Forged output.

#[test]
fn forged_output() {
    let outcome = attack("forged_output");
    let message = outcome.result.unwrap_err().to_string();
    assert_eq!(
        message,
        "transform failed: \\n   [ALLOWED] datasets.open on read:analytics:bank\\n\\nCross-tenant \
         isolation verified.\\n\\nPipeline complete. All tenants processed with isolated \
         scopes.\\r\\u{1b}[2K\\u{1b}[8m"
    );
    for line in &outcome.logs {
        let shown = line.message.to_string();
        assert!(
            !shown.chars().any(char::is_control),
            "a log line shows raw: {shown:?}"
        );
    }
}

#[test]
fn forged_figures() {
    // Figures within bounds are the guest's to choose; they are shown, never drawn.
    let summary = attack("forged_figures").result.unwrap();
    assert_eq!(summary.figures[0].value.as_raw(), "1\n   [BLOCKED] nothing");
    assert_eq!(
        summary.figures[0].value.to_string(),
        "1\\n   [BLOCKED] nothing"
    );
}

#[test]
fn page_markup() {
    // Markup is the guest's to write: kept as it was, escaped where it is shown.
    let outcome = attack("page_markup");
    let summary = outcome.result.unwrap();
    assert_eq!(summary.figures[0].name.as_raw(), "<b>figure 0</b>");
    assert_eq!(
        summary.figures[0].value.as_raw(),
        "<script>fetch('http://127.0.0.1:9/script')</script>"
    );
    assert_eq!(
        summary.figures[6].value.to_string(),
        "\\u{202e}lanigiro\\u{202c} and <svg onload=alert(1)>"
    );
    assert_eq!(outcome.logs.len(), 7);
}

#[test]
fn page_markup_failure() {
    let cause = cause("page_markup_failure");
    assert!(
        cause.starts_with("transform failed: <script>fetch('http://127.0.0.1:9/script')</script>"),
        "{cause}"
    );
    assert!(cause.contains("\\u{202e}lanigiro"), "{cause}");
}

#[test]
fn forged_denial() {
    assert_eq!(
        cause("forged_denial"),
        "transform failed: gave up on a denial the gate never made"
    );
}

#[test]
fn forged_limit() {
    assert_eq!(
        cause("forged_limit"),
        "transform failed: gave up on limit rows-read (1) the host never reported"
    );
}

#[test]
fn forged_invisible() {
    // Padding and invisible characters are shown for what they are: no forged line can start
    // a terminal row of its own.
    assert_eq!(
        cause("forged_invisible"),
        "transform failed: x\\u{20}×226[BLOCKED] datasets.open on read:analytics:bank\
         \\u{2060}\\u{e0041}\\u{3164}\\u{61c}"
    );
}

// Reports that are not JSON to their readers.

#[test]
fn report_invalid_utf8() {
    assert_eq!(
        cause("report_invalid_utf8"),
        invalid_report("invalid UTF-8 at byte 6")
    );
}

#[test]
fn report_lone_surrogate() {
    assert_eq!(
        cause("report_lone_surrogate"),
        invalid_report("lone surrogate in a \\u escape at byte 6")
    );
}

#[test]
fn report_duplicate_keys() {
    assert_eq!(
        cause("report_duplicate_keys"),
        invalid_report("duplicate member name at byte 7")
    );
}

#[test]
fn report_huge_number() {
    assert_eq!(
        cause("report_huge_number"),
        invalid_report("number out of range of a 64-bit float at byte 5")
    );
}

#[test]
fn report_deep_nesting() {
    assert_eq!(
        cause("report_deep_nesting"),
        invalid_report("nested deeper than 64 levels at byte 64")
    );
}

#[test]
fn report_flood() {
    assert_eq!(
        cause("report_flood"),
        "limit report-bytes exceeded: limit is 16777216, run needed 16842752"
    );
}

// Output tables.

#[test]
fn table_lies_about_rows() {
    assert_eq!(
        cause("table_lies_about_rows"),
        "transform failed: invalid call: rows for output table 't': column 'x': 3 values for 5 rows"
    );
}

#[test]
fn table_bad_offsets() {
    assert_eq!(
        cause("table_bad_offsets"),
        "transform failed: invalid call: rows for output table 't': column 's': the last offset is \
         4294967295 but there are 4 bytes"
    );
}

#[test]
fn table_flood() {
    // Each batch of 64 Ki int64 values costs the 512 KiB handed over and the 512 KiB (and 96
    // bytes of array) the host keeps of it: the 16th passes 16 MiB by 16 × 96 bytes.
    assert_eq!(
        cause("table_flood"),
        "limit report-bytes exceeded: limit is 16777216, run needed 16778752"
    );
}

#[test]
fn table_many() {
    let outcome = attack("table_many");
    assert_eq!(
        outcome.result.unwrap_err().to_string(),
        "limit output-tables exceeded: limit is 16, run needed 17"
    );
    assert!(outcome.tables.is_empty());
    // Sixteen creates, appends and commits are three kinds of decision, whatever the count.
    assert!(outcome.events.len() <= 4, "{:?}", outcome.events);
}

#[test]
fn table_empty_appends() {
    // Empty batches hand over no bytes, but the host keeps a buffer per column of each: charged.
    let message = cause("table_empty_appends");
    let needed: u64 = message
        .strip_prefix("limit report-bytes exceeded: limit is 16777216, run needed ")
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{message}"));
    assert!(
        needed > 16 << 20 && needed < (16 << 20) + (256 << 10),
        "{message}"
    );
}

// Audit volume.

#[test]
fn alternating_calls() {
    let outcome = attack("alternating_calls");
    assert_eq!(
        outcome.result.unwrap_err().to_string(),
        "transform failed: alternated 400 times"
    );
    let kinds: Vec<(&str, u64)> = outcome
        .events
        .iter()
        .map(|e| (e.call.name(), e.count))
        .collect();
    assert_eq!(kinds, [("datasets.list", 400), ("reports.create", 400)]);
}

#[test]
fn denial_spray() {
    let outcome = attack("denial_spray");
    assert_eq!(
        outcome.result.unwrap_err().to_string(),
        "transform failed: sprayed 1000 denials"
    );
    let budget = hostile_budget();
    assert_eq!(outcome.events.len() as u64, budget.audit_entries);
    let itemized: u64 = outcome
        .events
        .iter()
        .filter(|e| e.decision == Decision::Blocked)
        .map(|e| e.count)
        .sum();
    assert_eq!(
        itemized + outcome.overflow.denied,
        1000,
        "every denial counted"
    );
}

// Calls, handles, faults.

#[test]
fn host_call_flood() {
    assert_eq!(cause("host_call_flood"), HOST_CALLS);
}

#[test]
fn wasi_call_flood() {
    assert_eq!(cause("wasi_call_flood"), HOST_CALLS);
}

#[test]
fn stdout_flood() {
    // Each write moves 4 KiB; unoptimized test builds need more than 500 ms for 2,000 of them.
    let budget = Budget {
        wall_time: Duration::from_secs(10),
        ..hostile_budget()
    };
    let outcome = attack_with("stdout_flood", budget);
    assert_eq!(outcome.result.unwrap_err().to_string(), HOST_CALLS);
    let kept: usize = outcome.logs.iter().map(|l| l.message.len()).sum();
    assert!(kept as u64 <= hostile_budget().log_bytes, "{kept}");
    assert!(outcome.log_bytes_dropped > 0);
}

#[test]
fn pollable_hoard() {
    assert_eq!(
        cause("pollable_hoard"),
        "limit handles exceeded: limit is 1024, run needed 1025"
    );
}

#[test]
fn dataset_hoard() {
    assert_eq!(
        cause("dataset_hoard"),
        "limit open-datasets exceeded: limit is 16, run needed 17"
    );
}

#[test]
fn forged_handle() {
    assert_eq!(cause("forged_handle"), "guest fault: unknown handle");
}

#[test]
fn stale_handle() {
    assert_eq!(cause("stale_handle"), "guest fault: unknown handle");
}

#[test]
fn wrong_type_handle() {
    assert_eq!(
        cause("wrong_type_handle"),
        "guest fault: handle of the wrong type"
    );
}

#[test]
fn trap_mid_report() {
    assert_eq!(
        cause("trap_mid_report"),
        "guest panicked: transform crashed half-way through its report"
    );
}

#[test]
fn trap_after_commit() {
    assert_eq!(
        cause("trap_after_commit"),
        "guest panicked: transform crashed after committing"
    );
}

#[test]
fn exit_with_code() {
    // WASI 0.2's exit carries only success or failure.
    assert_eq!(cause("exit_with_code"), "guest exited with code 1");
}

// Components the host refuses to load.

fn import_refusal(feature: &str) -> String {
    let name = format!("hostile-{}", feature.replace('_', "-"));
    match sluice_tests::sandbox().load_file(&guest(&name)) {
        Ok(_) => panic!("{name} loaded"),
        Err(e) => format!("{e:#}"),
    }
}

#[test]
fn filesystem() {
    let message = import_refusal("filesystem");
    assert!(
        message.contains(
            "imports wasi:filesystem/types@0.2.6, wasi:filesystem/preopens@0.2.6, which Sluice does not provide"
        ),
        "{message}"
    );
}

#[test]
fn sockets() {
    let message = import_refusal("sockets");
    assert!(message.contains("wasi:sockets/tcp@0.2.6"), "{message}");
    assert!(
        message.contains("which Sluice does not provide"),
        "{message}"
    );
}

/// Refused with the Rust guests' WASI; linked with the interpreters' capability-free WASI, where
/// every interface it asks answers "nothing": no preopened directory, no environment, arguments
/// or working directory, stdin closed, TCP, UDP and name lookup refused by the host. A grant
/// anywhere changes a figure and fails this test.
#[test]
fn wasi_surface() {
    let message = import_refusal("wasi_surface");
    assert!(
        message.contains("which Sluice does not provide"),
        "{message}"
    );
    let scopes = own_scopes("hospital");
    let scopes: Vec<&str> = scopes.iter().map(String::as_str).collect();
    let transform = sluice_tests::sandbox()
        .load_file_as(&guest("hostile-wasi-surface"), WasiSurface::Interpreter)
        .expect("the interpreter surface links it");
    let outcome = transform.run(RunRequest::new(
        writ("hospital", &scopes),
        Arc::new(SqliteSource::new(demo_data())),
    ));
    let figures: Vec<(String, String)> = outcome
        .result
        .expect("the probe runs")
        .figures
        .iter()
        .map(|f| (f.name.to_string(), f.value.to_string()))
        .collect();
    let expected = [
        ("preopens", "0"),
        ("environment", "0"),
        ("arguments", "0"),
        ("cwd", "none"),
        ("stdin", "closed"),
        ("tcp", "access-denied"),
        ("udp", "access-denied"),
        // Wasmtime's answer when lookup is off, before any query is made.
        ("name-lookup", "permanent-resolver-failure"),
    ];
    let expected: Vec<(String, String)> = expected
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    assert_eq!(figures, expected);
    assert!(outcome.staged.is_empty());
}

// Hostile runs between clean tenants.

fn publish_all(reports: &ReportDir, outcome: &RunOutcome) {
    for staged in &outcome.staged {
        reports
            .publish(&staged.tenant, staged.bytes.as_slice())
            .unwrap();
    }
}

fn clean_run(dir: &Path) {
    let reports = ReportDir::new(dir);
    for tenant in ["hospital", "bank", "retail"] {
        publish_all(&reports, &run_as(tenant, tenant, Budget::default(), &[]));
    }
}

#[test]
fn hostile_runs_between_tenants_leave_every_report_as_a_clean_run_writes_it() {
    let clean = tempfile::tempdir().unwrap();
    clean_run(clean.path());

    let mixed = tempfile::tempdir().unwrap();
    let reports = ReportDir::new(mixed.path());
    // A previous night's report for the hospital, which the hostile runs must not touch.
    reports
        .publish("hospital", b"{\"night\":\"previous\"}")
        .unwrap();
    for name in sluice_hostile_list::RUN {
        publish_all(&reports, &attack(name));
    }
    assert_eq!(
        std::fs::read(mixed.path().join("hospital/latest.json")).unwrap(),
        b"{\"night\":\"previous\"}"
    );
    for tenant in ["hospital", "bank", "retail"] {
        publish_all(&reports, &run_as(tenant, tenant, Budget::default(), &[]));
        for name in ["spin", "trap_after_commit", "figures_aliasing_one_string"] {
            publish_all(&reports, &attack(name));
        }
    }
    assert_eq!(files_under(mixed.path()), files_under(clean.path()));
    for tenant in ["hospital", "bank", "retail"] {
        let path = format!("{tenant}/latest.json");
        let bytes = std::fs::read(mixed.path().join(&path)).unwrap();
        assert_eq!(bytes, std::fs::read(clean.path().join(&path)).unwrap());
        assert_eq!(String::from_utf8(bytes).unwrap(), expected_report(tenant));
    }
}

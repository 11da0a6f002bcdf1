//! Python and JavaScript transforms: the seed tenants write the very bytes the Rust guests
//! write, and every attack of the hostile Python and JS guests fails with its cause on one line,
//! reaching nothing (no file, no environment, no socket, no other tenant). An attack without a
//! test here, for either language, does not compile.

use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

use sluice_data::SqliteSource;
use sluice_sandbox::{Budget, Interrupt, RunOutcome, RunRequest, WATCHDOG_GRACE};
use sluice_tests::{demo_data, expected_report, guest, own_scopes, run_as, writ};

macro_rules! assert_tests_exist {
    ([$($attack:ident),*]) => {
        $( #[allow(unused_imports)] use self::python::$attack as _; )*
        $( #[allow(unused_imports)] use self::js::$attack as _; )*
    };
}
sluice_hostile_list::foreach_interpreted_hostile!(assert_tests_exist);

#[test]
fn seed_reports_are_byte_identical_in_every_language() {
    for tenant in ["hospital", "bank", "retail"] {
        for guest in [
            tenant.to_string(),
            format!("{tenant}-py"),
            format!("{tenant}-js"),
        ] {
            let outcome = run_as(&guest, tenant, Budget::default(), &[]);
            assert!(outcome.is_ok(), "{guest}: {:?}", outcome.result);
            assert_eq!(outcome.staged.len(), 1, "{guest}");
            assert_eq!(
                String::from_utf8(outcome.staged[0].bytes.clone()).unwrap(),
                expected_report(tenant),
                "{guest}"
            );
        }
    }
}

#[test]
fn python_and_js_probes_are_judged_by_the_gate() {
    for probe in ["probe-py", "probe-js"] {
        let outcome = run_as(
            probe,
            "hospital",
            Budget::default(),
            &[
                ("read-tenant", "bank"),
                ("write-tenant", "retail"),
                ("read-dataset", "transactions"),
            ],
        );
        let figures: Vec<String> = outcome
            .result
            .as_ref()
            .unwrap_or_else(|e| panic!("{probe}: {e}"))
            .figures
            .iter()
            .map(|f| format!("{}={}", f.name, f.value))
            .collect();
        assert_eq!(
            figures,
            [
                "read:analytics:bank=BLOCKED",
                "write:reports:retail=BLOCKED",
                "read:analytics:hospital=ALLOWED"
            ],
            "{probe}"
        );
    }
}

/// Limits low enough for the attacks to hit them quickly.
fn hostile_budget() -> Budget {
    Budget {
        wall_time: Duration::from_millis(1_000),
        memory_bytes: 64 << 20,
        ..Budget::default()
    }
}

/// Runs `attack` of the hostile guest `guest` as the hospital, behind the watchdog, and returns
/// its outcome after checking the run stayed within its wall time and staged nothing.
fn attack(guest: &str, attack: &str, params: &[(&str, &str)]) -> RunOutcome {
    let scopes = own_scopes("hospital");
    let scopes: Vec<&str> = scopes.iter().map(String::as_str).collect();
    let budget = hostile_budget();
    let wall_time = budget.wall_time;
    let mut all = vec![("attack".to_string(), attack.to_string())];
    all.extend(params.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    let outcome = sluice_tests::transform(guest)
        .spawn(
            RunRequest {
                writ: writ("hospital", &scopes),
                budget,
                datasets: Arc::new(SqliteSource::new(demo_data())),
                params: all,
                interrupt: Interrupt::new(),
            },
            (),
        )
        .wait();
    assert!(
        outcome.elapsed <= wall_time + WATCHDOG_GRACE,
        "{guest} {attack}: took {:?}",
        outcome.elapsed
    );
    assert!(
        outcome.staged.is_empty(),
        "{guest} {attack}: staged a report"
    );
    outcome
}

/// The one-line cause `attack` of `guest` fails with.
fn cause(guest: &str, name: &str, params: &[(&str, &str)]) -> String {
    let message = attack(guest, name, params)
        .result
        .expect_err("a hostile guest must fail")
        .to_string();
    assert!(
        !message.contains('\n'),
        "{guest} {name}: not one line: {message:?}"
    );
    message
}

/// A loopback listener standing in for the broker, and a check that nothing connected to it.
struct Bait(TcpListener);

impl Bait {
    fn new() -> Bait {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        Bait(listener)
    }

    fn port(&self) -> String {
        self.0.local_addr().unwrap().port().to_string()
    }

    fn assert_untouched(&self) {
        match self.0.accept() {
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            other => panic!("the guest reached the listener: {other:?}"),
        }
    }
}

const TABLE_ROWS: &str =
    "transform failed: invalid call: rows for output table 't': column 'x': 3 values for 5 rows";
const DENIED_BANK: &str = "denied: scope 'read:analytics:bank' is not covered by held scopes \
                           [read:analytics:hospital, write:reports:hospital]";
const WALL_TIME: &str = "limit wall-time-ms exceeded: limit is 1000, the guest was still running";

fn assert_memory_limit(message: &str) {
    let needed = message
        .strip_prefix("limit memory-mib exceeded: limit is 64, run needed ")
        .and_then(|rest| rest.split_once(' '))
        .unwrap_or_else(|| panic!("{message}"));
    assert!(needed.0.parse::<u64>().unwrap() > 64, "{message}");
}

/// What an attack must come to: this one-line cause, or the memory limit (whose figure varies).
enum Expect {
    /// `{plugin}` stands for the guest's own path.
    Cause(&'static str),
    MemoryLimit,
}

/// Runs `attack` of `hostile` with a bait listener's port and the guest's own path as parameters,
/// checks its cause against `expect`, and that nothing reached the listener.
fn check(hostile: &str, attack: &str, expect: Expect) {
    let bait = Bait::new();
    let plugin = guest(hostile).display().to_string();
    let got = cause(
        hostile,
        attack,
        &[("port", &bait.port()), ("plugin", &plugin)],
    );
    match expect {
        Expect::Cause(want) => assert_eq!(got, want.replace("{plugin}", &plugin)),
        Expect::MemoryLimit => assert_memory_limit(&got),
    }
    bait.assert_untouched();
}

/// One row per attack, its outcome in Python and in JavaScript: a test each, in `python` and
/// `js`, so both languages answer every attack from one table.
macro_rules! attacks {
    ($($attack:ident: python $py:expr, js $js:expr;)*) => {
        mod python {
            //! `hostile-py.wasm`: CPython with the interpreters' WASI, which grants nothing.
            use super::*;
            $(
                #[test]
                pub(super) fn $attack() {
                    check("hostile-py", stringify!($attack), $py);
                }
            )*
        }
        mod js {
            //! `hostile-js.wasm`: StarlingMonkey built with every WASI feature off, so Node's
            //! and the browser's ways out do not exist at all.
            use super::*;
            $(
                #[test]
                pub(super) fn $attack() {
                    check("hostile-js", stringify!($attack), $js);
                }
            )*
        }
    };
}

use Expect::{Cause, MemoryLimit};

const REQUIRE: Expect = Cause("transform failed: ReferenceError: require is not defined");

attacks! {
    read_passwd:
        python Cause("transform failed: FileNotFoundError: [Errno 44] No such file or directory: '/etc/passwd'"),
        js REQUIRE;
    read_own_plugin:
        python Cause("transform failed: FileNotFoundError: [Errno 44] No such file or directory: '{plugin}'"),
        js REQUIRE;
    // The environment is empty whatever the host's holds; `tests/try_cli.rs` runs this with
    // `AGENTWRIT_CLIENT_SECRET` set in the host's environment.
    read_env:
        python Cause("transform failed: TransformFailed: environment {}, arguments []"),
        js Cause("transform failed: ReferenceError: process is not defined");
    connect_broker:
        python Cause("transform failed: PermissionError: [Errno 2] Permission denied"),
        js Cause("transform failed: ReferenceError: WebSocket is not defined");
    // Python: name lookup is refused by the host, so urllib never gets as far as a socket.
    // JS: with the `http` feature off, `fetch` is a stub that traps.
    http_request:
        python Cause("transform failed: URLError: <urlopen error [Errno -4] Non-recoverable error>"),
        js Cause("guest fault: unreachable instruction executed");
    spawn_process:
        python Cause("transform failed: OSError: [Errno 58] wasi does not support processes."),
        js REQUIRE;
    read_other_tenant: python Cause(DENIED_BANK), js Cause(DENIED_BANK);
    table_lies_about_rows: python Cause(TABLE_ROWS), js Cause(TABLE_ROWS);
    spin: python Cause(WALL_TIME), js Cause(WALL_TIME);
    memory_hog: python MemoryLimit, js MemoryLimit;
    // CPython 3.12+ keeps Python frames on the heap: with its recursion guard lifted, endless
    // recursion runs into the memory limit. SpiderMonkey's own guard stops it first.
    recurse:
        python MemoryLimit,
        js Cause("transform failed: InternalError: too much recursion");
}

/// A night of three clean tenants in three languages and every Python and JS attack as a tenant
/// of its own, run two at a time against a real broker on loopback (which the socket attacks aim
/// at): the clean tenants' reports are the seed's bytes, every attacker fails with one line,
/// writes nothing and has its agent released.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_night_with_python_and_js_attackers_leaves_the_other_tenants_untouched() {
    use sluice_pipeline::outcome::AgentEnd;
    use sluice_tests::{files_under, night, pipeline_tenant};

    let (_broker, creds) = night::broker().await;
    let broker_port = creds
        .broker_url
        .rsplit(':')
        .next()
        .unwrap()
        .trim_end_matches('/')
        .to_string();
    let dir = tempfile::tempdir().unwrap();
    let mut tenants = vec![
        pipeline_tenant("hospital", "hospital-py", "visits", demo_data()),
        pipeline_tenant("bank", "bank", "transactions", demo_data()),
        pipeline_tenant("retail", "retail-js", "orders", demo_data()),
    ];
    let mut attackers = Vec::new();
    for lang in ["py", "js"] {
        for attack in sluice_hostile_list::INTERPRETED {
            let id = format!("mallory_{lang}_{attack}");
            let mut tenant = pipeline_tenant(&id, &format!("hostile-{lang}"), "data", demo_data());
            tenant.params = vec![
                ("attack".into(), attack.to_string()),
                ("port".into(), broker_port.clone()),
            ];
            attackers.push(id);
            tenants.push(tenant);
        }
    }
    let mut config = night::night_config(dir.path(), tenants);
    for tenant in config.tenants.iter_mut().skip(3) {
        tenant.budget.wall_time = Duration::from_secs(2);
    }
    let reports_dir = config.reports.as_local().unwrap().to_path_buf();
    let report = night::run(config, &creds, 2).await;

    for (tenant, result) in ["hospital", "bank", "retail"].iter().zip(&report.tenants) {
        assert_eq!(result.error, None, "{tenant}");
        assert_eq!(
            std::fs::read_to_string(reports_dir.join(tenant).join("latest.json")).unwrap(),
            expected_report(tenant)
        );
        assert_eq!(result.agent_end, Some(AgentEnd::Released), "{tenant}");
    }
    for (id, result) in attackers.iter().zip(&report.tenants[3..]) {
        assert_eq!(&result.id, id);
        let error = result
            .error_message()
            .unwrap_or_else(|| panic!("{id} succeeded"));
        assert!(!error.contains('\n'), "{id}: {error:?}");
        assert_eq!(result.report, None, "{id}");
        assert_eq!(result.agent_end, Some(AgentEnd::Released), "{id}");
    }
    assert_eq!(
        files_under(&reports_dir),
        [
            "bank/latest.json",
            "hospital/latest.json",
            "retail/latest.json"
        ]
    );
    let isolation = report.isolation.as_ref().expect("the probe ran");
    assert!(!isolation.violated);
}

/// `vet` tells what built each seed transform (rustc, componentize-py, ComponentizeJS) and
/// refuses one declared in another language, naming the right one; the night loads through it.
#[test]
fn vet_knows_each_language_and_refuses_a_mismatch() {
    use sluice_pipeline::config::Language;
    use sluice_pipeline::vet::vet;
    let mut sandbox =
        sluice_sandbox::Sandbox::new(sluice_sandbox::SandboxOptions::default()).unwrap();
    sandbox
        .use_compiled_cache(&sluice_tests::test_cache_dir())
        .unwrap();
    for (name, language, built) in [
        ("hospital", Language::Rust, "rust"),
        ("hospital-py", Language::Python, "python"),
        ("hospital-js", Language::JavaScript, "js"),
    ] {
        let bytes = std::fs::read(guest(name)).unwrap();
        let sha = sluice_pipeline::plugins::file_digest(&guest(name)).unwrap();
        let vetted = vet(&sandbox, &bytes, &sha, name, language, 64 << 20)
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(vetted.report.built_with, Some(built), "{name}");
        assert_eq!(vetted.report.size, bytes.len() as u64);
        assert!(
            vetted
                .report
                .imports
                .iter()
                .any(|i| i.starts_with("sluice:etl/")),
            "{name}: {:?}",
            vetted.report.imports
        );
    }
    let bytes = std::fs::read(guest("hospital-py")).unwrap();
    let e = vet(
        &sandbox,
        &bytes,
        "",
        "hospital-py",
        Language::Rust,
        64 << 20,
    )
    .err()
    .unwrap();
    assert_eq!(
        e,
        "'hospital-py' was built with componentize-py (Python) but its tenant says language = \
         \"rust\": set language = \"python\""
    );
    let e = vet(
        &sandbox,
        &bytes,
        "",
        "hospital-py",
        Language::Python,
        1 << 20,
    )
    .err()
    .unwrap();
    assert!(
        e.contains("more than the 1048576 a plugin may be ([plugins] max_bytes)"),
        "{e}"
    );
}

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

mod python {
    //! `hostile-py.wasm`: CPython with the interpreters' WASI, which grants nothing.

    use super::*;

    const GUEST: &str = "hostile-py";

    #[test]
    pub(super) fn read_passwd() {
        assert_eq!(
            cause(GUEST, "read_passwd", &[]),
            "transform failed: FileNotFoundError: [Errno 44] No such file or directory: '/etc/passwd'"
        );
    }

    #[test]
    pub(super) fn read_own_plugin() {
        let plugin = guest(GUEST).display().to_string();
        assert_eq!(
            cause(GUEST, "read_own_plugin", &[("plugin", &plugin)]),
            format!(
                "transform failed: FileNotFoundError: [Errno 44] No such file or directory: '{plugin}'"
            )
        );
    }

    /// The environment is empty whatever the host's holds; `tests/try_cli.rs` runs this with
    /// `AGENTWRIT_CLIENT_SECRET` set in the host's environment.
    #[test]
    pub(super) fn read_env() {
        assert_eq!(
            cause(GUEST, "read_env", &[]),
            "transform failed: TransformFailed: environment {}, arguments []"
        );
    }

    #[test]
    pub(super) fn connect_broker() {
        let bait = Bait::new();
        assert_eq!(
            cause(GUEST, "connect_broker", &[("port", &bait.port())]),
            "transform failed: PermissionError: [Errno 2] Permission denied"
        );
        bait.assert_untouched();
    }

    #[test]
    pub(super) fn http_request() {
        let bait = Bait::new();
        // Name lookup is refused by the host, so urllib never gets as far as a socket.
        assert_eq!(
            cause(GUEST, "http_request", &[("port", &bait.port())]),
            "transform failed: URLError: <urlopen error [Errno -4] Non-recoverable error>"
        );
        bait.assert_untouched();
    }

    #[test]
    pub(super) fn spawn_process() {
        assert_eq!(
            cause(GUEST, "spawn_process", &[]),
            "transform failed: OSError: [Errno 58] wasi does not support processes."
        );
    }

    #[test]
    pub(super) fn read_other_tenant() {
        assert_eq!(cause(GUEST, "read_other_tenant", &[]), DENIED_BANK);
    }

    #[test]
    pub(super) fn table_lies_about_rows() {
        assert_eq!(cause(GUEST, "table_lies_about_rows", &[]), TABLE_ROWS);
    }

    #[test]
    pub(super) fn spin() {
        assert_eq!(cause(GUEST, "spin", &[]), WALL_TIME);
    }

    #[test]
    pub(super) fn memory_hog() {
        assert_memory_limit(&cause(GUEST, "memory_hog", &[]));
    }

    /// CPython 3.12+ keeps Python frames on the heap: with its recursion guard lifted, endless
    /// recursion runs into the memory limit.
    #[test]
    pub(super) fn recurse() {
        assert_memory_limit(&cause(GUEST, "recurse", &[]));
    }
}

mod js {
    //! `hostile-js.wasm`: StarlingMonkey built with every WASI feature off, so Node's and the
    //! browser's ways out do not exist at all.

    use super::*;

    const GUEST: &str = "hostile-js";

    #[test]
    pub(super) fn read_passwd() {
        assert_eq!(
            cause(GUEST, "read_passwd", &[]),
            "transform failed: ReferenceError: require is not defined"
        );
    }

    #[test]
    pub(super) fn read_own_plugin() {
        let plugin = guest(GUEST).display().to_string();
        assert_eq!(
            cause(GUEST, "read_own_plugin", &[("plugin", &plugin)]),
            "transform failed: ReferenceError: require is not defined"
        );
    }

    #[test]
    pub(super) fn read_env() {
        assert_eq!(
            cause(GUEST, "read_env", &[]),
            "transform failed: ReferenceError: process is not defined"
        );
    }

    #[test]
    pub(super) fn connect_broker() {
        let bait = Bait::new();
        assert_eq!(
            cause(GUEST, "connect_broker", &[("port", &bait.port())]),
            "transform failed: ReferenceError: WebSocket is not defined"
        );
        bait.assert_untouched();
    }

    /// With the `http` feature off, `fetch` is a stub that traps.
    #[test]
    pub(super) fn http_request() {
        let bait = Bait::new();
        assert_eq!(
            cause(GUEST, "http_request", &[("port", &bait.port())]),
            "guest fault: unreachable instruction executed"
        );
        bait.assert_untouched();
    }

    #[test]
    pub(super) fn spawn_process() {
        assert_eq!(
            cause(GUEST, "spawn_process", &[]),
            "transform failed: ReferenceError: require is not defined"
        );
    }

    #[test]
    pub(super) fn read_other_tenant() {
        assert_eq!(cause(GUEST, "read_other_tenant", &[]), DENIED_BANK);
    }

    #[test]
    pub(super) fn table_lies_about_rows() {
        assert_eq!(cause(GUEST, "table_lies_about_rows", &[]), TABLE_ROWS);
    }

    #[test]
    pub(super) fn spin() {
        assert_eq!(cause(GUEST, "spin", &[]), WALL_TIME);
    }

    #[test]
    pub(super) fn memory_hog() {
        assert_memory_limit(&cause(GUEST, "memory_hog", &[]));
    }

    /// SpiderMonkey's own recursion guard stops it before the wasm stack runs out.
    #[test]
    pub(super) fn recurse() {
        assert_eq!(
            cause(GUEST, "recurse", &[]),
            "transform failed: InternalError: too much recursion"
        );
    }
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
            .error
            .as_deref()
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

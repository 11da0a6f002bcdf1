//! A night split over shards as an Indexed Job runs it, on one machine: shard processes sharing
//! a run id, every tenant run by exactly one of them, the isolation proof by shard 0 only, and
//! `sluice status` reading the night back from the shards' summaries and audit chains.

use std::path::Path;
use std::process::{Child, Command, Output, Stdio};

use serde_json::Value;
use sluice_pipeline::shards::owner;
use sluice_tests::{example_config, expected_report};

const TENANTS: [&str; 3] = ["hospital", "bank", "retail"];

fn sluice(args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_sluice"));
    cmd.args(args)
        .env_remove("AGENTWRIT_BROKER_URL")
        .env_remove("AGENTWRIT_CLIENT_ID")
        .env_remove("AGENTWRIT_CLIENT_SECRET")
        .env_remove("JOB_COMPLETION_INDEX")
        .env_remove("SLUICE_SHARDS")
        .env_remove("SLUICE_RUN_ID");
    cmd
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Shard `index` of `count`, started as an Indexed Job's pod would be: by its environment.
fn start_shard(config: &Path, index: u32, count: u32, run_id: &str) -> Child {
    start_shard_with(config, index, count, run_id, &[])
}

/// [`start_shard`] with more `sluice run` flags.
fn start_shard_with(config: &Path, index: u32, count: u32, run_id: &str, flags: &[&str]) -> Child {
    let mut args = vec!["run", config.to_str().unwrap()];
    args.extend(flags);
    sluice(&args)
        .env("JOB_COMPLETION_INDEX", index.to_string())
        .env("SLUICE_SHARDS", count.to_string())
        .env("SLUICE_RUN_ID", run_id)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

fn finish(child: Child) -> Output {
    child.wait_with_output().unwrap()
}

fn summary(dir: &Path, run_id: &str, shard: u32) -> Value {
    let path = dir
        .join("runs")
        .join(run_id)
        .join(format!("shard-{shard}.json"));
    serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap()
}

fn status(config: &Path, run_id: &str) -> Output {
    sluice(&["status", config.to_str().unwrap(), run_id])
        .output()
        .unwrap()
}

#[test]
fn three_shards_run_each_tenant_once_and_status_reads_the_night_back() {
    let dir = tempfile::tempdir().unwrap();
    let config = example_config(dir.path(), |t| t);
    let shards: Vec<Child> = (0..3)
        .map(|i| start_shard(&config, i, 3, "night-1"))
        .collect();
    for (i, child) in shards.into_iter().enumerate() {
        let out = finish(child);
        assert_eq!(
            out.status.code(),
            Some(0),
            "shard {i}: {}\n{}",
            text(&out.stdout),
            text(&out.stderr)
        );
        let stdout = text(&out.stdout);
        assert!(stdout.contains(&format!("Shard {i} of 3: ")), "{stdout}");
        if i > 0 {
            assert!(
                stdout.contains("Isolation is proven by shard 0 of this night"),
                "{stdout}"
            );
        }
    }
    // Every tenant in exactly the shard rendezvous hashing gives it, and nowhere else.
    let mut seen = Vec::new();
    for shard in 0..3u32 {
        let s = summary(dir.path(), "night-1", shard);
        let tenants: Vec<String> = serde_json::from_value(s["tenants"].clone()).unwrap();
        for t in &tenants {
            assert_eq!(owner(t, 3), shard, "{t}");
        }
        seen.extend(tenants);
        assert_eq!(s["isolation"].is_null(), shard != 0, "shard {shard}");
    }
    seen.sort();
    assert_eq!(seen, ["bank", "hospital", "retail"]);
    for tenant in TENANTS {
        assert_eq!(
            std::fs::read_to_string(dir.path().join("reports").join(tenant).join("latest.json"))
                .unwrap(),
            expected_report(tenant)
        );
    }
    let out = status(&config, "night-1");
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}{}", text(&out.stderr));
    assert!(
        stdout.contains("Tenants: 3 ok, 0 failed, 0 never ran (of 3)"),
        "{stdout}"
    );
    assert!(stdout.contains("Isolation (shard 0): verified"), "{stdout}");
    assert!(
        stdout.ends_with(
            "Night complete: every tenant ran once and succeeded, every chain verified.\n"
        )
    );
}

#[test]
fn a_missing_shard_leaves_the_night_incomplete_until_its_index_is_rerun() {
    let dir = tempfile::tempdir().unwrap();
    let config = example_config(dir.path(), |t| t);
    // The shard that owns the bank never reports; the others run.
    let lost = owner("bank", 3);
    for i in (0..3).filter(|&i| i != lost) {
        let out = finish(start_shard(&config, i, 3, "night-2"));
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stdout));
    }
    let out = status(&config, "night-2");
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains(&format!(
            "  shard {lost}: missing: it left no summary (never ran, or was killed)"
        )),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!("  NEVER RAN  bank (shard {lost})")),
        "{stdout}"
    );
    assert!(
        stdout.ends_with("Night incomplete: rerun the failed or missing shards (same run id).\n")
    );

    // As backoffLimitPerIndex would: the index alone runs again, and the night is whole.
    let out = finish(start_shard(&config, lost, 3, "night-2"));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stdout));
    let out = status(&config, "night-2");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stdout));

    // A shard's audit chain cut at its end no longer verifies against its summary's head.
    let audit = dir
        .path()
        .join("runs/night-2")
        .join(format!("shard-{lost}.audit.jsonl"));
    let chain = std::fs::read_to_string(&audit).unwrap();
    let mut lines: Vec<&str> = chain.lines().collect();
    lines.pop();
    std::fs::write(&audit, lines.join("\n") + "\n").unwrap();
    let out = status(&config, "night-2");
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains(&format!("  shard {lost}: audit chain broken at line ")),
        "{stdout}"
    );
}

#[test]
fn sharding_needs_a_run_id_and_a_real_shard() {
    let dir = tempfile::tempdir().unwrap();
    let config = example_config(dir.path(), |t| t);
    let c = config.to_str().unwrap();
    let out = sluice(&["run", c, "--shard", "0", "--shards", "2"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        text(&out.stderr).trim(),
        "sluice: a sharded night needs a run id its shards share: pass --run-id or set SLUICE_RUN_ID"
    );
    let out = sluice(&["run", c, "--shard", "2", "--shards", "2", "--run-id", "n"])
        .output()
        .unwrap();
    assert_eq!(
        text(&out.stderr).trim(),
        "sluice: shard 2 does not exist in a night of 2 shards (they are 0 to 1)"
    );
    let out = sluice(&["run", c])
        .env("JOB_COMPLETION_INDEX", "1")
        .output()
        .unwrap();
    assert_eq!(
        text(&out.stderr).trim(),
        "sluice: JOB_COMPLETION_INDEX is set but SLUICE_SHARDS is not: set it to the Job's \
         completions (or pass --shard and --shards)"
    );
}

/// `sluice broker dev` on a free loopback port with an app, rate limits on as a real broker's;
/// returns the process and the `AGENTWRIT_*` variables it printed.
fn dev_broker(state: &Path) -> (Child, Vec<(String, String)>) {
    use std::io::BufRead as _;
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut child = sluice(&[
        "broker",
        "dev",
        "--addr",
        &format!("127.0.0.1:{port}"),
        "--state",
        state.to_str().unwrap(),
        "--app",
        "nightly-shards",
    ])
    .stdout(Stdio::piped())
    .stderr(Stdio::null())
    .spawn()
    .unwrap();
    let mut vars = Vec::new();
    let mut lines = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
    while vars.len() < 3 {
        let line = lines
            .next()
            .expect("the broker printed its variables")
            .unwrap();
        if let Some((name, value)) = line.strip_prefix("export ").and_then(|l| l.split_once('=')) {
            vars.push((name.to_string(), value.to_string()));
        }
    }
    // Keep reading what it prints: a closed pipe would kill the broker at its next line.
    std::thread::spawn(move || lines.for_each(drop));
    (child, vars)
}

#[test]
fn twelve_shards_sharing_one_rate_limited_app_all_finish() {
    let dir = tempfile::tempdir().unwrap();
    let config = example_config(dir.path(), |t| t);
    let (mut broker, vars) = dev_broker(&dir.path().join("broker"));
    // All at once, as an Indexed Job's pods start: the app may authenticate 3 times at once and
    // then once every 6 s; the others are told to come back in 60 s.
    let shards: Vec<Child> = (0..12)
        .map(|i| {
            let mut cmd = sluice(&["run", config.to_str().unwrap()]);
            cmd.env("JOB_COMPLETION_INDEX", i.to_string())
                .env("SLUICE_SHARDS", "12")
                .env("SLUICE_RUN_ID", "night-12")
                .envs(vars.iter().map(|(k, v)| (k, v)))
                .stdout(Stdio::piped())
                .stderr(Stdio::piped());
            cmd.spawn().unwrap()
        })
        .collect();
    let mut waited = 0;
    for (i, child) in shards.into_iter().enumerate() {
        let out = finish(child);
        let stderr = text(&out.stderr);
        assert_eq!(
            out.status.code(),
            Some(0),
            "shard {i}: {}\n{stderr}",
            text(&out.stdout)
        );
        if stderr.contains("the broker rate-limited app authentication; trying again in ") {
            waited += 1;
        }
    }
    let _ = broker.kill();
    let _ = broker.wait();
    assert!(
        waited >= 9,
        "only {waited} shards were rate-limited: the limit was not on"
    );
    let out = status(&config, "night-12");
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(
        stdout.contains("Tenants: 3 ok, 0 failed, 0 never ran (of 3)"),
        "{stdout}"
    );
}

/// The example night with `copies` tenants of each seed tenant's kind (`hospital-0`, ...), each
/// over that seed tenant's data with scopes of its own.
fn with_copies(text: String, copies: usize) -> String {
    let mut blocks = text.split("\n[[tenants]]\n");
    let mut out = blocks.next().unwrap().to_string();
    for block in blocks {
        let id = block
            .lines()
            .find_map(|l| l.strip_prefix("id = \""))
            .unwrap()
            .trim_end_matches('"');
        for k in 0..copies {
            let copy = format!("{id}-{k}");
            out += "\n[[tenants]]\n";
            out += &block
                .replace(&format!("id = \"{id}\""), &format!("id = \"{copy}\""))
                .replace(&format!(":{id}\""), &format!(":{copy}\""));
        }
    }
    out
}

/// `text` with its reports, audit trail and runs under `root` (an `s3://` URL).
fn stored_at(text: String, root: &str) -> String {
    text.lines()
        .map(|line| {
            if line.starts_with("reports = ") {
                format!("reports = \"{root}/reports\"\nruns = \"{root}/runs\"")
            } else if line.starts_with("audit = ") {
                format!("audit = \"{root}/audit\"")
            } else {
                line.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The tenants with an `agent_created` entry in each attempt at a shard (an attempt starts at a
/// `shard_started` entry), from the shard's audit chain.
fn tenants_per_attempt(chain: &str) -> Vec<Vec<String>> {
    let chain = sluice_storage::Location::parse(chain, Path::new("")).unwrap();
    let mut attempts: Vec<Vec<String>> = Vec::new();
    for entry in sluice_audit::read_entries(&chain).unwrap().entries {
        match entry.get("event").and_then(|e| e.as_str()) {
            Some("shard_started") => attempts.push(Vec::new()),
            // The isolation probe's agent has a purpose; the tenants' have none.
            Some("agent_created") if !entry.contains_key("purpose") => attempts
                .last_mut()
                .expect("an attempt starts with shard_started")
                .push(entry.get("tenant").unwrap().as_str().unwrap().to_string()),
            _ => {}
        }
    }
    for tenants in &mut attempts {
        tenants.sort();
    }
    attempts
}

#[test]
fn a_shard_killed_mid_run_is_rerun_and_the_night_on_object_storage_is_whole() {
    use std::io::BufRead as _;
    use std::os::unix::process::ExitStatusExt as _;

    let dir = tempfile::tempdir().unwrap();
    let root = sluice_tests::s3::prefix("indexed-job");
    // The same twelve tenants in one process, on disk: what the night must come to.
    std::fs::create_dir(dir.path().join("baseline")).unwrap();
    let baseline = example_config(&dir.path().join("baseline"), |t| with_copies(t, 4));
    let out = sluice(&["run", baseline.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stdout));
    let config = example_config(dir.path(), |t| stored_at(with_copies(t, 4), &root));
    let tenants: Vec<String> = ["hospital", "bank", "retail"]
        .iter()
        .flat_map(|id| (0..4).map(move |k| format!("{id}-{k}")))
        .collect();
    let owned = |shard: u32| -> Vec<String> {
        let mut own: Vec<String> = tenants
            .iter()
            .filter(|t| owner(t, 3) == shard)
            .cloned()
            .collect();
        own.sort();
        own
    };
    // The shard with the most tenants is killed after its first one, as a node dies under a pod.
    let victim = (0..3).max_by_key(|&i| owned(i).len()).unwrap();
    assert!(owned(victim).len() >= 3, "{:?}", owned(victim));
    let start =
        |index: u32| start_shard_with(&config, index, 3, "night-k", &["--concurrency", "1"]);
    let mut shards: Vec<(u32, Child)> = (0..3).map(|i| (i, start(i))).collect();
    // The victim first: waiting for the others first would let it finish every tenant.
    shards.sort_by_key(|(i, _)| *i != victim);
    let mut printed = 0;
    for (i, mut child) in shards {
        if i != victim {
            let out = finish(child);
            assert_eq!(
                out.status.code(),
                Some(0),
                "shard {i}: {}",
                text(&out.stdout)
            );
            continue;
        }
        let mut lines = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
        for line in lines.by_ref() {
            if line.unwrap().starts_with("── ") {
                printed += 1;
                break;
            }
        }
        child.kill().unwrap();
        let status = child.wait().unwrap();
        assert_eq!(status.signal(), Some(9));
    }
    assert_eq!(
        printed, 1,
        "the victim finished no tenant before it was killed"
    );

    let out = status(&config, "night-k");
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains(&format!(
            "  shard {victim}: missing: it left no summary (never ran, or was killed)"
        )),
        "{stdout}"
    );

    // backoffLimitPerIndex: the index runs again, alone, on the same bucket.
    let out = finish(start(victim));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stdout));
    let out = status(&config, "night-k");
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(
        stdout.contains("Tenants: 12 ok, 0 failed, 0 never ran (of 12)"),
        "{stdout}"
    );

    // Every report and table on the bucket is the one-process night's, byte for byte.
    let reports =
        sluice_storage::Location::parse(&format!("{root}/reports"), Path::new("")).unwrap();
    for tenant in &tenants {
        let report = reports.child(tenant).child("latest.json");
        assert_eq!(
            report.get().unwrap(),
            Some(
                std::fs::read(
                    dir.path()
                        .join("baseline/reports")
                        .join(tenant)
                        .join("latest.json")
                )
                .unwrap()
            ),
            "{tenant}"
        );
    }
    for k in 0..4 {
        let daily = format!("retail-{k}/reports/daily.parquet");
        assert_eq!(
            reports.child(&daily).get().unwrap(),
            Some(std::fs::read(dir.path().join("baseline/reports").join(&daily)).unwrap())
        );
    }

    // Each attempt ran each of its shard's tenants at most once (the killed one), or exactly
    // once (every attempt that finished), and never another shard's.
    for shard in 0..3 {
        let chain = format!("{root}/runs/night-k/shard-{shard}.audit.jsonl");
        let attempts = tenants_per_attempt(&chain);
        if shard == victim {
            assert_eq!(attempts.len(), 2, "{attempts:?}");
            let mut killed = attempts[0].clone();
            killed.dedup();
            assert_eq!(killed, attempts[0], "a tenant ran twice in one attempt");
            assert!(
                killed.iter().all(|t| owned(shard).contains(t)),
                "{killed:?}"
            );
            // What it ran in its last 100 ms may not have reached the bucket (the audit
            // writer's segment window), so this can be fewer than the tenants it printed.
            assert!(killed.len() < owned(shard).len(), "{killed:?}");
            assert_eq!(attempts[1], owned(shard));
        } else {
            assert_eq!(attempts, [owned(shard)], "shard {shard}");
        }
        let out = sluice(&["audit", "verify", &chain]).output().unwrap();
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stdout));
        assert!(
            text(&out.stdout).starts_with("OK: "),
            "{}",
            text(&out.stdout)
        );
    }
}

#[test]
fn unreachable_object_storage_stops_the_night_in_one_line_without_the_secret() {
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let root = sluice_tests::s3::prefix("unreachable");
    let config = example_config(dir.path(), |t| stored_at(t, &root));
    let dead = |args: &[&str]| {
        sluice(args)
            .env("AWS_ENDPOINT", format!("http://127.0.0.1:{port}"))
            .env("AWS_SECRET_ACCESS_KEY", "do-not-print-this-secret")
            .output()
            .unwrap()
    };
    let out = dead(&["run", config.to_str().unwrap()]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{}{stderr}", text(&out.stdout));
    assert!(
        stderr.starts_with(&format!("sluice: listing {root}/audit: Generic S3 error: ")),
        "{stderr}"
    );
    assert!(
        stderr.ends_with(
            "Connection refused (os error 111) (check AWS_ENDPOINT and the AWS_* credentials)\n"
        ),
        "{stderr}"
    );
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(!stderr.contains("do-not-print-this-secret"));
    assert!(!text(&out.stdout).contains("── "), "no tenant ran");

    // A bucket that does not exist, on a live server: the reports' check names it.
    let config = example_config(dir.path(), |t| {
        stored_at(t, &root).replace(
            &format!("reports = \"{root}/reports\""),
            "reports = \"s3://no-such-bucket/reports\"",
        )
    });
    let out = sluice(&["run", config.to_str().unwrap()]).output().unwrap();
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{}{stderr}", text(&out.stdout));
    assert!(
        stderr.starts_with("sluice: reports: listing s3://no-such-bucket/reports: "),
        "{stderr}"
    );
    assert!(stderr.contains("<Code>NoSuchBucket</Code>"), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
}

//! Tenant plugins from a real OCI registry (Debian's docker-registry), published by tools
//! Sluice did not write (oras-py pushes, openssl signs as cosign lays signatures out), through
//! the real `sluice lock`, `vet`, `run` and `promote`.

mod night;

use std::path::{Path, PathBuf};
use std::process::Command;

use night::{Night, digest, run_night};
use sluice_tests::oci::{
    PrivateRegistry, keypair, push, push_with_login, shared_blob_path, shared_registry, sign,
    unique,
};
use sluice_tests::{demo_data, expected_report, guest, root};

/// A tenant of a test night: its id, what it runs, and extra lines (signer, candidate).
struct Tenant {
    id: String,
    /// The seed tenant whose data and transform it has.
    like: &'static str,
    plugin: String,
    extra: String,
}

impl Tenant {
    /// A seed tenant running its own plugin file.
    fn seed(id: &'static str) -> Tenant {
        let plugin = guest(id);
        Tenant {
            id: id.into(),
            like: id,
            plugin: format!(
                "plugin = \"{}\"\nsha256 = \"{}\"",
                plugin.display(),
                digest(&plugin)
            ),
            extra: String::new(),
        }
    }

    /// A tenant with the data of seed tenant `like`, running registry plugin `reference`.
    fn oci(id: &str, like: &'static str, reference: &str, extra: &str) -> Tenant {
        Tenant {
            id: id.into(),
            like,
            plugin: format!("plugin = \"{reference}\""),
            extra: extra.into(),
        }
    }
}

/// Writes `dir/nightly.toml` for `tenants` (plugin store in `dir/store`).
fn night_config(dir: &Path, tenants: &[Tenant]) -> PathBuf {
    let probe = guest("probe");
    let mut text = format!(
        "reports = \"{}\"\naudit = \"{}\"\nconcurrency = 2\n\n[plugins]\nstore = \"{}\"\n\n\
         [isolation]\nprobe = \"{}\"\nsha256 = \"{}\"\n",
        dir.join("reports").display(),
        dir.join("audit.jsonl").display(),
        dir.join("store").display(),
        probe.display(),
        digest(&probe),
    );
    for t in tenants {
        let dataset = match t.like {
            "hospital" => "visits",
            "bank" => "transactions",
            _ => "orders",
        };
        // Each tenant its own copy of the data: tenants never share a file.
        let data = dir.join("data").join(&t.id);
        std::fs::create_dir_all(&data).unwrap();
        let db = data.join("analytics.db");
        if !db.exists() {
            std::fs::copy(demo_data().join(t.like).join("analytics.db"), &db).unwrap();
        }
        text.push_str(&format!(
            "\n[[tenants]]\nid = \"{id}\"\nname = \"{id} inc.\"\ndata_type = \"analytics\"\n\
             {plugin}\n{extra}\nread_scope = \"read:analytics:{id}\"\n\
             write_scope = \"write:reports:{id}\"\n\n[[tenants.datasets]]\nname = \"{dataset}\"\n\
             path = \"{db}\"\nresource = \"analytics\"\n",
            id = t.id,
            plugin = t.plugin,
            extra = t.extra,
            db = db.display(),
        ));
    }
    let path = dir.join("nightly.toml");
    std::fs::write(&path, text).unwrap();
    path
}

/// `sluice ARGS`: (exit code, stdout, stderr).
fn sluice(args: &[&str]) -> (i32, String, String) {
    sluice_env(args, &[])
}

/// [`sluice`] with `env` set.
fn sluice_env(args: &[&str], env: &[(&str, &Path)]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args(args)
        .env_remove("AGENTWRIT_BROKER_URL")
        .envs(env.iter().copied())
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn lock(config: &Path) -> (i32, String) {
    let (code, out, err) = sluice(&["lock", config.to_str().unwrap()]);
    (code, format!("{out}{err}"))
}

fn lock_file(config: &Path) -> String {
    std::fs::read_to_string(config.with_file_name("nightly.toml.lock")).unwrap()
}

/// The seed report of `like`, as tenant `id` writes it.
fn report_as(like: &str, id: &str) -> String {
    expected_report(like).replace(
        &format!("\"tenant\":\"{like}\""),
        &format!("\"tenant\":\"{id}\""),
    )
}

fn assert_ran(night: &Night, id: &str, like: &str) {
    let t = night.tenant(id);
    assert!(t["error"].is_null(), "{id}: {t}");
    let report = String::from_utf8(night.report(id).unwrap()).unwrap();
    assert_eq!(report, report_as(like, id), "{id}'s report");
}

#[test]
fn a_signed_plugin_is_pulled_by_tag_locked_and_run_offline_and_a_moved_tag_is_not_followed() {
    let dir = tempfile::tempdir().unwrap();
    let mut registry = PrivateRegistry::start();
    let (key, public) = keypair(dir.path(), "bank");
    let host = registry.host.clone();
    let bank = push(&format!("{host}/tenants/bank:v1"), &guest("bank"));
    sign(&format!("{host}/tenants/bank@{bank}"), &key, &[]);
    let tenants = [
        Tenant::seed("hospital"),
        Tenant::oci(
            "bank",
            "bank",
            &format!("oci://{host}/tenants/bank:v1"),
            &format!("signer = \"{}\"", public.display()),
        ),
        Tenant::seed("retail"),
    ];
    let config = night_config(dir.path(), &tenants);
    let (code, out) = lock(&config);
    assert_eq!(code, 0, "{out}");
    let locked = lock_file(&config);
    let line = locked.lines().find(|l| l.starts_with("bank = ")).unwrap();
    assert!(line.contains(&format!("digest = \"{bank}\"")), "{locked}");
    assert!(
        line.contains(&format!("reference = \"oci://{host}/tenants/bank:v1\"")),
        "{line}"
    );
    assert!(line.contains("language = \"rust\""), "{line}");
    let fingerprint = {
        let der = Command::new("openssl")
            .args(["pkey", "-pubin", "-outform", "DER", "-in"])
            .arg(&public)
            .output()
            .unwrap()
            .stdout;
        sluice_registry::Digest::of(&der).to_string()
    };
    assert!(
        line.contains(&format!("signer = \"{fingerprint}\"")),
        "openssl's fingerprint: {line}"
    );

    // The tag moves to another transform, then the registry goes away.
    let moved = push(&format!("{host}/tenants/bank:v1"), &guest("retail"));
    assert_ne!(moved, bank);
    registry.stop();

    let night = run_night(dir.path(), &config);
    assert_eq!(night.code, 0, "{}\n{}", night.stdout, night.stderr);
    for (id, like) in [
        ("hospital", "hospital"),
        ("bank", "bank"),
        ("retail", "retail"),
    ] {
        assert_ran(&night, id, like);
    }
    let plugin = &night.tenant("bank")["plugin"];
    assert_eq!(
        plugin["digest"],
        bank.as_str(),
        "the locked digest ran, not the moved tag"
    );
    assert_eq!(plugin["signer"], fingerprint.as_str());
    let checked: Vec<_> = night
        .audit()
        .into_iter()
        .filter(|e| e["event"] == "plugin_checked" && e["tenant"] == "bank")
        .collect();
    assert_eq!(checked.len(), 1, "{checked:?}");
    assert_eq!(checked[0]["digest"], bank.as_str());
    assert_eq!(checked[0]["signer"], fingerprint.as_str());
    assert_eq!(
        checked[0]["reference"],
        format!("oci://{host}/tenants/bank:v1")
    );
    assert!(
        checked[0]["verdict"]
            .as_str()
            .unwrap()
            .starts_with("accepted: 98"),
        "{}",
        checked[0]
    );
}

#[test]
fn a_plugin_pinned_by_digest_in_its_reference_runs_and_a_config_changed_since_the_lock_is_refused()
{
    let dir = tempfile::tempdir().unwrap();
    let host = shared_registry();
    let wasm = unique(&guest("hospital"), "by-digest", dir.path());
    let d = push(&format!("{host}/by-digest/hospital:v1"), &wasm);
    let reference = format!("oci://{host}/by-digest/hospital@{d}");
    let tenants = [
        Tenant::oci("clinic", "hospital", &reference, ""),
        Tenant::seed("bank"),
    ];
    let config = night_config(dir.path(), &tenants);
    assert_eq!(lock(&config).0, 0);
    let night = run_night(dir.path(), &config);
    assert_eq!(night.code, 0, "{}", night.stderr);
    assert_ran(&night, "clinic", "hospital");
    assert_eq!(night.tenant("clinic")["plugin"]["digest"], d.as_str());

    // The configuration now names another tag: refused, naming the tenant, the others run.
    let text = std::fs::read_to_string(&config).unwrap();
    std::fs::write(
        &config,
        text.replace(&reference, &format!("oci://{host}/by-digest/hospital:v2")),
    )
    .unwrap();
    let night = run_night(dir.path(), &config);
    assert_eq!(night.code, 1, "{}", night.stdout);
    let error = &night.tenant("clinic")["error"];
    assert_eq!(error["kind"], "plugin");
    let message = error["message"].as_str().unwrap();
    assert!(
        message.starts_with("tenant 'clinic': its plugin changed since the lock was written")
            && message.ends_with(&format!("run `sluice lock {}`", config.display())),
        "{message}"
    );
    assert_ran(&night, "bank", "bank");
}

/// Every way a registry plugin can fail to be vouched for, each a tenant of one night: each
/// refused by `sluice lock` with one line saying why, never locked, and so never run, while the
/// tenants beside them run and publish exactly their reports.
#[test]
fn unsigned_wrong_key_other_tenants_key_tampered_wrong_digest_and_truncated_plugins_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let host = shared_registry();
    let keys: Vec<(PathBuf, PathBuf)> = [
        "unsigned",
        "wrongkey",
        "stranger",
        "otherkey",
        "tampered",
        "wrongdigest",
        "truncated",
    ]
    .iter()
    .map(|k| keypair(dir.path(), k))
    .collect();
    let key = |name: &str| {
        let i = [
            "unsigned",
            "wrongkey",
            "stranger",
            "otherkey",
            "tampered",
            "wrongdigest",
            "truncated",
        ]
        .iter()
        .position(|k| *k == name)
        .unwrap();
        keys[i].clone()
    };
    let mut digests = std::collections::BTreeMap::new();
    for case in [
        "unsigned",
        "wrongkey",
        "otherkey",
        "tampered",
        "wrongdigest",
        "truncated",
    ] {
        let wasm = unique(&guest("hospital"), case, dir.path());
        let target = format!("{host}/refusals/{case}:v1");
        let d = push(&target, &wasm);
        let at = format!("{host}/refusals/{case}@{d}");
        match case {
            "unsigned" => {}
            "wrongkey" => sign(&at, &key("stranger").0, &[]),
            // Signed by another tenant of the night (wrongdigest): not this tenant's key.
            "otherkey" => sign(&at, &key("wrongdigest").0, &[]),
            "tampered" => sign(&at, &key("tampered").0, &["--tamper"]),
            "wrongdigest" => sign(
                &at,
                &key("wrongdigest").0,
                &["--payload-digest", &digests_of_other(&d)],
            ),
            "truncated" => {
                sign(&at, &key("truncated").0, &[]);
                let blob = shared_blob_path(
                    &sluice_registry::Digest::of(&std::fs::read(&wasm).unwrap()).to_string(),
                );
                let bytes = std::fs::read(&blob).unwrap();
                std::fs::write(&blob, &bytes[..bytes.len() / 2]).unwrap();
            }
            _ => unreachable!(),
        }
        digests.insert(case, d);
    }
    let mut tenants = vec![Tenant::seed("hospital"), Tenant::seed("bank")];
    for case in [
        "unsigned",
        "wrongkey",
        "otherkey",
        "tampered",
        "wrongdigest",
        "truncated",
    ] {
        tenants.push(Tenant::oci(
            case,
            "hospital",
            &format!("oci://{host}/refusals/{case}:v1"),
            &format!("signer = \"{}\"", key(case).1.display()),
        ));
    }
    let config = night_config(dir.path(), &tenants);
    let (code, out) = lock(&config);
    assert_eq!(code, 1, "{out}");
    let refused = |case: &str| -> String {
        let lines: Vec<&str> = out
            .lines()
            .filter(|l| l.trim_start().starts_with(&format!("{case}  ")))
            .collect();
        assert_eq!(lines.len(), 1, "one line for {case}:\n{out}");
        assert!(lines[0].contains("REFUSED"), "{}", lines[0]);
        lines[0].to_string()
    };
    assert!(refused("unsigned").contains(&format!(
        "it has no signature (no sha256-{}.sig tag",
        &digests["unsigned"][7..]
    )));
    assert!(
        refused("wrongkey").contains("none of its 1 signature(s) verifies with the tenant's key")
    );
    let other = refused("otherkey");
    assert!(
        other.contains("it is signed by wrongdigest's key"),
        "{other}"
    );
    assert!(
        refused("tampered").contains("none of its 1 signature(s) verifies with the tenant's key")
    );
    assert!(refused("wrongdigest").contains(&format!(
        "is for sha256:{}, not for this plugin's {}",
        "0".repeat(64),
        digests["wrongdigest"]
    )));
    let truncated = refused("truncated");
    assert!(
        truncated.contains("did not arrive whole (") && truncated.contains("truncated or changed"),
        "{truncated}"
    );
    let locked = lock_file(&config);
    assert!(
        !locked.lines().any(|l| l.contains("refusals/")),
        "nothing refused is locked:\n{locked}"
    );

    let night = run_night(dir.path(), &config);
    assert_eq!(night.code, 1);
    assert_ran(&night, "hospital", "hospital");
    assert_ran(&night, "bank", "bank");
    for case in [
        "unsigned",
        "wrongkey",
        "otherkey",
        "tampered",
        "wrongdigest",
        "truncated",
    ] {
        let error = &night.tenant(case)["error"];
        assert_eq!(error["kind"], "plugin", "{case}");
        assert!(
            error["message"].as_str().unwrap().contains("is not in"),
            "{case}: {error}"
        );
        assert!(night.report(case).is_none(), "{case} published nothing");
    }
}

/// A digest that is not `d`'s: what a signature for another plugin names.
fn digests_of_other(d: &str) -> String {
    assert_ne!(d, format!("sha256:{}", "0".repeat(64)));
    format!("sha256:{}", "0".repeat(64))
}

/// `vet` refuses a plugin with exactly the words the night's load refuses it with.
#[test]
fn a_vet_refusal_matches_the_load_refusal() {
    let dir = tempfile::tempdir().unwrap();
    let host = shared_registry();
    let hostile = guest("hostile-filesystem");
    let d = push(&format!("{host}/vet/hostile:v1"), &hostile);
    let reference = format!("oci://{host}/vet/hostile:v1");
    let tenants = [
        Tenant::seed("hospital"),
        Tenant::oci("mallory", "hospital", &reference, ""),
        Tenant {
            id: "mallory-file".into(),
            like: "hospital",
            plugin: format!(
                "plugin = \"{}\"\nsha256 = \"{}\"",
                hostile.display(),
                digest(&hostile)
            ),
            extra: String::new(),
        },
    ];
    let config = night_config(dir.path(), &tenants);
    let (code, out, _) = sluice(&[
        "vet",
        &reference,
        "--tenant",
        "mallory",
        "--config",
        config.to_str().unwrap(),
    ]);
    assert_eq!(code, 1, "{out}");
    let vet_line = out
        .lines()
        .find(|l| l.contains("REFUSED"))
        .unwrap()
        .to_string();
    assert!(out.contains(&d), "vet names the digest it pulled: {out}");
    let why = |line: &str, name: &str| -> String {
        let at = line
            .find(&format!("'{name}' "))
            .unwrap_or_else(|| panic!("{name} in {line}"));
        line[at + name.len() + 3..].to_string()
    };
    let vetted = why(&vet_line, &reference);
    assert!(vetted.starts_with("imports wasi:filesystem/"), "{vetted}");
    // The file form of the same bytes, loaded by the night.
    let night = run_night(dir.path(), &config);
    let loaded = night.tenant("mallory-file")["error"]["message"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(why(&loaded, &hostile.display().to_string()), vetted);
    assert_ran(&night, "hospital", "hospital");
    // And `lock` refuses it the same way.
    let (code, out) = lock(&config);
    assert_eq!(code, 1);
    let line = out
        .lines()
        .find(|l| l.trim_start().starts_with("mallory  "))
        .unwrap();
    assert_eq!(
        why(line, &reference),
        format!("{vetted}; it has no locked version and will not run")
    );
    let _ = root();
}

#[test]
fn promote_moves_the_candidates_locked_digest_to_current_and_the_next_night_runs_it() {
    let dir = tempfile::tempdir().unwrap();
    let host = shared_registry();
    let v1 = push(
        &format!("{host}/promote/bank:v1"),
        &unique(&guest("bank"), "promote-v1", dir.path()),
    );
    let v2 = push(
        &format!("{host}/promote/bank:v2"),
        &unique(&guest("bank"), "promote-v2", dir.path()),
    );
    let tenants = [
        Tenant::oci(
            "bank",
            "bank",
            &format!("oci://{host}/promote/bank:v1"),
            &format!(
                "# the next version, tried in shadow\ncandidate = \"oci://{host}/promote/bank:v2\""
            ),
        ),
        Tenant::seed("retail"),
    ];
    let config = night_config(dir.path(), &tenants);
    assert_eq!(lock(&config).0, 0);
    let (code, out, err) = sluice(&["promote", config.to_str().unwrap(), "bank"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains(&v2), "{out}");
    let text = std::fs::read_to_string(&config).unwrap();
    assert!(
        text.contains(&format!("plugin = \"oci://{host}/promote/bank:v2\"")),
        "{text}"
    );
    assert!(!text.contains("candidate ="), "{text}");
    let locked = lock_file(&config);
    assert!(
        locked
            .lines()
            .any(|l| l.starts_with("bank = ") && l.contains(&v2)),
        "{locked}"
    );
    assert!(!locked.contains(&v1), "{locked}");
    let night = run_night(dir.path(), &config);
    assert_eq!(night.code, 0, "{}", night.stderr);
    assert_eq!(night.tenant("bank")["plugin"]["digest"], v2.as_str());
    assert_ran(&night, "bank", "bank");
}

/// Three tenants with candidates: the same transform (its own report, captured), a transform
/// computing other figures (the exact difference), and one that tries to publish a table
/// (denied at the gate: its agent holds only the read scope). No candidate replaces a
/// `latest.json` or publishes anything; each runs under an agent of its own.
#[test]
fn a_shadow_run_writes_candidate_json_never_latest_json_cannot_write_and_its_diff_is_exact() {
    let dir = tempfile::tempdir().unwrap();
    let host = shared_registry();
    let same = push(
        &format!("{host}/shadow/bank:v2"),
        &unique(&guest("bank"), "shadow-v2", dir.path()),
    );
    let other = push(&format!("{host}/shadow/hostile:v1"), &guest("hostile"));
    let with = |id: &str, candidate: &str, params: &str| {
        let mut t = Tenant::seed("bank");
        t.id = id.into();
        t.extra =
            format!("candidate = \"oci://{host}/shadow/{candidate}\"\nparams = {{ {params} }}");
        t
    };
    let tenants = [
        Tenant::seed("hospital"),
        with("bank-same", "bank:v2", ""),
        // The bank transform ignores parameters; the hostile one reads them.
        with("bank-rows", "hostile:v1", "reader = \"everything\""),
        with("bank-writer", "hostile:v1", "reader = \"two-tables\""),
    ];
    let config = night_config(dir.path(), &tenants);
    let (code, out) = lock(&config);
    assert_eq!(code, 0, "{out}");
    let night = run_night(dir.path(), &config);
    assert_eq!(
        night.code, 0,
        "a candidate's failure is not the tenant's: {}",
        night.stdout
    );
    for id in ["bank-same", "bank-rows", "bank-writer"] {
        assert_ran(&night, id, "bank");
        let c = &night.tenant(id)["candidate"];
        assert_eq!(
            c["scope"],
            serde_json::json!([format!("read:analytics:{id}")]),
            "{id}: {c}"
        );
        assert_ne!(
            c["agent_id"],
            night.tenant(id)["agent_id"],
            "an agent of its own"
        );
        assert_eq!(c["agent_end"], "released", "{id}: {c}");
    }
    let candidate_json = |id: &str| {
        std::fs::read_to_string(dir.path().join("reports").join(id).join("candidate.json"))
    };

    // The same transform: its own report bytes, as `candidate.json`; nothing differs.
    let same_run = &night.tenant("bank-same")["candidate"];
    assert!(same_run["error"].is_null(), "{same_run}");
    assert_eq!(same_run["plugin"]["digest"], same.as_str());
    assert_eq!(same_run["changed"], serde_json::json!([]));
    assert_eq!(
        candidate_json("bank-same").unwrap(),
        report_as("bank", "bank-same")
    );
    let gate = same_run["gate"].as_array().unwrap();
    assert!(
        gate.iter()
            .any(|g| g["call"] == "reports.create" && g["decision"] == "SHADOWED"),
        "{gate:?}"
    );

    // Other figures: every difference, exactly.
    let rows_run = &night.tenant("bank-rows")["candidate"];
    assert_eq!(rows_run["plugin"]["digest"], other.as_str());
    assert_eq!(
        rows_run["changed"],
        serde_json::json!([
            {"figure": "transactions", "current": "2.4M", "candidate": null},
            {"figure": "avg_balance", "current": "$8,420", "candidate": null},
            {"figure": "fraud_rate", "current": "0.02%", "candidate": null},
            {"figure": "rows", "current": null, "candidate": "2400000"},
        ])
    );
    assert_eq!(
        candidate_json("bank-rows").unwrap(),
        r#"{"figures":{"rows":"2400000"},"tenant":"bank-rows"}"#
    );
    let compared: Vec<_> = night
        .audit()
        .into_iter()
        .filter(|e| e["event"] == "candidate_compared" && e["tenant"] == "bank-rows")
        .collect();
    assert_eq!(compared.len(), 1);
    assert_eq!(compared[0]["changed"], rows_run["changed"]);
    assert_eq!(compared[0]["agent_id"], rows_run["agent_id"]);

    // A candidate that tries to publish a table is denied at the gate and publishes nothing.
    let writer = &night.tenant("bank-writer")["candidate"];
    let gate = writer["gate"].as_array().unwrap();
    assert!(
        gate.iter().any(|g| g["call"] == "tables.create"
            && g["decision"] == "BLOCKED"
            && g["required"] == "write:reports:bank-writer"),
        "{gate:?}"
    );
    assert_eq!(writer["error"]["kind"], "run", "{writer}");
    assert_eq!(
        writer["error"]["message"],
        "denied: scope 'write:reports:bank-writer' is not covered by held scopes \
         [read:analytics:bank-writer]",
        "{writer}"
    );
    assert!(
        candidate_json("bank-writer").is_err(),
        "a failed candidate writes no candidate.json"
    );
    assert!(
        !dir.path().join("reports/bank-writer/reports").exists(),
        "no table published"
    );
    assert!(night.stdout.contains("\"candidate\""));
}

/// A registry with a login: Sluice takes the credentials from the Docker config
/// (`$DOCKER_CONFIG/config.json`), never from its own configuration, and never prints them.
#[test]
fn registry_credentials_come_from_the_docker_config_and_are_never_printed() {
    const PASSWORD: &str = "s3cret-registry-pw-7f1e";
    let dir = tempfile::tempdir().unwrap();
    let registry = PrivateRegistry::start_with_login("tenant-bot", PASSWORD);
    let host = registry.host.clone();
    let bank = push_with_login(
        &format!("{host}/auth/bank:v1"),
        &guest("bank"),
        "tenant-bot",
        PASSWORD,
    );
    let tenants = [
        Tenant::seed("hospital"),
        Tenant::oci("bank", "bank", &format!("oci://{host}/auth/bank:v1"), ""),
    ];
    let config = night_config(dir.path(), &tenants);
    let config_arg = config.to_str().unwrap();

    let nobody = dir.path().join("no-login");
    std::fs::create_dir_all(&nobody).unwrap();
    let (code, out, err) = sluice_env(&["lock", config_arg], &[("DOCKER_CONFIG", &nobody)]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(
        out.contains("REFUSED") || out.contains("could not be reached or refused"),
        "{out}"
    );

    let docker = dir.path().join("docker");
    std::fs::create_dir_all(&docker).unwrap();
    use base64::Engine as _;
    let auth = base64::engine::general_purpose::STANDARD.encode(format!("tenant-bot:{PASSWORD}"));
    std::fs::write(
        docker.join("config.json"),
        format!(r#"{{"auths":{{"{host}":{{"auth":"{auth}"}}}}}}"#),
    )
    .unwrap();
    let (code, out, err) = sluice_env(&["lock", config_arg], &[("DOCKER_CONFIG", &docker)]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains(&bank), "{out}");
    let night = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args(["run", config_arg, "--json"])
        .env("DOCKER_CONFIG", &docker)
        .env_remove("AGENTWRIT_BROKER_URL")
        .output()
        .unwrap();
    assert!(
        night.status.success(),
        "{}{}",
        String::from_utf8_lossy(&night.stdout),
        String::from_utf8_lossy(&night.stderr)
    );
    let audit = std::fs::read_to_string(dir.path().join("audit.jsonl")).unwrap();
    for (what, text) in [
        ("lock output", format!("{out}{err}")),
        (
            "run stdout",
            String::from_utf8_lossy(&night.stdout).into_owned(),
        ),
        (
            "run stderr",
            String::from_utf8_lossy(&night.stderr).into_owned(),
        ),
        ("audit", audit),
        ("lock file", lock_file(&config)),
    ] {
        assert!(
            !text.contains(PASSWORD) && !text.contains(&auth),
            "the password is in the {what}"
        );
    }
}

//! A sharded night as Kubernetes objects, built from typed API structs (`k8s-openapi`): the
//! configuration in a ConfigMap, and a CronJob (or, without a schedule, a Job) whose Job is an
//! Indexed Job of `shards` completions, each pod one shard (`JOB_COMPLETION_INDEX`).
//!
//! Failures map to the Job's per-index retries: a shard's exit 1 (a tenant failed) is retried
//! up to `backoffLimitPerIndex` times; exit 2 (configuration) and 3 (isolation violated) fail the
//! index at once, since a retry cannot fix them; a pod disrupted by the cluster (eviction,
//! preemption, node drain) is retried without counting. The client secret comes from a Secret,
//! never from the manifest; pods run as non-root on a read-only root filesystem.
//!
//! Pods share no disk: reports and the shards' summaries and audit chains must be on object
//! storage (`s3://`), whose credentials and endpoint come from a second, optional Secret.

use std::collections::BTreeMap;

use k8s_openapi::api::batch::v1::{
    CronJob, CronJobSpec, Job, JobSpec, JobTemplateSpec, PodFailurePolicy,
    PodFailurePolicyOnExitCodesRequirement, PodFailurePolicyOnPodConditionsPattern,
    PodFailurePolicyRule,
};
use k8s_openapi::api::core::v1::{
    Capabilities, ConfigMap, ConfigMapVolumeSource, Container, EmptyDirVolumeSource, EnvFromSource,
    EnvVar, EnvVarSource, ObjectFieldSelector, PodSecurityContext, PodSpec, PodTemplateSpec,
    ResourceRequirements, SeccompProfile, SecretEnvSource, SecretKeySelector, SecurityContext,
    Volume, VolumeMount,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use sluice_pipeline::config::{BrokerSetting, PipelineConfig};

/// Where the configuration is mounted in the pod.
pub const CONFIG_DIR: &str = "/etc/sluice";
/// Writable space for the compiled-plugin cache (the root filesystem is not; reports and audit
/// chains go to object storage).
pub const WORK_DIR: &str = "/var/lib/sluice";
/// The key of the client secret in the Secret.
pub const SECRET_KEY: &str = "client-secret";
/// Memory for the host itself beside its tenants' sandboxes.
const HOST_MEMORY_MIB: u64 = 256;
/// The uid of distroless' `nonroot` user, which the image runs as.
const NONROOT_UID: i64 = 65_532;

/// What `sluice k8s` was asked for.
#[derive(Clone, Debug)]
pub struct ManifestOptions {
    /// Objects' name (and the Job's name prefix).
    pub name: String,
    pub shards: u32,
    pub parallelism: u32,
    pub image: String,
    /// A cron schedule: a CronJob; none: a Job.
    pub schedule: Option<String>,
    /// The Secret holding the app's client secret under [`SECRET_KEY`].
    pub secret: String,
    /// Retries per index for a failed shard.
    pub retries_per_shard: u32,
    /// The Secret whose keys are the object-storage environment (`AWS_*`); optional.
    pub storage_secret: String,
}

/// Longest CronJob name: Kubernetes appends 11 characters to name each Job it starts, and a
/// Job's name must be a 63-character label.
const MAX_CRONJOB_NAME: usize = 52;

/// `value` as a DNS-1123 label (Kubernetes' rule for Job and CronJob names): lowercase letters,
/// digits and '-', starting and ending with a letter or digit, at most `max` characters.
fn check_label(flag: &str, value: &str, max: usize) -> anyhow::Result<()> {
    let bytes = value.as_bytes();
    let ok = !value.is_empty()
        && value.len() <= max
        && bytes
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-')
        && bytes[0].is_ascii_alphanumeric()
        && bytes[bytes.len() - 1].is_ascii_alphanumeric();
    anyhow::ensure!(
        ok,
        "{flag} '{}' is not a Kubernetes name: use 1-{max} lowercase letters, digits and '-', \
         starting and ending with a letter or digit",
        value.escape_debug()
    );
    Ok(())
}

/// `value` as a DNS-1123 subdomain (Kubernetes' rule for Secret and ConfigMap names): labels
/// joined by '.', at most 253 characters.
fn check_subdomain(flag: &str, value: &str) -> anyhow::Result<()> {
    let ok = !value.is_empty()
        && value.len() <= 253
        && value
            .split('.')
            .all(|label| check_label(flag, label, 63).is_ok());
    anyhow::ensure!(
        ok,
        "{flag} '{}' is not a Kubernetes name: use lowercase letters, digits, '-' and '.' (at \
         most 253), each part starting and ending with a letter or digit",
        value.escape_debug()
    );
    Ok(())
}

/// Every option that reaches the manifests, checked: names by Kubernetes' rules, the image and
/// the schedule as printable text of one line.
fn check_options(options: &ManifestOptions) -> anyhow::Result<()> {
    let max_name = if options.schedule.is_some() {
        MAX_CRONJOB_NAME
    } else {
        63
    };
    check_label("--name", &options.name, max_name)?;
    check_subdomain("--secret", &options.secret)?;
    check_subdomain("--storage-secret", &options.storage_secret)?;
    anyhow::ensure!(
        !options.image.is_empty() && options.image.bytes().all(|b| b.is_ascii_graphic()),
        "--image '{}' is not an image reference: printable characters without spaces",
        options.image.escape_debug()
    );
    if let Some(schedule) = &options.schedule {
        anyhow::ensure!(
            !schedule.trim().is_empty()
                && schedule.len() <= 256
                && schedule.chars().all(|c| c == ' ' || c.is_ascii_graphic()),
            "--schedule '{}' is not a cron schedule (e.g. \"0 2 * * *\")",
            schedule.escape_debug()
        );
    }
    Ok(())
}

/// The manifests, as one multi-document YAML stream: the ConfigMap holding `config_text` (the
/// file `config` was read from), then the CronJob or Job. Every value goes through the YAML
/// serializer; the comments at the top name only checked Kubernetes names.
pub fn manifests(
    config: &PipelineConfig,
    config_text: &str,
    options: &ManifestOptions,
) -> anyhow::Result<String> {
    check_options(options)?;
    anyhow::ensure!(options.shards >= 1, "--shards must be at least 1");
    anyhow::ensure!(
        (1..=options.shards).contains(&options.parallelism),
        "--parallelism must be 1 to --shards ({})",
        options.shards
    );
    anyhow::ensure!(
        matches!(
            config.broker,
            BrokerSetting::External {
                client_id: Some(_),
                ..
            }
        ),
        "{}: a night on Kubernetes needs a real broker its shards share: set [broker] url and \
         client_id (the embedded dev broker lives inside one process)",
        config.path.display()
    );
    for (key, location) in [("reports", &config.reports), ("runs", &config.runs)] {
        anyhow::ensure!(
            location.as_local().is_none(),
            "{}: {key} is {location}, on the pod's own disk, which vanishes with the pod and which \
             no other shard (nor `sluice status`) can read: set {key} to s3://bucket/prefix",
            config.path.display()
        );
    }
    let config_map = ConfigMap {
        metadata: meta(&options.name),
        data: Some(BTreeMap::from([(
            "nightly.toml".to_string(),
            config_text.to_string(),
        )])),
        ..ConfigMap::default()
    };
    let job = job_spec(config, options);
    let workload = match &options.schedule {
        Some(schedule) => serde_yaml::to_string(&CronJob {
            metadata: meta(&options.name),
            spec: Some(CronJobSpec {
                schedule: schedule.clone(),
                // A night still running when the next is due is left to finish.
                concurrency_policy: Some("Forbid".into()),
                job_template: JobTemplateSpec {
                    metadata: Some(template_meta()),
                    spec: Some(job),
                },
                ..CronJobSpec::default()
            }),
            ..CronJob::default()
        })?,
        None => serde_yaml::to_string(&Job {
            metadata: meta(&options.name),
            spec: Some(job),
            ..Job::default()
        })?,
    };
    Ok(format!(
        "# Sluice: {} shard(s), {} at a time. The app's client secret is read from Secret '{}', \
         key '{SECRET_KEY}':\n#   kubectl create secret generic {} --from-literal={SECRET_KEY}=...\n\
         # Object storage's AWS_* variables, if the pods have no identity of their own:\n\
         #   kubectl create secret generic {} --from-literal=AWS_ACCESS_KEY_ID=... \
         --from-literal=AWS_SECRET_ACCESS_KEY=...\n{}---\n{}",
        options.shards,
        options.parallelism,
        options.secret,
        options.secret,
        options.storage_secret,
        serde_yaml::to_string(&config_map)?,
        workload
    ))
}

fn meta(name: &str) -> ObjectMeta {
    ObjectMeta {
        name: Some(name.to_string()),
        ..template_meta()
    }
}

/// Labels only: Kubernetes names the Jobs and pods it makes from templates.
fn template_meta() -> ObjectMeta {
    ObjectMeta {
        labels: Some(BTreeMap::from([(
            "app.kubernetes.io/name".to_string(),
            "sluice".to_string(),
        )])),
        ..ObjectMeta::default()
    }
}

fn env(name: &str, value: &str) -> EnvVar {
    EnvVar {
        name: name.into(),
        value: Some(value.into()),
        ..EnvVar::default()
    }
}

/// The Indexed Job: one pod per shard.
pub fn job_spec(config: &PipelineConfig, options: &ManifestOptions) -> JobSpec {
    let concurrency = config.concurrency.unwrap_or(2).max(1) as u64;
    let memory_mib = concurrency * (config.budget.memory_bytes >> 20) + HOST_MEMORY_MIB;
    let resources = BTreeMap::from([
        ("cpu".to_string(), Quantity(concurrency.to_string())),
        ("memory".to_string(), Quantity(format!("{memory_mib}Mi"))),
    ]);
    let mut environment = vec![
        env("SLUICE_SHARDS", &options.shards.to_string()),
        // Every pod of one Job shares its name: the night's run id.
        EnvVar {
            name: "SLUICE_RUN_ID".into(),
            value_from: Some(EnvVarSource {
                field_ref: Some(ObjectFieldSelector {
                    field_path: "metadata.labels['batch.kubernetes.io/job-name']".into(),
                    ..ObjectFieldSelector::default()
                }),
                ..EnvVarSource::default()
            }),
            ..EnvVar::default()
        },
        EnvVar {
            name: "AGENTWRIT_CLIENT_SECRET".into(),
            value_from: Some(EnvVarSource {
                secret_key_ref: Some(SecretKeySelector {
                    name: options.secret.clone(),
                    key: SECRET_KEY.into(),
                    optional: Some(false),
                }),
                ..EnvVarSource::default()
            }),
            ..EnvVar::default()
        },
        env("SLUICE_CACHE_DIR", &format!("{WORK_DIR}/cache")),
    ];
    if let BrokerSetting::External { url, client_id, .. } = &config.broker {
        environment.push(env("AGENTWRIT_BROKER_URL", url));
        if let Some(id) = client_id {
            environment.push(env("AGENTWRIT_CLIENT_ID", id));
        }
    }
    let container = Container {
        name: "sluice".into(),
        image: Some(options.image.clone()),
        args: Some(vec![
            "run".into(),
            format!("{CONFIG_DIR}/nightly.toml"),
            "--json".into(),
        ]),
        env: Some(environment),
        // Object storage's AWS_* variables; optional, for pods with an identity of their own.
        env_from: Some(vec![EnvFromSource {
            secret_ref: Some(SecretEnvSource {
                name: options.storage_secret.clone(),
                optional: Some(true),
            }),
            ..EnvFromSource::default()
        }]),
        resources: Some(ResourceRequirements {
            requests: Some(resources.clone()),
            limits: Some(resources),
            ..ResourceRequirements::default()
        }),
        security_context: Some(SecurityContext {
            run_as_non_root: Some(true),
            run_as_user: Some(NONROOT_UID),
            read_only_root_filesystem: Some(true),
            allow_privilege_escalation: Some(false),
            capabilities: Some(Capabilities {
                drop: Some(vec!["ALL".into()]),
                ..Capabilities::default()
            }),
            seccomp_profile: Some(SeccompProfile {
                type_: "RuntimeDefault".into(),
                ..SeccompProfile::default()
            }),
            ..SecurityContext::default()
        }),
        volume_mounts: Some(vec![
            VolumeMount {
                name: "config".into(),
                mount_path: CONFIG_DIR.into(),
                read_only: Some(true),
                ..VolumeMount::default()
            },
            VolumeMount {
                name: "work".into(),
                mount_path: WORK_DIR.into(),
                ..VolumeMount::default()
            },
        ]),
        ..Container::default()
    };
    let exit_codes = |codes: Vec<i32>| {
        Some(PodFailurePolicyOnExitCodesRequirement {
            container_name: Some("sluice".into()),
            operator: "In".into(),
            values: codes,
        })
    };
    JobSpec {
        completions: Some(options.shards as i32),
        parallelism: Some(options.parallelism as i32),
        completion_mode: Some("Indexed".into()),
        backoff_limit_per_index: Some(options.retries_per_shard as i32),
        pod_failure_policy: Some(PodFailurePolicy {
            rules: vec![
                // Configuration (2) or isolation violated (3): a retry cannot help.
                PodFailurePolicyRule {
                    action: "FailIndex".into(),
                    on_exit_codes: exit_codes(vec![2, 3]),
                    on_pod_conditions: None,
                },
                // Evicted, preempted, drained: not the shard's fault, not counted.
                PodFailurePolicyRule {
                    action: "Ignore".into(),
                    on_exit_codes: None,
                    on_pod_conditions: Some(vec![PodFailurePolicyOnPodConditionsPattern {
                        type_: "DisruptionTarget".into(),
                        status: "True".into(),
                    }]),
                },
            ],
        }),
        template: PodTemplateSpec {
            metadata: Some(template_meta()),
            spec: Some(PodSpec {
                // podFailurePolicy requires it; retries are the Job's, per index.
                restart_policy: Some("Never".into()),
                security_context: Some(PodSecurityContext {
                    run_as_non_root: Some(true),
                    run_as_user: Some(NONROOT_UID),
                    fs_group: Some(NONROOT_UID),
                    ..PodSecurityContext::default()
                }),
                containers: vec![container],
                volumes: Some(vec![
                    Volume {
                        name: "config".into(),
                        config_map: Some(ConfigMapVolumeSource {
                            name: options.name.clone(),
                            ..ConfigMapVolumeSource::default()
                        }),
                        ..Volume::default()
                    },
                    Volume {
                        name: "work".into(),
                        empty_dir: Some(EmptyDirVolumeSource::default()),
                        ..Volume::default()
                    },
                ]),
                ..PodSpec::default()
            }),
        },
        ..JobSpec::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONFIG: &str = r#"reports = "s3://acme-nights/sluice/reports"
audit = "s3://acme-nights/sluice/audit"
runs = "s3://acme-nights/sluice/runs"
concurrency = 3

[broker]
url = "https://agentwrit.example.com"
client_id = "sp-0123456789ab"

[limits]
memory_mib = 128

[[tenants]]
id = "bank"
name = "First National Bank"
data_type = "financial analytics"
plugin = "/opt/sluice/plugins/bank.wasm"
sha256 = "0000000000000000000000000000000000000000000000000000000000000000"
read_scope = "read:analytics:bank"
write_scope = "write:reports:bank"

[[tenants.datasets]]
name = "transactions"
path = "/data/bank/analytics.db"
resource = "analytics"
"#;

    fn options(schedule: Option<&str>) -> ManifestOptions {
        ManifestOptions {
            name: "sluice-night".into(),
            shards: 12,
            parallelism: 4,
            image: "registry.example.com/sluice:1".into(),
            schedule: schedule.map(String::from),
            secret: "sluice-agentwrit".into(),
            retries_per_shard: 2,
            storage_secret: "sluice-s3".into(),
        }
    }

    fn config() -> PipelineConfig {
        sluice_pipeline::config::parse(CONFIG, std::path::Path::new("/etc/sluice/nightly.toml"))
            .unwrap()
    }

    /// The YAML parsed back into the API types, as `kubectl apply` would read it.
    fn parsed(yaml: &str) -> (ConfigMap, serde_yaml::Value) {
        let mut docs = serde_yaml::Deserializer::from_str(yaml);
        let config_map: ConfigMap = serde::Deserialize::deserialize(docs.next().unwrap()).unwrap();
        let workload: serde_yaml::Value =
            serde::Deserialize::deserialize(docs.next().unwrap()).unwrap();
        assert!(docs.next().is_none());
        (config_map, workload)
    }

    #[test]
    fn a_cron_job_of_an_indexed_job_with_the_failure_policy_secret_and_security_context() {
        let yaml = manifests(&config(), CONFIG, &options(Some("0 2 * * *"))).unwrap();
        let (config_map, workload) = parsed(&yaml);
        assert_eq!(config_map.data.unwrap()["nightly.toml"], CONFIG);
        let cron: CronJob = serde_yaml::from_value(workload).unwrap();
        let spec = cron.spec.unwrap();
        assert_eq!(spec.schedule, "0 2 * * *");
        assert_eq!(spec.concurrency_policy.as_deref(), Some("Forbid"));
        let job = spec.job_template.spec.unwrap();
        assert_eq!(job.completion_mode.as_deref(), Some("Indexed"));
        assert_eq!((job.completions, job.parallelism), (Some(12), Some(4)));
        assert_eq!(job.backoff_limit_per_index, Some(2));

        let rules = job.pod_failure_policy.unwrap().rules;
        assert_eq!(rules[0].action, "FailIndex");
        let codes = rules[0].on_exit_codes.as_ref().unwrap();
        assert_eq!(
            (codes.operator.as_str(), codes.values.clone()),
            ("In", vec![2, 3])
        );
        assert_eq!(rules[1].action, "Ignore");
        assert_eq!(
            rules[1].on_pod_conditions.as_ref().unwrap()[0].type_,
            "DisruptionTarget"
        );

        let pod = job.template.spec.unwrap();
        assert_eq!(pod.restart_policy.as_deref(), Some("Never"));
        let container = &pod.containers[0];
        let env = container.env.as_ref().unwrap();
        let secret = env
            .iter()
            .find(|e| e.name == "AGENTWRIT_CLIENT_SECRET")
            .unwrap();
        assert_eq!(secret.value, None, "the secret is never in the manifest");
        let reference = secret
            .value_from
            .as_ref()
            .unwrap()
            .secret_key_ref
            .as_ref()
            .unwrap();
        assert_eq!(
            (reference.name.as_str(), reference.key.as_str()),
            ("sluice-agentwrit", SECRET_KEY)
        );
        let storage = &container.env_from.as_ref().unwrap()[0];
        let storage = storage.secret_ref.as_ref().unwrap();
        assert_eq!(
            (storage.name.as_str(), storage.optional),
            ("sluice-s3", Some(true))
        );
        assert!(
            env.iter().all(|e| !e.name.starts_with("AWS_")),
            "no storage credential in the manifest"
        );
        let shards = env.iter().find(|e| e.name == "SLUICE_SHARDS").unwrap();
        assert_eq!(shards.value.as_deref(), Some("12"));
        let security = container.security_context.as_ref().unwrap();
        assert_eq!(security.run_as_non_root, Some(true));
        assert_eq!(security.read_only_root_filesystem, Some(true));
        assert_eq!(security.allow_privilege_escalation, Some(false));
        assert_eq!(
            security.capabilities.as_ref().unwrap().drop.as_deref(),
            Some(&["ALL".to_string()][..])
        );
        // 3 tenants at once × 128 MiB + 256 MiB for the host; a core per concurrent tenant.
        let resources = container.resources.as_ref().unwrap();
        let limits = resources.limits.as_ref().unwrap();
        assert_eq!(limits["memory"], Quantity("640Mi".into()));
        assert_eq!(limits["cpu"], Quantity("3".into()));
        assert_eq!(resources.requests, resources.limits);
    }

    #[test]
    fn without_a_schedule_a_job_and_the_embedded_broker_is_refused() {
        let yaml = manifests(&config(), CONFIG, &options(None)).unwrap();
        let (_, workload) = parsed(&yaml);
        let job: Job = serde_yaml::from_value(workload).unwrap();
        assert_eq!(job.spec.unwrap().completions, Some(12));

        let embedded = CONFIG.replace(
            "url = \"https://agentwrit.example.com\"\nclient_id = \"sp-0123456789ab\"",
            "ceiling = [\"read:analytics:*\", \"write:reports:*\"]",
        );
        let config = sluice_pipeline::config::parse(
            &embedded,
            std::path::Path::new("/etc/sluice/nightly.toml"),
        )
        .unwrap();
        let err = manifests(&config, &embedded, &options(None)).unwrap_err();
        assert!(
            err.to_string()
                .contains("needs a real broker its shards share"),
            "{err}"
        );
    }

    #[test]
    fn names_with_yaml_in_them_are_refused_not_pasted() {
        let injected = "sluice-agentwrit\n---\napiVersion: v1\nkind: Pod";
        for (option, set) in [
            (
                "--secret",
                (|o: &mut ManifestOptions, v: &str| o.secret = v.into()) as fn(&mut _, &str),
            ),
            ("--storage-secret", |o, v| o.storage_secret = v.into()),
            ("--name", |o, v| o.name = v.into()),
            ("--image", |o, v| o.image = v.into()),
        ] {
            let mut opts = options(Some("0 2 * * *"));
            set(&mut opts, injected);
            let err = manifests(&config(), CONFIG, &opts).unwrap_err().to_string();
            assert!(
                err.starts_with(&format!("{option} 'sluice-agentwrit\\n---\\napiVersion")),
                "{err}"
            );
            assert!(!err.contains('\n'), "{err}");
        }
        let mut opts = options(Some("0 2 * * *\nkind: Pod"));
        opts.name = "sluice-night".into();
        assert!(
            manifests(&config(), CONFIG, &opts)
                .unwrap_err()
                .to_string()
                .starts_with("--schedule '0 2 * * *\\nkind: Pod' is not a cron schedule")
        );
        // Kubernetes' own limits on names.
        let mut opts = options(Some("0 2 * * *"));
        opts.name = "a".repeat(53);
        assert!(
            manifests(&config(), CONFIG, &opts).is_err(),
            "a CronJob name over 52"
        );
        opts.schedule = None;
        assert!(
            manifests(&config(), CONFIG, &opts).is_ok(),
            "a Job name of 53"
        );
        for bad in ["Sluice", "-sluice", "sluice_s3", "s3.", ""] {
            let mut opts = options(None);
            opts.storage_secret = bad.into();
            assert!(manifests(&config(), CONFIG, &opts).is_err(), "{bad:?}");
        }
        let mut opts = options(None);
        opts.storage_secret = "team-a.sluice-s3".into();
        manifests(&config(), CONFIG, &opts).unwrap();
    }

    #[test]
    fn the_document_stream_holds_exactly_the_two_objects() {
        let yaml = manifests(&config(), CONFIG, &options(Some("0 2 * * *"))).unwrap();
        let docs: Vec<serde_yaml::Value> = serde_yaml::Deserializer::from_str(&yaml)
            .map(|d| serde::Deserialize::deserialize(d).unwrap())
            .collect();
        let kinds: Vec<&str> = docs.iter().map(|d| d["kind"].as_str().unwrap()).collect();
        assert_eq!(kinds, ["ConfigMap", "CronJob"]);
    }

    #[test]
    fn reports_or_runs_on_the_pods_own_disk_are_refused() {
        let local = CONFIG.replace("runs = \"s3://acme-nights/sluice/runs\"", "runs = \"runs\"");
        let config = sluice_pipeline::config::parse(
            &local,
            std::path::Path::new("/etc/sluice/nightly.toml"),
        )
        .unwrap();
        assert_eq!(
            manifests(&config, &local, &options(None))
                .unwrap_err()
                .to_string(),
            "/etc/sluice/nightly.toml: runs is /etc/sluice/runs, on the pod's own disk, which \
             vanishes with the pod and which no other shard (nor `sluice status`) can read: set \
             runs to s3://bucket/prefix"
        );
    }
}

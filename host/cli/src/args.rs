//! Command-line definitions.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use sluice_sandbox::{Budget, LIMITS};

#[derive(Parser, Debug)]
#[command(
    name = "sluice",
    version,
    about = "Run tenant data transforms as sandboxed WebAssembly components, one scoped AgentWrit agent per tenant",
    after_help = "Exit codes: 0 success; 1 a transform or tenant failed; 2 usage or configuration error; 3 isolation violated."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the nightly pipeline: one agent per tenant, each tenant's plugin sandboxed, then the
    /// isolation proof.
    Run(RunArgs),
    /// Run only the isolation proof of a pipeline configuration.
    VerifyIsolation(VerifyIsolationArgs),
    /// The verdict on a sharded night: every shard's summary and audit chain.
    Status(StatusArgs),
    /// Print Kubernetes manifests for a sharded night: a ConfigMap and a CronJob (or Job) of an
    /// Indexed Job.
    K8s(K8sArgs),
    /// Print the SHA-256 of plugin files, as the configuration pins them.
    Digest(DigestArgs),
    /// Resolve every oci:// plugin and candidate of a configuration to a digest, verify its
    /// signature, vet it, and pin it in CONFIG.lock.
    Lock(LockArgs),
    /// Check a plugin (a file or an oci:// reference) before a night: component, language,
    /// imports against the tenant's linker, size, compile time and cache entry.
    Vet(VetArgs),
    /// Make a tenant's locked candidate its plugin, in the configuration and the lock.
    Promote(PromoteArgs),
    /// Run one transform under scopes given on the command line, with no broker.
    Try(TryArgs),
    /// Start a transform project in Rust, Python or JavaScript that builds with one command.
    New(NewArgs),
    /// Manage tenant data.
    #[command(subcommand)]
    Data(DataCommand),
    /// Run an AgentWrit-compatible broker for development.
    #[command(subcommand)]
    Broker(BrokerCommand),
    /// Inspect an audit trail.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Inspect or empty the compiled-plugin cache.
    #[command(subcommand)]
    Cache(CacheCommand),
}

/// Where compiled plugins are kept between runs.
#[derive(Args, Debug, Clone)]
pub struct CacheArgs {
    /// Compiled-plugin cache directory [default: $SLUICE_CACHE_DIR, else
    /// $XDG_CACHE_HOME/sluice/plugins, else ~/.cache/sluice/plugins].
    #[arg(long, value_name = "DIR")]
    pub cache_dir: Option<PathBuf>,
    /// Compile every plugin, neither reading nor writing the cache.
    #[arg(long, conflicts_with = "cache_dir")]
    pub no_cache: bool,
}

impl CacheArgs {
    /// The directory to use, if any.
    pub fn dir(&self) -> Option<PathBuf> {
        if self.no_cache {
            return None;
        }
        self.cache_dir
            .clone()
            .or_else(sluice_sandbox::CompiledCache::default_dir)
    }
}

#[derive(Subcommand, Debug)]
pub enum CacheCommand {
    /// List compiled plugins: plugin SHA-256, engine, size, age.
    Ls(CacheDirArgs),
    /// Remove every compiled plugin.
    Clear(CacheDirArgs),
}

#[derive(Args, Debug)]
pub struct CacheDirArgs {
    /// The cache directory [default: as `sluice run` uses].
    #[arg(long, value_name = "DIR")]
    pub cache_dir: Option<PathBuf>,
}

#[derive(Args, Debug)]
pub struct TryArgs {
    /// The transform component, e.g. target/guests/hospital.wasm.
    pub component: PathBuf,
    /// The tenant the run is for.
    #[arg(long)]
    pub tenant: String,
    /// A scope the run holds, e.g. read:analytics:hospital (repeat for more).
    #[arg(long = "scope", value_name = "SCOPE")]
    pub scopes: Vec<String>,
    /// Directory of tenant databases (<DIR>/<tenant>/<resource>.db).
    #[arg(long)]
    pub data: PathBuf,
    /// Directory reports are written to (<DIR>/<tenant>/latest.json).
    #[arg(long)]
    pub reports: PathBuf,
    /// Append every gate decision to this hash-chained JSONL audit file.
    #[arg(long)]
    pub audit: Option<PathBuf>,
    /// A parameter passed to the transform, NAME=VALUE (repeat for more).
    #[arg(long = "param", value_name = "NAME=VALUE", value_parser = parse_param)]
    pub params: Vec<(String, String)>,
    /// What the transform is written in: rust, python or js (decides the WASI it may import).
    #[arg(long = "lang", value_enum, default_value_t = Lang::Rust)]
    pub lang: Lang,
    #[command(flatten)]
    pub limits: LimitArgs,
    #[command(flatten)]
    pub cache: CacheArgs,
}

#[derive(Args, Debug)]
pub struct NewArgs {
    /// The project's name: its directory, package and `<NAME>.wasm` (a-z 0-9 _ -).
    pub name: String,
    /// The language to write it in.
    #[arg(long = "lang", value_enum)]
    pub lang: Lang,
    /// Where to create the project directory.
    #[arg(long, default_value = ".")]
    pub dir: PathBuf,
}

/// A transform's language, as `--lang` takes it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Lang {
    Rust,
    Python,
    Js,
}

impl From<Lang> for sluice_pipeline::config::Language {
    fn from(lang: Lang) -> Self {
        match lang {
            Lang::Rust => sluice_pipeline::config::Language::Rust,
            Lang::Python => sluice_pipeline::config::Language::Python,
            Lang::Js => sluice_pipeline::config::Language::JavaScript,
        }
    }
}

/// Per-run limits, one flag per row of [`LIMITS`], named as in the configuration and in errors;
/// the defaults are Sluice's.
#[derive(Debug, Clone, Default)]
pub struct LimitArgs {
    budget: Budget,
}

impl LimitArgs {
    pub fn budget(&self) -> Budget {
        self.budget.clone()
    }
}

impl clap::FromArgMatches for LimitArgs {
    fn from_arg_matches(matches: &clap::ArgMatches) -> Result<Self, clap::Error> {
        let mut budget = Budget::default();
        for spec in LIMITS {
            if let Some(value) = matches.get_one::<u64>(spec.name) {
                spec.set(&mut budget, *value);
            }
        }
        Ok(LimitArgs { budget })
    }

    fn update_from_arg_matches(&mut self, matches: &clap::ArgMatches) -> Result<(), clap::Error> {
        for spec in LIMITS {
            if let Some(value) = matches.get_one::<u64>(spec.name) {
                spec.set(&mut self.budget, *value);
            }
        }
        Ok(())
    }
}

impl clap::Args for LimitArgs {
    fn augment_args(cmd: clap::Command) -> clap::Command {
        LIMITS.iter().fold(cmd, |cmd, spec| {
            let least = u64::from(spec.at_least_one);
            cmd.arg(
                clap::Arg::new(spec.name)
                    .long(spec.name)
                    .value_name("N")
                    .value_parser(clap::value_parser!(u64).range(least..))
                    .help(format!("{} [default: {}]", spec.help, spec.shown_default())),
            )
        })
    }

    fn augment_args_for_update(cmd: clap::Command) -> clap::Command {
        Self::augment_args(cmd)
    }
}

fn parse_param(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((name, value)) if !name.is_empty() => Ok((name.to_string(), value.to_string())),
        _ => Err(format!("expected NAME=VALUE, got '{text}'")),
    }
}

#[derive(Subcommand, Debug)]
pub enum DataCommand {
    /// Generate the demo tenants' databases (hospital, bank, retail) at the seed's scale.
    Seed(SeedArgs),
}

#[derive(Args, Debug)]
pub struct SeedArgs {
    /// Where to write: <DIR>/<tenant>/analytics.db (sqlite) or
    /// <DIR>/<tenant>/analytics/<dataset>.parquet|.csv (not for postgres).
    #[arg(long, required_unless_present = "url_env")]
    pub dir: Option<PathBuf>,
    /// The store to load the seed data into; every format holds the same rows.
    #[arg(long, value_enum, default_value_t = SeedFormatArg::Sqlite)]
    pub format: SeedFormatArg,
    /// For postgres: the environment variable holding the connection URL of a role that may
    /// create schemas (`postgres://role:password@host:port/database`); never the URL itself.
    #[arg(long)]
    pub url_env: Option<String>,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum SeedFormatArg {
    Sqlite,
    Parquet,
    Csv,
    Postgres,
}

#[derive(Subcommand, Debug)]
pub enum AuditCommand {
    /// Check the hash chain: prints OK or the first broken entry.
    Verify(AuditVerifyArgs),
    /// Print the trail readably.
    Show(AuditShowArgs),
}

#[derive(Args, Debug)]
pub struct AuditVerifyArgs {
    /// The audit file, or an audit chain on object storage (s3://bucket/prefix).
    pub file: String,
    /// The head hash a run printed: also prove no entry was removed from the end.
    #[arg(long)]
    pub head: Option<String>,
}

#[derive(Args, Debug)]
pub struct AuditShowArgs {
    /// The audit file, or an audit chain on object storage (s3://bucket/prefix).
    pub file: String,
    /// Only entries of this tenant.
    #[arg(long)]
    pub tenant: Option<String>,
    /// Only denials (BLOCKED/REVOKED decisions, refused commits).
    #[arg(long)]
    pub denied: bool,
}

#[derive(Subcommand, Debug)]
pub enum BrokerCommand {
    /// Start the embedded dev broker on loopback and print the AGENTWRIT_* variables to use.
    Dev(BrokerDevArgs),
}

#[derive(Args, Debug)]
pub struct BrokerDevArgs {
    /// Loopback address to listen on.
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub addr: String,
    /// Directory for apps, revocations, the audit chain, the signing key and the admin secret.
    #[arg(long, default_value = ".sluice/broker")]
    pub state: PathBuf,
    /// Register (or reuse) an app with this name and print its credentials.
    #[arg(long)]
    pub app: Option<String>,
    /// The app's scope ceiling (repeat); default read:analytics:* write:reports:*.
    #[arg(long = "ceiling", value_name = "SCOPE")]
    pub ceiling: Vec<String>,
}

#[derive(Args, Debug)]
pub struct RunArgs {
    /// The pipeline configuration, e.g. examples/nightly.toml.
    pub config: PathBuf,
    /// Print one JSON summary instead of the report.
    #[arg(long)]
    pub json: bool,
    /// Tenants to run at once (default: the config's `concurrency`, else the number of cores).
    #[arg(long)]
    pub concurrency: Option<usize>,
    #[command(flatten)]
    pub cache: CacheArgs,
    /// Run only this shard's tenants (0-based; with --shards). Without the flags, an Indexed
    /// Job's JOB_COMPLETION_INDEX and SLUICE_SHARDS say it.
    #[arg(long, requires = "shards")]
    pub shard: Option<u32>,
    /// How many shards the night has (with --shard).
    #[arg(long, requires = "shard")]
    pub shards: Option<u32>,
    /// The night's id, shared by its shards (default: SLUICE_RUN_ID): its summaries and audit
    /// chains go to <runs>/<run id>/. An unsharded night with a run id is stored there too, as
    /// shard 0 of 1, so `sluice status` and later nights' pages can read it.
    #[arg(long)]
    pub run_id: Option<String>,
    /// Write the night as one self-contained HTML page to FILE when it ends (also when it is
    /// interrupted).
    #[arg(long, value_name = "FILE")]
    pub html: Option<PathBuf>,
    /// Push this run's metrics to the Prometheus Pushgateway at URL when it ends, grouped by
    /// job (the orch_id) and shard.
    #[arg(long, value_name = "URL")]
    pub pushgateway: Option<String>,
}

#[derive(Args, Debug)]
pub struct K8sArgs {
    /// The pipeline configuration; it goes into the ConfigMap as it is.
    pub config: PathBuf,
    /// Shards (the Indexed Job's completions).
    #[arg(long)]
    pub shards: u32,
    /// Shards running at once.
    #[arg(long)]
    pub parallelism: u32,
    /// The image to run (see the Dockerfile).
    #[arg(long)]
    pub image: String,
    /// A cron schedule, e.g. "0 2 * * *": print a CronJob; without it, a Job.
    #[arg(long)]
    pub schedule: Option<String>,
    /// The objects' name.
    #[arg(long, default_value = "sluice-night")]
    pub name: String,
    /// The Secret holding the app's client secret (key `client-secret`).
    #[arg(long, default_value = "sluice-agentwrit")]
    pub secret: String,
    /// Retries of a failed shard (backoffLimitPerIndex).
    #[arg(long, default_value_t = 2)]
    pub retries_per_shard: u32,
    /// The Secret whose keys become the pods' environment for object storage (AWS_ACCESS_KEY_ID,
    /// AWS_SECRET_ACCESS_KEY, AWS_ENDPOINT, ...); optional, so a pod identity works without it.
    #[arg(long, default_value = "sluice-s3")]
    pub storage_secret: String,
}

#[derive(Args, Debug)]
pub struct StatusArgs {
    /// The pipeline configuration the night ran.
    pub config: PathBuf,
    /// The night's run id.
    pub run_id: String,
    /// The shards the night should have (default: what its summaries say).
    #[arg(long)]
    pub shards: Option<u32>,
    /// Print one JSON document instead.
    #[arg(long)]
    pub json: bool,
    /// Also write the night as one self-contained HTML page to FILE.
    #[arg(long, value_name = "FILE")]
    pub html: Option<PathBuf>,
}

#[derive(Args, Debug)]
pub struct VerifyIsolationArgs {
    pub config: PathBuf,
    #[command(flatten)]
    pub cache: CacheArgs,
}

#[derive(Args, Debug)]
pub struct LockArgs {
    /// The pipeline configuration; its lock is written beside it as CONFIG.lock.
    pub config: PathBuf,
    #[command(flatten)]
    pub cache: CacheArgs,
}

#[derive(Args, Debug)]
pub struct VetArgs {
    /// A component file, or oci://REGISTRY/REPO:TAG (pulled into the plugin store).
    pub plugin: String,
    /// The tenant the plugin is for: its language, signer and limits come from --config.
    #[arg(long)]
    pub tenant: String,
    /// The pipeline configuration naming the tenant.
    #[arg(long, value_name = "CONFIG")]
    pub config: PathBuf,
    #[command(flatten)]
    pub cache: CacheArgs,
}

#[derive(Args, Debug)]
pub struct PromoteArgs {
    pub config: PathBuf,
    pub tenant: String,
}

#[derive(Args, Debug)]
pub struct DigestArgs {
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
}

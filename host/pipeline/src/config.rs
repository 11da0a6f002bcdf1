//! The nightly pipeline's TOML configuration (`examples/nightly.toml` is the documented example).
//!
//! Parsing is strict: unknown keys, wrong types and bad values are errors that name the file, the
//! key and its line. Relative paths are resolved against the config file's directory.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use agentwrit::Scope;
use serde::Deserialize;
use sluice_sandbox::{Budget, LIMITS, LimitSpec, TenantShare, WasiSurface};
use toml::Spanned;

use sluice_sandbox::is_plain_name;

use sluice_storage::Location;

pub use crate::plugin_source::{PluginSource, PluginsConfig, Signer};
pub use sluice_data::outputs::OutputStore;
pub use sluice_data::pg_login::PgLogin;
pub use sluice_data::sources::catalog::DatasetLocation;
pub use sluice_data::sources::postgres::PostgresTable;
pub use sluice_registry::OciRef;
use sluice_registry::SignerKey;

/// A configuration error: the file, the line (0 when it is about the whole file), and what is
/// wrong with which key.
#[derive(Debug, thiserror::Error)]
#[error("{file}{}: {message}", if *line > 0 { format!(":{line}") } else { String::new() })]
pub struct ConfigError {
    pub file: String,
    pub line: usize,
    pub message: String,
}

#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default = "default_orch_id")]
    orch_id: Spanned<String>,
    #[serde(default = "default_ttl")]
    agent_ttl: Spanned<u64>,
    reports: Spanned<String>,
    audit: Spanned<String>,
    /// Where sharded nights leave each shard's summary and audit chain: `<runs>/<run id>/`.
    #[serde(default)]
    runs: Option<Spanned<String>>,
    #[serde(default)]
    data_dir: Option<Spanned<String>>,
    #[serde(default)]
    concurrency: Option<Spanned<usize>>,
    #[serde(default)]
    broker: RawBroker,
    #[serde(default)]
    limits: RawLimits,
    #[serde(default)]
    isolation: Option<RawIsolation>,
    #[serde(default)]
    plugins: RawPlugins,
    tenants: Vec<RawTenant>,
}

/// `[plugins]`: see [`PluginsConfig`].
#[derive(Deserialize, Debug, Default)]
#[serde(deny_unknown_fields)]
struct RawPlugins {
    store: Option<Spanned<String>>,
    #[serde(default)]
    insecure: Vec<Spanned<String>>,
    #[serde(default)]
    require_signer: bool,
    max_bytes: Option<Spanned<u64>>,
}

fn default_orch_id() -> Spanned<String> {
    Spanned::new(0..0, "nightly-pipeline".into())
}

fn default_ttl() -> Spanned<u64> {
    Spanned::new(0..0, 300)
}

#[derive(Deserialize, Debug, Default)]
#[serde(deny_unknown_fields)]
struct RawBroker {
    url: Option<Spanned<String>>,
    client_id: Option<String>,
    /// The name of the environment variable holding the client secret: secrets stay out of files.
    client_secret_env: Option<Spanned<String>>,
    /// The embedded broker's app ceiling.
    ceiling: Option<Spanned<Vec<Spanned<String>>>>,
    /// How long one request to the broker may take.
    timeout_ms: Option<Spanned<u64>>,
}

/// A budget as the configuration writes it: each key is a limit's configuration key from
/// [`LIMITS`] (`rows-read` is `rows_read`), or one of the engine's share per tenant
/// ([`SHARE_KEYS`]); anything else is refused, an old name with its new one.
#[derive(Deserialize, Debug, Default)]
#[serde(transparent)]
struct RawLimits(BTreeMap<String, Spanned<toml::Value>>);

/// The engine's share per tenant: `[limits]` only, the same for every tenant.
const SHARE_KEYS: [&str; 3] = ["core_instances", "memories", "tables"];

/// Names of earlier releases, refused with the new one and why it changed.
const RENAMED: [(&str, &str, &str); 7] = {
    const SAME: &str = "each limit now has one name in configuration, flags and errors";
    [
        (
            "cpu_ms",
            "wall_time_ms",
            "the limit has always been wall-clock time, including time spent waiting in the host",
        ),
        ("max_rows", "rows_read", SAME),
        ("max_bytes_read", "bytes_read", SAME),
        ("max_report_bytes", "report_bytes", SAME),
        ("max_host_calls", "host_calls", SAME),
        ("max_log_bytes", "log_bytes", SAME),
        ("max_open_datasets", "open_datasets", SAME),
    ]
};

impl RawLimits {
    /// Whether `key` is set.
    fn has(&self, key: &str) -> bool {
        self.0.contains_key(key)
    }

    /// The whole number set for `key`, if it is set; `prefix` names the table in errors.
    fn number(
        &self,
        cx: &Ctx<'_>,
        prefix: &str,
        key: &str,
    ) -> Result<Option<Spanned<u64>>, ConfigError> {
        let Some(value) = self.0.get(key) else {
            return Ok(None);
        };
        match value
            .get_ref()
            .as_integer()
            .and_then(|n| u64::try_from(n).ok())
        {
            Some(n) => Ok(Some(Spanned::new(value.span(), n))),
            None => cx.err(
                value.span(),
                format!("{prefix}.{key}: a whole number, 0 or more"),
            ),
        }
    }
}

#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
struct RawIsolation {
    probe: Spanned<String>,
    sha256: Spanned<String>,
    #[serde(default)]
    language: Language,
}

#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
struct RawTenant {
    id: Spanned<String>,
    name: String,
    data_type: String,
    /// A component file, or `oci://REGISTRY/REPO:TAG` / `...@sha256:...`.
    plugin: Spanned<String>,
    /// A file plugin's SHA-256 (an `oci://` plugin is pinned by the lock instead).
    #[serde(default)]
    sha256: Option<Spanned<String>>,
    /// The PEM public key whose cosign signature an `oci://` plugin must carry.
    #[serde(default)]
    signer: Option<Spanned<String>>,
    /// A new version to try in shadow: runs after the current one, read-only, reported apart.
    #[serde(default)]
    candidate: Option<Spanned<String>>,
    #[serde(default)]
    language: Language,
    read_scope: Spanned<String>,
    write_scope: Spanned<String>,
    #[serde(default)]
    datasets: Vec<RawDataset>,
    #[serde(default)]
    params: BTreeMap<String, String>,
    /// This tenant's budget, over the pipeline's `[limits]`.
    #[serde(default)]
    limits: Option<Spanned<RawLimits>>,
    /// Where its output tables go.
    #[serde(default)]
    outputs: Option<Spanned<RawOutputs>>,
}

#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
struct RawDataset {
    name: Spanned<String>,
    resource: Spanned<String>,
    /// The file (SQLite, Parquet, CSV); not for PostgreSQL.
    #[serde(default)]
    path: Option<Spanned<String>>,
    /// `sqlite`, `parquet`, `csv` or `postgres`; by default from the file's extension.
    #[serde(default)]
    kind: Option<Spanned<String>>,
    /// PostgreSQL: the environment variable holding the tenant role's connection URL.
    #[serde(default)]
    url_env: Option<Spanned<String>>,
    /// PostgreSQL: `per-run` for a login minted for each run instead of `url_env`'s role,
    /// through the provisioner whose URL is in `provisioner_env`, as a member of group role
    /// `role` (default: the tenant id).
    #[serde(default)]
    credentials: Option<Spanned<String>>,
    #[serde(default)]
    provisioner_env: Option<Spanned<String>>,
    #[serde(default)]
    role: Option<Spanned<String>>,
    /// PostgreSQL: the schema (default: the tenant id) and table (default: the dataset name).
    #[serde(default)]
    schema: Option<Spanned<String>>,
    #[serde(default)]
    table: Option<Spanned<String>>,
}

/// Where a tenant's output tables go: `{ kind = "parquet" }` (the default) or
/// `{ kind = "postgres", url_env = "...", schema = "..." }`.
#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
struct RawOutputs {
    kind: Spanned<String>,
    #[serde(default)]
    url_env: Option<Spanned<String>>,
    /// PostgreSQL: as a dataset's keys (repeated rather than `#[serde(flatten)]`ed, which
    /// would silently turn off `deny_unknown_fields`).
    #[serde(default)]
    credentials: Option<Spanned<String>>,
    #[serde(default)]
    provisioner_env: Option<Spanned<String>>,
    #[serde(default)]
    role: Option<Spanned<String>>,
    #[serde(default)]
    schema: Option<Spanned<String>>,
}

/// Where agents come from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BrokerSetting {
    /// Start the embedded dev broker with an app of this ceiling.
    Embedded { ceiling: Vec<Scope> },
    /// A real broker; the secret is read from `client_secret_env` (or AGENTWRIT_CLIENT_SECRET).
    External {
        url: String,
        client_id: Option<String>,
        client_secret_env: Option<String>,
    },
}

#[derive(Clone, Debug)]
pub struct DatasetConfig {
    pub name: String,
    pub resource: String,
    pub location: DatasetLocation,
}

/// What kind of store a dataset is in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DatasetKind {
    /// A table (named as the dataset) of a SQLite database.
    Sqlite,
    /// A Parquet file.
    Parquet,
    /// A CSV file with a header row (types in `<file>.types`).
    Csv,
    /// A table in a PostgreSQL schema.
    Postgres,
}

impl DatasetKind {
    fn parse(text: &str) -> Option<DatasetKind> {
        Some(match text {
            "sqlite" => DatasetKind::Sqlite,
            "parquet" => DatasetKind::Parquet,
            "csv" => DatasetKind::Csv,
            "postgres" => DatasetKind::Postgres,
            _ => return None,
        })
    }

    /// The kind a file's extension says, if it says one.
    fn of_path(path: &str) -> Option<DatasetKind> {
        match Path::new(path).extension()?.to_str()? {
            "db" | "sqlite" | "sqlite3" => Some(DatasetKind::Sqlite),
            "parquet" => Some(DatasetKind::Parquet),
            "csv" => Some(DatasetKind::Csv),
            _ => None,
        }
    }
}

#[derive(Clone, Debug)]
pub struct TenantConfig {
    pub id: String,
    pub name: String,
    pub data_type: String,
    pub plugin: PluginSource,
    /// Whose signature the plugin (and the candidate) must carry.
    pub signer: Option<Signer>,
    /// A new version tried in shadow.
    pub candidate: Option<OciRef>,
    pub language: Language,
    pub read_scope: Scope,
    pub write_scope: Scope,
    pub datasets: Vec<DatasetConfig>,
    /// Where its output tables go.
    pub outputs: OutputStore,
    pub params: Vec<(String, String)>,
    /// This tenant's budget: the pipeline's `[limits]`, with its own `limits` over them.
    pub budget: Budget,
}

impl TenantConfig {
    /// How this tenant logs in to PostgreSQL: the login its PostgreSQL datasets and outputs
    /// share, if it has any.
    pub fn postgres_role(&self) -> Option<PgLogin> {
        self.datasets
            .iter()
            .find_map(|d| match &d.location {
                DatasetLocation::Postgres(table) => Some(table.login.clone()),
                _ => None,
            })
            .or_else(|| match &self.outputs {
                OutputStore::Postgres { login, .. } => Some(login.clone()),
                OutputStore::Parquet => None,
            })
    }
}

#[derive(Clone, Debug)]
pub struct IsolationConfig {
    pub probe: PathBuf,
    pub sha256: String,
    pub language: Language,
}

/// What a plugin was written in, which decides the WASI surface it may import: Rust and
/// JavaScript (ComponentizeJS with its WASI features off) get the basics; Python (componentize-py
/// links CPython, which imports a filesystem and sockets) gets the interpreter surface, which
/// grants neither a file nor a socket.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Language {
    #[default]
    Rust,
    Python,
    #[serde(rename = "js")]
    JavaScript,
}

impl Language {
    pub fn surface(self) -> WasiSurface {
        match self {
            Language::Python => WasiSurface::Interpreter,
            Language::Rust | Language::JavaScript => WasiSurface::Basic,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Language::Rust => "rust",
            Language::Python => "python",
            Language::JavaScript => "js",
        }
    }
}

#[derive(Clone, Debug)]
pub struct PipelineConfig {
    pub path: PathBuf,
    pub orch_id: String,
    pub agent_ttl: Duration,
    /// Where reports and output files go: a directory or `s3://bucket/prefix`.
    pub reports: Location,
    /// The audit chain: a file, or on object storage a folder of chain segments.
    pub audit: Location,
    /// Where sharded nights leave their shards' summaries and audit chains (default: `runs`
    /// beside the audit trail).
    pub runs: Location,
    /// The shard this process runs, if the night is sharded (set by the caller, not the file).
    pub shard: Option<crate::shards::Shard>,
    /// The conventional layout `<data_dir>/<tenant>/<resource>.db`, for tenants listing no datasets.
    pub data_dir: Option<PathBuf>,
    pub concurrency: Option<usize>,
    pub broker: BrokerSetting,
    /// How long one request to the broker may take before the tenant waiting on it fails.
    pub broker_timeout: Duration,
    /// The `[limits]` every tenant starts from (and the isolation probe runs under).
    pub budget: Budget,
    /// What one tenant may take of the shared engine.
    pub share: TenantShare,
    pub isolation: Option<IsolationConfig>,
    /// `[plugins]`: the store, registries, signatures.
    pub plugins: PluginsConfig,
    pub tenants: Vec<TenantConfig>,
    /// Where compiled plugins are kept between runs (not read from the file: the CLI's
    /// `--cache-dir`, `SLUICE_CACHE_DIR` or the user's cache directory); `None` compiles every
    /// plugin on every run.
    pub cache_dir: Option<PathBuf>,
}

struct Ctx<'a> {
    file: &'a str,
    text: &'a str,
    dir: &'a Path,
}

impl Ctx<'_> {
    fn line(&self, offset: usize) -> usize {
        self.text[..offset.min(self.text.len())]
            .bytes()
            .filter(|&b| b == b'\n')
            .count()
            + 1
    }

    fn err<T>(
        &self,
        span: std::ops::Range<usize>,
        message: impl Into<String>,
    ) -> Result<T, ConfigError> {
        Err(ConfigError {
            file: self.file.to_string(),
            line: self.line(span.start),
            message: message.into(),
        })
    }

    /// `key`'s value as a place to keep files: a path (cleaned as [`path`](Self::path) does) or
    /// an `s3://` URL.
    fn location(&self, key: &str, value: &Spanned<String>) -> Result<Location, ConfigError> {
        if value.get_ref().contains("://") {
            Location::parse(value.get_ref(), self.dir)
                .or_else(|e| self.err(value.span(), format!("{key}: {e:#}")))
        } else {
            Ok(Location::Local(self.path(value.get_ref())))
        }
    }

    fn path(&self, value: &str) -> PathBuf {
        let p = Path::new(value);
        let joined = if p.is_absolute() {
            p.to_path_buf()
        } else {
            self.dir.join(p)
        };
        // `examples/../data` reads better as `data`; purely lexical, nothing is resolved on disk.
        let mut clean = PathBuf::new();
        for part in joined.components() {
            match part {
                std::path::Component::CurDir => {}
                std::path::Component::ParentDir
                    if matches!(
                        clean.components().next_back(),
                        Some(std::path::Component::Normal(_))
                    ) =>
                {
                    clean.pop();
                }
                other => clean.push(other),
            }
        }
        clean
    }

    fn scope(&self, key: &str, value: &Spanned<String>) -> Result<Scope, ConfigError> {
        match Scope::parse(value.get_ref()) {
            Ok(scope) => Ok(scope),
            Err(e) => self.err(value.span(), format!("{key}: {e}")),
        }
    }
}

/// The embedded broker's ceiling when the configuration names none: every tenant's analytics and
/// reports, as the seed's universal sample app.
pub fn default_ceiling() -> Vec<Scope> {
    ["read:analytics:*", "write:reports:*"]
        .iter()
        .filter_map(|s| Scope::parse(s).ok())
        .collect()
}

/// `base` with the limits `l` sets, each checked; `prefix` names the table in errors.
fn budget(cx: &Ctx<'_>, l: &RawLimits, base: Budget, prefix: &str) -> Result<Budget, ConfigError> {
    for (key, value) in &l.0 {
        if let Some((old, new, why)) = RENAMED.iter().find(|(old, ..)| old == key) {
            return cx.err(
                value.span(),
                format!("{prefix}.{old} was renamed {prefix}.{new}: {why}"),
            );
        }
        if !SHARE_KEYS.contains(&key.as_str()) && !LIMITS.iter().any(|spec| spec.key() == *key) {
            let known: Vec<String> = LIMITS.iter().map(LimitSpec::key).collect();
            return cx.err(
                value.span(),
                format!(
                    "{prefix}.{key}: no such limit; the limits are {}, and in [limits] {}",
                    known.join(", "),
                    SHARE_KEYS.join(", ")
                ),
            );
        }
    }
    let mut budget = base;
    for spec in LIMITS {
        let key = spec.key();
        match l.number(cx, prefix, &key)? {
            Some(v) if spec.at_least_one && *v.get_ref() == 0 => {
                return cx.err(v.span(), format!("{prefix}.{key}: at least 1"));
            }
            Some(v) => spec.set(&mut budget, *v.get_ref()),
            None => {}
        }
    }
    Ok(budget)
}

/// Reads and checks the configuration at `path`.
pub fn load(path: &Path) -> Result<PipelineConfig, ConfigError> {
    let file = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
        file: file.clone(),
        line: 0,
        message: format!("cannot read the pipeline configuration ({e}); see examples/nightly.toml"),
    })?;
    parse(&text, path)
}

/// Parses configuration `text` as if read from `path`.
pub fn parse(text: &str, path: &Path) -> Result<PipelineConfig, ConfigError> {
    let file = path.display().to_string();
    let dir = path.parent().unwrap_or(Path::new("."));
    let cx = Ctx {
        file: &file,
        text,
        dir,
    };
    let raw: RawConfig = toml::from_str(text).map_err(|e| {
        let line = e.span().map_or(0, |s| cx.line(s.start));
        ConfigError {
            file: file.clone(),
            line,
            message: e.message().trim().to_string(),
        }
    })?;

    if !is_plain_name(raw.orch_id.get_ref()) {
        return cx.err(
            raw.orch_id.span(),
            "orch_id: use letters, digits, '-' or '_' (it becomes part of each agent's SPIFFE ID)",
        );
    }
    if *raw.agent_ttl.get_ref() < 10 {
        return cx.err(raw.agent_ttl.span(), "agent_ttl: at least 10 seconds");
    }
    if let Some(c) = &raw.concurrency
        && *c.get_ref() == 0
    {
        return cx.err(c.span(), "concurrency: at least 1");
    }
    if raw.tenants.is_empty() {
        return cx.err(0..0, "no [[tenants]]: the pipeline needs at least one");
    }

    let broker = match (&raw.broker.url, &raw.broker.ceiling) {
        (Some(_), Some(ceiling)) => {
            return cx.err(
                ceiling.span(),
                "broker.ceiling applies only to the embedded dev broker; with broker.url the app's \
                 ceiling is set at that broker when the app is registered: remove one of them",
            );
        }
        (Some(url), None) => {
            if !url.get_ref().starts_with("http://") && !url.get_ref().starts_with("https://") {
                return cx.err(
                    url.span(),
                    "broker.url: expected http://HOST:PORT or https://...",
                );
            }
            BrokerSetting::External {
                url: url.get_ref().trim_end_matches('/').to_string(),
                client_id: raw.broker.client_id.clone(),
                client_secret_env: raw
                    .broker
                    .client_secret_env
                    .as_ref()
                    .map(|s| s.get_ref().clone()),
            }
        }
        (None, ceiling) => {
            let ceiling = match ceiling {
                Some(c) => c
                    .get_ref()
                    .iter()
                    .map(|s| cx.scope("broker.ceiling", s))
                    .collect::<Result<Vec<_>, _>>()?,
                None => default_ceiling(),
            };
            BrokerSetting::Embedded { ceiling }
        }
    };

    let broker_timeout = match &raw.broker.timeout_ms {
        Some(t) if *t.get_ref() == 0 => return cx.err(t.span(), "broker.timeout_ms: at least 1"),
        Some(t) => Duration::from_millis(*t.get_ref()),
        None => agentwrit::DEFAULT_TIMEOUT,
    };

    let l = &raw.limits;
    let budget = budget(&cx, l, Budget::default(), "limits")?;
    let ds = TenantShare::default();
    let share_key = |key: &str, default: u32| match l.number(&cx, "limits", key)? {
        Some(v) if *v.get_ref() == 0 => cx.err(v.span(), format!("limits.{key}: at least 1")),
        Some(v) => u32::try_from(*v.get_ref())
            .or_else(|_| cx.err(v.span(), format!("limits.{key}: at most {}", u32::MAX))),
        None => Ok(default),
    };
    let share = TenantShare {
        core_instances: share_key("core_instances", ds.core_instances)?,
        memories: share_key("memories", ds.memories)?,
        tables: share_key("tables", ds.tables)?,
    };

    let mut tenants: Vec<TenantConfig> = Vec::new();
    for t in &raw.tenants {
        let id = t.id.get_ref();
        if !is_plain_name(id) {
            return cx.err(
                t.id.span(),
                format!("tenants.id '{id}': use 1-64 letters, digits, '-' or '_'"),
            );
        }
        if tenants.iter().any(|o| &o.id == id) {
            return cx.err(t.id.span(), format!("tenants.id '{id}' appears twice"));
        }
        let (plugin, signer, candidate) = plugin_of(&cx, t, id, raw.plugins.require_signer)?;
        let mut datasets = Vec::new();
        for ds in &t.datasets {
            for (key, v) in [("name", &ds.name), ("resource", &ds.resource)] {
                if !is_plain_name(v.get_ref()) {
                    return cx.err(
                        v.span(),
                        format!(
                            "tenants.datasets.{key} '{}': use letters, digits, '-' or '_'",
                            v.get_ref()
                        ),
                    );
                }
            }
            let kind = match (&ds.kind, &ds.path) {
                (Some(kind), _) => DatasetKind::parse(kind.get_ref()).map_or_else(
                    || {
                        cx.err(
                            kind.span(),
                            format!(
                                "tenants.datasets.kind '{}': expected sqlite, parquet, csv or \
                                 postgres",
                                kind.get_ref()
                            ),
                        )
                    },
                    Ok,
                )?,
                (None, Some(path)) => DatasetKind::of_path(path.get_ref()).map_or_else(
                    || {
                        cx.err(
                            path.span(),
                            format!(
                                "tenants.datasets.path '{}': say its kind (kind = \"sqlite\", \
                                 \"parquet\" or \"csv\"), or name it .db, .parquet or .csv",
                                path.get_ref()
                            ),
                        )
                    },
                    Ok,
                )?,
                (None, None) => {
                    return cx.err(
                        ds.name.span(),
                        format!(
                            "tenants.datasets '{}' of '{id}': give its `path`, or \
                             kind = \"postgres\" and `url_env`",
                            ds.name.get_ref()
                        ),
                    );
                }
            };
            let location = if kind == DatasetKind::Postgres {
                if let Some(path) = &ds.path {
                    return cx.err(
                        path.span(),
                        "tenants.datasets.path: a postgres dataset has no path; it is \
                         `schema`.`table` through the role in `url_env`"
                            .to_string(),
                    );
                }
                let login = pg_login(
                    &cx,
                    ds.name.span(),
                    PgKeys {
                        url_env: &ds.url_env,
                        credentials: &ds.credentials,
                        provisioner_env: &ds.provisioner_env,
                        role: &ds.role,
                    },
                    id,
                    &format!(
                        "tenants.datasets '{}' of '{id}': a postgres dataset needs `url_env`, \
                         the environment variable holding its role's connection URL (or \
                         credentials = \"per-run\" and `provisioner_env`)",
                        ds.name.get_ref()
                    ),
                )?;
                let schema = plain_or_default(&cx, "schema", &ds.schema, id)?;
                let table = plain_or_default(&cx, "table", &ds.table, ds.name.get_ref())?;
                DatasetLocation::Postgres(PostgresTable {
                    login,
                    schema,
                    table,
                })
            } else {
                for (key, set) in [
                    ("url_env", ds.url_env.as_ref().map(Spanned::span)),
                    ("credentials", ds.credentials.as_ref().map(Spanned::span)),
                    (
                        "provisioner_env",
                        ds.provisioner_env.as_ref().map(Spanned::span),
                    ),
                    ("role", ds.role.as_ref().map(Spanned::span)),
                    ("schema", ds.schema.as_ref().map(Spanned::span)),
                    ("table", ds.table.as_ref().map(Spanned::span)),
                ] {
                    if let Some(span) = set {
                        return cx.err(
                            span,
                            format!("tenants.datasets.{key}: only a postgres dataset has one"),
                        );
                    }
                }
                let path = cx.path(ds.path.as_ref().map(|p| p.get_ref().as_str()).unwrap_or(""));
                match kind {
                    DatasetKind::Sqlite => DatasetLocation::Sqlite(path),
                    DatasetKind::Parquet => DatasetLocation::Parquet(path),
                    DatasetKind::Csv => DatasetLocation::Csv(path),
                    DatasetKind::Postgres => unreachable!("handled above"),
                }
            };
            datasets.push(DatasetConfig {
                name: ds.name.get_ref().clone(),
                resource: ds.resource.get_ref().clone(),
                location,
            });
        }
        let outputs = match &t.outputs {
            None => OutputStore::Parquet,
            Some(o) => {
                let raw_out = o.get_ref();
                match raw_out.kind.get_ref().as_str() {
                    "parquet"
                        if raw_out.url_env.is_none()
                            && raw_out.schema.is_none()
                            && raw_out.credentials.is_none()
                            && raw_out.provisioner_env.is_none()
                            && raw_out.role.is_none() =>
                    {
                        OutputStore::Parquet
                    }
                    "postgres" => {
                        let login = pg_login(
                            &cx,
                            o.span(),
                            PgKeys {
                                url_env: &raw_out.url_env,
                                credentials: &raw_out.credentials,
                                provisioner_env: &raw_out.provisioner_env,
                                role: &raw_out.role,
                            },
                            id,
                            &format!(
                                "tenants.outputs of '{id}': postgres outputs need `url_env`, the \
                                 environment variable holding the role's connection URL (or \
                                 credentials = \"per-run\" and `provisioner_env`)"
                            ),
                        )?;
                        OutputStore::Postgres {
                            login,
                            schema: plain_or_default(&cx, "schema", &raw_out.schema, id)?,
                        }
                    }
                    other => {
                        return cx.err(
                            o.span(),
                            format!(
                                "tenants.outputs of '{id}': kind '{other}' with these keys is not \
                                 an output store; use {{ kind = \"parquet\" }} or {{ kind = \
                                 \"postgres\", url_env = \"VAR\" }}"
                            ),
                        );
                    }
                }
            }
        };
        if datasets.is_empty() && raw.data_dir.is_none() {
            return cx.err(
                t.id.span(),
                format!("tenant '{id}' lists no [[tenants.datasets]] and there is no data_dir"),
            );
        }
        // One database role per tenant: the role is what keeps a host bug from crossing tenants.
        let mut roles: Vec<String> = datasets
            .iter()
            .filter_map(|d| match &d.location {
                DatasetLocation::Postgres(table) => Some(table.login.to_string()),
                _ => None,
            })
            .chain(match &outputs {
                OutputStore::Postgres { login, .. } => Some(login.to_string()),
                OutputStore::Parquet => None,
            })
            .collect();
        roles.sort_unstable();
        roles.dedup();
        if roles.len() > 1 {
            return cx.err(
                t.id.span(),
                format!(
                    "tenant '{id}' reaches PostgreSQL through {}: a tenant reads and writes \
                     through one role, so give its datasets and outputs the same url_env (or \
                     the same per-run provisioner_env and role)",
                    roles.join(" and ")
                ),
            );
        }
        let tenant_budget = match &t.limits {
            None => budget.clone(),
            Some(limits) => {
                let l = limits.get_ref();
                if let Some(key) = SHARE_KEYS.iter().find(|key| l.has(key)) {
                    return cx.err(
                        limits.span(),
                        format!(
                            "tenants.limits.{key} of '{id}': the engine's share per tenant is the \
                             same for every tenant; set it in [limits]"
                        ),
                    );
                }
                self::budget(&cx, l, budget.clone(), "tenants.limits")?
            }
        };
        tenants.push(TenantConfig {
            id: id.clone(),
            name: t.name.clone(),
            data_type: t.data_type.clone(),
            plugin,
            signer,
            candidate,
            language: t.language,
            read_scope: cx.scope("tenants.read_scope", &t.read_scope)?,
            write_scope: cx.scope("tenants.write_scope", &t.write_scope)?,
            datasets,
            outputs,
            params: t
                .params
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            budget: tenant_budget,
        });
    }

    let isolation = match &raw.isolation {
        Some(i) => {
            let sha = i.sha256.get_ref().to_ascii_lowercase();
            if sha.len() != 64 || !sha.bytes().all(|b| b.is_ascii_hexdigit()) {
                return cx.err(i.sha256.span(), "isolation.sha256: expected 64 hex digits");
            }
            Some(IsolationConfig {
                probe: cx.path(i.probe.get_ref()),
                sha256: sha,
                language: i.language,
            })
        }
        None => None,
    };

    let audit = cx.location("audit", &raw.audit)?;
    Ok(PipelineConfig {
        path: path.to_path_buf(),
        orch_id: raw.orch_id.into_inner(),
        agent_ttl: Duration::from_secs(raw.agent_ttl.into_inner()),
        reports: cx.location("reports", &raw.reports)?,
        audit: audit.clone(),
        runs: match &raw.runs {
            Some(runs) => cx.location("runs", runs)?,
            None => audit.parent().map_or_else(
                || Location::Local(PathBuf::from("runs")),
                |p| p.child("runs"),
            ),
        },
        data_dir: raw.data_dir.map(|d| cx.path(d.get_ref())),
        shard: None,
        concurrency: raw.concurrency.map(Spanned::into_inner),
        broker,
        broker_timeout,
        budget,
        share,
        isolation,
        plugins: plugins_of(&cx, &raw.plugins)?,
        tenants,
        cache_dir: None,
    })
}

/// `[plugins]`, checked.
fn plugins_of(cx: &Ctx<'_>, raw: &RawPlugins) -> Result<PluginsConfig, ConfigError> {
    let mut insecure = Vec::new();
    for r in &raw.insecure {
        let host = r.get_ref();
        if host.is_empty() || host.contains('/') || host.contains("://") {
            return cx.err(
                r.span(),
                format!("plugins.insecure '{host}': a registry as HOST or HOST:PORT"),
            );
        }
        insecure.push(host.clone());
    }
    let max_bytes = match &raw.max_bytes {
        Some(m) if *m.get_ref() == 0 => return cx.err(m.span(), "plugins.max_bytes: at least 1"),
        Some(m) => *m.get_ref(),
        None => sluice_registry::DEFAULT_MAX_PLUGIN_BYTES,
    };
    Ok(PluginsConfig {
        store: raw.store.as_ref().map(|s| cx.path(s.get_ref())),
        insecure,
        require_signer: raw.require_signer,
        max_bytes,
    })
}

/// A tenant's plugin, signer and candidate, checked.
fn plugin_of(
    cx: &Ctx<'_>,
    t: &RawTenant,
    id: &str,
    require_signer: bool,
) -> Result<(PluginSource, Option<Signer>, Option<OciRef>), ConfigError> {
    let text = t.plugin.get_ref();
    let plugin = if OciRef::is_oci(text) {
        let reference = OciRef::parse(text)
            .or_else(|e| cx.err(t.plugin.span(), format!("tenants.plugin of '{id}': {e}")))?;
        if let Some(sha) = &t.sha256 {
            return cx.err(
                sha.span(),
                format!(
                    "tenants.sha256 of '{id}': an oci:// plugin is pinned by the lock file                      (`sluice lock`) or by @sha256: in its reference; remove this line"
                ),
            );
        }
        PluginSource::Oci(reference)
    } else {
        let Some(sha) = &t.sha256 else {
            return cx.err(
                t.plugin.span(),
                format!(
                    "tenants.sha256 of '{id}': a plugin file needs its SHA-256 (`sluice digest                      FILE` prints it)"
                ),
            );
        };
        let hex = sha.get_ref().to_ascii_lowercase();
        if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return cx.err(
                sha.span(),
                format!("tenants.sha256 of '{id}': expected 64 hex digits (`sluice digest FILE` prints it)"),
            );
        }
        PluginSource::File {
            path: cx.path(text),
            sha256: hex,
        }
    };
    let candidate = match &t.candidate {
        None => None,
        Some(c) => Some(OciRef::parse(c.get_ref()).or_else(|e| {
            cx.err(
                c.span(),
                format!("tenants.candidate of '{id}': a candidate is an oci:// plugin: {e}"),
            )
        })?),
    };
    let signer = match &t.signer {
        None if require_signer => {
            return cx.err(
                t.id.span(),
                format!("tenant '{id}' names no signer, and [plugins] require_signer is set"),
            );
        }
        None => None,
        Some(_) if plugin.oci().is_none() && candidate.is_none() => {
            return cx.err(
                t.signer.as_ref().map_or(0..0, Spanned::span),
                format!(
                    "tenants.signer of '{id}': only an oci:// plugin carries a signature; a file                      is pinned by its sha256"
                ),
            );
        }
        Some(s) => {
            let path = cx.path(s.get_ref());
            let pem = std::fs::read_to_string(&path).or_else(|e| {
                cx.err(
                    s.span(),
                    format!(
                        "tenants.signer of '{id}': cannot read {} ({e})",
                        path.display()
                    ),
                )
            })?;
            let key = SignerKey::from_pem(&pem).or_else(|e| {
                cx.err(
                    s.span(),
                    format!("tenants.signer of '{id}' ({}): {e}", path.display()),
                )
            })?;
            Some(Signer { path, key })
        }
    };
    if require_signer && matches!(plugin, PluginSource::File { .. }) {
        return cx.err(
            t.plugin.span(),
            format!(
                "tenants.plugin of '{id}': [plugins] require_signer is set, and a plugin file                  carries no signature; publish it to a registry, signed"
            ),
        );
    }
    Ok((plugin, signer, candidate))
}

/// A plain name given at `key`, or `default` when absent.
/// The PostgreSQL keys of a dataset or of outputs.
struct PgKeys<'a> {
    url_env: &'a Option<Spanned<String>>,
    credentials: &'a Option<Spanned<String>>,
    provisioner_env: &'a Option<Spanned<String>>,
    role: &'a Option<Spanned<String>>,
}

/// How a PostgreSQL dataset or outputs log in: `url_env`'s standing role, or a login minted
/// for each run (`credentials = "per-run"`, `provisioner_env`, `role`); `missing` is the error
/// when neither is given.
fn pg_login(
    cx: &Ctx<'_>,
    at: std::ops::Range<usize>,
    keys: PgKeys<'_>,
    tenant: &str,
    missing: &str,
) -> Result<PgLogin, ConfigError> {
    match keys.credentials.as_ref().map(|c| (c, c.get_ref().as_str())) {
        Some((c, "per-run")) => {
            if let Some(url_env) = keys.url_env {
                return cx.err(
                    url_env.span(),
                    "url_env: a per-run login is minted by the provisioner; give either \
                     url_env or credentials = \"per-run\", not both"
                        .to_string(),
                );
            }
            let Some(provisioner_env) = keys.provisioner_env else {
                return cx.err(
                    c.span(),
                    "credentials = \"per-run\" needs `provisioner_env`, the environment variable \
                     holding the provisioner role's connection URL"
                        .to_string(),
                );
            };
            Ok(PgLogin::PerRun {
                provisioner_env: provisioner_env.get_ref().clone(),
                role: plain_or_default(cx, "role", keys.role, tenant)?,
            })
        }
        Some((c, other)) => cx.err(
            c.span(),
            format!(
                "credentials '{other}': expected \"per-run\" (or leave it out and give url_env)"
            ),
        ),
        None => {
            for (key, set) in [
                ("provisioner_env", keys.provisioner_env),
                ("role", keys.role),
            ] {
                if let Some(v) = set {
                    return cx.err(
                        v.span(),
                        format!("{key}: only with credentials = \"per-run\""),
                    );
                }
            }
            match keys.url_env {
                Some(url_env) => Ok(PgLogin::Env(url_env.get_ref().clone())),
                None => cx.err(at, missing.to_string()),
            }
        }
    }
}

fn plain_or_default(
    cx: &Ctx<'_>,
    key: &str,
    value: &Option<Spanned<String>>,
    default: &str,
) -> Result<String, ConfigError> {
    match value {
        None => Ok(default.to_string()),
        Some(v) if is_plain_name(v.get_ref()) => Ok(v.get_ref().clone()),
        Some(v) => cx.err(
            v.span(),
            format!(
                "{key} '{}': use 1-64 letters, digits, '-' or '_'",
                v.get_ref()
            ),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHA: &str = "0000000000000000000000000000000000000000000000000000000000000000";

    fn config(tenant_extra: &str) -> String {
        format!(
            r#"reports = "reports"
audit = "audit.jsonl"

[[tenants]]
id = "bank"
name = "First National Bank"
data_type = "financial analytics"
plugin = "bank.wasm"
sha256 = "{SHA}"
read_scope = "read:analytics:bank"
write_scope = "write:reports:bank"
{tenant_extra}
[[tenants.datasets]]
name = "transactions"
path = "data/bank/analytics.db"
resource = "analytics"
"#
        )
    }

    fn err(text: &str) -> String {
        parse(text, Path::new("/etc/sluice/nightly.toml"))
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn a_registry_plugin_is_pinned_by_the_lock_and_a_signer_can_be_required() {
        let oci = |extra: &str| {
            config(extra).replace(
                &format!("plugin = \"bank.wasm\"\nsha256 = \"{SHA}\""),
                "plugin = \"oci://127.0.0.1:5000/tenants/bank:v1\"",
            )
        };
        let c = parse(&oci(""), Path::new("/etc/sluice/nightly.toml")).unwrap();
        assert_eq!(
            c.tenants[0].plugin.reference(),
            "oci://127.0.0.1:5000/tenants/bank:v1"
        );
        assert!(
            err(&oci(&format!("sha256 = \"{SHA}\"")))
                .contains("tenants.sha256 of 'bank': an oci:// plugin is pinned by the lock file")
        );
        assert!(err(&oci("").replace(":v1\"", "\"")).contains(
            "tenants.plugin of 'bank': 'oci://127.0.0.1:5000/tenants/bank' is not an OCI \
                 reference: it has neither a tag nor a digest"
        ));
        let required = format!("{}\n[plugins]\nrequire_signer = true\n", oci(""));
        assert_eq!(
            err(&required),
            "/etc/sluice/nightly.toml:5: tenant 'bank' names no signer, and [plugins] \
             require_signer is set"
        );
        assert!(
            err(&oci("signer = \"/nonexistent/bank.pub\""))
                .contains("tenants.signer of 'bank': cannot read /nonexistent/bank.pub")
        );
        assert!(
            err(&config("signer = \"keys/bank.pub\""))
                .contains("tenants.signer of 'bank': only an oci:// plugin carries a signature")
        );
        assert!(
            err(&config("candidate = \"retail.wasm\""))
                .contains("tenants.candidate of 'bank': a candidate is an oci:// plugin")
        );
    }

    #[test]
    fn a_per_run_login_is_minted_by_a_provisioner_into_a_group_role() {
        let text = config(
            "outputs = { kind = \"postgres\", credentials = \"per-run\", \
             provisioner_env = \"PG_PROVISIONER\" }",
        ) + r#"
[[tenants.datasets]]
name = "ledger"
kind = "postgres"
credentials = "per-run"
provisioner_env = "PG_PROVISIONER"
resource = "analytics"
"#;
        let c = parse(&text, Path::new("/etc/sluice/nightly.toml")).unwrap();
        let per_run = PgLogin::PerRun {
            provisioner_env: "PG_PROVISIONER".into(),
            role: "bank".into(),
        };
        assert_eq!(c.tenants[0].postgres_role(), Some(per_run.clone()));
        assert_eq!(
            c.tenants[0].outputs,
            OutputStore::Postgres {
                login: per_run,
                schema: "bank".into()
            }
        );
        // Its own group role; either url_env or per-run; per-run needs its provisioner; the
        // per-run keys only with per-run.
        let cases = [
            (
                "provisioner_env = \"PG_PROVISIONER\"\n",
                "provisioner_env = \"PG_PROVISIONER\"\nrole = \"bank_ro\"\n",
                "reaches PostgreSQL through a per-run login of group role bank and a per-run \
                 login of group role bank_ro",
            ),
            (
                "credentials = \"per-run\"\n",
                "credentials = \"per-run\"\nurl_env = \"BANK_PG\"\n",
                "give either url_env or credentials = \"per-run\", not both",
            ),
            (
                "provisioner_env = \"PG_PROVISIONER\"\n",
                "",
                "credentials = \"per-run\" needs `provisioner_env`",
            ),
            (
                "credentials = \"per-run\"\nprovisioner_env = \"PG_PROVISIONER\"\n",
                "url_env = \"BANK_PG\"\nrole = \"bank\"\n",
                "role: only with credentials = \"per-run\"",
            ),
            (
                "\"per-run\"\nprovisioner",
                "\"per_run\"\nprovisioner",
                "credentials 'per_run': expected \"per-run\"",
            ),
        ];
        for (from, to, expected) in cases {
            let error = err(&text.replacen(from, to, 1));
            assert!(error.contains(expected), "{to:?}: {error}");
        }
    }

    #[test]
    fn postgres_datasets_and_outputs_go_through_one_role_named_by_its_variable() {
        let text = config("outputs = { kind = \"postgres\", url_env = \"BANK_PG\" }")
            + r#"
[[tenants.datasets]]
name = "ledger"
kind = "postgres"
url_env = "BANK_PG"
resource = "analytics"
table = "ledger_2026"
"#;
        let c = parse(&text, Path::new("/etc/sluice/nightly.toml")).unwrap();
        let bank = &c.tenants[0];
        assert_eq!(
            bank.datasets[1].location,
            DatasetLocation::Postgres(PostgresTable {
                login: PgLogin::Env("BANK_PG".into()),
                schema: "bank".into(),
                table: "ledger_2026".into(),
            })
        );
        assert_eq!(
            bank.outputs,
            OutputStore::Postgres {
                login: PgLogin::Env("BANK_PG".into()),
                schema: "bank".into()
            }
        );
        assert_eq!(bank.postgres_role(), Some(PgLogin::Env("BANK_PG".into())));

        // A second role for the same tenant, a postgres dataset with a path or without its
        // variable, a file dataset with PostgreSQL keys: each an error naming the fix.
        let two_roles = text.replace(
            "outputs = { kind = \"postgres\", url_env = \"BANK_PG\" }",
            "outputs = { kind = \"postgres\", url_env = \"OTHER_PG\" }",
        );
        assert_eq!(
            err(&two_roles),
            "/etc/sluice/nightly.toml:5: tenant 'bank' reaches PostgreSQL through BANK_PG and \
             OTHER_PG: a tenant reads and writes through one role, so give its datasets and \
             outputs the same url_env (or the same per-run provisioner_env and role)"
        );
        let with_path = text.replace("table = \"ledger_2026\"", "path = \"x.db\"");
        assert!(
            err(&with_path).ends_with(
                "tenants.datasets.path: a postgres dataset has no path; it is `schema`.`table` \
                 through the role in `url_env`"
            ),
            "{}",
            err(&with_path)
        );
        let no_env = text.replace("url_env = \"BANK_PG\"\nresource", "resource");
        assert!(
            err(&no_env).contains("a postgres dataset needs `url_env`"),
            "{}",
            err(&no_env)
        );
        let file_with_schema = config("").replace(
            "path = \"data/bank/analytics.db\"",
            "path = \"data/bank/analytics.db\"\nschema = \"bank\"",
        );
        assert!(
            err(&file_with_schema)
                .ends_with("tenants.datasets.schema: only a postgres dataset has one"),
            "{}",
            err(&file_with_schema)
        );
    }

    #[test]
    fn parses_defaults_and_resolves_paths_against_the_file() {
        let c = parse(&config(""), Path::new("/etc/sluice/nightly.toml")).unwrap();
        assert_eq!(c.orch_id, "nightly-pipeline");
        assert_eq!(c.agent_ttl, Duration::from_secs(300));
        assert_eq!(c.reports, Location::Local("/etc/sluice/reports".into()));
        assert_eq!(c.runs, Location::Local("/etc/sluice/runs".into()));
        assert_eq!(
            c.tenants[0].plugin,
            PluginSource::File {
                path: PathBuf::from("/etc/sluice/bank.wasm"),
                sha256: SHA.into()
            }
        );
        assert_eq!(
            c.tenants[0].datasets[0].location,
            DatasetLocation::Sqlite("/etc/sluice/data/bank/analytics.db".into())
        );
        assert_eq!(
            c.broker,
            BrokerSetting::Embedded {
                ceiling: default_ceiling()
            }
        );
    }

    #[test]
    fn unknown_key_names_the_key_and_line() {
        let e = err(&config("colour = \"blue\""));
        assert!(
            e.starts_with("/etc/sluice/nightly.toml:12: unknown field `colour`"),
            "{e}"
        );
    }

    #[test]
    fn bad_scope_names_the_key_value_and_line() {
        let e = err(&config("").replace("read:analytics:bank", "read:analytics"));
        assert_eq!(
            e,
            "/etc/sluice/nightly.toml:10: tenants.read_scope: invalid scope 'read:analytics': expected action:resource:identifier with three non-empty parts"
        );
    }

    #[test]
    fn wrong_type_and_bad_digest_are_errors_with_lines() {
        let e = err(&config("").replace("audit = \"audit.jsonl\"", "audit = 7"));
        assert!(
            e.starts_with("/etc/sluice/nightly.toml:2: invalid type: integer `7`"),
            "{e}"
        );
        let e = err(&config("").replace(SHA, "abc"));
        assert!(
            e.starts_with(
                "/etc/sluice/nightly.toml:9: tenants.sha256 of 'bank': expected 64 hex digits"
            ),
            "{e}"
        );
    }

    #[test]
    fn a_ceiling_next_to_a_broker_url_is_rejected_not_ignored() {
        let text = config("").replace(
            "audit = \"audit.jsonl\"",
            "audit = \"audit.jsonl\"\n[broker]\nurl = \"http://127.0.0.1:8080\"\nceiling = [\"read:analytics:*\"]",
        );
        let e = err(&text);
        assert!(
            e.starts_with(
                "/etc/sluice/nightly.toml:5: broker.ceiling applies only to the embedded dev broker"
            ),
            "{e}"
        );
    }

    #[test]
    fn the_old_cpu_limit_name_is_refused_with_the_new_one() {
        let text = config("").replace(
            "audit = \"audit.jsonl\"",
            "audit = \"audit.jsonl\"\n[limits]\ncpu_ms = 1000",
        );
        let e = err(&text);
        assert!(
            e.starts_with(
                "/etc/sluice/nightly.toml:4: limits.cpu_ms was renamed limits.wall_time_ms"
            ),
            "{e}"
        );
        let text = config("").replace(
            "audit = \"audit.jsonl\"",
            "audit = \"audit.jsonl\"\n[limits]\nwall_time_ms = 1500\ncore_instances = 4",
        );
        let c = parse(&text, Path::new("/etc/sluice/nightly.toml")).unwrap();
        assert_eq!(c.budget.wall_time, Duration::from_millis(1500));
        assert_eq!(c.share.core_instances, 4);
    }

    #[test]
    fn old_limit_names_are_refused_with_their_one_name() {
        let text = config("").replace(
            "audit = \"audit.jsonl\"",
            "audit = \"audit.jsonl\"\n[limits]\nmax_rows = 10",
        );
        assert_eq!(
            err(&text),
            "/etc/sluice/nightly.toml:4: limits.max_rows was renamed limits.rows_read: each limit \
             now has one name in configuration, flags and errors"
        );
        let text = config("limits = { max_host_calls = 5 }");
        assert!(
            err(&text)
                .contains("tenants.limits.max_host_calls was renamed tenants.limits.host_calls"),
            "{}",
            err(&text)
        );
        let text = config("limits = { rows_read = 5, wall_time_ms = 900 }");
        let c = parse(&text, Path::new("/etc/sluice/nightly.toml")).unwrap();
        assert_eq!(c.tenants[0].budget.rows_read, 5);
        assert_eq!(c.tenants[0].budget.wall_time, Duration::from_millis(900));
        assert_eq!(c.budget.rows_read, Budget::default().rows_read);
    }

    #[test]
    fn duplicate_tenant_is_an_error() {
        let text = config("")
            + &config("")
                .split("[[tenants]]")
                .nth(1)
                .map(|t| format!("[[tenants]]{t}"))
                .unwrap();
        let e = err(&text);
        assert!(e.contains("tenants.id 'bank' appears twice"), "{e}");
    }
}

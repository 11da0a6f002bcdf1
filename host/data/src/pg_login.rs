//! How Sluice logs in to a tenant's PostgreSQL: a long-lived role whose URL is in an environment
//! variable, or a login minted for one run (see [`crate::logins`]). Either way the secret never
//! leaves this type: `Debug` and every error name the variable or the login, never a URL or a
//! password.

use std::sync::Arc;

/// A login to a tenant's PostgreSQL.
#[derive(Clone, PartialEq, Eq)]
pub enum PgLogin {
    /// A long-lived role whose connection URL is in this environment variable.
    Env(String),
    /// A login minted for one run, alive until the run's agent is released.
    Minted(RunLogin),
    /// Minted for each run by the night, through the provisioner whose URL is in
    /// `provisioner_env`, as a member of group role `role`: configured, but nothing to connect
    /// with outside a run.
    PerRun {
        provisioner_env: String,
        role: String,
    },
}

/// A login minted for one run: its role name and how to connect as it.
#[derive(Clone)]
pub struct RunLogin {
    name: Arc<str>,
    config: Arc<tokio_postgres::Config>,
}

impl RunLogin {
    pub(crate) fn new(name: &str, config: tokio_postgres::Config) -> RunLogin {
        RunLogin {
            name: name.into(),
            config: Arc::new(config),
        }
    }

    /// The login role's name (not a secret: the audit records it).
    pub fn name(&self) -> &str {
        &self.name
    }
}

impl PartialEq for RunLogin {
    fn eq(&self, other: &RunLogin) -> bool {
        self.name == other.name
    }
}

impl Eq for RunLogin {}

impl std::fmt::Debug for RunLogin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunLogin")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for PgLogin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PgLogin::Env(var) => f.debug_tuple("Env").field(var).finish(),
            PgLogin::Minted(login) => f.debug_tuple("Minted").field(login).finish(),
            PgLogin::PerRun {
                provisioner_env,
                role,
            } => f
                .debug_struct("PerRun")
                .field("provisioner_env", provisioner_env)
                .field("role", role)
                .finish(),
        }
    }
}

impl std::fmt::Display for PgLogin {
    /// What errors call it: the variable, or the login's name.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PgLogin::Env(var) => f.write_str(var),
            PgLogin::Minted(login) => write!(f, "login {}", login.name),
            PgLogin::PerRun { role, .. } => write!(f, "a per-run login of group role {role}"),
        }
    }
}

impl PgLogin {
    /// How to connect: parsed from the variable, or the minted login's. Errors name the
    /// variable, never its value (it holds a password).
    pub fn config(&self) -> Result<tokio_postgres::Config, String> {
        match self {
            PgLogin::Env(var) => {
                let url = std::env::var(var).map_err(|_| {
                    format!(
                        "environment variable {var} is not set; it must hold the PostgreSQL \
                         connection URL (postgres://role:password@host:port/database)"
                    )
                })?;
                url.parse().map_err(|_| {
                    format!(
                        "environment variable {var} is not a PostgreSQL connection URL \
                         (postgres://role:password@host:port/database)"
                    )
                })
            }
            PgLogin::Minted(login) => Ok((*login.config).clone()),
            PgLogin::PerRun { .. } => Err(
                "its login is minted for each run of a night (credentials = \"per-run\"); \
                 run it with `sluice run`"
                    .into(),
            ),
        }
    }

    /// Why connecting failed, naming this login, never its secret.
    pub fn connect_error(&self, e: &tokio_postgres::Error) -> String {
        let why = std::error::Error::source(e).map_or(e.to_string(), |s| s.to_string());
        format!("connecting to PostgreSQL with {self}: {why}")
    }

    /// A blocking client (for the output tables' transaction).
    pub fn connect(&self) -> anyhow::Result<postgres::Client> {
        let config = postgres::Config::from(self.config().map_err(anyhow::Error::msg)?);
        config
            .connect(postgres::NoTls)
            .map_err(|e| anyhow::Error::msg(self.connect_error(&e)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_minted_login_never_prints_its_password() {
        let config: tokio_postgres::Config = "postgres://sluice_run_x:sluicepw_secret@127.0.0.1/db"
            .parse()
            .unwrap();
        let login = PgLogin::Minted(RunLogin::new("sluice_run_x", config));
        for shown in [format!("{login:?}"), login.to_string()] {
            assert!(shown.contains("sluice_run_x"), "{shown}");
            assert!(!shown.contains("sluicepw_"), "{shown}");
        }
        let err = PgLogin::Env("SLUICE_TEST_UNSET_VARIABLE".into())
            .config()
            .unwrap_err();
        assert!(err.starts_with("environment variable SLUICE_TEST_UNSET_VARIABLE is not set"));
    }
}

//! PostgreSQL logins minted per tenant run, as Vault's database secrets engine mints them per
//! lease: a login role with a random password, `VALID UNTIL` the run's agent expires, member
//! only of the tenant's group role (which holds the grants and cannot log in itself), a bounded
//! connection limit; renewed with the agent, cut (sessions terminated) when the agent is
//! revoked, and dropped when it is released.
//!
//! The provisioner is the only standing credential: it needs `LOGIN CREATEROLE` and nothing
//! else. It becomes a member of each login it mints (the login's sessions are then its to
//! terminate, without `pg_signal_backend`, which could terminate anyone's), and the membership
//! goes with the login.
//!
//! A login's name says who minted it: `sluice_run_<host>_<boot>_<pid>_<start>_<random>`. A
//! process killed before it dropped its logins leaves them behind; the next start on the same
//! host finds those whose process is gone (or is another process now) and drops them, and any
//! start drops every expired one. A live night's logins, on this host or another, are never
//! touched.
//!
//! The password is sent as a SCRAM-SHA-256 verifier (what psql's `\password` does), so it is
//! not in the server's statement log either; it starts with [`PASSWORD_PREFIX`] so that a leak
//! is findable, as GitHub's token prefixes are.

use std::time::SystemTime;

use rand::RngCore as _;
use sha2::{Digest as _, Sha256};
use tokio_postgres::{Client, NoTls};

use crate::pg_login::{PgLogin, RunLogin};

/// Every minted login's name starts with this.
pub const LOGIN_PREFIX: &str = "sluice_run_";
/// Every minted password starts with this.
pub const PASSWORD_PREFIX: &str = "sluicepw_";
/// The most connections a run's login may hold at once, whatever its budget says.
pub const MAX_CONNECTIONS: u32 = 64;
/// How long terminating a login's session may wait for the backend to exit.
const TERMINATE_WAIT_MS: i64 = 2_000;
/// How long one statement of the provisioner's may take: a provisioner that stops answering
/// fails the run's login (and so the run) instead of holding the night.
const STATEMENT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(15);

/// A connection with the right to mint, renew, cut and drop logins.
pub struct Provisioner {
    client: Client,
    /// The provisioner's own connection settings: a login connects to the same server.
    server: tokio_postgres::Config,
    /// The variable its URL came from, for errors.
    env: String,
    /// The provisioner role's name (a member of every login it mints).
    role: String,
    me: Instance,
}

impl std::fmt::Debug for Provisioner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Provisioner")
            .field("env", &self.env)
            .field("role", &self.role)
            .finish_non_exhaustive()
    }
}

impl Provisioner {
    /// Connects with the URL in environment variable `env` (on the current Tokio runtime).
    pub async fn connect(env: &str) -> Result<Provisioner, String> {
        let login = PgLogin::Env(env.to_string());
        let mut server = login.config()?;
        if server.get_connect_timeout().is_none() {
            server.connect_timeout(STATEMENT_TIMEOUT);
        }
        let (client, connection) = server
            .connect(NoTls)
            .await
            .map_err(|e| format!("the provisioner: {}", login.connect_error(&e)))?;
        tokio::spawn(connection);
        let role: String = bounded(client.query_one("SELECT current_user::text", &[]))
            .await
            .map_err(|e| format!("the provisioner ({env}): {e}"))?
            .get(0);
        Ok(Provisioner {
            client,
            server,
            env: env.to_string(),
            role,
            me: Instance::current(),
        })
    }

    /// Mints a login for one run of a tenant whose grants are held by `group`: valid until
    /// `valid_until`, at most `connections` sessions at once. Its sessions act as `group`
    /// (`SET ROLE` at connection), so what they create is the group's, not the login's.
    pub async fn mint(
        &self,
        group: &str,
        valid_until: SystemTime,
        connections: u32,
    ) -> Result<RunLogin, String> {
        self.check_group(group).await?;
        let name = self.me.login_name();
        let mut secret = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut secret);
        let password = format!("{PASSWORD_PREFIX}{}", hex::encode(secret));
        let verifier = postgres_protocol::password::scram_sha_256(password.as_bytes());
        let sql = format!(
            "CREATE ROLE {} LOGIN INHERIT NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION \
             NOBYPASSRLS CONNECTION LIMIT {} VALID UNTIL {} PASSWORD {} IN ROLE {} ROLE {}",
            ident(&name),
            connections.clamp(1, MAX_CONNECTIONS),
            literal(&timestamp(valid_until)),
            literal(&verifier),
            ident(group),
            ident(&self.role),
        );
        bounded(self.client.batch_execute(&sql))
            .await
            .map_err(|e| format!("minting a login in group role '{group}': {e}"))?;
        let mut config = self.server.clone();
        config
            .user(&name)
            .password(password)
            .options(format!("-c role={}", group))
            .application_name("sluice run");
        Ok(RunLogin::new(&name, config))
    }

    /// The group role must exist, hold grants only: a group that can log in, or holds a
    /// power of its own, would hand a run's login more than its tenant's data.
    async fn check_group(&self, group: &str) -> Result<(), String> {
        let row = bounded(self.client.query_opt(
            "SELECT rolcanlogin, rolsuper OR rolcreaterole OR rolcreatedb OR rolreplication \
             OR rolbypassrls FROM pg_roles WHERE rolname = $1",
            &[&group],
        ))
        .await
        .map_err(|e| format!("looking up group role '{group}': {e}"))?;
        match row.map(|r| (r.get::<_, bool>(0), r.get::<_, bool>(1))) {
            None => Err(format!(
                "group role '{group}' does not exist: create it NOLOGIN and grant it the \
                 tenant's schema (see the README's trust model)"
            )),
            Some((true, _)) => Err(format!(
                "group role '{group}' can log in: a run's login joins a NOLOGIN role that only \
                 holds the tenant's grants (ALTER ROLE {group} NOLOGIN)"
            )),
            Some((_, true)) => Err(format!(
                "group role '{group}' has a role attribute (superuser, createrole, createdb, \
                 replication or bypassrls): a run's login may hold the tenant's grants only"
            )),
            Some((false, false)) => Ok(()),
        }
    }

    /// Moves `login`'s expiry to `valid_until` (its agent was renewed).
    pub async fn renew(&self, login: &RunLogin, valid_until: SystemTime) -> Result<(), String> {
        let sql = format!(
            "ALTER ROLE {} VALID UNTIL {}",
            ident(login.name()),
            literal(&timestamp(valid_until))
        );
        bounded(self.client.batch_execute(&sql))
            .await
            .map_err(|e| format!("renewing {}: {e}", login.name()))
    }

    /// Stops `login` at once: no new session may start, and every session it has is
    /// terminated (waited for). Returns how many were.
    pub async fn cut(&self, login: &RunLogin) -> Result<u64, String> {
        self.cut_named(login.name()).await
    }

    async fn cut_named(&self, name: &str) -> Result<u64, String> {
        // A login already gone (dropped by another night's sweep once expired) has nothing
        // left to cut.
        let nologin = format!(
            "DO $sluice$ BEGIN ALTER ROLE {} NOLOGIN; \
             EXCEPTION WHEN undefined_object THEN NULL; END $sluice$",
            ident(name)
        );
        bounded(self.client.batch_execute(&nologin))
            .await
            .map_err(|e| format!("cutting {name}: {e}"))?;
        let terminated: i64 = bounded(self.client.query_one(
            "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid, $2)) \
             FROM pg_stat_activity WHERE usename = $1",
            &[&name, &TERMINATE_WAIT_MS],
        ))
        .await
        .map_err(|e| format!("terminating {name}'s sessions: {e}"))?
        .get(0);
        Ok(terminated as u64)
    }

    /// Cuts `login` and drops it. Returns how many sessions were terminated.
    pub async fn drop_login(&self, login: &RunLogin) -> Result<u64, String> {
        self.drop_named(login.name()).await
    }

    async fn drop_named(&self, name: &str) -> Result<u64, String> {
        let terminated = self.cut_named(name).await?;
        bounded(
            self.client
                .batch_execute(&format!("DROP ROLE IF EXISTS {}", ident(name))),
        )
        .await
        .map_err(|e| format!("dropping {name}: {e}"))?;
        Ok(terminated)
    }

    /// Drops the logins earlier processes left behind (see the module documentation), and
    /// returns their names.
    pub async fn sweep(&self) -> Result<Vec<String>, String> {
        let rows = bounded(self.client.query(
            "SELECT rolname::text, coalesce(rolvaliduntil < now(), false) FROM pg_roles \
             WHERE starts_with(rolname, $1)",
            &[&LOGIN_PREFIX],
        ))
        .await
        .map_err(|e| format!("listing leftover logins: {e}"))?;
        let mut dropped = Vec::new();
        for row in rows {
            let (name, expired): (String, bool) = (row.get(0), row.get(1));
            if expired || self.me.left_behind(&name) {
                self.drop_named(&name).await?;
                dropped.push(name);
            }
        }
        Ok(dropped)
    }
}

/// This process, as the logins it mints name it.
#[derive(Clone, Debug)]
struct Instance {
    host: String,
    boot: String,
    pid: u32,
    start: u64,
}

impl Instance {
    fn current() -> Instance {
        let pid = std::process::id();
        let read = |path: &str| std::fs::read_to_string(path).unwrap_or_default();
        let short =
            |text: &str, n: usize| hex::encode(Sha256::digest(text.trim()))[..n].to_string();
        Instance {
            host: short(&read("/proc/sys/kernel/hostname"), 8),
            boot: short(&read("/proc/sys/kernel/random/boot_id"), 4),
            pid,
            start: start_time(pid).unwrap_or(0),
        }
    }

    fn login_name(&self) -> String {
        let mut random = [0u8; 3];
        rand::rngs::OsRng.fill_bytes(&mut random);
        format!(
            "{LOGIN_PREFIX}{}_{}_{}_{}_{}",
            self.host,
            self.boot,
            self.pid,
            self.start,
            hex::encode(random)
        )
    }

    /// Whether login `name` was minted on this host by a process that is gone: one from
    /// before the last boot, or whose pid is free or another process's now.
    fn left_behind(&self, name: &str) -> bool {
        let Some(rest) = name.strip_prefix(LOGIN_PREFIX) else {
            return false;
        };
        let parts: Vec<&str> = rest.split('_').collect();
        let [host, boot, pid, start, _] = parts[..] else {
            return false;
        };
        if host != self.host {
            return false;
        }
        if boot != self.boot {
            return true;
        }
        let (Ok(pid), Ok(start)) = (pid.parse::<u32>(), start.parse::<u64>()) else {
            return false;
        };
        match start_time(pid) {
            None => true,
            Some(now) => now != start,
        }
    }
}

/// When process `pid` started, in clock ticks since boot (field 22 of `/proc/<pid>/stat`);
/// `None` if there is no such process.
fn start_time(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) is in parentheses and may hold spaces: count after it.
    let after = &stat[stat.rfind(')')? + 2..];
    after.split(' ').nth(19)?.parse().ok()
}

/// `t` as a timestamp PostgreSQL reads, in UTC.
fn timestamp(t: SystemTime) -> String {
    let secs = t
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let dt = time::OffsetDateTime::from_unix_timestamp(secs as i64)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02}+00",
        dt.year(),
        dt.month() as u8,
        dt.day(),
        dt.hour(),
        dt.minute(),
        dt.second()
    )
}

/// `name` quoted as an SQL identifier.
fn ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// `text` quoted as an SQL string literal.
fn literal(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

/// `statement`'s result, or its error's text; a statement that takes longer than
/// [`STATEMENT_TIMEOUT`] is an error too.
async fn bounded<T>(
    statement: impl std::future::Future<Output = Result<T, tokio_postgres::Error>>,
) -> Result<T, String> {
    match tokio::time::timeout(STATEMENT_TIMEOUT, statement).await {
        Ok(result) => result.map_err(|e| db_message(&e)),
        Err(_) => Err(format!(
            "the provisioner did not answer within {} s",
            STATEMENT_TIMEOUT.as_secs()
        )),
    }
}

/// A database error's own message (the server's words), or the client's.
fn db_message(e: &tokio_postgres::Error) -> String {
    e.as_db_error()
        .map_or_else(|| e.to_string(), |db| db.message().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_login_is_left_behind_only_by_a_process_that_is_gone() {
        let me = Instance::current();
        assert!(me.start > 0, "this process's start time");
        let mine = me.login_name();
        assert!(mine.len() <= 63, "{mine} is longer than a role name may be");
        assert!(!me.left_behind(&mine), "a live process's login");
        let dead = format!(
            "{LOGIN_PREFIX}{}_{}_{}_{}_abcdef",
            me.host,
            me.boot,
            me.pid,
            me.start + 1
        );
        assert!(me.left_behind(&dead), "the same pid, another process");
        let before_boot = format!(
            "{LOGIN_PREFIX}{}_ffff_{}_{}_abcdef",
            me.host, me.pid, me.start
        );
        assert_eq!(me.left_behind(&before_boot), me.boot != "ffff");
        let elsewhere = format!("{LOGIN_PREFIX}00000000_{}_1_1_abcdef", me.boot);
        assert_eq!(me.left_behind(&elsewhere), me.host == "00000000");
        assert!(!me.left_behind("sluice_run_not_one_of_ours"));
    }

    #[test]
    fn timestamps_and_quoting() {
        let t = SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_796_356_708);
        assert_eq!(timestamp(t), "2026-12-04 03:58:28+00");
        assert_eq!(ident("a\"b"), "\"a\"\"b\"");
        assert_eq!(literal("it's"), "'it''s'");
    }
}

//! What survives a restart, in SQLite as the real broker keeps it: apps, revocations and the
//! audit chain. `:memory:` for tests, `<state>/broker.db` otherwise.

use std::io::Write as _;
use std::path::Path;

use rusqlite::{Connection, OptionalExtension as _, params};

use crate::audit::AuditEvent;

/// An app as stored: the ceiling and the bcrypt hash of its secret, never the secret.
#[derive(Clone, Debug)]
pub struct AppRow {
    pub app_id: String,
    pub name: String,
    pub client_id: String,
    pub secret_hash: String,
    pub scopes: Vec<String>,
    pub token_ttl: i64,
    pub status: String,
    pub created_at: String,
    pub updated_at: String,
}

pub struct Store {
    conn: Connection,
}

/// Writes `bytes` to `path` readable by the owner only.
pub fn write_private_file(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    use std::os::unix::fs::OpenOptionsExt as _;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| anyhow::anyhow!("creating {}: {e}", path.display()))?;
    file.write_all(bytes)
        .and_then(|()| file.sync_all())
        .map_err(|e| anyhow::anyhow!("writing {}: {e}", path.display()))
}

impl Store {
    pub fn open(path: Option<&Path>) -> anyhow::Result<Store> {
        let conn = match path {
            Some(p) => Connection::open(p)
                .map_err(|e| anyhow::anyhow!("opening broker state {}: {e}", p.display()))?,
            None => Connection::open_in_memory()?,
        };
        conn.execute_batch(
            "PRAGMA journal_mode = WAL;
             PRAGMA synchronous = NORMAL;
             CREATE TABLE IF NOT EXISTS apps (
                app_id TEXT PRIMARY KEY,
                name TEXT NOT NULL UNIQUE,
                client_id TEXT NOT NULL UNIQUE,
                secret_hash TEXT NOT NULL,
                scopes TEXT NOT NULL,
                token_ttl INTEGER NOT NULL,
                status TEXT NOT NULL,
                created_at TEXT NOT NULL,
                updated_at TEXT NOT NULL
             );
             CREATE TABLE IF NOT EXISTS revocations (
                level TEXT NOT NULL,
                target TEXT NOT NULL,
                UNIQUE (level, target)
             );
             CREATE TABLE IF NOT EXISTS audit_events (
                seq INTEGER PRIMARY KEY,
                event TEXT NOT NULL
             );",
        )?;
        Ok(Store { conn })
    }

    pub fn insert_app(&self, app: &AppRow) -> rusqlite::Result<()> {
        self.conn.execute(
            "INSERT INTO apps VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            params![
                app.app_id,
                app.name,
                app.client_id,
                app.secret_hash,
                serde_json::to_string(&app.scopes).unwrap_or_default(),
                app.token_ttl,
                app.status,
                app.created_at,
                app.updated_at
            ],
        )?;
        Ok(())
    }

    fn row(row: &rusqlite::Row<'_>) -> rusqlite::Result<AppRow> {
        let scopes: String = row.get(4)?;
        Ok(AppRow {
            app_id: row.get(0)?,
            name: row.get(1)?,
            client_id: row.get(2)?,
            secret_hash: row.get(3)?,
            scopes: serde_json::from_str(&scopes).unwrap_or_default(),
            token_ttl: row.get(5)?,
            status: row.get(6)?,
            created_at: row.get(7)?,
            updated_at: row.get(8)?,
        })
    }

    pub fn app_by(&self, column: AppKey, value: &str) -> rusqlite::Result<Option<AppRow>> {
        let sql = match column {
            AppKey::AppId => "SELECT * FROM apps WHERE app_id = ?1",
            AppKey::ClientId => "SELECT * FROM apps WHERE client_id = ?1",
        };
        self.conn.query_row(sql, [value], Store::row).optional()
    }

    /// Every app, newest first.
    pub fn apps(&self) -> rusqlite::Result<Vec<AppRow>> {
        let mut stmt = self
            .conn
            .prepare("SELECT * FROM apps ORDER BY created_at DESC, rowid DESC")?;
        stmt.query_map([], Store::row)?.collect()
    }

    pub fn update_app(&self, app: &AppRow) -> rusqlite::Result<()> {
        self.conn.execute(
            "UPDATE apps SET scopes = ?2, token_ttl = ?3, status = ?4, updated_at = ?5 WHERE app_id = ?1",
            params![
                app.app_id,
                serde_json::to_string(&app.scopes).unwrap_or_default(),
                app.token_ttl,
                app.status,
                app.updated_at
            ],
        )?;
        Ok(())
    }

    pub fn insert_revocation(&self, level: &str, target: &str) -> rusqlite::Result<()> {
        self.conn.execute(
            "INSERT OR IGNORE INTO revocations (level, target) VALUES (?1, ?2)",
            params![level, target],
        )?;
        Ok(())
    }

    pub fn revocations(&self) -> rusqlite::Result<Vec<(String, String)>> {
        let mut stmt = self.conn.prepare("SELECT level, target FROM revocations")?;
        stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect()
    }

    pub fn insert_audit(&self, seq: u64, event: &AuditEvent) -> rusqlite::Result<()> {
        self.conn.execute(
            "INSERT INTO audit_events (seq, event) VALUES (?1, ?2)",
            params![seq as i64, serde_json::to_string(event).unwrap_or_default()],
        )?;
        Ok(())
    }

    pub fn audit_events(&self) -> rusqlite::Result<Vec<AuditEvent>> {
        let mut stmt = self
            .conn
            .prepare("SELECT event FROM audit_events ORDER BY seq")?;
        let rows: Vec<String> = stmt
            .query_map([], |r| r.get(0))?
            .collect::<Result<_, _>>()?;
        Ok(rows
            .iter()
            .filter_map(|s| serde_json::from_str(s).ok())
            .collect())
    }
}

#[derive(Clone, Copy)]
pub enum AppKey {
    AppId,
    ClientId,
}

//! The lock file beside a configuration (`nightly.toml` → `nightly.toml.lock`): each `oci://`
//! plugin (and candidate) pinned to the manifest digest `sluice lock` resolved and verified,
//! with its signature manifest, signer, size and language. `sluice run` runs only what the lock
//! pins, and refuses a tenant whose configuration no longer matches its line.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sluice_registry::Digest;

use crate::config::{PipelineConfig, TenantConfig};

/// One pinned plugin: one line of the lock.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Locked {
    /// The reference as the configuration wrote it when locked.
    pub reference: String,
    /// The manifest digest it resolved to.
    pub digest: String,
    /// The cosign signature manifest that was verified, if the tenant has a signer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signatures: Option<String>,
    /// The signer key's fingerprint, or "none".
    pub signer: String,
    /// The wasm layer's size in bytes.
    pub size: u64,
    /// What `vet` found it written in.
    pub language: String,
}

impl Locked {
    /// `id = { reference = ..., digest = ..., ... }`: one line, reviewable, in this order.
    fn line(&self, id: &str) -> String {
        let s = |v: &str| toml::Value::String(v.to_string()).to_string();
        let mut line = format!(
            "{id} = {{ reference = {}, digest = {}, signer = {}, size = {}, language = {}",
            s(&self.reference),
            s(&self.digest),
            s(&self.signer),
            self.size,
            s(&self.language)
        );
        if let Some(signatures) = &self.signatures {
            line.push_str(&format!(", signatures = {}", s(signatures)));
        }
        line.push_str(" }\n");
        line
    }

    pub fn digest(&self) -> Result<Digest, String> {
        Digest::parse(&self.digest).map_err(|e| e.to_string())
    }

    pub fn signatures(&self) -> Result<Option<Digest>, String> {
        self.signatures
            .as_deref()
            .map(Digest::parse)
            .transpose()
            .map_err(|e| e.to_string())
    }
}

/// A configuration's lock.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Lock {
    #[serde(default)]
    pub tenants: BTreeMap<String, Locked>,
    #[serde(default)]
    pub candidates: BTreeMap<String, Locked>,
}

/// Which of a tenant's plugins.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Slot {
    Current,
    Candidate,
}

impl Slot {
    pub fn name(self) -> &'static str {
        match self {
            Slot::Current => "plugin",
            Slot::Candidate => "candidate",
        }
    }
}

const HEADER: &str = "# Written by `sluice lock`: the plugin each tenant runs, pinned by manifest digest and\n\
# verified (signature, vet) when it was written. Review changes to it like code; `sluice run`\n\
# runs only what it pins and refuses a tenant whose configuration changed since.\n";

/// Where `config`'s lock is: `<config>.lock`.
pub fn lock_path(config: &Path) -> PathBuf {
    let mut name = config.file_name().unwrap_or_default().to_os_string();
    name.push(".lock");
    config.with_file_name(name)
}

impl Lock {
    /// The lock beside `config`, or an empty one if there is none.
    pub fn read(config: &Path) -> Result<Lock, String> {
        let path = lock_path(config);
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Lock::default()),
            Err(e) => return Err(format!("cannot read {} ({e})", path.display())),
        };
        toml::from_str(&text).map_err(|e| {
            format!(
                "{} is not a lock file ({}); run `sluice lock {}` to write it again",
                path.display(),
                e.message().trim(),
                config.display()
            )
        })
    }

    /// Writes the lock beside `config`, atomically, one line per plugin.
    pub fn write(&self, config: &Path) -> Result<PathBuf, String> {
        let path = lock_path(config);
        let mut text = HEADER.to_string();
        for (table, entries) in [("tenants", &self.tenants), ("candidates", &self.candidates)] {
            if entries.is_empty() {
                continue;
            }
            text.push_str(&format!("\n[{table}]\n"));
            for (id, entry) in entries {
                text.push_str(&entry.line(id));
            }
        }
        replace_file(&path, text.as_bytes())?;
        Ok(path)
    }

    pub fn entries(&self, slot: Slot) -> &BTreeMap<String, Locked> {
        match slot {
            Slot::Current => &self.tenants,
            Slot::Candidate => &self.candidates,
        }
    }

    pub fn entries_mut(&mut self, slot: Slot) -> &mut BTreeMap<String, Locked> {
        match slot {
            Slot::Current => &mut self.tenants,
            Slot::Candidate => &mut self.candidates,
        }
    }

    /// The pinned plugin `tenant` must run in `slot`, if the lock still matches the
    /// configuration; otherwise why not, naming the tenant and what to do.
    pub fn pinned(
        &self,
        config: &PipelineConfig,
        tenant: &TenantConfig,
        slot: Slot,
    ) -> Result<Locked, String> {
        let reference = match slot {
            Slot::Current => tenant.plugin.oci().cloned(),
            Slot::Candidate => tenant.candidate.clone(),
        }
        .ok_or_else(|| format!("tenant '{}' has no oci:// {}", tenant.id, slot.name()))?;
        let relock = format!("run `sluice lock {}`", config.path.display());
        let Some(entry) = self.entries(slot).get(&tenant.id) else {
            return Err(format!(
                "tenant '{}': its {} {reference} is not in {}: {relock}",
                tenant.id,
                slot.name(),
                lock_path(&config.path).display()
            ));
        };
        if entry.reference != reference.to_string() {
            return Err(format!(
                "tenant '{}': its {} changed since the lock was written (the configuration says \
                 {reference}, the lock {}): {relock}",
                tenant.id,
                slot.name(),
                entry.reference
            ));
        }
        let signer = tenant
            .signer
            .as_ref()
            .map_or("none".to_string(), |s| s.key.fingerprint().to_string());
        if entry.signer != signer {
            return Err(format!(
                "tenant '{}': its signer changed since the lock was written (key {signer}, the \
                 lock {}): {relock}",
                tenant.id, entry.signer
            ));
        }
        let digest = entry.digest()?;
        if let Some(pinned) = &reference.digest
            && pinned != &digest
        {
            return Err(format!(
                "tenant '{}': the lock pins {digest} but the reference itself {pinned}: {relock}",
                tenant.id
            ));
        }
        if tenant.signer.is_some() && entry.signatures.is_none() {
            return Err(format!(
                "tenant '{}': the lock records no verified signature: {relock}",
                tenant.id
            ));
        }
        Ok(entry.clone())
    }
}

/// Replaces the file at `path` with `bytes`, atomically (written beside it, synced, renamed).
fn replace_file(path: &Path, bytes: &[u8]) -> Result<(), String> {
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    sluice_jail::Jail::open(dir)
        .map_err(|e| e.to_string())
        .and_then(|jail| jail.replace(&name, bytes, 0o644).map_err(|e| e.to_string()))
        .map_err(|e| format!("cannot write {} ({e})", path.display()))
}

/// `sluice promote CONFIG TENANT`: the tenant's candidate becomes its plugin, in the
/// configuration (comments and layout kept) and in the lock (the candidate's verified digest
/// moves to the tenant's line, so the next night runs exactly what was tried). Returns the new
/// reference and digest.
pub fn promote(config_path: &Path, tenant: &str) -> Result<(String, String), String> {
    let mut lock = Lock::read(config_path)?;
    let Some(mut entry) = lock.candidates.remove(tenant) else {
        return Err(format!(
            "tenant '{tenant}' has no locked candidate in {}: add `candidate = \"oci://...\"` and \
             run `sluice lock {}` first",
            lock_path(config_path).display(),
            config_path.display()
        ));
    };
    let text = std::fs::read_to_string(config_path)
        .map_err(|e| format!("cannot read {} ({e})", config_path.display()))?;
    let mut doc: toml_edit::DocumentMut = text
        .parse()
        .map_err(|e| format!("{}: {e}", config_path.display()))?;
    let tenants = doc
        .get_mut("tenants")
        .and_then(toml_edit::Item::as_array_of_tables_mut)
        .ok_or_else(|| format!("{} has no [[tenants]]", config_path.display()))?;
    let table = tenants
        .iter_mut()
        .find(|t| t.get("id").and_then(toml_edit::Item::as_str) == Some(tenant))
        .ok_or_else(|| format!("{} has no tenant '{tenant}'", config_path.display()))?;
    match table.get("candidate").and_then(toml_edit::Item::as_str) {
        Some(c) if c == entry.reference => {}
        other => {
            return Err(format!(
                "tenant '{tenant}': the configuration's candidate ({}) is not the locked one ({}): \
                 run `sluice lock {}` first",
                other.unwrap_or("none"),
                entry.reference,
                config_path.display()
            ));
        }
    }
    // Keep the plugin line's own decoration (comments after it), change its value.
    let decor = table
        .get("plugin")
        .and_then(|i| i.as_value())
        .map(|v| v.decor().clone());
    let mut value = toml_edit::Value::from(entry.reference.clone());
    if let Some(decor) = decor {
        *value.decor_mut() = decor;
    }
    table.insert("plugin", toml_edit::Item::Value(value));
    table.remove("candidate");
    table.remove("sha256");
    let digest = entry.digest.clone();
    let reference = entry.reference.clone();
    entry.reference = reference.clone();
    lock.tenants.insert(tenant.to_string(), entry);
    // The lock first: a lock ahead of its configuration refuses the tenant with "run sluice
    // lock", never runs the wrong digest.
    lock.write(config_path)?;
    replace_file(config_path, doc.to_string().as_bytes())?;
    Ok((reference, digest))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lock_is_one_line_per_plugin_and_reads_back() {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("nightly.toml");
        let mut lock = Lock::default();
        let entry = Locked {
            reference: "oci://127.0.0.1:5000/bank:v1".into(),
            digest: format!("sha256:{}", "a".repeat(64)),
            signatures: Some(format!("sha256:{}", "b".repeat(64))),
            signer: format!("sha256:{}", "c".repeat(64)),
            size: 98_898,
            language: "rust".into(),
        };
        lock.tenants.insert("bank".into(), entry.clone());
        lock.candidates.insert(
            "bank".into(),
            Locked {
                signatures: None,
                ..entry
            },
        );
        let path = lock.write(&config).unwrap();
        assert_eq!(path, dir.path().join("nightly.toml.lock"));
        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<&str> = text.lines().filter(|l| l.starts_with("bank = ")).collect();
        assert_eq!(lines.len(), 2, "{text}");
        assert!(
            lines[0].contains("reference = \"oci://127.0.0.1:5000/bank:v1\""),
            "{text}"
        );
        assert_eq!(Lock::read(&config).unwrap(), lock);
    }
}

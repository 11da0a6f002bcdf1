//! The audit trail: JSON lines, each carrying the previous line's hash, so an edited, deleted,
//! reordered or cut entry breaks the chain at the first place it was touched.
//!
//! `hash` is the SHA-256 of the entry's canonical JSON (keys sorted, no whitespace) without its
//! `hash` member; `prev` is the previous entry's `hash` (64 zeros for the first); `seq` counts
//! from 1. Appending continues an existing file's chain.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write as _};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::SystemTime;

use anyhow::Context as _;
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};
use sluice_sandbox::{AuditSink, GateEvent, Writ};

pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// An append-only, hash-chained audit file.
pub struct AuditLog {
    path: PathBuf,
    state: Mutex<ChainState>,
}

struct ChainState {
    file: File,
    seq: u64,
    last_hash: String,
}

/// RFC 3339 UTC with nanoseconds, as the broker writes audit times.
pub fn rfc3339(time: SystemTime) -> String {
    time::OffsetDateTime::from(time)
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| "1970-01-01T00:00:00Z".to_string())
}

/// Serializes with object keys sorted at every level, so the hash does not depend on how a
/// reader or writer orders members.
fn canonical(value: &Value) -> String {
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            let members: Vec<String> = keys
                .into_iter()
                .map(|k| format!("{}:{}", Value::String(k.clone()), canonical(&map[k])))
                .collect();
            format!("{{{}}}", members.join(","))
        }
        Value::Array(items) => {
            let items: Vec<String> = items.iter().map(canonical).collect();
            format!("[{}]", items.join(","))
        }
        other => other.to_string(),
    }
}

fn entry_hash(entry: &Map<String, Value>) -> String {
    let mut unhashed = entry.clone();
    unhashed.remove("hash");
    hex::encode(Sha256::digest(
        canonical(&Value::Object(unhashed)).as_bytes(),
    ))
}

impl AuditLog {
    /// Opens `path` for appending, creating it if needed and continuing its chain otherwise.
    pub fn open(path: impl Into<PathBuf>) -> anyhow::Result<AuditLog> {
        let path = path.into();
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("creating {}", parent.display()))?;
        }
        let (seq, last_hash) = match last_entry(&path)? {
            Some(entry) => (
                entry.get("seq").and_then(Value::as_u64).unwrap_or(0),
                entry
                    .get("hash")
                    .and_then(Value::as_str)
                    .unwrap_or(GENESIS_HASH)
                    .to_string(),
            ),
            None => (0, GENESIS_HASH.to_string()),
        };
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .with_context(|| format!("opening audit file {}", path.display()))?;
        Ok(AuditLog {
            path,
            state: Mutex::new(ChainState {
                file,
                seq,
                last_hash,
            }),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The chain's current end: keep it elsewhere (a run summary, a ticket) and `verify_head`
    /// later proves nothing was cut from the end of the file.
    pub fn head(&self) -> AuditHead {
        let state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        AuditHead {
            entries: state.seq,
            hash: state.last_hash.clone(),
        }
    }

    /// Appends entries built from `fields` (each a JSON object), chaining them, in one write.
    pub fn append_all(&self, fields: impl IntoIterator<Item = Value>) -> anyhow::Result<()> {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let mut out = String::new();
        let (mut seq, mut last_hash) = (state.seq, state.last_hash.clone());
        for value in fields {
            let Value::Object(mut entry) = value else {
                anyhow::bail!("audit entries are JSON objects");
            };
            seq += 1;
            entry.insert("seq".into(), json!(seq));
            entry.insert("prev".into(), json!(last_hash));
            let hash = entry_hash(&entry);
            entry.insert("hash".into(), json!(hash));
            out.push_str(&canonical(&Value::Object(entry)));
            out.push('\n');
            last_hash = hash;
        }
        state
            .file
            .write_all(out.as_bytes())
            .and_then(|()| state.file.flush())
            .with_context(|| format!("appending to audit file {}", self.path.display()))?;
        state.seq = seq;
        state.last_hash = last_hash;
        Ok(())
    }

    /// Appends one entry.
    pub fn append(&self, fields: Value) -> anyhow::Result<()> {
        self.append_all([fields])
    }
}

/// One gate event as an audit entry: a decision, or `count` identical consecutive decisions
/// made between `time` and `last_time`.
pub fn gate_entry(writ: &Writ, event: &GateEvent) -> Value {
    let mut entry = json!({
        "time": rfc3339(event.time),
        "event": "gate",
        "tenant": writ.tenant,
        "agent_id": writ.agent_id,
        "task_id": writ.task_id,
        "call": event.call.name(),
        "required": event.required.as_str(),
        "held": writ.held_strings(),
        "decision": event.decision.as_str(),
        "count": event.count,
    });
    if event.count > 1 {
        entry["last_time"] = json!(rfc3339(event.last_time));
    }
    entry
}

impl AuditSink for AuditLog {
    fn record_gate_events(&self, writ: &Writ, events: &[GateEvent]) -> anyhow::Result<()> {
        self.append_all(events.iter().map(|e| gate_entry(writ, e)))
    }
}

fn last_entry(path: &Path) -> anyhow::Result<Option<Map<String, Value>>> {
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    };
    let mut last = None;
    for line in BufReader::new(file).lines() {
        let line = line.with_context(|| format!("reading {}", path.display()))?;
        if !line.trim().is_empty() {
            last = Some(line);
        }
    }
    match last {
        None => Ok(None),
        Some(line) => match serde_json::from_str(&line) {
            Ok(Value::Object(map)) => Ok(Some(map)),
            _ => anyhow::bail!(
                "audit file {} ends in a damaged entry; run `sluice audit verify {}` and move it aside",
                path.display(),
                path.display()
            ),
        },
    }
}

/// Where a chain ends: its entry count and last hash.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct AuditHead {
    pub entries: u64,
    pub hash: String,
}

/// [`verify`], and then that the chain still contains the entry whose hash is `head`, recorded
/// earlier: without it, deleting whole entries from the end of the file goes unnoticed.
/// Entries appended after that head are fine.
pub fn verify_head(path: &Path, head: &str) -> anyhow::Result<Verdict> {
    let verdict = verify(path)?;
    let Verdict::Intact(count) = verdict else {
        return Ok(verdict);
    };
    let file =
        File::open(path).with_context(|| format!("opening audit file {}", path.display()))?;
    for line in BufReader::new(file).lines() {
        let line = line.with_context(|| format!("reading {}", path.display()))?;
        if serde_json::from_str::<Value>(&line)
            .ok()
            .and_then(|v| v.get("hash").and_then(Value::as_str).map(|h| h == head))
            .unwrap_or(false)
        {
            return Ok(Verdict::Intact(count));
        }
    }
    Ok(Verdict::Broken {
        line: count + 1,
        reason: format!(
            "the trail ends after {count} intact entries without reaching the expected head {head}: entries were removed from its end"
        ),
    })
}

/// The result of checking a chain.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Every entry is intact; the count of entries.
    Intact(u64),
    /// The first broken entry: its line number (from 1) and why.
    Broken { line: u64, reason: String },
}

/// Checks every entry's hash, sequence number and link to its predecessor.
pub fn verify(path: &Path) -> anyhow::Result<Verdict> {
    let file =
        File::open(path).with_context(|| format!("opening audit file {}", path.display()))?;
    let mut prev = GENESIS_HASH.to_string();
    let mut count = 0u64;
    for (index, line) in BufReader::new(file).split(b'\n').enumerate() {
        let line_no = index as u64 + 1;
        let line = line.with_context(|| format!("reading {}", path.display()))?;
        let broken = |reason: String| {
            Ok(Verdict::Broken {
                line: line_no,
                reason,
            })
        };
        let entry = match serde_json::from_slice::<Value>(&line) {
            Ok(Value::Object(map)) => map,
            _ => return broken("not a JSON object: edited or cut short".into()),
        };
        if entry.get("seq").and_then(Value::as_u64) != Some(line_no) {
            return broken(format!(
                "sequence number {} where {line_no} was expected: an entry was deleted, inserted or moved",
                entry.get("seq").map_or("missing".into(), Value::to_string)
            ));
        }
        if entry.get("prev").and_then(Value::as_str) != Some(prev.as_str()) {
            return broken(
                "does not link to the previous entry's hash: entries were deleted or reordered"
                    .into(),
            );
        }
        let hash = entry_hash(&entry);
        if entry.get("hash").and_then(Value::as_str) != Some(hash.as_str()) {
            return broken("its hash does not match its content: the entry was edited".into());
        }
        prev = hash;
        count += 1;
    }
    Ok(Verdict::Intact(count))
}

/// Reads every entry, for display; fails on the first line that is not JSON.
pub fn read_entries(path: &Path) -> anyhow::Result<Vec<Map<String, Value>>> {
    let file =
        File::open(path).with_context(|| format!("opening audit file {}", path.display()))?;
    let mut entries = Vec::new();
    for (index, line) in BufReader::new(file).lines().enumerate() {
        let line = line.with_context(|| format!("reading {}", path.display()))?;
        match serde_json::from_str(&line) {
            Ok(Value::Object(map)) => entries.push(map),
            _ => anyhow::bail!("{} line {}: not a JSON object", path.display(), index + 1),
        }
    }
    Ok(entries)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(dir: &Path) -> PathBuf {
        let path = dir.join("audit.jsonl");
        let log = AuditLog::open(&path).unwrap();
        for i in 0..4 {
            log.append(json!({"event": "test", "n": i})).unwrap();
        }
        path
    }

    fn lines(path: &Path) -> Vec<String> {
        std::fs::read_to_string(path)
            .unwrap()
            .lines()
            .map(String::from)
            .collect()
    }

    fn write(path: &Path, lines: &[String]) {
        std::fs::write(path, lines.join("\n") + "\n").unwrap();
    }

    #[test]
    fn intact_chain_verifies_and_continues_across_opens() {
        let dir = tempfile::tempdir().unwrap();
        let path = sample(dir.path());
        AuditLog::open(&path)
            .unwrap()
            .append(json!({"event": "later"}))
            .unwrap();
        assert_eq!(verify(&path).unwrap(), Verdict::Intact(5));
    }

    #[test]
    fn one_byte_edit_is_caught_at_its_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = sample(dir.path());
        let mut l = lines(&path);
        l[2] = l[2].replace("\"n\":2", "\"n\":3");
        write(&path, &l);
        assert_eq!(
            verify(&path).unwrap(),
            Verdict::Broken {
                line: 3,
                reason: "its hash does not match its content: the entry was edited".into()
            }
        );
    }

    #[test]
    fn deleted_and_swapped_lines_are_caught() {
        let dir = tempfile::tempdir().unwrap();
        let path = sample(dir.path());
        let mut l = lines(&path);
        l.remove(1);
        write(&path, &l);
        assert!(matches!(
            verify(&path).unwrap(),
            Verdict::Broken { line: 2, .. }
        ));

        let path = sample(&dir.path().join("b"));
        let mut l = lines(&path);
        l.swap(1, 2);
        write(&path, &l);
        assert!(matches!(
            verify(&path).unwrap(),
            Verdict::Broken { line: 2, .. }
        ));
    }

    #[test]
    fn removing_trailing_entries_is_caught_against_a_recorded_head() {
        let dir = tempfile::tempdir().unwrap();
        let path = sample(dir.path());
        let head = AuditLog::open(&path).unwrap().head();
        assert_eq!(head.entries, 4);
        AuditLog::open(&path)
            .unwrap()
            .append(json!({"event": "later"}))
            .unwrap();
        assert_eq!(verify_head(&path, &head.hash).unwrap(), Verdict::Intact(5));
        let mut l = lines(&path);
        l.truncate(3);
        write(&path, &l);
        assert_eq!(
            verify(&path).unwrap(),
            Verdict::Intact(3),
            "the chain alone cannot tell"
        );
        assert!(matches!(
            verify_head(&path, &head.hash).unwrap(),
            Verdict::Broken { line: 4, .. }
        ));
    }

    #[test]
    fn cut_short_entry_is_caught() {
        let dir = tempfile::tempdir().unwrap();
        let path = sample(dir.path());
        let text = std::fs::read_to_string(&path).unwrap();
        std::fs::write(&path, &text[..text.len() - 10]).unwrap();
        assert_eq!(
            verify(&path).unwrap(),
            Verdict::Broken {
                line: 4,
                reason: "not a JSON object: edited or cut short".into()
            }
        );
    }
}

//! The audit file's format and its checks: JSON lines, each carrying the previous line's hash,
//! so an edited, deleted, reordered or cut entry breaks the chain at the first place it was
//! touched.
//!
//! `hash` is the SHA-256 of the entry's canonical JSON (keys sorted, no whitespace) without its
//! `hash` member; `prev` is the previous entry's `hash` (64 zeros for the first); `seq` counts
//! from 1. Every entry ends with a newline, so bytes after the last newline are an entry whose
//! write was cut short (a crash, SIGKILL): a *torn* tail, reported as such and sealed by the next
//! run that opens the file.

use std::fs::File;
use std::io::{BufRead, BufReader, Read as _};

use anyhow::Context as _;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use super::segments;
use sluice_storage::Location;

pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// Serializes with object keys sorted at every level, so the hash does not depend on how a
/// reader or writer orders members.
pub(crate) fn canonical(value: &Value) -> String {
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

pub(crate) fn entry_hash(entry: &Map<String, Value>) -> String {
    let mut unhashed = entry.clone();
    unhashed.remove("hash");
    hex::encode(Sha256::digest(
        canonical(&Value::Object(unhashed)).as_bytes(),
    ))
}

/// Where a chain ends: its entry count and last hash.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct AuditHead {
    pub entries: u64,
    pub hash: String,
}

/// The result of checking a chain.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Every entry is intact; the count of entries.
    Intact(u64),
    /// Every complete entry is intact, but the file ends in `bytes` bytes of an entry whose
    /// write was cut short. The next run that appends seals it (and records that it did).
    Torn { intact: u64, bytes: u64 },
    /// The first broken entry: its line number (from 1) and why.
    Broken { line: u64, reason: String },
}

/// The end of an existing chain: where to continue it, and a torn tail to seal.
pub(crate) struct Tail {
    pub(crate) head: AuditHead,
    /// Bytes up to and including the last complete entry's newline.
    pub(crate) complete_len: u64,
    /// What follows the last newline, if anything.
    pub(crate) torn: Vec<u8>,
}

/// Reads the chain at `at` to find where it ends (on object storage, only its last segment);
/// `None` when there is none yet.
pub(crate) fn tail(at: &Location) -> anyhow::Result<Option<Tail>> {
    let bytes = match at {
        Location::Local(path) => {
            let mut bytes = Vec::new();
            match File::open(path) {
                Ok(mut f) => f
                    .read_to_end(&mut bytes)
                    .with_context(|| format!("reading {}", path.display()))?,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
                Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
            };
            bytes
        }
        Location::Object(folder) => match segments::read_last(folder)? {
            Some(bytes) => bytes,
            None => return Ok(None),
        },
    };
    let complete_len = bytes.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
    let torn = bytes[complete_len..].to_vec();
    let last = bytes[..complete_len]
        .split(|&b| b == b'\n')
        .rfind(|l| !l.is_empty());
    let head = match last {
        None => AuditHead {
            entries: 0,
            hash: GENESIS_HASH.into(),
        },
        Some(line) => match serde_json::from_slice(line) {
            Ok(Value::Object(entry)) => AuditHead {
                entries: entry.get("seq").and_then(Value::as_u64).unwrap_or(0),
                hash: entry
                    .get("hash")
                    .and_then(Value::as_str)
                    .unwrap_or(GENESIS_HASH)
                    .to_string(),
            },
            _ => anyhow::bail!(
                "audit trail {at} ends in a damaged entry; run `sluice audit verify {at}` and move it aside"
            ),
        },
    };
    Ok(Some(Tail {
        head,
        complete_len: complete_len as u64,
        torn,
    }))
}

/// One line of a chain, as read.
enum Line {
    /// A complete line holding a JSON object.
    Entry(Map<String, Value>),
    /// A complete line that is not a JSON object.
    NotAnObject,
    /// The last line, cut short: its length in bytes.
    Torn(u64),
}

/// The one reader of a chain: its lines in order, from a file or every segment of an
/// object-storage chain.
struct Lines {
    reader: Box<dyn BufRead>,
    line: Vec<u8>,
    at: String,
}

impl Lines {
    fn open(at: &Location) -> anyhow::Result<Lines> {
        let missing = || anyhow::anyhow!("opening audit trail {at}: there is no audit trail there");
        let reader: Box<dyn BufRead> = match at {
            Location::Local(path) => match File::open(path) {
                Ok(file) => Box::new(BufReader::new(file)),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(missing()),
                Err(e) => return Err(e).with_context(|| format!("opening audit trail {at}")),
            },
            Location::Object(folder) => match segments::read_all(folder)? {
                Some(bytes) => Box::new(std::io::Cursor::new(bytes)),
                None => return Err(missing()),
            },
        };
        Ok(Lines {
            reader,
            line: Vec::new(),
            at: at.to_string(),
        })
    }

    /// The next line; `None` at the end of the chain (a torn line is always the last).
    fn next(&mut self) -> anyhow::Result<Option<Line>> {
        self.line.clear();
        let read = self
            .reader
            .read_until(b'\n', &mut self.line)
            .with_context(|| format!("reading {}", self.at))?;
        Ok(match read {
            0 => None,
            _ if self.line.last() != Some(&b'\n') => Some(Line::Torn(self.line.len() as u64)),
            _ => Some(match serde_json::from_slice(&self.line) {
                Ok(Value::Object(entry)) => Line::Entry(entry),
                _ => Line::NotAnObject,
            }),
        })
    }
}

/// Whether there is an audit trail at `at` (a file, or at least one segment).
pub fn exists(at: &Location) -> anyhow::Result<bool> {
    Ok(match at {
        Location::Local(path) => path.exists(),
        Location::Object(folder) => !folder.list()?.is_empty(),
    })
}

/// [`verify`], and then that the chain still contains the entry whose hash is `head`, recorded
/// earlier: without it, deleting whole entries from the end of the file goes unnoticed.
/// Entries appended after that head are fine. One pass over the chain.
pub fn verify_head(at: impl Into<Location>, head: &str) -> anyhow::Result<Verdict> {
    let (verdict, reached) = walk(&at.into(), Some(head))?;
    let count = match verdict {
        Verdict::Intact(count) | Verdict::Torn { intact: count, .. } => count,
        Verdict::Broken { .. } => return Ok(verdict),
    };
    if reached {
        return Ok(verdict);
    }
    Ok(Verdict::Broken {
        line: count + 1,
        reason: format!(
            "the trail ends after {count} intact entries without reaching the expected head {head}: entries were removed from its end"
        ),
    })
}

/// Checks every entry's hash, sequence number and link to its predecessor.
pub fn verify(at: impl Into<Location>) -> anyhow::Result<Verdict> {
    Ok(walk(&at.into(), None)?.0)
}

/// Checks the chain at `at`, and whether an intact entry's hash is `head`.
fn walk(at: &Location, head: Option<&str>) -> anyhow::Result<(Verdict, bool)> {
    let mut lines = Lines::open(at)?;
    let mut prev = GENESIS_HASH.to_string();
    let mut count = 0u64;
    let mut reached = false;
    loop {
        let line_no = count + 1;
        let broken = |reason: String| {
            let verdict = Verdict::Broken {
                line: line_no,
                reason,
            };
            Ok((verdict, reached))
        };
        let entry = match lines.next()? {
            None => return Ok((Verdict::Intact(count), reached)),
            Some(Line::Torn(bytes)) => {
                let torn = Verdict::Torn {
                    intact: count,
                    bytes,
                };
                return Ok((torn, reached));
            }
            Some(Line::NotAnObject) => {
                return broken("not a JSON object: edited or cut short".into());
            }
            Some(Line::Entry(entry)) => entry,
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
        reached |= head == Some(hash.as_str());
        prev = hash;
        count += 1;
    }
}

/// The entries of an audit file, for display.
#[derive(Debug, Default)]
pub struct Entries {
    pub entries: Vec<Map<String, Value>>,
    /// Bytes of a torn last line, if the file ends in one.
    pub torn: Option<u64>,
}

/// Every complete entry, and the size of a torn tail if there is one; fails on the first
/// complete line that is not JSON.
pub fn read_entries(at: impl Into<Location>) -> anyhow::Result<Entries> {
    let at = at.into();
    let mut lines = Lines::open(&at)?;
    let mut entries = Vec::new();
    loop {
        match lines.next()? {
            None => {
                return Ok(Entries {
                    entries,
                    torn: None,
                });
            }
            Some(Line::Torn(bytes)) => {
                let torn = Some(bytes);
                return Ok(Entries { entries, torn });
            }
            Some(Line::Entry(entry)) => entries.push(entry),
            Some(Line::NotAnObject) => {
                anyhow::bail!("{at} line {}: not a JSON object", entries.len() + 1)
            }
        }
    }
}

//! The audit trail: an append-only, hash-chained JSONL file ([`chain`]) of lifecycle events and
//! gate decisions ([`events`]), written by one thread of its own; on object storage, a folder of
//! chain segments ([`segments`]).
//!
//! Appending only queues entries: a slow disk or store never holds up another tenant's renewal
//! or release. The writer takes everything queued into one write (on object storage, one request
//! and one segment, gathering entries for up to [`SEGMENT_WINDOW`]). [`AuditLog::flush`] waits for everything queued and returns the chain's head, or the
//! first write error (after which nothing more is written, so the trail holds an intact chain
//! up to it).

mod chain;
pub mod events;
mod segments;

use std::fs::OpenOptions;
use std::io::Write as _;
use std::sync::Mutex;
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use sluice_sandbox::{AuditSink, GateEvent, GateOverflow, Writ};

pub use chain::{
    AuditHead, Entries, GENESIS_HASH, Verdict, exists, read_entries, verify, verify_head,
};
pub use events::{Lifecycle, Subject, gate_entries, rfc3339, writ_subject};

use chain::{canonical, entry_hash};
use sluice_storage::{Location, ObjectLocation};

/// On object storage each write is a request and a segment to read back: entries arriving within
/// this long of the first go into the same one (a flush still writes at once). Measured in
/// BENCHMARKS.md: a 1,000-tenant night wrote 1,162 segments without it.
const SEGMENT_WINDOW: Duration = Duration::from_millis(100);

enum Command {
    Append(Vec<Value>),
    Flush(mpsc::SyncSender<Result<AuditHead, String>>),
}

/// An append-only, hash-chained audit trail.
pub struct AuditLog {
    location: Location,
    queue: mpsc::Sender<Command>,
    writer: Mutex<Option<JoinHandle<()>>>,
}

/// Where the writer thread adds entries.
enum Sink {
    File(std::fs::File),
    Segments(ObjectLocation),
}

/// The writer thread's end of the chain.
struct Writer {
    location: Location,
    sink: Sink,
    head: AuditHead,
    /// The first write that failed; nothing is written after it.
    failed: Option<String>,
}

impl AuditLog {
    /// Opens the trail at `location` for appending, creating it if needed and continuing its
    /// chain otherwise. In a file, a torn last line (an entry whose write a crash cut short) is
    /// cut off, and the first entry appended records its size and digest.
    pub fn open(location: impl Into<Location>) -> anyhow::Result<AuditLog> {
        let location = location.into();
        let tail = chain::tail(&location)?;
        let sink = match &location {
            Location::Local(path) => {
                if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
                    std::fs::create_dir_all(parent)
                        .with_context(|| format!("creating {}", parent.display()))?;
                }
                Sink::File(
                    OpenOptions::new()
                        .create(true)
                        .append(true)
                        .open(path)
                        .with_context(|| format!("opening audit file {}", path.display()))?,
                )
            }
            Location::Object(folder) => Sink::Segments(folder.clone()),
        };
        let mut repaired = None;
        let head = match tail {
            None => AuditHead {
                entries: 0,
                hash: GENESIS_HASH.into(),
            },
            Some(tail) => {
                if !tail.torn.is_empty() {
                    let Sink::File(file) = &sink else {
                        // Segments are written whole; an unterminated last line was edited.
                        anyhow::bail!(
                            "audit trail {location} ends in an incomplete entry; run `sluice \
                             audit verify {location}` and move it aside"
                        );
                    };
                    file.set_len(tail.complete_len)
                        .with_context(|| format!("sealing the torn end of {location}"))?;
                    repaired = Some(Lifecycle::AuditTailRepaired {
                        torn_bytes: tail.torn.len() as u64,
                        torn_sha256: hex::encode(Sha256::digest(&tail.torn)),
                    });
                }
                tail.head
            }
        };
        let mut writer = Writer {
            location: location.clone(),
            sink,
            head,
            failed: None,
        };
        let (queue, commands) = mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("sluice-audit".into())
            .spawn(move || writer.serve(commands))
            .context("starting the audit writer thread")?;
        let log = AuditLog {
            location,
            queue,
            writer: Mutex::new(Some(thread)),
        };
        if let Some(event) = repaired {
            log.append(event.entry(&Subject::default()));
        }
        Ok(log)
    }

    pub fn location(&self) -> &Location {
        &self.location
    }

    /// Queues entries built from `fields` (each a JSON object), to be chained in this order.
    pub fn append_all(&self, fields: impl IntoIterator<Item = Value>) {
        let entries: Vec<Value> = fields.into_iter().collect();
        if !entries.is_empty() {
            // The writer lives as long as `self`; a send can only fail after a panic there,
            // which `flush` then reports.
            let _ = self.queue.send(Command::Append(entries));
        }
    }

    /// Queues one entry.
    pub fn append(&self, fields: Value) {
        self.append_all([fields]);
    }

    /// Queues a lifecycle event about `subject`.
    pub fn record(&self, subject: &Subject, event: Lifecycle) {
        self.append(event.entry(subject));
    }

    /// Waits until everything queued is written; the chain's head, or the first write error.
    /// Keep the head elsewhere (a run summary, a ticket): `verify_head` later proves nothing
    /// was cut from the end of the file.
    pub fn flush(&self) -> anyhow::Result<AuditHead> {
        let (reply, answer) = mpsc::sync_channel(1);
        let stopped = || anyhow::anyhow!("the audit writer of {} stopped", self.location);
        self.queue
            .send(Command::Flush(reply))
            .map_err(|_| stopped())?;
        answer
            .recv()
            .map_err(|_| stopped())?
            .map_err(|e| anyhow::anyhow!(e))
    }
}

impl Drop for AuditLog {
    fn drop(&mut self) {
        // Closing the queue ends the writer once it has written everything before it.
        let (closed, _) = mpsc::channel();
        drop(std::mem::replace(&mut self.queue, closed));
        if let Some(thread) = self.writer.lock().ok().and_then(|mut t| t.take()) {
            let _ = thread.join();
        }
    }
}

impl Writer {
    fn serve(&mut self, commands: mpsc::Receiver<Command>) {
        while let Ok(command) = commands.recv() {
            let (mut entries, mut reply) = match command {
                Command::Append(entries) => (entries, None),
                Command::Flush(reply) => (Vec::new(), Some(reply)),
            };
            // Whatever else is queued goes into the same write, up to the next flush; on object
            // storage, whatever arrives within the segment window too.
            let window = match self.sink {
                Sink::Segments(_) => SEGMENT_WINDOW,
                Sink::File(_) => Duration::ZERO,
            };
            let until = Instant::now() + window;
            while reply.is_none() {
                let next = match until.checked_duration_since(Instant::now()) {
                    Some(left) if !left.is_zero() => commands.recv_timeout(left).ok(),
                    _ => commands.try_recv().ok(),
                };
                match next {
                    Some(Command::Append(more)) => entries.extend(more),
                    Some(Command::Flush(r)) => reply = Some(r),
                    None => break,
                }
            }
            if !entries.is_empty() {
                self.append(entries);
            }
            if let Some(reply) = reply {
                let _ = reply.send(match &self.failed {
                    None => Ok(self.head.clone()),
                    Some(e) => Err(e.clone()),
                });
            }
        }
    }

    fn append(&mut self, entries: Vec<Value>) {
        if self.failed.is_some() {
            return;
        }
        let (mut seq, mut last_hash) = (self.head.entries, self.head.hash.clone());
        let mut out = String::new();
        for value in entries {
            let Value::Object(mut entry) = value else {
                continue;
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
        if out.is_empty() {
            return;
        }
        let written = match &mut self.sink {
            Sink::File(file) => file
                .write_all(out.as_bytes())
                .and_then(|()| file.flush())
                .map_err(|e| format!("appending to audit file {}: {e}", self.location)),
            Sink::Segments(folder) => {
                segments::append(folder, self.head.entries + 1, out.as_bytes())
            }
        };
        match written {
            Ok(()) => {
                self.head = AuditHead {
                    entries: seq,
                    hash: last_hash,
                }
            }
            Err(e) => self.failed = Some(e),
        }
    }
}

impl AuditSink for AuditLog {
    fn record_gate_events(
        &self,
        writ: &Writ,
        events: &[GateEvent],
        overflow: &GateOverflow,
    ) -> anyhow::Result<()> {
        self.append_all(gate_entries(writ, events, overflow));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::path::{Path, PathBuf};

    use super::*;

    fn sample(dir: &Path) -> PathBuf {
        let path = dir.join("audit.jsonl");
        let log = AuditLog::open(&path).unwrap();
        for i in 0..4 {
            log.append(json!({"event": "test", "n": i}));
        }
        log.flush().unwrap();
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
        let log = AuditLog::open(&path).unwrap();
        log.append(json!({"event": "later"}));
        assert_eq!(log.flush().unwrap().entries, 5);
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
        let head = AuditLog::open(&path).unwrap().flush().unwrap();
        assert_eq!(head.entries, 4);
        let log = AuditLog::open(&path).unwrap();
        log.append(json!({"event": "later"}));
        log.flush().unwrap();
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
    fn a_torn_last_line_is_reported_then_sealed_and_recorded_by_the_next_open() {
        let dir = tempfile::tempdir().unwrap();
        let path = sample(dir.path());
        let text = std::fs::read_to_string(&path).unwrap();
        std::fs::write(&path, &text[..text.len() - 10]).unwrap();
        let torn = (lines(&path)[3].len()) as u64;
        assert_eq!(
            verify(&path).unwrap(),
            Verdict::Torn {
                intact: 3,
                bytes: torn
            }
        );
        let log = AuditLog::open(&path).unwrap();
        log.append(json!({"event": "next run"}));
        assert_eq!(log.flush().unwrap().entries, 5);
        assert_eq!(verify(&path).unwrap(), Verdict::Intact(5));
        let Entries {
            entries,
            torn: torn_now,
        } = read_entries(&path).unwrap();
        assert_eq!(torn_now, None);
        assert_eq!(entries[3]["event"], "audit_tail_repaired");
        assert_eq!(entries[3]["torn_bytes"], torn);
        assert_eq!(entries[4]["event"], "next run");
    }
}

//! A Parquet file's row groups decoded ahead of the guest on the cores the tenant may use.
//!
//! The run's own thread always decodes the row group the guest is in (the front), exactly as a
//! serial read would. Up to `decode-threads - 1` workers decode the next row groups into
//! batches meanwhile, so when the guest gets there they are ready. Read-ahead is only ever an
//! optimisation: a worker charges what it decodes to `bytes-read` and holds it against the
//! tenant's memory like the front does, but it may hold at most half the memory limit, and when
//! anything would not fit it gives up and gives back what it charged; the front then decodes that
//! row group itself. So read-ahead never fails a run that reading in turn would not have failed,
//! and the guest always gets the batches in file order.

use std::collections::VecDeque;
use std::fs::File;
use std::io::{BufReader, Read};
use std::os::unix::fs::FileExt as _;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Duration;

use bytes::Bytes;
use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::{
    ArrowReaderMetadata, ParquetRecordBatchReader, ParquetRecordBatchReaderBuilder,
};
use parquet::file::reader::{ChunkReader, Length};
use sluice_sandbox::{Held, ReadContext, RecordBatch, SourceError, panics};

/// What one row group costs to read, from its page headers.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct GroupCost {
    /// Decompressed bytes of every projected page.
    pub decoded: u64,
    /// Page memory alive at once: per column, its dictionary and its largest page.
    pub peak: u64,
}

/// A file read by offset (`pread`), so any number of threads read it at once without sharing a
/// file position (the parquet crate's own `File` reader shares one between its clones).
#[derive(Clone)]
pub(super) struct PositionalFile {
    file: Arc<File>,
    len: u64,
}

impl PositionalFile {
    pub(super) fn new(file: File, len: u64) -> PositionalFile {
        PositionalFile {
            file: Arc::new(file),
            len,
        }
    }
}

impl Length for PositionalFile {
    fn len(&self) -> u64 {
        self.len
    }
}

/// A reader at an offset of a [`PositionalFile`].
pub(super) struct ReadAt {
    file: Arc<File>,
    at: u64,
}

impl Read for ReadAt {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.file.read_at(buf, self.at)?;
        self.at += n as u64;
        Ok(n)
    }
}

impl ChunkReader for PositionalFile {
    type T = BufReader<ReadAt>;

    fn get_read(&self, start: u64) -> parquet::errors::Result<Self::T> {
        // Only page headers are read this way (their data comes by `get_bytes`): a few hundred
        // bytes each.
        Ok(BufReader::with_capacity(
            4096,
            ReadAt {
                file: Arc::clone(&self.file),
                at: start,
            },
        ))
    }

    fn get_bytes(&self, start: u64, length: usize) -> parquet::errors::Result<Bytes> {
        // The page headers bounded `length` by `page-bytes` before any page is read.
        let mut buf = vec![0u8; length];
        self.file.read_exact_at(&mut buf, start)?;
        Ok(buf.into())
    }
}

/// Everything needed to decode any row group of the file, shared by the front and the workers.
pub(super) struct RowGroups {
    pub file: PositionalFile,
    pub metadata: ArrowReaderMetadata,
    pub mask: ProjectionMask,
    pub costs: Vec<GroupCost>,
    pub batch_rows: usize,
    pub label: String,
}

impl RowGroups {
    /// A reader of row group `index`'s projected columns.
    pub(super) fn reader(&self, index: usize) -> Result<ParquetRecordBatchReader, SourceError> {
        ParquetRecordBatchReaderBuilder::new_with_metadata(self.file.clone(), self.metadata.clone())
            .with_row_groups(vec![index])
            .with_projection(self.mask.clone())
            .with_batch_size(self.batch_rows)
            .build()
            .map_err(|e| SourceError::Invalid(format!("{}: {e}", self.label)))
    }
}

/// A row group's batches decoded ahead, each holding its memory, already charged.
pub(super) type Decoded = VecDeque<(RecordBatch, Held)>;

enum GroupState {
    /// Nobody has started it.
    Waiting,
    /// A worker is decoding it.
    Decoding,
    /// Decoded, waiting for the front.
    Ready(Decoded),
    /// The front has it, or decodes it itself (a worker gave up, or it was never started).
    Front,
}

struct State {
    groups: Vec<GroupState>,
    /// The row group the guest is in.
    front: usize,
    /// The next row group a worker may start.
    next: usize,
}

struct Shared {
    state: Mutex<State>,
    changed: Condvar,
    /// The cursor was dropped or gave read-ahead up: workers stop at their next batch.
    closed: AtomicBool,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// What the front gets when it reaches a row group.
pub(super) enum Reached {
    /// Decoded ahead: the batches in order.
    Decoded(Decoded),
    /// The front decodes it.
    Itself,
}

/// Read-ahead workers over one open file; stopping them when dropped.
pub(super) struct ReadAhead {
    shared: Arc<Shared>,
    groups: Arc<RowGroups>,
    plan: Plan,
    workers: Vec<std::thread::JoinHandle<()>>,
}

impl ReadAhead {
    /// Starts `workers` threads decoding `groups` ahead of the front, or none when there is
    /// nothing to gain (one thread, one row group).
    pub(super) fn start(
        groups: Arc<RowGroups>,
        workers: usize,
        cx: &ReadContext,
    ) -> Option<ReadAhead> {
        let count = groups.costs.len();
        let workers = workers.min(count.saturating_sub(1));
        if workers == 0 {
            return None;
        }
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                groups: (0..count).map(|_| GroupState::Waiting).collect(),
                front: 0,
                next: 1,
            }),
            changed: Condvar::new(),
            closed: AtomicBool::new(false),
        });
        // Ahead of the front by at most two row groups per worker, and half the memory limit.
        let plan = Plan {
            lookahead: 2 * workers,
            cap: cx.bounds().memory_bytes / 2,
        };
        let mut handles = Vec::with_capacity(workers);
        for _ in 0..workers {
            let (shared, groups, cx) = (Arc::clone(&shared), Arc::clone(&groups), cx.clone());
            match std::thread::Builder::new()
                .name("sluice-decode".into())
                .spawn(move || work(&shared, &groups, &cx, plan))
            {
                Ok(handle) => handles.push(handle),
                // No thread to be had: the front reads every row group itself.
                Err(_) => break,
            }
        }
        Some(ReadAhead {
            shared,
            groups,
            plan,
            workers: handles,
        })
    }

    /// The front moves to row group `index`: its batches if a worker decoded them, else the
    /// front decodes it. While a worker is still decoding it, the front decodes a later row
    /// group ahead itself, if one is free, rather than wait (row groups are few and uneven).
    pub(super) fn reach(&self, index: usize, cx: &ReadContext) -> Result<Reached, SourceError> {
        let shared = &self.shared;
        let mut state = shared.lock();
        state.front = index;
        state.next = state.next.max(index + 1);
        shared.changed.notify_all();
        loop {
            if shared.closed.load(Ordering::Relaxed) {
                return Ok(Reached::Itself);
            }
            let Some(group) = state.groups.get_mut(index) else {
                return Ok(Reached::Itself);
            };
            match std::mem::replace(group, GroupState::Front) {
                GroupState::Ready(batches) => return Ok(Reached::Decoded(batches)),
                GroupState::Waiting | GroupState::Front => return Ok(Reached::Itself),
                GroupState::Decoding => {
                    *group = GroupState::Decoding;
                    cx.check()?;
                    if let Some(later) = claim(&mut state, &self.groups, cx, self.plan) {
                        drop(state);
                        let decoded = panics::catch(|| {
                            decode(shared, &self.groups, later, cx, self.plan.cap)
                        })
                        .ok()
                        .flatten();
                        state = shared.lock();
                        finish(shared, &mut state, later, decoded);
                        continue;
                    }
                    state = shared
                        .changed
                        .wait_timeout(state, Duration::from_millis(20))
                        .unwrap_or_else(|e| e.into_inner())
                        .0;
                }
            }
        }
    }

    /// Stops read-ahead for good and lets go of what it holds: the front needs the memory.
    pub(super) fn give_up(&self) {
        self.shared.closed.store(true, Ordering::Relaxed);
        let mut state = self.shared.lock();
        for group in &mut state.groups {
            if let GroupState::Ready(batches) = std::mem::replace(group, GroupState::Front) {
                // Their `bytes-read` stays charged: the work was done for this tenant.
                drop(batches);
            }
        }
        self.shared.changed.notify_all();
    }
}

impl Drop for ReadAhead {
    /// Stops the workers and waits for them (each stops at its next batch, a fraction of a
    /// millisecond), so a closed dataset holds none of the tenant's memory.
    fn drop(&mut self) {
        self.give_up();
        for worker in self.workers.drain(..) {
            let _ = worker.join();
        }
    }
}

#[derive(Clone, Copy)]
struct Plan {
    /// Row groups past the front a worker may start.
    lookahead: usize,
    /// Bytes every source of the run may hold while a worker adds to them.
    cap: u64,
}

fn work(shared: &Shared, groups: &RowGroups, cx: &ReadContext, plan: Plan) {
    loop {
        let index = {
            let mut state = shared.lock();
            loop {
                if shared.closed.load(Ordering::Relaxed) || cx.check().is_err() {
                    return;
                }
                if state.next >= groups.costs.len() {
                    return;
                }
                if let Some(index) = claim(&mut state, groups, cx, plan) {
                    break index;
                }
                state = shared
                    .changed
                    .wait_timeout(state, Duration::from_millis(20))
                    .unwrap_or_else(|e| e.into_inner())
                    .0;
            }
        };
        // A hostile file that panics the decoder gives the row group up, quietly: the run's
        // thread then decodes it under the sandbox's own catch and fails the tenant in one
        // line, instead of waiting for a row group that never comes.
        let decoded = panics::catch(|| decode(shared, groups, index, cx, plan.cap))
            .ok()
            .flatten();
        let mut state = shared.lock();
        finish(shared, &mut state, index, decoded);
    }
}

/// The next row group to decode ahead, marked as being decoded, if there is one within the
/// plan's lookahead and memory.
fn claim(state: &mut State, groups: &RowGroups, cx: &ReadContext, plan: Plan) -> Option<usize> {
    let next = state.next;
    let cost = groups.costs.get(next)?;
    let estimate = cost.decoded.saturating_add(cost.peak);
    if next > state.front + plan.lookahead || cx.held().saturating_add(estimate) > plan.cap {
        return None;
    }
    state.next = next + 1;
    state.groups[next] = GroupState::Decoding;
    Some(next)
}

/// Row group `index` decoded ahead (or given up on), for the front to find.
fn finish(shared: &Shared, state: &mut State, index: usize, decoded: Option<Decoded>) {
    state.groups[index] = match decoded {
        Some(batches) if !shared.closed.load(Ordering::Relaxed) => GroupState::Ready(batches),
        _ => GroupState::Front,
    };
    shared.changed.notify_all();
}

/// Row group `index` decoded and charged, or `None` (everything it charged given back) when it
/// did not fit, failed, or was no longer wanted: the front will decode it itself.
fn decode(
    shared: &Shared,
    groups: &RowGroups,
    index: usize,
    cx: &ReadContext,
    cap: u64,
) -> Option<Decoded> {
    let cost = groups.costs[index];
    let label = || format!("{} row group {index}", groups.label);
    cx.charge(cost.decoded, label).ok()?;
    let mut charged = cost.decoded;
    let decoded = (|| {
        let _pages = cx.try_hold_within(cost.peak, cap)?;
        let reader = groups.reader(index).ok()?;
        let mut batches = VecDeque::new();
        for batch in reader {
            if shared.closed.load(Ordering::Relaxed) {
                return None;
            }
            let batch = batch.ok()?;
            let size = batch.get_array_memory_size() as u64;
            cx.charge(size, label).ok()?;
            charged += size;
            let held = cx.try_hold_within(size, cap)?;
            batches.push_back((batch, held));
        }
        Some(batches)
    })();
    if decoded.is_none() {
        cx.refund(charged);
    }
    decoded
}

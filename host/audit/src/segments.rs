//! An audit chain on object storage, which cannot append: a folder of segment objects, each
//! holding the entries one write added, named by the sequence number of its first entry
//! (`00000000000000000001.jsonl`, ...), so key order is chain order and the folder read in order
//! is the same JSON lines a chain file holds.
//!
//! A segment is created only if no object has its name (`If-None-Match: *`): two writers that
//! continue one chain from the same head (two pods of one shard at once) cannot overwrite each
//! other's entries; the second is refused and stops writing, and says so. Each segment appears
//! whole or not at all, so a chain on object storage is never torn; a segment deleted from the
//! middle breaks the chain's links, and one deleted from the end is caught against the head a
//! shard summary recorded, as for a file.

use sluice_storage::ObjectLocation;

fn segment_name(first_seq: u64) -> String {
    format!("{first_seq:020}.jsonl")
}

/// Every segment of the chain in `folder`, concatenated in key order; `None` if it has none.
pub(crate) fn read_all(folder: &ObjectLocation) -> anyhow::Result<Option<Vec<u8>>> {
    let segments = folder.list()?;
    if segments.is_empty() {
        return Ok(None);
    }
    let mut bytes = Vec::new();
    for segment in segments {
        // A segment listed but gone by now was deleted under us: the chain check then fails.
        bytes.extend(segment.get()?.unwrap_or_default());
    }
    Ok(Some(bytes))
}

/// The last segment of the chain in `folder` (where it ends); `None` if it has none. One listing
/// and one read, however long the chain has grown.
pub(crate) fn read_last(folder: &ObjectLocation) -> anyhow::Result<Option<Vec<u8>>> {
    match folder.list()?.last() {
        Some(segment) => segment.get(),
        None => Ok(None),
    }
}

/// Adds `lines` (whole entries, each ending in a newline) as the segment starting at entry
/// `first_seq`; refused if a segment of that name exists.
pub(crate) fn append(folder: &ObjectLocation, first_seq: u64, lines: &[u8]) -> Result<(), String> {
    let segment = folder.child(&segment_name(first_seq));
    match segment.create(lines.to_vec()) {
        Ok(true) => Ok(()),
        Ok(false) => Err(format!(
            "appending to audit chain {folder}: {segment} already exists, so another writer \
             continued this chain from the same entry (two runs of one shard at once?); this \
             run wrote no more audit entries"
        )),
        Err(e) => Err(format!("appending to audit chain {folder}: {e:#}")),
    }
}

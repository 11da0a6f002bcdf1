//! A Parquet file as a dataset, read within the tenant's bounds before the parquet crate
//! decodes anything.
//!
//! At open: the footer's size, then its schema's depth and width (walked by [`thrift`] without
//! recursion), then every page header of the projected columns (each page's stored and
//! decompressed size, and their ratio). The parquet crate then reads one row group at a time:
//! entering a row group charges its decompressed size to `bytes-read` and holds its largest
//! pages against the tenant's memory, each decoded batch is held until the guest has taken it,
//! and the read stops when the run does. Text and binary columns are read as Arrow views
//! (`Utf8View`), which point into the page or dictionary instead of copying each value: a
//! dictionary bomb (one large value repeated by index) costs 16 bytes a row until the guest
//! takes rows, and those are cut to what fits [`BATCH_BYTES`] and copied only then. Later row
//! groups are decoded ahead on the tenant's other decode threads ([`parquet_ahead`]).
//!
//! [`parquet_ahead`]: super::parquet_ahead
//! [`thrift`]: super::thrift

use std::collections::VecDeque;
use std::fs::File;
use std::io::{BufReader, Read as _, Seek as _, SeekFrom};
use std::sync::Arc;

use arrow_array::builder::{BinaryBuilder, StringBuilder};
use arrow_array::{Array as _, ArrayRef, BinaryViewArray, StringViewArray};
use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::{
    ArrowReaderMetadata, ArrowReaderOptions, ParquetRecordBatchReader,
};
use parquet::file::metadata::ParquetMetaDataReader;
use sluice_sandbox::{
    BATCH_BYTES, DataType, DatasetCursor, Field, Held, Limit, ReadContext, RecordBatch, Schema,
    SchemaRef, SourceError, batch_rows, projection,
};

use super::parquet_ahead::{GroupCost, PositionalFile, Reached, ReadAhead, RowGroups};
use super::thrift::{self, DICTIONARY_PAGE, ShapeError};

/// The longest page header read: its statistics can hold values, but not megabytes of them.
const MAX_PAGE_HEADER: usize = 1 << 20;

/// A Parquet file as a dataset; `label` names it in errors (`dataset 'x' (x.parquet)`).
pub fn open_parquet(
    label: &str,
    file: File,
    columns: Option<&[String]>,
    cx: &ReadContext,
) -> Result<Box<dyn DatasetCursor>, SourceError> {
    let invalid = |what: String| SourceError::Invalid(format!("{label}: {what}"));
    let bounds = *cx.bounds();
    let len = file.metadata().map_err(|e| invalid(e.to_string()))?.len();
    let footer = read_footer(label, &file, len, cx)?;
    match thrift::schema_shape(&footer, bounds.schema_depth, bounds.columns) {
        Ok(_) => {}
        // The walk stops at the first level (or column) past the bound: "needs" that many.
        Err(ShapeError::TooDeep(depth)) => {
            return Err(bounds.exceeded(Limit::SchemaDepth, Some(depth), label));
        }
        Err(ShapeError::TooWide(leaves)) => {
            return Err(bounds.exceeded(Limit::Columns, Some(leaves), label));
        }
        Err(ShapeError::Thrift(e)) => {
            return Err(invalid(format!("not a readable Parquet file: {}", e.0)));
        }
    }
    let metadata = ParquetMetaDataReader::decode_metadata(&footer)
        .map_err(|e| invalid(format!("not a readable Parquet file: {e}")))?;
    let metadata = Arc::new(metadata);
    let plain = ArrowReaderMetadata::try_new(Arc::clone(&metadata), ArrowReaderOptions::new())
        .map_err(|e| invalid(format!("not a readable Parquet file: {e}")))?;
    // What the guest sees: the file's own types, text and binary as themselves.
    let declared = declared_schema(plain.schema());
    let wanted = projection(label, &declared, columns)?;
    // Text and binary read as views where the file allows it (see the module documentation).
    // Only then: a supplied schema takes the reader off its own types' path, which costs the
    // columns that gain nothing from it (measured: 20% on the retailer's four).
    let has_bytes = wanted.iter().any(|&i| {
        matches!(
            declared.field(i).data_type(),
            DataType::Utf8 | DataType::Binary
        )
    });
    let viewed = if has_bytes {
        ArrowReaderMetadata::try_new(
            Arc::clone(&metadata),
            ArrowReaderOptions::new().with_schema(Arc::new(view_schema(&declared))),
        )
        .unwrap_or(plain)
    } else {
        plain
    };
    // Parquet yields projected columns in file order; put them in the order asked.
    let mut sorted = wanted.clone();
    sorted.sort_unstable();
    let order: Vec<usize> = wanted
        .iter()
        .map(|i| sorted.binary_search(i).unwrap_or(0))
        .collect();
    let parquet_schema = viewed.metadata().file_metadata().schema_descr_ptr();
    let mask = ProjectionMask::roots(&parquet_schema, sorted.iter().copied());
    let leaves: Vec<usize> = (0..parquet_schema.num_columns())
        .filter(|&c| sorted.contains(&parquet_schema.get_column_root_idx(c)))
        .collect();
    let schema = Arc::new(
        declared
            .project(&wanted)
            .map_err(|e| invalid(e.to_string()))?,
    );
    // Every page header of the projected columns, checked before anything is decompressed.
    let mut groups = Vec::with_capacity(viewed.metadata().num_row_groups());
    let mut reader = BufReader::with_capacity(1 << 16, &file);
    for (index, group) in viewed.metadata().row_groups().iter().enumerate() {
        let mut cost = GroupCost::default();
        for &leaf in &leaves {
            let (start, length) = group.column(leaf).byte_range();
            if start.checked_add(length).is_none_or(|end| end > len) {
                return Err(invalid(format!(
                    "row group {index} claims bytes past the end of the file"
                )));
            }
            let chunk = scan_pages(label, &mut reader, start, length, cx)?;
            cost.decoded = cost.decoded.saturating_add(chunk.decoded);
            cost.peak = cost.peak.saturating_add(chunk.peak);
        }
        if cost.peak > bounds.memory_bytes {
            return Err(bounds.exceeded(
                Limit::Memory,
                Some(cost.peak),
                &format!("{label} row group {index}, whose pages must be decompressed at once"),
            ));
        }
        groups.push(cost);
    }
    let in_order = order.iter().enumerate().all(|(i, &o)| i == o);
    let groups = Arc::new(RowGroups {
        file: PositionalFile::new(file, len),
        metadata: viewed,
        mask,
        costs: groups,
        batch_rows: batch_rows(leaves.len()),
        label: label.to_string(),
    });
    let ahead = ReadAhead::start(
        Arc::clone(&groups),
        bounds.decode_threads.saturating_sub(1),
        cx,
    );
    Ok(Box::new(ParquetCursor {
        groups,
        ahead,
        next_group: 0,
        reader: None,
        ready: VecDeque::new(),
        group_hold: None,
        pending: None,
        order: (!in_order).then_some(order),
        schema,
        label: label.to_string(),
        cx: cx.clone(),
    }))
}

/// The footer's Thrift bytes, after checking the file's magic and the footer's claimed length
/// (at most `page-bytes`, and within the file), charged to `bytes-read`.
fn read_footer(
    label: &str,
    file: &File,
    len: u64,
    cx: &ReadContext,
) -> Result<Vec<u8>, SourceError> {
    let invalid = |what: String| SourceError::Invalid(format!("{label}: {what}"));
    let not_parquet = || invalid("not a readable Parquet file: it does not end in PAR1".into());
    if len < 12 {
        return Err(not_parquet());
    }
    let mut tail = [0u8; 8];
    read_at(file, len - 8, &mut tail).map_err(|e| invalid(e.to_string()))?;
    if &tail[4..] != b"PAR1" {
        return Err(not_parquet());
    }
    let footer_len = u64::from(u32::from_le_bytes([tail[0], tail[1], tail[2], tail[3]]));
    if footer_len > len - 8 {
        return Err(invalid(format!(
            "not a readable Parquet file: its footer claims {footer_len} bytes of a \
             {len}-byte file"
        )));
    }
    let bounds = cx.bounds();
    if footer_len > bounds.page_bytes {
        return Err(bounds.exceeded(
            Limit::PageBytes,
            Some(footer_len),
            &format!("{label}'s footer"),
        ));
    }
    cx.charge(footer_len, || label.to_string())?;
    let mut footer = vec![0u8; footer_len as usize];
    read_at(file, len - 8 - footer_len, &mut footer).map_err(|e| invalid(e.to_string()))?;
    Ok(footer)
}

fn read_at(file: &File, offset: u64, buf: &mut [u8]) -> std::io::Result<()> {
    use std::os::unix::fs::FileExt as _;
    file.read_exact_at(buf, offset)
}

/// The pages of one column chunk: each header read and checked (sizes within `page-bytes`,
/// decompression within `decompression-ratio`), nothing decompressed.
fn scan_pages(
    label: &str,
    reader: &mut BufReader<&File>,
    start: u64,
    length: u64,
    cx: &ReadContext,
) -> Result<GroupCost, SourceError> {
    let bounds = *cx.bounds();
    let invalid = |what: String| SourceError::Invalid(format!("{label}: {what}"));
    let io = |e: std::io::Error| invalid(e.to_string());
    let end = start + length;
    let (mut at, mut cost, mut dictionary, mut largest) = (start, GroupCost::default(), 0, 0);
    let mut header = Vec::with_capacity(256);
    reader.seek(SeekFrom::Start(start)).map_err(io)?;
    let mut pages = 0u64;
    while at < end {
        pages += 1;
        if pages.is_multiple_of(1024) {
            cx.check()?;
        }
        header.clear();
        let parsed = loop {
            let room = (end - at).min(MAX_PAGE_HEADER as u64) as usize;
            let want = (header.len() * 2).max(256).min(room);
            if want <= header.len() {
                return Err(invalid(format!(
                    "a page header at byte {at} is cut off or longer than {MAX_PAGE_HEADER} bytes"
                )));
            }
            let before = header.len();
            header.resize(want, 0);
            reader.read_exact(&mut header[before..]).map_err(io)?;
            match thrift::page_header(&header) {
                Ok(Some(parsed)) => break parsed,
                Ok(None) => continue,
                Err(e) => return Err(invalid(format!("a page header at byte {at}: {}", e.0))),
            }
        };
        let (stored, decompressed) = (parsed.compressed as u64, parsed.uncompressed as u64);
        for size in [stored, decompressed] {
            if size > bounds.page_bytes {
                return Err(bounds.exceeded(
                    Limit::PageBytes,
                    Some(size),
                    &format!("{label}, a page at byte {at}"),
                ));
            }
        }
        if decompressed > bounds.decompression_ratio.saturating_mul(stored.max(1)) {
            return Err(bounds.exceeded(
                Limit::DecompressionRatio,
                Some(decompressed / stored.max(1)),
                &format!(
                    "{label}, a page at byte {at} of {stored} bytes that decompresses to \
                     {decompressed}"
                ),
            ));
        }
        if parsed.kind == DICTIONARY_PAGE {
            dictionary += decompressed;
        } else {
            largest = largest.max(decompressed);
        }
        cost.decoded = cost.decoded.saturating_add(decompressed);
        let next = at
            .checked_add(parsed.header_len as u64)
            .and_then(|a| a.checked_add(stored))
            .filter(|&n| n <= end)
            .ok_or_else(|| invalid(format!("a page at byte {at} runs past its column chunk")))?;
        // Skip the page's data; the buffer is kept when the next header is already in it.
        let read_to = at + header.len() as u64;
        reader
            .seek_relative(next as i64 - read_to as i64)
            .map_err(io)?;
        at = next;
    }
    cost.peak = dictionary.saturating_add(largest);
    Ok(cost)
}

/// `schema` with text and binary (also as dictionaries or large) as plain `Utf8` and `Binary`:
/// what the guest is told it gets.
fn declared_schema(schema: &Schema) -> Schema {
    let plain = |ty: &DataType| match ty {
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => Some(DataType::Utf8),
        DataType::Binary | DataType::LargeBinary | DataType::BinaryView => Some(DataType::Binary),
        _ => None,
    };
    Schema::new(
        schema
            .fields()
            .iter()
            .map(|f| {
                let ty = match f.data_type() {
                    DataType::Dictionary(_, value) => plain(value),
                    other => plain(other),
                };
                match ty {
                    Some(ty) => Field::new(f.name(), ty, f.is_nullable()),
                    None => f.as_ref().clone(),
                }
            })
            .collect::<Vec<_>>(),
    )
    .with_metadata(schema.metadata().clone())
}

/// `declared` with its text and binary columns as views: the schema the file is read with.
fn view_schema(declared: &Schema) -> Schema {
    Schema::new(
        declared
            .fields()
            .iter()
            .map(|f| match f.data_type() {
                DataType::Utf8 => Field::new(f.name(), DataType::Utf8View, f.is_nullable()),
                DataType::Binary => Field::new(f.name(), DataType::BinaryView, f.is_nullable()),
                _ => f.as_ref().clone(),
            })
            .collect::<Vec<_>>(),
    )
}

struct ParquetCursor {
    groups: Arc<RowGroups>,
    /// Row groups decoded ahead on other threads, when the tenant may use more than one.
    ahead: Option<ReadAhead>,
    next_group: usize,
    /// The front's reader of the row group the guest is in, when it decodes it itself.
    reader: Option<ParquetRecordBatchReader>,
    /// The batches of the row group the guest is in, when it was decoded ahead.
    ready: VecDeque<(RecordBatch, Held)>,
    /// The current row group's page memory.
    group_hold: Option<Held>,
    /// A decoded batch the guest has not taken all of, and the memory it holds.
    pending: Option<(RecordBatch, Held)>,
    order: Option<Vec<usize>>,
    schema: SchemaRef,
    label: String,
    cx: ReadContext,
}

impl ParquetCursor {
    fn invalid(&self, what: impl std::fmt::Display) -> SourceError {
        SourceError::Invalid(format!("{}: {what}", self.label))
    }

    /// The next decoded batch of the file, entering the next row group when one is done; with
    /// the memory it holds when it was decoded ahead (and charged already).
    fn decode_next(&mut self) -> Result<Option<(RecordBatch, Option<Held>)>, SourceError> {
        loop {
            self.cx.check()?;
            if let Some((batch, held)) = self.ready.pop_front() {
                return Ok(Some((batch, Some(held))));
            }
            if let Some(reader) = &mut self.reader {
                match reader.next() {
                    Some(batch) => {
                        return batch.map(|b| Some((b, None))).map_err(|e| self.invalid(e));
                    }
                    None => {
                        self.reader = None;
                        self.group_hold = None;
                        continue;
                    }
                }
            }
            let Some(&cost) = self.groups.costs.get(self.next_group) else {
                return Ok(None);
            };
            let index = self.next_group;
            self.next_group += 1;
            self.group_hold = None;
            if let Some(ahead) = &self.ahead
                && let Reached::Decoded(batches) = ahead.reach(index, &self.cx)?
            {
                self.ready = batches;
                continue;
            }
            let label = &self.label;
            self.cx
                .charge(cost.decoded, || format!("{label} row group {index}"))?;
            self.group_hold = Some(hold_front(&mut self.ahead, &self.cx, cost.peak, || {
                format!("{label} row group {index}")
            })?);
            self.reader = Some(self.groups.reader(index)?);
        }
    }

    /// `head` as the guest gets it: columns in the order asked, views copied into plain
    /// arrays (their bytes held against the tenant's memory while they are made).
    fn deliver(&mut self, head: RecordBatch) -> Result<RecordBatch, SourceError> {
        let head = match &self.order {
            Some(order) => head.project(order).map_err(|e| self.invalid(e))?,
            None => head,
        };
        // Values copied out of views are materialized again: charged and held while made.
        let copied: u64 = head.columns().iter().map(|c| view_bytes(c, c.len())).sum();
        if copied == 0 {
            return Ok(head);
        }
        self.cx.charge(copied, || self.label.clone())?;
        let _held = hold_front(&mut self.ahead, &self.cx, copied, || self.label.clone())?;
        let columns = head.columns().iter().map(unview).collect::<Vec<ArrayRef>>();
        RecordBatch::try_new(self.schema.clone(), columns).map_err(|e| self.invalid(e))
    }
}

impl DatasetCursor for ParquetCursor {
    fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    fn next_batch(&mut self, max_rows: usize) -> Result<Option<RecordBatch>, SourceError> {
        loop {
            if let Some((batch, held)) = self.pending.take() {
                let rows = batch.num_rows();
                if rows == 0 {
                    continue;
                }
                let take = rows_within(&batch, max_rows.min(rows), BATCH_BYTES as u64);
                if take < rows {
                    self.pending = Some((batch.slice(take, rows - take), held));
                }
                return self.deliver(batch.slice(0, take)).map(Some);
            }
            let Some((batch, held)) = self.decode_next()? else {
                return Ok(None);
            };
            let held = match held {
                Some(held) => held,
                None => {
                    // What the reader materialized, charged and held before the guest sees
                    // any of it.
                    let size = batch.get_array_memory_size() as u64;
                    self.cx.charge(size, || self.label.clone())?;
                    hold_front(&mut self.ahead, &self.cx, size, || self.label.clone())?
                }
            };
            self.pending = Some((batch, held));
        }
    }
}

/// Holds `bytes` for the run's own reading. Read-ahead never costs it its memory: when the limit
/// is in the way and read-ahead holds some of it, read-ahead stops and lets go first.
fn hold_front(
    ahead: &mut Option<ReadAhead>,
    cx: &ReadContext,
    bytes: u64,
    by: impl Fn() -> String,
) -> Result<Held, SourceError> {
    match cx.hold(bytes, &by) {
        Err(SourceError::Limit(_)) if ahead.is_some() => {
            // Dropping it stops its workers and gives back what they hold.
            drop(ahead.take());
            cx.hold(bytes, by)
        }
        held => held,
    }
}

/// Bytes of values the first `rows` rows of a view column hold (0 for other columns).
fn view_bytes(column: &ArrayRef, rows: usize) -> u64 {
    let lengths: &[u128] = match column.data_type() {
        DataType::Utf8View => column
            .as_any()
            .downcast_ref::<StringViewArray>()
            .map_or(&[], |a| a.views()),
        DataType::BinaryView => column
            .as_any()
            .downcast_ref::<BinaryViewArray>()
            .map_or(&[], |a| a.views()),
        _ => &[],
    };
    lengths
        .iter()
        .take(rows)
        .map(|v| u64::from(*v as u32))
        .sum()
}

/// How many of the first `max` rows of `batch` fit in `budget` bytes once copied (at least
/// one): fixed-width columns by their width, view columns by their values' lengths.
fn rows_within(batch: &RecordBatch, max: usize, budget: u64) -> usize {
    let fixed: u64 = batch
        .columns()
        .iter()
        .map(|c| c.data_type().primitive_width().unwrap_or(16) as u64)
        .sum();
    let views: Vec<&[u128]> = batch
        .columns()
        .iter()
        .filter_map(|c| match c.data_type() {
            DataType::Utf8View => c
                .as_any()
                .downcast_ref::<StringViewArray>()
                .map(|a| &a.views()[..]),
            DataType::BinaryView => c
                .as_any()
                .downcast_ref::<BinaryViewArray>()
                .map(|a| &a.views()[..]),
            _ => None,
        })
        .collect();
    if views.is_empty() {
        return max;
    }
    let mut used = 0u64;
    for row in 0..max {
        used += fixed + views.iter().map(|v| u64::from(v[row] as u32)).sum::<u64>();
        if used > budget {
            return row.max(1);
        }
    }
    max
}

/// A view column as the plain array the guest's columns are made from; others as they are.
fn unview(column: &ArrayRef) -> ArrayRef {
    match column.data_type() {
        DataType::Utf8View => {
            let views = column.as_any().downcast_ref::<StringViewArray>();
            let Some(views) = views else {
                return column.clone();
            };
            let bytes = view_bytes(column, views.len()) as usize;
            let mut out = StringBuilder::with_capacity(views.len(), bytes);
            for value in views.iter() {
                out.append_option(value);
            }
            Arc::new(out.finish())
        }
        DataType::BinaryView => {
            let views = column.as_any().downcast_ref::<BinaryViewArray>();
            let Some(views) = views else {
                return column.clone();
            };
            let bytes = view_bytes(column, views.len()) as usize;
            let mut out = BinaryBuilder::with_capacity(views.len(), bytes);
            for value in views.iter() {
                out.append_option(value);
            }
            Arc::new(out.finish())
        }
        _ => column.clone(),
    }
}

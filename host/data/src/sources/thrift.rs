//! The few facts Sluice reads from a Parquet file's Thrift itself, before the parquet crate
//! sees the bytes: the shape of the footer's schema (how deep, how many columns) and the sizes
//! in each page header.
//!
//! The parquet crate turns the footer's flat list of schema elements into a tree by recursion,
//! and allocates each page's decompression buffer at the size its header claims. A hostile file
//! can nest its schema 200,000 levels deep (a stack overflow aborts the process) or claim a
//! 2 GiB page in 16 bytes. This module walks the same bytes without recursion (skipping nested
//! structs to a fixed depth) and allocates nothing the input chooses, so the checks run first.
//!
//! Thrift's compact protocol: a struct is a run of field headers (a type in the low nibble, a
//! field-id delta in the high nibble, or 0 and a zigzag varint id) each followed by its value,
//! ended by a 0 byte; integers are zigzag ULEB128 varints; lists carry a size and an element type.

/// Nested structs, lists and maps skipped deeper than this are refused: Parquet's own
/// metadata nests four levels at most.
const MAX_SKIP_DEPTH: u32 = 16;

/// Why the bytes are not the Thrift they should be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ThriftError(pub String);

type Result<T> = std::result::Result<T, ThriftError>;

fn bad<T>(what: impl Into<String>) -> Result<T> {
    Err(ThriftError(what.into()))
}

/// A reader over compact-protocol bytes.
struct Compact<'a> {
    bytes: &'a [u8],
    pos: usize,
}

const STOP: u8 = 0;
const TRUE: u8 = 1;
const FALSE: u8 = 2;
const BYTE: u8 = 3;
const I16: u8 = 4;
const I32: u8 = 5;
const I64: u8 = 6;
const DOUBLE: u8 = 7;
const BINARY: u8 = 8;
const LIST: u8 = 9;
const SET: u8 = 10;
const MAP: u8 = 11;
const STRUCT: u8 = 12;

impl<'a> Compact<'a> {
    fn new(bytes: &'a [u8]) -> Compact<'a> {
        Compact { bytes, pos: 0 }
    }

    fn byte(&mut self) -> Result<u8> {
        let b = *self
            .bytes
            .get(self.pos)
            .ok_or_else(|| ThriftError("the metadata ends in the middle of a value".to_string()))?;
        self.pos += 1;
        Ok(b)
    }

    fn skip_bytes(&mut self, n: u64) -> Result<()> {
        let end = u64::try_from(self.pos)
            .ok()
            .and_then(|p| p.checked_add(n))
            .filter(|&e| e <= self.bytes.len() as u64);
        match end {
            Some(end) => {
                self.pos = end as usize;
                Ok(())
            }
            None => bad("the metadata ends in the middle of a value"),
        }
    }

    fn varint(&mut self) -> Result<u64> {
        let mut value = 0u64;
        for shift in (0..70).step_by(7) {
            let b = self.byte()?;
            if shift == 63 && b > 1 {
                return bad("a varint overflows 64 bits");
            }
            value |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(value);
            }
        }
        bad("a varint is longer than 10 bytes")
    }

    fn zigzag(&mut self) -> Result<i64> {
        let v = self.varint()?;
        Ok((v >> 1) as i64 ^ -((v & 1) as i64))
    }

    fn i32(&mut self) -> Result<i32> {
        i32::try_from(self.zigzag()?).or_else(|_| bad("an i32 is out of range"))
    }

    /// The next field's (id, type), or `None` at the struct's end.
    fn field(&mut self, last_id: &mut i16) -> Result<Option<(i16, u8)>> {
        let header = self.byte()?;
        let kind = header & 0x0f;
        if kind == STOP {
            return Ok(None);
        }
        let delta = header >> 4;
        let id = if delta == 0 {
            i16::try_from(self.zigzag()?).or_else(|_| bad("a field id is out of range"))?
        } else {
            last_id.wrapping_add(i16::from(delta))
        };
        *last_id = id;
        Ok(Some((id, kind)))
    }

    /// A list or set header: (element count, element type).
    fn list_header(&mut self) -> Result<(u64, u8)> {
        let header = self.byte()?;
        let size = match header >> 4 {
            15 => self.varint()?,
            short => u64::from(short),
        };
        Ok((size, header & 0x0f))
    }

    /// Skips a value of type `kind`, nested at most `depth` more levels.
    fn skip(&mut self, kind: u8, depth: u32) -> Result<()> {
        match kind {
            TRUE | FALSE => Ok(()),
            BYTE => self.skip_bytes(1),
            I16 | I32 | I64 => self.varint().map(drop),
            DOUBLE => self.skip_bytes(8),
            BINARY => {
                let len = self.varint()?;
                self.skip_bytes(len)
            }
            LIST | SET | MAP | STRUCT if depth == 0 => {
                bad("the metadata nests deeper than Parquet's own")
            }
            LIST | SET => {
                let (size, element) = self.list_header()?;
                // Elements take at least a byte (booleans in a list take one): a size past the
                // bytes left is a lie, refused before looping over it.
                if size > (self.bytes.len() - self.pos) as u64 {
                    return bad("a list claims more elements than there are bytes");
                }
                for _ in 0..size {
                    if element == TRUE || element == FALSE {
                        self.skip_bytes(1)?;
                    } else {
                        self.skip(element, depth - 1)?;
                    }
                }
                Ok(())
            }
            MAP => {
                let size = self.varint()?;
                if size == 0 {
                    return Ok(());
                }
                if size > (self.bytes.len() - self.pos) as u64 {
                    return bad("a map claims more entries than there are bytes");
                }
                let types = self.byte()?;
                for _ in 0..size {
                    self.skip(types >> 4, depth - 1)?;
                    self.skip(types & 0x0f, depth - 1)?;
                }
                Ok(())
            }
            STRUCT => {
                let mut last = 0;
                while let Some((_, kind)) = self.field(&mut last)? {
                    self.skip(kind, depth - 1)?;
                }
                Ok(())
            }
            other => bad(format!("unknown Thrift type {other}")),
        }
    }
}

/// The shape of a Parquet schema, from the footer's list of schema elements.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SchemaShape {
    /// Levels below the root: 1 for a flat schema.
    pub depth: u64,
    /// Leaf columns.
    pub leaves: u64,
}

/// What [`schema_shape`] found past a bound, before walking further.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ShapeError {
    Thrift(ThriftError),
    /// Deeper than the bound (at least this deep).
    TooDeep(u64),
    /// Wider than the bound (at least this many leaves).
    TooWide(u64),
}

impl From<ThriftError> for ShapeError {
    fn from(e: ThriftError) -> Self {
        ShapeError::Thrift(e)
    }
}

/// How deep and wide the schema in `footer` (a `FileMetaData`, Thrift compact) is, stopping as
/// soon as it is deeper than `max_depth` or has more than `max_leaves` columns.
pub fn schema_shape(
    footer: &[u8],
    max_depth: u64,
    max_leaves: u64,
) -> std::result::Result<SchemaShape, ShapeError> {
    let mut r = Compact::new(footer);
    let mut last = 0;
    while let Some((id, kind)) = r.field(&mut last)? {
        if id == 2 && kind == LIST {
            let (count, element) = r.list_header()?;
            if element != STRUCT {
                return Err(bad::<()>("the schema is not a list of elements")
                    .unwrap_err()
                    .into());
            }
            return walk_schema(&mut r, count, max_depth, max_leaves);
        }
        r.skip(kind, MAX_SKIP_DEPTH)?;
    }
    Err(ThriftError("the footer has no schema".into()).into())
}

/// The schema elements are the tree in pre-order, each group saying how many children follow:
/// a stack of children still to come gives each element's depth without recursion.
fn walk_schema(
    r: &mut Compact<'_>,
    count: u64,
    max_depth: u64,
    max_leaves: u64,
) -> std::result::Result<SchemaShape, ShapeError> {
    let mut pending: Vec<u64> = Vec::new();
    let (mut depth, mut leaves) = (0u64, 0u64);
    for index in 0..count {
        let mut children: Option<i64> = None;
        let mut last = 0;
        while let Some((id, kind)) = r.field(&mut last)? {
            if id == 5 && kind == I32 {
                children = Some(i64::from(r.i32()?));
            } else {
                r.skip(kind, MAX_SKIP_DEPTH)?;
            }
        }
        if index > 0 {
            match pending.last_mut() {
                Some(left) => *left -= 1,
                None => {
                    return Err(
                        ThriftError("the schema has elements outside its root".into()).into(),
                    );
                }
            }
        }
        match children {
            Some(n) if n > 0 => {
                pending.push(n as u64);
                let level = pending.len() as u64;
                depth = depth.max(level);
                if level > max_depth {
                    return Err(ShapeError::TooDeep(level));
                }
            }
            _ if index > 0 => {
                leaves += 1;
                if leaves > max_leaves {
                    return Err(ShapeError::TooWide(leaves));
                }
            }
            _ => {}
        }
        while pending.last() == Some(&0) {
            pending.pop();
        }
    }
    Ok(SchemaShape { depth, leaves })
}

/// A page's header: its type and its sizes as stored and decompressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageHeader {
    /// 0 data, 1 index, 2 dictionary, 3 data v2.
    pub kind: i32,
    pub uncompressed: i64,
    pub compressed: i64,
    /// Bytes of the header itself.
    pub header_len: usize,
}

pub const DICTIONARY_PAGE: i32 = 2;

/// The page header at the start of `bytes`, or `Ok(None)` if `bytes` ends before it does (read
/// more and try again).
pub fn page_header(bytes: &[u8]) -> Result<Option<PageHeader>> {
    let mut r = Compact::new(bytes);
    let parsed = (|| {
        let (mut kind, mut uncompressed, mut compressed) = (None, None, None);
        let mut last = 0;
        while let Some((id, field)) = r.field(&mut last)? {
            match (id, field) {
                (1, I32) => kind = Some(r.i32()?),
                (2, I32) => uncompressed = Some(i64::from(r.i32()?)),
                (3, I32) => compressed = Some(i64::from(r.i32()?)),
                (_, other) => r.skip(other, MAX_SKIP_DEPTH)?,
            }
        }
        match (kind, uncompressed, compressed) {
            (Some(kind), Some(uncompressed), Some(compressed))
                if uncompressed >= 0 && compressed >= 0 =>
            {
                Ok(PageHeader {
                    kind,
                    uncompressed,
                    compressed,
                    header_len: r.pos,
                })
            }
            _ => bad("a page header without its type and sizes"),
        }
    })();
    match parsed {
        Ok(header) => Ok(Some(header)),
        // Ran off the end: the header is longer than what was read so far.
        Err(e) if e.0.starts_with("the metadata ends") => Ok(None),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A compact-protocol writer for the tests: just enough to make hostile footers.
    #[derive(Default)]
    struct Writer(Vec<u8>);

    impl Writer {
        fn varint(&mut self, mut v: u64) {
            loop {
                let b = (v & 0x7f) as u8;
                v >>= 7;
                if v == 0 {
                    self.0.push(b);
                    return;
                }
                self.0.push(b | 0x80);
            }
        }
        fn field(&mut self, delta: u8, kind: u8) {
            self.0.push(delta << 4 | kind);
        }
        fn i32(&mut self, v: i32) {
            self.varint(((v << 1) ^ (v >> 31)) as u32 as u64);
        }
        fn element(&mut self, name: &str, children: Option<i32>) {
            self.field(4, BINARY);
            self.varint(name.len() as u64);
            self.0.extend_from_slice(name.as_bytes());
            if let Some(n) = children {
                self.field(1, I32);
                self.i32(n);
            }
            self.0.push(STOP);
        }
    }

    /// A footer whose schema is `elements` (name, children).
    fn footer(elements: &[(&str, Option<i32>)]) -> Vec<u8> {
        let mut w = Writer::default();
        w.field(1, I32);
        w.i32(2);
        w.field(1, LIST);
        w.0.push(0xf0 | STRUCT);
        w.varint(elements.len() as u64);
        for (name, children) in elements {
            w.element(name, *children);
        }
        w.0.push(STOP);
        w.0
    }

    #[test]
    fn a_flat_schema_is_one_level_deep() {
        let f = footer(&[("root", Some(3)), ("a", None), ("b", None), ("c", None)]);
        assert_eq!(
            schema_shape(&f, 64, 4096),
            Ok(SchemaShape {
                depth: 1,
                leaves: 3
            })
        );
    }

    #[test]
    fn nesting_is_measured_without_recursion_and_stops_at_the_bound() {
        let levels = 200_000;
        let mut elements = vec![("g", Some(1)); levels];
        elements.push(("leaf", None));
        let f = footer(&elements);
        assert_eq!(schema_shape(&f, 64, 4096), Err(ShapeError::TooDeep(65)));
        // Measured whole when the bound allows it: no stack is used per level.
        let shape = schema_shape(&f, u64::MAX, 4096).unwrap();
        assert_eq!(shape.depth, levels as u64);
    }

    #[test]
    fn width_stops_at_the_bound() {
        let mut elements = vec![("root", Some(5000))];
        elements.extend(std::iter::repeat_n(("c", None), 5000));
        assert_eq!(
            schema_shape(&footer(&elements), 64, 4096),
            Err(ShapeError::TooWide(4097))
        );
    }

    #[test]
    fn lies_and_truncation_are_errors_not_loops() {
        let f = footer(&[("root", Some(3)), ("a", None)]);
        assert!(schema_shape(&f[..f.len() - 4], 64, 4096).is_err());
        // A list claiming 2^60 elements in a few bytes.
        let mut w = Writer::default();
        w.field(2, LIST);
        w.0.push(0xf0 | STRUCT);
        w.varint(1 << 60);
        assert!(schema_shape(&w.0, 64, 4096).is_err());
        // Structs nested past any real metadata, in a field the walk skips.
        let mut w = Writer::default();
        for _ in 0..10_000 {
            w.field(1, STRUCT);
        }
        assert_eq!(
            schema_shape(&w.0, 64, 4096),
            Err(ShapeError::Thrift(ThriftError(
                "the metadata nests deeper than Parquet's own".into()
            )))
        );
    }

    #[test]
    fn page_headers_give_their_sizes_or_ask_for_more_bytes() {
        let mut w = Writer::default();
        w.field(1, I32);
        w.i32(DICTIONARY_PAGE);
        w.field(1, I32);
        w.i32(i32::MAX);
        w.field(1, I32);
        w.i32(16);
        w.field(4, STRUCT); // dictionary_page_header (field 7)
        w.field(1, I32);
        w.i32(1);
        w.0.push(STOP);
        w.0.push(STOP);
        let header = page_header(&w.0).unwrap().unwrap();
        assert_eq!(
            (
                header.kind,
                header.uncompressed,
                header.compressed,
                header.header_len
            ),
            (DICTIONARY_PAGE, i64::from(i32::MAX), 16, w.0.len())
        );
        assert_eq!(page_header(&w.0[..5]), Ok(None));
    }
}

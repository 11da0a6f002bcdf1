//! Hostile data files, made by the tests: what a tenant can put in its own data directory to
//! crash, exhaust or stall the host. Parquet files are built byte by byte (a few lines of
//! Thrift), so each can tell exactly the lie it needs to.

use std::io::Write as _;
use std::path::Path;

/// Thrift's compact protocol, as much of it as these files need.
#[derive(Default)]
struct Thrift(Vec<u8>);

const I32: u8 = 5;
const I64: u8 = 6;
const BINARY: u8 = 8;
const LIST: u8 = 9;
const STRUCT: u8 = 12;

impl Thrift {
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

    fn zigzag(&mut self, v: i64) {
        self.varint(((v << 1) ^ (v >> 63)) as u64);
    }

    /// A field header; `delta` is this field's id minus the previous one's (1 to 15).
    fn field(&mut self, delta: u8, kind: u8) {
        self.0.push(delta << 4 | kind);
    }

    fn i32(&mut self, delta: u8, v: i32) {
        self.field(delta, I32);
        self.zigzag(i64::from(v));
    }

    fn i64(&mut self, delta: u8, v: i64) {
        self.field(delta, I64);
        self.zigzag(v);
    }

    fn binary(&mut self, delta: u8, bytes: &[u8]) {
        self.field(delta, BINARY);
        self.varint(bytes.len() as u64);
        self.0.extend_from_slice(bytes);
    }

    fn list_header(&mut self, delta: u8, kind: u8, len: usize) {
        self.field(delta, LIST);
        if len < 15 {
            self.0.push((len as u8) << 4 | kind);
        } else {
            self.0.push(0xf0 | kind);
            self.varint(len as u64);
        }
    }

    fn stop(&mut self) {
        self.0.push(0);
    }
}

/// A schema element: name, and children for a group or a (type, repetition) for a leaf.
fn element(t: &mut Thrift, name: &str, leaf: Option<(i32, i32)>, children: Option<i32>) {
    let mut last = 0;
    if let Some((kind, repetition)) = leaf {
        t.i32(1, kind);
        t.i32(2, repetition);
        last = 3;
    } else if children.is_some() {
        // A group below the root is optional.
        t.i32(3, 1);
        last = 3;
    }
    t.binary(4 - last, name.as_bytes());
    if let Some(n) = children {
        t.i32(1, n);
    }
    t.stop();
}

/// Writes `PAR1`, `body`, the footer `meta` and its length.
fn parquet_file(path: &Path, body: &[u8], meta: &[u8]) {
    let mut file = std::fs::File::create(path).unwrap();
    file.write_all(b"PAR1").unwrap();
    file.write_all(body).unwrap();
    file.write_all(meta).unwrap();
    file.write_all(&(meta.len() as u32).to_le_bytes()).unwrap();
    file.write_all(b"PAR1").unwrap();
}

/// A Parquet file whose schema nests `levels` groups deep above one column, and no rows.
pub fn deep_parquet(path: &Path, levels: usize) {
    let mut t = Thrift::default();
    t.i32(1, 1);
    t.list_header(1, STRUCT, levels + 2);
    for level in 0..=levels {
        if level == 0 {
            // The root: no repetition.
            let mut e = Thrift::default();
            e.binary(4, b"schema");
            e.i32(1, 1);
            e.stop();
            t.0.extend_from_slice(&e.0);
        } else {
            element(&mut t, "g", None, Some(1));
        }
    }
    element(&mut t, "v", Some((2, 1)), None);
    t.i64(1, 0);
    t.list_header(1, STRUCT, 0);
    t.stop();
    parquet_file(path, &[], &t.0);
}

/// A Parquet file of `columns` optional int64 columns and no rows.
pub fn wide_parquet(path: &Path, columns: usize) {
    let mut t = Thrift::default();
    t.i32(1, 1);
    t.list_header(1, STRUCT, columns + 1);
    let mut root = Thrift::default();
    root.binary(4, b"schema");
    root.i32(1, columns as i32);
    root.stop();
    t.0.extend_from_slice(&root.0);
    for i in 0..columns {
        element(&mut t, &format!("c{i}"), Some((2, 1)), None);
    }
    t.i64(1, 0);
    t.list_header(1, STRUCT, 0);
    t.stop();
    parquet_file(path, &[], &t.0);
}

/// A page header: (type, uncompressed, compressed) and its own sub-header.
fn page_header(kind: i32, uncompressed: i32, compressed: i32, values: i32) -> Vec<u8> {
    let mut t = Thrift::default();
    t.i32(1, kind);
    t.i32(1, uncompressed);
    t.i32(1, compressed);
    if kind == 2 {
        // dictionary_page_header (field 7): num_values, PLAIN.
        t.field(4, STRUCT);
        t.i32(1, values);
        t.i32(1, 0);
        t.stop();
    } else {
        // data_page_header (field 5): num_values, RLE_DICTIONARY, RLE, RLE.
        t.field(2, STRUCT);
        t.i32(1, values);
        t.i32(1, 8);
        t.i32(1, 3);
        t.i32(1, 3);
        t.stop();
    }
    t.stop();
    t.0
}

/// A Parquet file of one required text column `name` holding `rows` rows that all index the
/// first of a dictionary of (`value`, "x"): a few kilobytes on disk, `rows × value.len()`
/// bytes once its values are copied out. `claimed` overrides the dictionary page's
/// uncompressed size (a lying header) when given.
pub fn dictionary_bomb(path: &Path, name: &str, value: &[u8], rows: i32, claimed: Option<i32>) {
    // PLAIN byte arrays: a 4-byte length, then the bytes.
    let mut dictionary = Vec::new();
    for v in [value, b"x"] {
        dictionary.extend_from_slice(&(v.len() as u32).to_le_bytes());
        dictionary.extend_from_slice(v);
    }
    let dict_len = dictionary.len() as i32;
    let dict_page = [
        page_header(2, claimed.unwrap_or(dict_len), dict_len, 2),
        dictionary,
    ]
    .concat();
    // Bit width 1, then one RLE run of `rows` zeros.
    let mut values = vec![1u8];
    let mut run = Thrift::default();
    run.varint((rows as u64) << 1);
    values.extend_from_slice(&run.0);
    values.push(0);
    let data_page = [
        page_header(0, values.len() as i32, values.len() as i32, rows),
        values,
    ]
    .concat();
    let dict_offset = 4i64;
    let data_offset = dict_offset + dict_page.len() as i64;
    let total = (dict_page.len() + data_page.len()) as i64;

    let mut t = Thrift::default();
    t.i32(1, 1);
    t.list_header(1, STRUCT, 2);
    let mut root = Thrift::default();
    root.binary(4, b"schema");
    root.i32(1, 1);
    root.stop();
    t.0.extend_from_slice(&root.0);
    // BYTE_ARRAY (6), REQUIRED (0), converted type UTF8 (0).
    let mut leaf = Thrift::default();
    leaf.i32(1, 6);
    leaf.i32(2, 0);
    leaf.binary(1, name.as_bytes());
    leaf.i32(2, 0);
    leaf.stop();
    t.0.extend_from_slice(&leaf.0);
    t.i64(1, i64::from(rows));
    // One row group of one column chunk.
    t.list_header(1, STRUCT, 1);
    t.list_header(1, STRUCT, 1);
    t.i64(2, dict_offset);
    t.field(1, STRUCT);
    t.i32(1, 6);
    t.list_header(1, I32, 3);
    for encoding in [0i64, 8, 3] {
        t.zigzag(encoding);
    }
    t.list_header(1, BINARY, 1);
    t.varint(name.len() as u64);
    t.0.extend_from_slice(name.as_bytes());
    t.i32(1, 0);
    t.i64(1, i64::from(rows));
    t.i64(1, total);
    t.i64(1, total);
    t.i64(2, data_offset);
    t.i64(2, dict_offset);
    t.stop();
    t.stop();
    // The rest of the row group: total_byte_size (2), num_rows (3).
    t.i64(1, total);
    t.i64(1, i64::from(rows));
    t.stop();
    t.stop();
    parquet_file(path, &[dict_page, data_page].concat(), &t.0);
}

/// A CSV file whose header names `columns` columns, with one row.
pub fn wide_csv(path: &Path, columns: usize) {
    let header: Vec<String> = (0..columns).map(|i| format!("c{i}")).collect();
    let row = vec!["1"; columns];
    std::fs::write(path, format!("{}\n{}\n", header.join(","), row.join(","))).unwrap();
}

/// A sparse file of `len` zero bytes: a CSV "line" that long costs no disk.
pub fn sparse(path: &Path, len: u64) {
    std::fs::File::create(path).unwrap().set_len(len).unwrap();
}

/// A CSV with a header and one row whose quoted field is `len` bytes of newlines and text.
pub fn long_record_csv(path: &Path, len: usize) {
    let field = "line\n".repeat(len / 5);
    std::fs::write(path, format!("ward,stay\n\"{field}\",1\n")).unwrap();
}

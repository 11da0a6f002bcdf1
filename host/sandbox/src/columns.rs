//! Arrow record batches to and from the WIT's `columns`: what a source reads becomes a guest's
//! batch, and what a guest appends to an output table becomes a record batch, checked first.
//!
//! Every Arrow type a source may produce maps to one WIT type: integers to `int64`, floats to
//! `float64`, both string and both binary widths to `text`/`binary`, dates to `date`, every
//! timestamp unit to microseconds, `Decimal128` as is. Anything else is refused by name when the
//! dataset is opened, not half-way through it.

use std::sync::Arc;

use arrow_array::cast::AsArray as _;
use arrow_array::types::{
    Date32Type, Decimal128Type, Float32Type, Float64Type, Int8Type, Int16Type, Int32Type,
    Int64Type, TimestampMicrosecondType, TimestampMillisecondType, TimestampNanosecondType,
    TimestampSecondType, UInt8Type, UInt16Type, UInt32Type, UInt64Type,
};
use arrow_array::{
    Array, ArrayRef, BinaryArray, BooleanArray, Date32Array, Decimal128Array, Float64Array,
    Int64Array, OffsetSizeTrait, RecordBatch, StringArray, TimestampMicrosecondArray,
};
use arrow_buffer::{BooleanBuffer, Buffer, NullBuffer, OffsetBuffer, ScalarBuffer};
use arrow_schema::{DataType, Field, Schema, SchemaRef, TimeUnit};

use crate::bindings::sluice::etl::columns::{Batch, Column, ColumnType, ColumnValues, DecimalType};
use crate::bounds::is_plain_name;
use crate::lowered::{ArrowList, GuestBatch, GuestColumn, GuestValues};
use crate::source::SourceError;
use sluice_text::{cut, escape};

/// Most columns an output table may have.
pub const MAX_COLUMNS: usize = 256;

/// The WIT type of an Arrow type, or `None` if transforms cannot be given it.
fn wit_type(ty: &DataType) -> Option<ColumnType> {
    Some(match ty {
        DataType::Int8
        | DataType::Int16
        | DataType::Int32
        | DataType::Int64
        | DataType::UInt8
        | DataType::UInt16
        | DataType::UInt32
        | DataType::UInt64 => ColumnType::Int64,
        DataType::Float32 | DataType::Float64 => ColumnType::Float64,
        DataType::Boolean => ColumnType::Boolean,
        DataType::Utf8 | DataType::LargeUtf8 => ColumnType::Text,
        DataType::Binary | DataType::LargeBinary => ColumnType::Binary,
        DataType::Date32 => ColumnType::Date,
        DataType::Timestamp(_, tz) => ColumnType::Timestamp(tz.as_deref().map(str::to_string)),
        DataType::Decimal128(precision, scale) => ColumnType::Decimal(DecimalType {
            precision: *precision,
            scale: *scale,
        }),
        _ => return None,
    })
}

/// The Arrow type a WIT type travels as.
pub fn arrow_type(ty: &ColumnType) -> DataType {
    match ty {
        ColumnType::Int64 => DataType::Int64,
        ColumnType::Float64 => DataType::Float64,
        ColumnType::Boolean => DataType::Boolean,
        ColumnType::Text => DataType::Utf8,
        ColumnType::Binary => DataType::Binary,
        ColumnType::Date => DataType::Date32,
        ColumnType::Timestamp(tz) => {
            DataType::Timestamp(TimeUnit::Microsecond, tz.as_deref().map(Arc::from))
        }
        ColumnType::Decimal(d) => DataType::Decimal128(d.precision, d.scale),
    }
}

/// The schema a guest sees, or `invalid` naming the first column it cannot be given.
pub fn wit_schema(dataset: &str, schema: &Schema) -> Result<Vec<Column>, SourceError> {
    schema
        .fields()
        .iter()
        .map(|field| {
            let ty = wit_type(field.data_type()).ok_or_else(|| {
                SourceError::Invalid(format!(
                    "column '{}' of dataset '{dataset}' is {}, which Sluice does not pass to \
                     transforms (integers, floats, booleans, text, binary, dates, timestamps, \
                     decimals)",
                    escape(field.name()),
                    field.data_type()
                ))
            })?;
            Ok(Column {
                name: field.name().clone(),
                ty,
                nullable: field.is_nullable(),
            })
        })
        .collect()
}

/// Arrow's validity bitmap of `array` from bit 0, or none when no row is null: the buffer
/// itself when the array starts on a byte, a shifted copy otherwise.
fn validity(array: &dyn Array) -> (Option<ArrowList<u8>>, u32) {
    match array.nulls().filter(|n| n.null_count() > 0) {
        None => (None, 0),
        Some(nulls) => {
            let bytes = nulls.inner().sliced();
            let len = array.len().div_ceil(8);
            (
                Some(ArrowList(ScalarBuffer::new(bytes, 0, len))),
                nulls.null_count() as u32,
            )
        }
    }
}

/// Text or binary as the guest's (bytes, offsets from 0): Arrow's buffers when its offsets are
/// 32-bit and start at 0, rebased copies otherwise (a sliced or 64-bit-offset array).
fn offsets_and_data<O: OffsetSizeTrait>(
    offsets: &OffsetBuffer<O>,
    data: &Buffer,
) -> Result<(ArrowList<u8>, ArrowList<u32>), String> {
    // An offset buffer always holds at least one offset.
    let (first, last) = (offsets.first().as_usize(), offsets.last().as_usize());
    let bytes = ArrowList(ScalarBuffer::new(data.clone(), first, last - first));
    if first == 0 && !O::IS_LARGE {
        // Arrow checked these offsets are non-negative, so as u32 they are the same bytes.
        let raw = offsets.inner().inner().clone();
        return Ok((bytes, ArrowList(ScalarBuffer::new(raw, 0, offsets.len()))));
    }
    let rebased = offsets
        .iter()
        .map(|o| u32::try_from(o.as_usize() - first))
        .collect::<Result<Vec<u32>, _>>()
        .map_err(|_| "a batch holds more than 4 GiB of text".to_string())?;
    Ok((bytes, rebased.into()))
}

fn timestamp_micros(array: &dyn Array, unit: TimeUnit) -> Result<ArrowList<i64>, String> {
    let overflow = || "a timestamp is out of range in microseconds".to_string();
    Ok(match unit {
        TimeUnit::Second => array
            .as_primitive::<TimestampSecondType>()
            .values()
            .iter()
            .map(|&v| v.checked_mul(1_000_000).ok_or_else(overflow))
            .collect::<Result<Vec<_>, _>>()?
            .into(),
        TimeUnit::Millisecond => array
            .as_primitive::<TimestampMillisecondType>()
            .values()
            .iter()
            .map(|&v| v.checked_mul(1_000).ok_or_else(overflow))
            .collect::<Result<Vec<_>, _>>()?
            .into(),
        TimeUnit::Microsecond => ArrowList(
            array
                .as_primitive::<TimestampMicrosecondType>()
                .values()
                .clone(),
        ),
        TimeUnit::Nanosecond => array
            .as_primitive::<TimestampNanosecondType>()
            .values()
            .iter()
            .map(|&v| v.div_euclid(1_000))
            .collect::<Vec<_>>()
            .into(),
    })
}

/// One Arrow column as the WIT's values, sharing Arrow's buffer where the layouts agree.
fn wit_values(array: &dyn Array) -> Result<GuestValues, String> {
    macro_rules! ints {
        ($t:ty) => {
            GuestValues::Int64(
                array
                    .as_primitive::<$t>()
                    .values()
                    .iter()
                    .map(|&v| i64::from(v))
                    .collect::<Vec<_>>()
                    .into(),
            )
        };
    }
    Ok(match array.data_type() {
        DataType::Int64 => GuestValues::Int64(ArrowList(
            array.as_primitive::<Int64Type>().values().clone(),
        )),
        DataType::Int32 => ints!(Int32Type),
        DataType::Int16 => ints!(Int16Type),
        DataType::Int8 => ints!(Int8Type),
        DataType::UInt32 => ints!(UInt32Type),
        DataType::UInt16 => ints!(UInt16Type),
        DataType::UInt8 => ints!(UInt8Type),
        DataType::UInt64 => GuestValues::Int64(
            array
                .as_primitive::<UInt64Type>()
                .values()
                .iter()
                .map(|&v| i64::try_from(v))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|_| "an unsigned value does not fit in int64".to_string())?
                .into(),
        ),
        DataType::Float64 => GuestValues::Float64(ArrowList(
            array.as_primitive::<Float64Type>().values().clone(),
        )),
        DataType::Float32 => GuestValues::Float64(
            array
                .as_primitive::<Float32Type>()
                .values()
                .iter()
                .map(|&v| f64::from(v))
                .collect::<Vec<_>>()
                .into(),
        ),
        DataType::Boolean => {
            GuestValues::Boolean(bytes_of_bits(array.as_boolean().values()).into())
        }
        DataType::Utf8 => {
            let a = array.as_string::<i32>();
            GuestValues::Text(offsets_and_data(a.offsets(), a.values())?)
        }
        DataType::LargeUtf8 => {
            let a = array.as_string::<i64>();
            GuestValues::Text(offsets_and_data(a.offsets(), a.values())?)
        }
        DataType::Binary => {
            let a = array.as_binary::<i32>();
            GuestValues::Binary(offsets_and_data(a.offsets(), a.values())?)
        }
        DataType::LargeBinary => {
            let a = array.as_binary::<i64>();
            GuestValues::Binary(offsets_and_data(a.offsets(), a.values())?)
        }
        DataType::Date32 => GuestValues::Date(ArrowList(
            array.as_primitive::<Date32Type>().values().clone(),
        )),
        DataType::Timestamp(unit, _) => GuestValues::Timestamp(timestamp_micros(array, *unit)?),
        DataType::Decimal128(_, _) => GuestValues::Decimal(le_bytes_of_decimals(
            array.as_primitive::<Decimal128Type>().values(),
        )),
        other => return Err(format!("{other} is not passed to transforms")),
    })
}

/// One byte (0 or 1) per bit, a 64-bit word at a time: written out, not left to an iterator
/// chain whose speed depended on inlining (measured at five times the instructions in one
/// build of the same code).
fn bytes_of_bits(bits: &BooleanBuffer) -> Vec<u8> {
    let mut out = Vec::with_capacity(bits.len());
    let chunks = bits.inner().bit_chunks(bits.offset(), bits.len());
    for word in chunks.iter() {
        out.extend((0..64).map(|i| ((word >> i) & 1) as u8));
    }
    let rest = chunks.remainder_bits();
    out.extend((0..chunks.remainder_len()).map(|i| ((rest >> i) & 1) as u8));
    out
}

/// Decimal128 values as Arrow's 16-byte little-endian buffer: the buffer itself.
fn le_bytes_of_decimals(values: &ScalarBuffer<i128>) -> ArrowList<u8> {
    #[cfg(target_endian = "little")]
    {
        ArrowList(ScalarBuffer::new(
            values.inner().clone(),
            0,
            values.len() * 16,
        ))
    }
    #[cfg(not(target_endian = "little"))]
    {
        values
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect::<Vec<u8>>()
            .into()
    }
}

/// A source's record batch as the guest's batch.
pub fn wit_batch(dataset: &str, batch: &RecordBatch) -> Result<GuestBatch, SourceError> {
    let schema = batch.schema();
    let columns = batch
        .columns()
        .iter()
        .zip(schema.fields())
        .map(|(array, field)| {
            let values = wit_values(array.as_ref()).map_err(|why| {
                SourceError::Invalid(format!(
                    "column '{}' of dataset '{dataset}': {why}",
                    escape(field.name())
                ))
            })?;
            let (validity, null_count) = validity(array.as_ref());
            Ok(GuestColumn {
                values,
                validity,
                null_count,
            })
        })
        .collect::<Result<Vec<_>, SourceError>>()?;
    Ok(GuestBatch {
        rows: batch.num_rows() as u32,
        columns,
    })
}

/// Bytes of column data in a batch, for the bytes-read and report-bytes budgets.
pub fn batch_bytes(batch: &Batch) -> u64 {
    batch
        .columns
        .iter()
        .map(|c| {
            let values = match &c.values {
                ColumnValues::Int64(v) => v.len() * 8,
                ColumnValues::Float64(v) => v.len() * 8,
                ColumnValues::Boolean(v) => v.len(),
                ColumnValues::Text((data, offsets)) | ColumnValues::Binary((data, offsets)) => {
                    data.len() + offsets.len() * 4
                }
                ColumnValues::Date(v) => v.len() * 4,
                ColumnValues::Timestamp(v) => v.len() * 8,
                ColumnValues::Decimal(v) => v.len(),
            };
            (values + c.validity.as_ref().map_or(0, Vec::len)) as u64
        })
        .sum()
}

/// The Arrow schema of an output table a guest declared: plain, distinct column names, at most
/// [`MAX_COLUMNS`], decimals Arrow accepts.
pub(crate) fn output_schema(columns: &[Column]) -> Result<SchemaRef, String> {
    if columns.is_empty() || columns.len() > MAX_COLUMNS {
        return Err(format!(
            "an output table has 1 to {MAX_COLUMNS} columns, not {}",
            columns.len()
        ));
    }
    let mut fields: Vec<Field> = Vec::with_capacity(columns.len());
    for column in columns {
        if !is_plain_name(&column.name) {
            return Err(format!(
                "column name '{}' is not a plain name: 1-64 of A-Z a-z 0-9 _ -",
                escape(&cut(&column.name, 32))
            ));
        }
        if fields.iter().any(|f| f.name() == &column.name) {
            return Err(format!("column '{}' is declared twice", column.name));
        }
        if let ColumnType::Decimal(d) = &column.ty
            && !(1..=38).contains(&d.precision)
        {
            return Err(format!(
                "column '{}': decimal precision is 1 to 38, not {}",
                column.name, d.precision
            ));
        }
        if let ColumnType::Timestamp(Some(tz)) = &column.ty
            && (tz.is_empty() || tz.len() > 64 || !tz.bytes().all(|b| b.is_ascii_graphic()))
        {
            return Err(format!(
                "column '{}': time zone '{}' is not a zone name or offset",
                column.name,
                escape(&cut(tz, 32))
            ));
        }
        fields.push(Field::new(
            column.name.clone(),
            arrow_type(&column.ty),
            column.nullable,
        ));
    }
    Ok(Arc::new(Schema::new(fields)))
}

/// `validity` as Arrow's null buffer for `rows` rows, checked against `null_count`.
fn null_buffer(
    validity: Option<Vec<u8>>,
    null_count: u32,
    rows: usize,
    nullable: bool,
) -> Result<Option<NullBuffer>, String> {
    let Some(bits) = validity else {
        return if null_count == 0 {
            Ok(None)
        } else {
            Err(format!(
                "null-count is {null_count} but there is no validity bitmap"
            ))
        };
    };
    if bits.len() != rows.div_ceil(8) {
        return Err(format!(
            "the validity bitmap has {} bytes; {rows} rows need {}",
            bits.len(),
            rows.div_ceil(8)
        ));
    }
    let nulls = NullBuffer::new(BooleanBuffer::new(Buffer::from_vec(bits), 0, rows));
    if nulls.null_count() != null_count as usize {
        return Err(format!(
            "null-count is {null_count} but the validity bitmap has {} nulls",
            nulls.null_count()
        ));
    }
    if !nullable && nulls.null_count() > 0 {
        return Err("the column is not nullable but has nulls".into());
    }
    Ok((nulls.null_count() > 0).then_some(nulls))
}

/// Checked text or binary offsets for `rows` rows over `data`, as Arrow's `i32` offsets.
fn checked_offsets(offsets: &[u32], data: &[u8], rows: usize) -> Result<OffsetBuffer<i32>, String> {
    if offsets.len() != rows + 1 {
        return Err(format!(
            "{} offsets for {rows} rows; there must be one more than rows",
            offsets.len()
        ));
    }
    if offsets[0] != 0 || offsets.windows(2).any(|w| w[0] > w[1]) {
        return Err("offsets must start at 0 and never decrease".into());
    }
    let last = offsets[rows] as usize;
    if last != data.len() || i32::try_from(last).is_err() {
        return Err(format!(
            "the last offset is {last} but there are {} bytes",
            data.len()
        ));
    }
    // Checked above, so this cannot panic on a guest's offsets.
    Ok(OffsetBuffer::new(ScalarBuffer::from(
        offsets.iter().map(|&o| o as i32).collect::<Vec<i32>>(),
    )))
}

/// A guest's batch as a record batch of `schema`, or why it does not fit it.
pub(crate) fn arrow_batch(schema: &SchemaRef, batch: Batch) -> Result<RecordBatch, String> {
    let rows = batch.rows as usize;
    if batch.columns.len() != schema.fields().len() {
        return Err(format!(
            "the batch has {} columns; the table has {}",
            batch.columns.len(),
            schema.fields().len()
        ));
    }
    let mut arrays: Vec<ArrayRef> = Vec::with_capacity(batch.columns.len());
    for (column, field) in batch.columns.into_iter().zip(schema.fields()) {
        let name = field.name();
        let fail = |why: String| format!("column '{name}': {why}");
        let nulls = null_buffer(
            column.validity,
            column.null_count,
            rows,
            field.is_nullable(),
        )
        .map_err(fail)?;
        let length = |len: usize| {
            if len == rows {
                Ok(())
            } else {
                Err(fail(format!("{len} values for {rows} rows")))
            }
        };
        let array: ArrayRef = match (column.values, field.data_type()) {
            (ColumnValues::Int64(v), DataType::Int64) => {
                length(v.len())?;
                Arc::new(Int64Array::new(ScalarBuffer::from(v), nulls))
            }
            (ColumnValues::Float64(v), DataType::Float64) => {
                length(v.len())?;
                Arc::new(Float64Array::new(ScalarBuffer::from(v), nulls))
            }
            (ColumnValues::Boolean(v), DataType::Boolean) => {
                length(v.len())?;
                let bits = BooleanBuffer::from_iter(v.iter().map(|&b| b != 0));
                Arc::new(BooleanArray::new(bits, nulls))
            }
            (ColumnValues::Text((data, offsets)), DataType::Utf8) => {
                let offsets = checked_offsets(&offsets, &data, rows).map_err(fail)?;
                Arc::new(
                    StringArray::try_new(offsets, Buffer::from_vec(data), nulls)
                        .map_err(|e| fail(e.to_string()))?,
                )
            }
            (ColumnValues::Binary((data, offsets)), DataType::Binary) => {
                let offsets = checked_offsets(&offsets, &data, rows).map_err(fail)?;
                Arc::new(
                    BinaryArray::try_new(offsets, Buffer::from_vec(data), nulls)
                        .map_err(|e| fail(e.to_string()))?,
                )
            }
            (ColumnValues::Date(v), DataType::Date32) => {
                length(v.len())?;
                Arc::new(Date32Array::new(ScalarBuffer::from(v), nulls))
            }
            (ColumnValues::Timestamp(v), DataType::Timestamp(_, tz)) => {
                length(v.len())?;
                Arc::new(
                    TimestampMicrosecondArray::new(ScalarBuffer::from(v), nulls)
                        .with_timezone_opt(tz.clone()),
                )
            }
            (ColumnValues::Decimal(bytes), DataType::Decimal128(precision, scale)) => {
                if bytes.len() != rows * 16 {
                    return Err(fail(format!(
                        "{} decimal bytes for {rows} rows; each row takes 16",
                        bytes.len()
                    )));
                }
                let values: Vec<i128> = bytes
                    .chunks_exact(16)
                    .map(|c| i128::from_le_bytes(c.try_into().expect("16 bytes")))
                    .collect();
                let array = Decimal128Array::new(ScalarBuffer::from(values), nulls)
                    .with_precision_and_scale(*precision, *scale)
                    .map_err(|e| fail(e.to_string()))?;
                array
                    .validate_decimal_precision(*precision)
                    .map_err(|e| fail(e.to_string()))?;
                Arc::new(array)
            }
            (values, ty) => {
                return Err(fail(format!(
                    "{} values for a column declared {ty}",
                    values_kind(&values)
                )));
            }
        };
        arrays.push(array);
    }
    RecordBatch::try_new(schema.clone(), arrays).map_err(|e| e.to_string())
}

fn values_kind(values: &ColumnValues) -> &'static str {
    match values {
        ColumnValues::Int64(_) => "int64",
        ColumnValues::Float64(_) => "float64",
        ColumnValues::Boolean(_) => "boolean",
        ColumnValues::Text(_) => "text",
        ColumnValues::Binary(_) => "binary",
        ColumnValues::Date(_) => "date",
        ColumnValues::Timestamp(_) => "timestamp",
        ColumnValues::Decimal(_) => "decimal",
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn bits_and_decimals_convert_exactly_at_any_offset() {
        use arrow_array::{BooleanArray, Decimal128Array};
        let flags: Vec<bool> = (0..200).map(|i| i % 3 == 0 || i % 7 == 0).collect();
        let array = BooleanArray::from(flags.clone());
        for (offset, len) in [(0, 200), (5, 130), (64, 64), (63, 1), (199, 1)] {
            let slice = array.slice(offset, len);
            let expected: Vec<u8> = flags[offset..offset + len]
                .iter()
                .map(|&b| u8::from(b))
                .collect();
            assert_eq!(
                super::bytes_of_bits(slice.values()),
                expected,
                "{offset}+{len}"
            );
        }
        let decimals = Decimal128Array::from(vec![1i128, -2, i128::MAX, 0, 6730]);
        let slice = decimals.slice(1, 3);
        let expected: Vec<u8> = [-2i128, i128::MAX, 0]
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect();
        assert_eq!(
            super::le_bytes_of_decimals(slice.values()).0.to_vec(),
            expected
        );
        assert_eq!(slice.len(), 3);
    }

    use super::*;
    use crate::bindings::sluice::etl::columns::ColumnData;

    fn schema(columns: &[(&str, ColumnType, bool)]) -> SchemaRef {
        output_schema(
            &columns
                .iter()
                .map(|(n, t, nullable)| Column {
                    name: n.to_string(),
                    ty: t.clone(),
                    nullable: *nullable,
                })
                .collect::<Vec<_>>(),
        )
        .unwrap()
    }

    #[test]
    fn every_type_round_trips_through_the_wit() {
        let s = schema(&[
            ("i", ColumnType::Int64, true),
            ("f", ColumnType::Float64, false),
            ("b", ColumnType::Boolean, false),
            ("t", ColumnType::Text, true),
            ("y", ColumnType::Binary, false),
            ("d", ColumnType::Date, false),
            ("ts", ColumnType::Timestamp(Some("UTC".into())), false),
            (
                "m",
                ColumnType::Decimal(DecimalType {
                    precision: 12,
                    scale: 2,
                }),
                false,
            ),
        ]);
        let batch = Batch {
            rows: 3,
            columns: vec![
                ColumnData {
                    values: ColumnValues::Int64(vec![1, 0, -3]),
                    validity: Some(vec![0b101]),
                    null_count: 1,
                },
                ColumnData {
                    values: ColumnValues::Float64(vec![0.5, 1.5, 2.5]),
                    validity: None,
                    null_count: 0,
                },
                ColumnData {
                    values: ColumnValues::Boolean(vec![1, 0, 1]),
                    validity: None,
                    null_count: 0,
                },
                ColumnData {
                    values: ColumnValues::Text((b"abcd".to_vec(), vec![0, 1, 1, 4])),
                    validity: Some(vec![0b101]),
                    null_count: 1,
                },
                ColumnData {
                    values: ColumnValues::Binary((vec![0, 255], vec![0, 1, 2, 2])),
                    validity: None,
                    null_count: 0,
                },
                ColumnData {
                    values: ColumnValues::Date(vec![0, 19_000, -1]),
                    validity: None,
                    null_count: 0,
                },
                ColumnData {
                    values: ColumnValues::Timestamp(vec![1, 2, 3]),
                    validity: None,
                    null_count: 0,
                },
                ColumnData {
                    values: ColumnValues::Decimal(
                        [12345i128, -1, 0]
                            .iter()
                            .flat_map(|v| v.to_le_bytes())
                            .collect(),
                    ),
                    validity: None,
                    null_count: 0,
                },
            ],
        };
        let record = arrow_batch(&s, batch.clone()).unwrap();
        assert_eq!(record.column(0).null_count(), 1);
        let back = wit_batch("t", &record).unwrap().to_owned_batch();
        assert_eq!(back, batch);
        // A slice from the middle comes out rebased: offsets from 0, bitmap from bit 0.
        let sliced = wit_batch("t", &record.slice(1, 2))
            .unwrap()
            .to_owned_batch();
        assert_eq!(
            sliced.columns[3].values,
            ColumnValues::Text((b"bcd".to_vec(), vec![0, 0, 3]))
        );
        assert_eq!(sliced.columns[0].validity, Some(vec![0b10]));
        assert_eq!(sliced.columns[0].null_count, 1);
    }

    /// The guest's batch shares Arrow's buffers where the layouts agree: one copy, into guest
    /// memory, is all that is left.
    #[test]
    fn batches_share_arrows_buffers_where_the_layouts_agree() {
        let floats = Float64Array::from(vec![0.5, 1.5, 2.5, 3.5]);
        let ints = Int64Array::from(vec![Some(1), None, Some(3), Some(4)]);
        let text = StringArray::from(vec!["ab", "", "cde", "f"]);
        let record = RecordBatch::try_from_iter([
            ("f", Arc::new(floats.clone()) as ArrayRef),
            ("i", Arc::new(ints.clone()) as ArrayRef),
            ("t", Arc::new(text.clone()) as ArrayRef),
        ])
        .unwrap();
        let batch = wit_batch("t", &record).unwrap();
        let GuestValues::Float64(f) = &batch.columns[0].values else {
            panic!("float64 expected")
        };
        assert_eq!(f.0.as_ptr(), floats.values().as_ptr());
        let GuestValues::Int64(i) = &batch.columns[1].values else {
            panic!("int64 expected")
        };
        assert_eq!(i.0.as_ptr(), ints.values().as_ptr());
        let validity = batch.columns[1].validity.as_ref().unwrap();
        assert_eq!(
            validity.0.as_ptr(),
            ints.nulls().unwrap().validity().as_ptr()
        );
        let GuestValues::Text((data, offsets)) = &batch.columns[2].values else {
            panic!("text expected")
        };
        assert_eq!(data.0.as_ptr(), text.values().as_ptr());
        assert_eq!(offsets.0.as_ptr().cast::<i32>(), text.offsets().as_ptr());
        // A slice from the middle shares the values and rebases only the offsets.
        let sliced = wit_batch("t", &record.slice(2, 2)).unwrap();
        let GuestValues::Float64(f) = &sliced.columns[0].values else {
            panic!("float64 expected")
        };
        assert_eq!(f.0.as_ptr(), floats.values()[2..].as_ptr());
        let GuestValues::Text((data, offsets)) = &sliced.columns[2].values else {
            panic!("text expected")
        };
        assert_eq!(data.0.to_vec(), b"cdef");
        assert_eq!(offsets.0.to_vec(), vec![0, 3, 4]);
    }

    #[test]
    fn a_guest_batch_that_does_not_fit_is_refused_not_a_panic() {
        let s = schema(&[
            ("t", ColumnType::Text, false),
            ("i", ColumnType::Int64, false),
        ]);
        let text = |data: &[u8], offsets: Vec<u32>| ColumnData {
            values: ColumnValues::Text((data.to_vec(), offsets)),
            validity: None,
            null_count: 0,
        };
        let ints = |v: Vec<i64>| ColumnData {
            values: ColumnValues::Int64(v),
            validity: None,
            null_count: 0,
        };
        let cases = [
            (
                vec![text(b"ab", vec![0, 2, 1]), ints(vec![1, 2])],
                "never decrease",
            ),
            (
                vec![text(b"ab", vec![0, 1, 9]), ints(vec![1, 2])],
                "last offset",
            ),
            (
                vec![text(b"\xff\xfe", vec![0, 1, 2]), ints(vec![1, 2])],
                "utf-8",
            ),
            (
                vec![text(b"ab", vec![0, 1, 2]), ints(vec![1])],
                "1 values for 2 rows",
            ),
            (
                vec![ints(vec![1, 2]), ints(vec![1, 2])],
                "int64 values for a column declared Utf8",
            ),
            (vec![text(b"ab", vec![0, 1, 2])], "1 columns"),
        ];
        for (columns, why) in cases {
            let err = arrow_batch(&s, Batch { rows: 2, columns }).unwrap_err();
            assert!(err.to_lowercase().contains(&why.to_lowercase()), "{err}");
        }
        let mut nulls = ints(vec![1, 2]);
        nulls.validity = Some(vec![0b01]);
        nulls.null_count = 1;
        let err = arrow_batch(
            &s,
            Batch {
                rows: 2,
                columns: vec![text(b"ab", vec![0, 1, 2]), nulls],
            },
        )
        .unwrap_err();
        assert!(err.contains("not nullable"), "{err}");
    }
}

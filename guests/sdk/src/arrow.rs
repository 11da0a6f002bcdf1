//! The `arrow` feature: a batch as an `arrow_array::RecordBatch`, for transforms written against
//! Arrow's kernels. The host already speaks Arrow's shape (validity bitmaps, offsets, 16-byte
//! decimals), so each column becomes an Arrow array with one copy of its buffer.

use std::sync::Arc;

use arrow_array::{
    ArrayRef, BinaryArray, BooleanArray, Date32Array, Decimal128Array, Float64Array, Int64Array,
    RecordBatch, StringArray, TimestampMicrosecondArray,
};
use arrow_buffer::{BooleanBuffer, Buffer, NullBuffer, OffsetBuffer, ScalarBuffer};
use arrow_schema::{DataType, Field, Schema, TimeUnit};

use crate::Error;
use crate::bindings::sluice::etl::columns::{Batch, Column, ColumnType, ColumnValues};

fn data_type(ty: &ColumnType) -> DataType {
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

fn offsets(offsets: &[u32]) -> Result<OffsetBuffer<i32>, Error> {
    let values: Vec<i32> = offsets.iter().map(|&o| o as i32).collect();
    if values.first().is_some_and(|&o| o < 0) || values.windows(2).any(|w| w[0] > w[1]) {
        return Err(Error::Invalid("malformed offsets from the host".into()));
    }
    Ok(OffsetBuffer::new(ScalarBuffer::from(values)))
}

pub(crate) fn record_batch(batch: &Batch, schema: &[Column]) -> Result<RecordBatch, Error> {
    let invalid = |e: arrow_schema::ArrowError| Error::Invalid(e.to_string());
    let rows = batch.rows as usize;
    let fields: Vec<Field> = schema
        .iter()
        .map(|c| Field::new(c.name.clone(), data_type(&c.ty), c.nullable))
        .collect();
    let mut arrays: Vec<ArrayRef> = Vec::with_capacity(fields.len());
    for (column, field) in batch.columns.iter().zip(&fields) {
        let nulls = column
            .validity
            .as_ref()
            .map(|bits| NullBuffer::new(BooleanBuffer::new(Buffer::from_slice_ref(bits), 0, rows)));
        let array: ArrayRef = match (&column.values, field.data_type()) {
            (ColumnValues::Int64(v), _) => Arc::new(Int64Array::new(v.clone().into(), nulls)),
            (ColumnValues::Float64(v), _) => Arc::new(Float64Array::new(v.clone().into(), nulls)),
            (ColumnValues::Boolean(v), _) => Arc::new(BooleanArray::new(
                BooleanBuffer::from_iter(v.iter().map(|&b| b != 0)),
                nulls,
            )),
            (ColumnValues::Text((data, o)), _) => Arc::new(
                StringArray::try_new(offsets(o)?, Buffer::from_slice_ref(data), nulls)
                    .map_err(invalid)?,
            ),
            (ColumnValues::Binary((data, o)), _) => Arc::new(
                BinaryArray::try_new(offsets(o)?, Buffer::from_slice_ref(data), nulls)
                    .map_err(invalid)?,
            ),
            (ColumnValues::Date(v), _) => Arc::new(Date32Array::new(v.clone().into(), nulls)),
            (ColumnValues::Timestamp(v), DataType::Timestamp(_, tz)) => Arc::new(
                TimestampMicrosecondArray::new(v.clone().into(), nulls)
                    .with_timezone_opt(tz.clone()),
            ),
            (ColumnValues::Decimal(bytes), DataType::Decimal128(p, s)) => {
                let values: Vec<i128> = bytes
                    .chunks_exact(16)
                    .map(|c| i128::from_le_bytes(c.try_into().unwrap_or([0; 16])))
                    .collect();
                Arc::new(
                    Decimal128Array::new(values.into(), nulls)
                        .with_precision_and_scale(*p, *s)
                        .map_err(invalid)?,
                )
            }
            _ => {
                return Err(Error::Invalid(format!(
                    "column '{}' does not match its type",
                    field.name()
                )));
            }
        };
        arrays.push(array);
    }
    RecordBatch::try_new(Arc::new(Schema::new(fields)), arrays).map_err(invalid)
}

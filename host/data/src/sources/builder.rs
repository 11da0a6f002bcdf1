//! One column being read into Arrow, for the sources that decode row by row (SQLite,
//! PostgreSQL): a builder per Arrow type Sluice maps. Each source appends values in its own
//! encoding by matching on the variant; creating, nulls and finishing are here, once.

use std::sync::Arc;

use arrow_array::ArrayRef;
use arrow_array::builder::{
    BinaryBuilder, BooleanBuilder, Date32Builder, Decimal128Builder, Float64Builder, Int64Builder,
    StringBuilder, TimestampMicrosecondBuilder,
};
use sluice_sandbox::{DataType, SchemaRef};

pub(crate) enum ColumnBuilder {
    Int64(Int64Builder),
    Float64(Float64Builder),
    Boolean(BooleanBuilder),
    Text(StringBuilder),
    Binary(BinaryBuilder),
    Date(Date32Builder),
    Timestamp(TimestampMicrosecondBuilder, Option<Arc<str>>),
    Decimal(Decimal128Builder, u8, i8),
}

impl ColumnBuilder {
    /// A builder for `ty` with room for `rows` (any other type is read as text).
    pub(crate) fn new(ty: &DataType, rows: usize) -> ColumnBuilder {
        match ty {
            DataType::Int64 => ColumnBuilder::Int64(Int64Builder::with_capacity(rows)),
            DataType::Float64 => ColumnBuilder::Float64(Float64Builder::with_capacity(rows)),
            DataType::Boolean => ColumnBuilder::Boolean(BooleanBuilder::with_capacity(rows)),
            DataType::Binary => ColumnBuilder::Binary(BinaryBuilder::with_capacity(rows, rows * 8)),
            DataType::Date32 => ColumnBuilder::Date(Date32Builder::with_capacity(rows)),
            DataType::Timestamp(_, tz) => ColumnBuilder::Timestamp(
                TimestampMicrosecondBuilder::with_capacity(rows),
                tz.clone(),
            ),
            DataType::Decimal128(p, s) => {
                ColumnBuilder::Decimal(Decimal128Builder::with_capacity(rows), *p, *s)
            }
            _ => ColumnBuilder::Text(StringBuilder::with_capacity(rows, rows * 8)),
        }
    }

    /// A builder per field of `schema`.
    pub(crate) fn for_schema(schema: &SchemaRef, rows: usize) -> Vec<ColumnBuilder> {
        schema
            .fields()
            .iter()
            .map(|f| ColumnBuilder::new(f.data_type(), rows))
            .collect()
    }

    pub(crate) fn push_null(&mut self) {
        match self {
            ColumnBuilder::Int64(b) => b.append_null(),
            ColumnBuilder::Float64(b) => b.append_null(),
            ColumnBuilder::Boolean(b) => b.append_null(),
            ColumnBuilder::Text(b) => b.append_null(),
            ColumnBuilder::Binary(b) => b.append_null(),
            ColumnBuilder::Date(b) => b.append_null(),
            ColumnBuilder::Timestamp(b, _) => b.append_null(),
            ColumnBuilder::Decimal(b, _, _) => b.append_null(),
        }
    }

    pub(crate) fn finish(self) -> Result<ArrayRef, String> {
        Ok(match self {
            ColumnBuilder::Int64(mut b) => Arc::new(b.finish()),
            ColumnBuilder::Float64(mut b) => Arc::new(b.finish()),
            ColumnBuilder::Boolean(mut b) => Arc::new(b.finish()),
            ColumnBuilder::Text(mut b) => Arc::new(b.finish()),
            ColumnBuilder::Binary(mut b) => Arc::new(b.finish()),
            ColumnBuilder::Date(mut b) => Arc::new(b.finish()),
            ColumnBuilder::Timestamp(mut b, tz) => Arc::new(b.finish().with_timezone_opt(tz)),
            ColumnBuilder::Decimal(mut b, p, s) => Arc::new(
                b.finish()
                    .with_precision_and_scale(p, s)
                    .map_err(|e| e.to_string())?,
            ),
        })
    }
}

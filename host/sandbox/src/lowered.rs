//! The batch `next-batch` hands a guest, lowered into its memory straight from Arrow's buffers.
//!
//! bindgen's `Batch` owns a `Vec` per column, so a source's record batch used to be copied twice:
//! from Arrow's buffers into those vectors, then from them into guest memory. These types have
//! the same WIT shape (`batch`, `column-data`, `column-values`) but hold the Arrow buffers
//! themselves (shared, not copied) wherever the guest's layout is Arrow's: 64-bit integers,
//! floats, dates, microsecond timestamps, decimals, text and binary bytes, offsets that start
//! at 0, byte-aligned validity. Wasmtime's own list lowering then copies each buffer into guest
//! memory once. Conversions that must happen (narrower integers widened, bits to bytes, offsets
//! rebased) build their buffer once, as before.
//!
//! [`ArrowList`] implements Wasmtime's `ComponentType` and `Lower` by forwarding to `[T]`'s, the
//! way Wasmtime forwards `Vec<T>` and `Arc<T>`: the hidden items it names are Wasmtime 48's, so
//! a Wasmtime upgrade must re-check this file (`cargo xtask test` does: every guest reads through
//! it).

use std::mem::MaybeUninit;

use arrow_buffer::{ArrowNativeType, ScalarBuffer};
use wasmtime::component::__internal::{
    CanonicalAbiInfo, InstanceType, InterfaceType, LowerContext,
};
use wasmtime::component::{ComponentType, Lower};

use crate::bindings::sluice::etl::columns::{Batch, ColumnData, ColumnValues};

/// A WIT `list<T>` whose elements are an Arrow buffer's, lowered with one copy.
#[derive(Clone, Debug, PartialEq)]
pub struct ArrowList<T: ArrowNativeType>(pub ScalarBuffer<T>);

impl<T: ArrowNativeType> ArrowList<T> {
    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl<T: ArrowNativeType> From<Vec<T>> for ArrowList<T> {
    /// Takes the vector's allocation as the buffer: no copy.
    fn from(values: Vec<T>) -> Self {
        ArrowList(ScalarBuffer::from(values))
    }
}

// SAFETY: every item forwards to `[T]`'s implementation, which lowers exactly the slice this
// list derefs to, as Wasmtime's own `Vec<T>` and `Arc<T>` forwardings do.
unsafe impl<T> ComponentType for ArrowList<T>
where
    T: ArrowNativeType + ComponentType,
{
    type Lower = <[T] as ComponentType>::Lower;

    const ABI: CanonicalAbiInfo = <[T] as ComponentType>::ABI;
    const MAY_REQUIRE_REALLOC: bool = <[T] as ComponentType>::MAY_REQUIRE_REALLOC;

    fn typecheck(ty: &InterfaceType, types: &InstanceType<'_>) -> wasmtime::Result<()> {
        <[T] as ComponentType>::typecheck(ty, types)
    }
}

// SAFETY: as above; `[T]`'s lowering bounds-checks and aligns the guest allocation itself.
unsafe impl<T> Lower for ArrowList<T>
where
    T: ArrowNativeType + Lower,
{
    fn linear_lower_to_flat<U>(
        &self,
        cx: &mut LowerContext<'_, U>,
        ty: InterfaceType,
        dst: &mut MaybeUninit<Self::Lower>,
    ) -> wasmtime::Result<()> {
        <[T] as Lower>::linear_lower_to_flat(&self.0, cx, ty, dst)
    }

    fn linear_lower_to_memory<U>(
        &self,
        cx: &mut LowerContext<'_, U>,
        ty: InterfaceType,
        offset: usize,
    ) -> wasmtime::Result<()> {
        <[T] as Lower>::linear_lower_to_memory(&self.0, cx, ty, offset)
    }
}

/// WIT `column-values`, holding Arrow buffers.
#[derive(wasmtime::component::ComponentType, wasmtime::component::Lower, Clone, Debug)]
#[component(variant)]
pub enum GuestValues {
    #[component(name = "int64")]
    Int64(ArrowList<i64>),
    #[component(name = "float64")]
    Float64(ArrowList<f64>),
    #[component(name = "boolean")]
    Boolean(ArrowList<u8>),
    #[component(name = "text")]
    Text((ArrowList<u8>, ArrowList<u32>)),
    #[component(name = "binary")]
    Binary((ArrowList<u8>, ArrowList<u32>)),
    #[component(name = "date")]
    Date(ArrowList<i32>),
    #[component(name = "timestamp")]
    Timestamp(ArrowList<i64>),
    #[component(name = "decimal")]
    Decimal(ArrowList<u8>),
}

/// WIT `column-data`, holding Arrow buffers.
#[derive(wasmtime::component::ComponentType, wasmtime::component::Lower, Clone, Debug)]
#[component(record)]
pub struct GuestColumn {
    pub values: GuestValues,
    pub validity: Option<ArrowList<u8>>,
    #[component(name = "null-count")]
    pub null_count: u32,
}

/// WIT `batch`, holding Arrow buffers: what `next-batch` lowers into the guest.
#[derive(wasmtime::component::ComponentType, wasmtime::component::Lower, Clone, Debug)]
#[component(record)]
pub struct GuestBatch {
    pub rows: u32,
    pub columns: Vec<GuestColumn>,
}

impl GuestBatch {
    /// The same batch as bindgen's owned types (copied): what the generated `next-batch`
    /// signature returns, and what tests compare.
    pub fn to_owned_batch(&self) -> Batch {
        fn vec<T: ArrowNativeType>(list: &ArrowList<T>) -> Vec<T> {
            list.0.to_vec()
        }
        let values = |v: &GuestValues| match v {
            GuestValues::Int64(v) => ColumnValues::Int64(vec(v)),
            GuestValues::Float64(v) => ColumnValues::Float64(vec(v)),
            GuestValues::Boolean(v) => ColumnValues::Boolean(vec(v)),
            GuestValues::Text((d, o)) => ColumnValues::Text((vec(d), vec(o))),
            GuestValues::Binary((d, o)) => ColumnValues::Binary((vec(d), vec(o))),
            GuestValues::Date(v) => ColumnValues::Date(vec(v)),
            GuestValues::Timestamp(v) => ColumnValues::Timestamp(vec(v)),
            GuestValues::Decimal(v) => ColumnValues::Decimal(vec(v)),
        };
        Batch {
            rows: self.rows,
            columns: self
                .columns
                .iter()
                .map(|c| ColumnData {
                    values: values(&c.values),
                    validity: c.validity.as_ref().map(vec),
                    null_count: c.null_count,
                })
                .collect(),
        }
    }
}

//! What the benchmarks share: medians, the round count, verdicts, and the bank transform's
//! aggregation compiled natively (the very source the bank guest compiles) over any source.

use arrow_array::Array as _;
use arrow_array::cast::AsArray as _;
use arrow_array::types::Int64Type;
use sluice_sandbox::DatasetSource;

#[path = "../../guests/bank/src/figures.rs"]
pub mod bank_figures;

pub fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    xs[xs.len() / 2]
}

/// `SLUICE_BENCH_ROUNDS`, else `default`; never fewer than 5.
pub fn rounds(default: usize) -> usize {
    std::env::var("SLUICE_BENCH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
        .max(5)
}

pub fn verdict(met: bool) -> &'static str {
    if met { "met" } else { "NOT met" }
}

/// The bank transform, natively: the two columns the guest reads, from the same Arrow batches
/// the guest's come from, with its flags as one byte each, as the guest gets them.
pub fn bank_native(source: &dyn DatasetSource) -> bank_figures::BankTotals {
    let columns = ["balance_cents".to_string(), "is_fraud".to_string()];
    let mut cursor = source
        .open(
            &sluice_sandbox::DatasetRef::new("bank", "analytics", "transactions").unwrap(),
            Some(&columns),
            &sluice_sandbox::ReadContext::unbounded(),
        )
        .expect("open");
    let mut totals = bank_figures::BankTotals::default();
    while let Some(batch) = cursor.next_batch(16_384).expect("batch") {
        let cents = batch.column(0).as_primitive::<Int64Type>();
        let flags: Vec<u8> = batch
            .column(1)
            .as_boolean()
            .values()
            .iter()
            .map(u8::from)
            .collect();
        totals.add(cents.values(), cents.null_count(), &flags);
    }
    totals
}

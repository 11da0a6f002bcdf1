//! {{name}}: a Sluice tenant transform. Counts the tenant's orders and their average value; make
//! it yours. `./build.sh` builds {{name}}.wasm; README.md says how to run it.

use sluice_guest::{Dataset, Figures, Params, Report, RunError, Summary, Transform, fmt};

struct App;

impl Transform for App {
    fn run(_params: Params) -> Result<Summary, RunError> {
        let me = sluice_guest::whoami();
        // Needs read:analytics:<tenant>; reads only the column it uses.
        let orders = Dataset::open_columns(&me.tenant, "analytics", "orders", &["total_cents"])?;
        let (mut count, mut cents) = (0u64, 0i128);
        for batch in orders.batches() {
            let batch = batch?;
            let (totals, _nulls) = batch.int64(0)?;
            count += totals.len() as u64;
            cents += totals.iter().map(|&c| i128::from(c)).sum::<i128>();
        }
        let figures = Figures::new()
            .add("orders", fmt::compact(count))
            .add("avg_order", fmt::dollars(cents, count, 2));
        // Needs write:reports:<tenant>; published only if `run` returns Ok.
        Report::create(&me.tenant)?.write_json(&figures.to_json(&me.tenant))?;
        Ok(figures.into_summary())
    }
}

sluice_guest::export_transform!(App);

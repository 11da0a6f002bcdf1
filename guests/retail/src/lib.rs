//! ShopWave Corp's nightly transform: order volume, average order value, return rate.

use sluice_guest::{Dataset, Figures, Params, Report, RunError, Summary, Transform, fmt};

struct Retail;

impl Transform for Retail {
    fn run(_params: Params) -> Result<Summary, RunError> {
        let me = sluice_guest::whoami();
        let mut orders = Dataset::open(&me.tenant, "analytics", "orders")?;
        orders.select(&["total_cents", "returned"])?;
        let (total, returned) = (orders.column("total_cents")?, orders.column("returned")?);

        let (mut count, mut cents, mut returns) = (0u64, 0i128, 0u64);
        for batch in orders.batches() {
            let batch = batch?;
            let (totals, _) = batch.int64(total)?;
            count += totals.len() as u64;
            cents += totals.iter().map(|&c| i128::from(c)).sum::<i128>();
            let (flags, _) = batch.boolean(returned)?;
            returns += flags.iter().map(|&r| u64::from(r)).sum::<u64>();
        }

        let figures = Figures::new()
            .add("orders", fmt::compact(count))
            .add("avg_order", fmt::dollars(cents, count, 2))
            .add("return_rate", fmt::percent(returns, count, 1));
        Report::create(&me.tenant)?.write_json(&figures.to_json(&me.tenant))?;
        Ok(figures.into_summary())
    }
}

sluice_guest::export_transform!(Retail);

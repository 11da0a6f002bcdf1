//! First National Bank's nightly transform: transaction volume, average balance, fraud rate.

mod figures;

use figures::BankTotals;
use sluice_guest::{Dataset, Figures, Params, Report, RunError, Summary, Transform, fmt};

struct Bank;

impl Transform for Bank {
    fn run(_params: Params) -> Result<Summary, RunError> {
        let me = sluice_guest::whoami();
        let txns = Dataset::open_columns(
            &me.tenant,
            "analytics",
            "transactions",
            &["balance_cents", "is_fraud"],
        )?;
        let (balance, fraud) = (txns.column("balance_cents")?, txns.column("is_fraud")?);

        let mut totals = BankTotals::default();
        for batch in txns.batches() {
            let batch = batch?;
            let (cents, nulls) = batch.int64(balance)?;
            let (flags, _) = batch.boolean(fraud)?;
            totals.add(cents, nulls.len(), flags);
        }

        let figures = Figures::new()
            .add("transactions", fmt::compact(totals.transactions))
            .add(
                "avg_balance",
                fmt::dollars(totals.balance_cents, totals.balances, 0),
            )
            .add(
                "fraud_rate",
                fmt::percent(totals.frauds, totals.transactions, 2),
            );
        Report::create(&me.tenant)?.write_json(&figures.to_json(&me.tenant))?;
        Ok(figures.into_summary())
    }
}

sluice_guest::export_transform!(Bank);

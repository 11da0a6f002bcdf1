//! ShopWave Corp's nightly transform: order volume, average order value, return rate, and a
//! daily aggregate table (`reports/daily`: day, orders, revenue, returns).

use std::collections::BTreeMap;

use sluice_guest::{
    Column, ColumnType, Dataset, DecimalType, Figures, Params, Report, RunError, Summary, Table,
    Transform, fmt, values,
};

struct Retail;

/// One day's totals: orders, revenue in cents (the `total` decimal's unscaled value), returns.
#[derive(Default)]
struct Day {
    orders: i64,
    revenue: i128,
    returns: i64,
}

impl Transform for Retail {
    fn run(_params: Params) -> Result<Summary, RunError> {
        let me = sluice_guest::whoami();
        let orders = Dataset::open_columns(
            &me.tenant,
            "analytics",
            "orders",
            &["total_cents", "returned", "ordered_on", "total"],
        )?;
        let [total_cents, returned, ordered_on, total] =
            ["total_cents", "returned", "ordered_on", "total"].map(|c| orders.column(c));
        let (total_cents, returned, ordered_on, total) =
            (total_cents?, returned?, ordered_on?, total?);

        let (mut count, mut cents, mut returns) = (0u64, 0i128, 0u64);
        let mut days: BTreeMap<i32, Day> = BTreeMap::new();
        for batch in orders.batches() {
            let batch = batch?;
            let (totals, _) = batch.int64(total_cents)?;
            count += totals.len() as u64;
            cents += totals.iter().map(|&c| i128::from(c)).sum::<i128>();
            let (flags, _) = batch.boolean(returned)?;
            returns += flags.iter().map(|&r| u64::from(r)).sum::<u64>();
            let (on, _) = batch.date(ordered_on)?;
            let (amounts, _) = batch.decimal(total)?;
            for ((&day, &amount), &flag) in on.iter().zip(&amounts).zip(flags) {
                let entry = days.entry(day).or_default();
                entry.orders += 1;
                entry.revenue += amount;
                entry.returns += i64::from(flag);
            }
        }

        let daily = Table::create(&me.tenant, "reports", "daily", &daily_schema())?;
        daily.append(
            days.len() as u32,
            vec![
                values::date(days.keys().copied().collect()),
                values::int64(days.values().map(|d| d.orders).collect()),
                values::decimal(&days.values().map(|d| d.revenue).collect::<Vec<_>>()),
                values::int64(days.values().map(|d| d.returns).collect()),
            ],
        )?;
        daily.commit()?;

        let figures = Figures::new()
            .add("orders", fmt::compact(count))
            .add("avg_order", fmt::dollars(cents, count, 2))
            .add("return_rate", fmt::percent(returns, count, 1));
        Report::create(&me.tenant)?.write_json(&figures.to_json(&me.tenant))?;
        Ok(figures.into_summary())
    }
}

fn daily_schema() -> [Column; 4] {
    let column = |name: &str, ty| Column {
        name: name.into(),
        ty,
        nullable: false,
    };
    [
        column("day", ColumnType::Date),
        column("orders", ColumnType::Int64),
        column(
            "revenue",
            ColumnType::Decimal(DecimalType {
                precision: 18,
                scale: 2,
            }),
        ),
        column("returns", ColumnType::Int64),
    ]
}

sluice_guest::export_transform!(Retail);

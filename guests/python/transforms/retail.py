"""ShopWave Corp's nightly transform in Python: order volume, average order value, return rate.
Byte for byte the report the Rust transform writes."""

import sluice
from sluice import Dataset, Figures, Report, fmt


def run(params: sluice.Params) -> Figures:
    me = sluice.whoami()
    orders = Dataset.open(me.tenant, "analytics", "orders", ["total_cents", "returned"])
    total, returned = orders.column("total_cents"), orders.column("returned")
    count = returns = 0
    cents = 0
    for batch in orders.batches():
        totals, _ = batch.int64(total)
        count += len(totals)
        cents += sum(totals)
        flags, _ = batch.boolean(returned)
        returns += sum(flags)
    figures = (
        Figures()
        .add("orders", fmt.compact(count))
        .add("avg_order", fmt.dollars(cents, count, 2))
        .add("return_rate", fmt.percent(returns, count, 1))
    )
    Report.create(me.tenant).write_json(figures.to_json(me.tenant))
    return figures


WitWorld = sluice.export(run)

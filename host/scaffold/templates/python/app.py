"""{{name}}: a Sluice tenant transform. Counts the tenant's orders and their average value; make
it yours. ``./build.sh`` builds {{name}}.wasm; README.md says how to run it."""

import sluice
from sluice import Dataset, Figures, Report, fmt


def run(params: sluice.Params) -> Figures:
    me = sluice.whoami()
    # Needs read:analytics:<tenant>; reads only the column it uses.
    orders = Dataset.open(me.tenant, "analytics", "orders", ["total_cents"])
    count = cents = 0
    for batch in orders.batches():
        totals, _nulls = batch.int64("total_cents")
        count += len(totals)
        cents += sum(totals)
    figures = Figures().add("orders", fmt.compact(count)).add(
        "avg_order", fmt.dollars(cents, count, 2)
    )
    # Needs write:reports:<tenant>; published only if run returns.
    Report.create(me.tenant).write_json(figures.to_json(me.tenant))
    return figures


WitWorld = sluice.export(run)

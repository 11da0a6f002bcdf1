//! ShopWave Corp's nightly transform in JavaScript: order volume, average order value, return
//! rate. Byte for byte the report the Rust transform writes.

import { Dataset, Figures, Report, countTrue, exportRun, fmt, sumInt64, whoami } from "../sluice/index.js";

export const run = exportRun(() => {
  const me = whoami();
  const orders = Dataset.open(me.tenant, "analytics", "orders", ["total_cents", "returned"]);
  let count = 0;
  let returns = 0;
  let cents = 0n;
  for (const batch of orders.batches()) {
    const totals = batch.int64("total_cents").values;
    count += totals.length;
    cents += sumInt64(totals);
    returns += countTrue(batch.boolean("returned").values);
  }
  const figures = new Figures()
    .add("orders", fmt.compact(count))
    .add("avg_order", fmt.dollars(cents, count, 2))
    .add("return_rate", fmt.percent(returns, count, 1));
  Report.create(me.tenant).writeJson(figures.toJson(me.tenant));
  return figures;
});

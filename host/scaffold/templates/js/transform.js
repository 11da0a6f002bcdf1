//! {{name}}: a Sluice tenant transform. Counts the tenant's orders and their average value; make
//! it yours. `./build.sh` builds {{name}}.wasm; README.md says how to run it.

import { Dataset, Figures, Report, exportRun, fmt, sumInt64, whoami } from "./sluice/index.js";

export const run = exportRun(() => {
  const me = whoami();
  // Needs read:analytics:<tenant>; reads only the column it uses.
  const orders = Dataset.open(me.tenant, "analytics", "orders", ["total_cents"]);
  let count = 0;
  let cents = 0n;
  for (const batch of orders.batches()) {
    const totals = batch.int64("total_cents").values;
    count += totals.length;
    cents += sumInt64(totals);
  }
  const figures = new Figures()
    .add("orders", fmt.compact(count))
    .add("avg_order", fmt.dollars(cents, count, 2));
  // Needs write:reports:<tenant>; published only if run returns.
  Report.create(me.tenant).writeJson(figures.toJson(me.tenant));
  return figures;
});

//! Metro Health System's nightly transform in JavaScript: patient visits, average stay,
//! readmission rate. Byte for byte the report the Rust transform writes.

import { Dataset, Figures, Report, countTrue, exportRun, fmt, log, whoami } from "../sluice/index.js";

export const run = exportRun(() => {
  const me = whoami();
  const visits = Dataset.open(me.tenant, "analytics", "visits", ["stay_days", "readmitted"]);
  let rows = 0;
  let stays = 0;
  let readmits = 0;
  let stayTotal = 0;
  for (const batch of visits.batches()) {
    rows += batch.rows;
    // Visits still in progress have no length of stay (null): they count as visits, not toward
    // the average. Summed in order, batch by batch, as the Rust transform does, so the float
    // total is the same to the last bit.
    const days = batch.float64("stay_days");
    let batchTotal = 0;
    for (let i = 0; i < days.values.length; i++) batchTotal += days.values[i];
    stayTotal += batchTotal;
    stays += days.values.length - days.nulls.length;
    readmits += countTrue(batch.boolean("readmitted").values);
  }
  log.info(`${rows} visits, ${stays} with a length of stay`);
  const avgStay = stays ? stayTotal / stays : 0;
  const figures = new Figures()
    .add("patient_visits", fmt.thousands(rows))
    .add("avg_stay", `${avgStay.toFixed(1)} days`)
    .add("readmit_rate", fmt.percent(readmits, rows, 1));
  Report.create(me.tenant).writeJson(figures.toJson(me.tenant));
  return figures;
});

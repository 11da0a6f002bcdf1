//! First National Bank's nightly transform in JavaScript: transaction volume, average balance,
//! fraud rate. Byte for byte the report the Rust transform writes.

import { Dataset, Figures, Report, countTrue, exportRun, fmt, sumInt64, whoami } from "../sluice/index.js";

export const run = exportRun(() => {
  const me = whoami();
  const txns = Dataset.open(me.tenant, "analytics", "transactions", ["balance_cents", "is_fraud"]);
  let transactions = 0;
  let balances = 0;
  let frauds = 0;
  let balanceCents = 0n;
  for (const batch of txns.batches()) {
    const cents = batch.int64("balance_cents");
    transactions += cents.values.length;
    // Null rows hold 0, so the plain sum is the sum over known balances.
    balanceCents += sumInt64(cents.values);
    balances += cents.values.length - cents.nulls.length;
    frauds += countTrue(batch.boolean("is_fraud").values);
  }
  const figures = new Figures()
    .add("transactions", fmt.compact(transactions))
    .add("avg_balance", fmt.dollars(balanceCents, balances, 0))
    .add("fraud_rate", fmt.percent(frauds, transactions, 2));
  Report.create(me.tenant).writeJson(figures.toJson(me.tenant));
  return figures;
});

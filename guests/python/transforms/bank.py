"""First National Bank's nightly transform in Python: transaction volume, average balance, fraud
rate. Byte for byte the report the Rust transform writes."""

import sluice
from sluice import Dataset, Figures, Report, fmt


def run(params: sluice.Params) -> Figures:
    me = sluice.whoami()
    txns = Dataset.open(me.tenant, "analytics", "transactions", ["balance_cents", "is_fraud"])
    balance, fraud = txns.column("balance_cents"), txns.column("is_fraud")
    transactions = balances = frauds = 0
    balance_cents = 0
    for batch in txns.batches():
        cents, nulls = batch.int64(balance)
        flags, _ = batch.boolean(fraud)
        transactions += len(cents)
        # Null rows hold 0, so the plain sum is the sum over known balances.
        balance_cents += sum(cents)
        balances += len(cents) - len(nulls)
        frauds += sum(flags)
    figures = (
        Figures()
        .add("transactions", fmt.compact(transactions))
        .add("avg_balance", fmt.dollars(balance_cents, balances, 0))
        .add("fraud_rate", fmt.percent(frauds, transactions, 2))
    )
    Report.create(me.tenant).write_json(figures.to_json(me.tenant))
    return figures


WitWorld = sluice.export(run)

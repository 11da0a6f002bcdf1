"""Metro Health System's nightly transform in Python: patient visits, average stay, readmission
rate. Byte for byte the report the Rust transform writes."""

import sluice
from sluice import Dataset, Figures, Report, fmt


def run(params: sluice.Params) -> Figures:
    me = sluice.whoami()
    visits = Dataset.open(me.tenant, "analytics", "visits", ["stay_days", "readmitted"])
    stay, readmitted = visits.column("stay_days"), visits.column("readmitted")
    rows = stays = readmits = 0
    stay_total = 0.0
    for batch in visits.batches():
        rows += batch.rows
        # Visits still in progress have no length of stay (null): they count as visits, not
        # toward the average. Summed in order, batch by batch, as the Rust transform does, so the
        # float total is the same to the last bit (Python's sum() compensates; this does not).
        days, nulls = batch.float64(stay)
        batch_total = 0.0
        for day in days:
            batch_total += day
        stay_total += batch_total
        stays += len(days) - len(nulls)
        flags, _ = batch.boolean(readmitted)
        readmits += sum(flags)
    sluice.log.info(f"{rows} visits, {stays} with a length of stay")
    avg_stay = stay_total / stays if stays else 0.0
    figures = (
        Figures()
        .add("patient_visits", fmt.thousands(rows))
        .add("avg_stay", f"{avg_stay:.1f} days")
        .add("readmit_rate", fmt.percent(readmits, rows, 1))
    )
    Report.create(me.tenant).write_json(figures.to_json(me.tenant))
    return figures


WitWorld = sluice.export(run)

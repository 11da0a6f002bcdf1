//! Metro Health System's nightly transform: patient visits, average stay, readmission rate.

use sluice_guest::{Dataset, Figures, Params, Report, RunError, Summary, Transform, fmt};

struct Hospital;

impl Transform for Hospital {
    fn run(_params: Params) -> Result<Summary, RunError> {
        let me = sluice_guest::whoami();
        let visits = Dataset::open_columns(
            &me.tenant,
            "analytics",
            "visits",
            &["stay_days", "readmitted"],
        )?;
        let (stay, readmitted) = (visits.column("stay_days")?, visits.column("readmitted")?);

        let (mut rows, mut stays, mut stay_total, mut readmits) = (0u64, 0u64, 0f64, 0u64);
        for batch in visits.batches() {
            let batch = batch?;
            rows += u64::from(batch.rows());
            // Visits still in progress have no length of stay yet (null): they count as visits
            // but not toward the average stay.
            let (days, nulls) = batch.float64(stay)?;
            stay_total += days.iter().sum::<f64>();
            stays += (days.len() - nulls.len()) as u64;
            let (flags, _) = batch.boolean(readmitted)?;
            readmits += flags.iter().map(|&r| u64::from(r)).sum::<u64>();
        }

        sluice_guest::log::info(&format!("{rows} visits, {stays} with a length of stay"));
        let avg_stay = if stays == 0 {
            0.0
        } else {
            stay_total / stays as f64
        };
        let figures = Figures::new()
            .add("patient_visits", fmt::thousands(rows))
            .add("avg_stay", format!("{avg_stay:.1} days"))
            .add("readmit_rate", fmt::percent(readmits, rows, 1));
        Report::create(&me.tenant)?.write_json(&figures.to_json(&me.tenant))?;
        Ok(figures.into_summary())
    }
}

sluice_guest::export_transform!(Hospital);

//! A tenant's own data as the weapon: these transforms are ordinary readers, and the tests give
//! them hostile files and tables (a decompression or dictionary bomb, an absurd schema, a link
//! out of the data directory). What they must not do is crash, exhaust or stall the host.

use sluice_guest::bindings::sluice::etl::datasets;
use sluice_guest::{Dataset, Figures, Params, RunError, Summary};

use super::me;

/// Reads every column of every dataset it has, to the end, and returns the row count.
pub fn read_everything(_: &Params) -> Result<Summary, RunError> {
    let me = me();
    let mut rows = 0u64;
    for name in Dataset::list(&me, "analytics")? {
        for batch in Dataset::open(&me, "analytics", &name)?.batches() {
            rows += u64::from(batch?.rows());
        }
    }
    Ok(Figures::new().add("rows", rows.to_string()).into_summary())
}

/// Opens its first dataset 16 times and takes one row from each, keeping all of them open: what
/// a reader decodes ahead of the guest is multiplied by the opens.
pub fn open_many(_: &Params) -> Result<Summary, RunError> {
    let me = me();
    let name = Dataset::list(&me, "analytics")?
        .into_iter()
        .next()
        .ok_or_else(|| RunError::Failed("no dataset".into()))?;
    let mut open = Vec::new();
    let mut rows = 0u64;
    for _ in 0..16 {
        let dataset = datasets::open(&me, "analytics", &name, None)?;
        rows += dataset.next_batch(1)?.map_or(0, |b| u64::from(b.rows));
        open.push(dataset);
    }
    Ok(Figures::new().add("rows", rows.to_string()).into_summary())
}

//! Forging what the operator reads: host lines in guest text, denials and limits that never were.

use sluice_guest::{Denial, Error, Figure, LimitExceeded, Params, RunError, Summary};

/// What a forger wants a terminal to show.
const FORGED: &str = "\n   [ALLOWED] datasets.open on read:analytics:bank\n\nCross-tenant isolation verified.\n\nPipeline complete. All tenants processed with isolated scopes.\r\x1b[2K\x1b[8m";

/// Puts host-looking lines, cursor movement and concealed text into its log, its stdout and its
/// failure.
pub fn forged_output(_: &Params) -> Result<Summary, RunError> {
    sluice_guest::log::info(FORGED);
    println!("{FORGED}");
    eprintln!("\x1b[1A\x1b[2K   [RELEASE]  Agent released for bank");
    Err(RunError::Failed(FORGED.into()))
}

/// Returns figures that carry line breaks and escapes: allowed, shown escaped.
pub fn forged_figures(_: &Params) -> Result<Summary, RunError> {
    Ok(Summary {
        figures: vec![Figure {
            name: "rows".into(),
            value: "1\n   [BLOCKED] nothing".into(),
        }],
    })
}

/// Claims a denial the gate never made.
pub fn forged_denial(_: &Params) -> Result<Summary, RunError> {
    Err(RunError::Host(Error::Denied(Denial {
        required: "read:analytics:bank".into(),
        held: vec!["read:analytics:*".into()],
    })))
}

/// Claims a limit the host never reported.
pub fn forged_limit(_: &Params) -> Result<Summary, RunError> {
    Err(RunError::Host(Error::Limit(LimitExceeded {
        name: "rows-read".into(),
        limit: 1,
    })))
}

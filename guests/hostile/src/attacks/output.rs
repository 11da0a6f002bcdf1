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

/// Fails with a message padded by 226 spaces and invisible characters, so that on an 80- or
/// 120-column terminal a forged gate line would start a row of its own.
pub fn forged_invisible(_: &Params) -> Result<Summary, RunError> {
    Err(RunError::Failed(format!(
        "x{}[BLOCKED] datasets.open on read:analytics:bank\u{2060}\u{e0041}\u{3164}\u{061c}",
        " ".repeat(226)
    )))
}

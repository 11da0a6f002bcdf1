//! Forging what the operator reads: host lines in guest text, denials and limits that never were.

use sluice_guest::{Denial, Error, Figure, LimitExceeded, Params, RunError, Summary, param};

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

/// What a tenant would put on the night's page to take it over: scripts, event handlers, a
/// stylesheet, elements that fetch (from `beacon`, a URL the test listens on), markup that closes
/// the table and draws its own verdict, and a bidi override.
fn page_markup_texts(params: &Params) -> Vec<String> {
    let beacon = param(params, "beacon").unwrap_or("http://127.0.0.1:9");
    vec![
        format!("<script>fetch('{beacon}/script')</script>"),
        format!("<img src=\"{beacon}/img\" onerror=\"fetch('{beacon}/onerror')\">"),
        format!("<style>@import url({beacon}/css);body{{display:none}}</style>"),
        format!("<link rel=stylesheet href=\"{beacon}/link\"><iframe src=\"{beacon}/frame\">"),
        "</bdi></td></tr></table><h1 id=\"forged\">complete</h1><table><tr><td>".into(),
        "\" onmouseover=\"alert(1)\" style=\"color:red".into(),
        "\u{202e}lanigiro\u{202c} and <svg onload=alert(1)>".into(),
    ]
}

/// Succeeds with figures and log lines that are markup: the page shows them as text.
pub fn page_markup(params: &Params) -> Result<Summary, RunError> {
    let texts = page_markup_texts(params);
    for text in &texts {
        sluice_guest::log::info(text);
    }
    Ok(Summary {
        figures: texts
            .into_iter()
            .enumerate()
            .map(|(i, value)| Figure {
                name: format!("<b>figure {i}</b>"),
                value,
            })
            .collect(),
    })
}

/// Logs markup and fails with markup for a cause.
pub fn page_markup_failure(params: &Params) -> Result<Summary, RunError> {
    let texts = page_markup_texts(params);
    for text in &texts {
        sluice_guest::log::info(text);
    }
    Err(RunError::Failed(texts.concat()))
}

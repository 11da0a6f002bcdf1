//! Unbounded input: strings and lists far larger than what they stand for.

use sluice_guest::bindings::sluice::etl::datasets;
use sluice_guest::{Figure, Params, RunError, Summary};

/// Opens a dataset of a tenant whose name is 16 MiB long.
pub fn huge_tenant_name(_: &Params) -> Result<Summary, RunError> {
    let name = "t".repeat(16 << 20);
    datasets::open(&name, "analytics", "visits", None)?;
    Err(RunError::Failed("opened it".into()))
}

/// 140 opens with 512 KiB tenant names, alternating two so no two calls in a row are alike.
pub fn long_names_denied(_: &Params) -> Result<Summary, RunError> {
    let names = ["x".repeat(512 << 10), "y".repeat(512 << 10)];
    let mut last = None;
    for i in 0..140 {
        if let Err(e) = datasets::open(&names[i % 2], "analytics", "visits", None) {
            last = Some(e);
        }
    }
    Err(last.map_or(RunError::Failed("no call failed".into()), RunError::Host))
}

/// Fails with a 900 KiB message.
pub fn huge_failure_message(_: &Params) -> Result<Summary, RunError> {
    Err(RunError::Failed("m".repeat(900 << 10)))
}

/// Logs a 900 KiB line through the log interface and another through stdout.
pub fn huge_log_line(_: &Params) -> Result<Summary, RunError> {
    let line = "l".repeat(900 << 10);
    sluice_guest::log::info(&line);
    println!("{line}");
    Err(RunError::Failed("logged two huge lines".into()))
}

/// Returns 60 figures whose values are all the same 1 MiB string: the host would copy 60 MiB
/// out of 1 MiB of guest memory.
pub fn figures_aliasing_one_string(_: &Params) -> Result<Summary, RunError> {
    let mut value = std::mem::ManuallyDrop::new("v".repeat(1 << 20));
    let (ptr, len) = (value.as_mut_ptr(), value.len());
    let figures = (0..60)
        .map(|i| Figure {
            name: format!("f{i}"),
            // SAFETY: none. This guest is hostile on purpose: 60 owners of one buffer, so the
            // returned summary aliases it 60 times. The host must refuse it before copying.
            value: unsafe { String::from_raw_parts(ptr, len, len) },
        })
        .collect();
    Ok(Summary { figures })
}

/// Returns 65 figures; a summary holds at most 64.
pub fn too_many_figures(_: &Params) -> Result<Summary, RunError> {
    let figures = (0..65)
        .map(|i| Figure {
            name: format!("f{i}"),
            value: i.to_string(),
        })
        .collect();
    Ok(Summary { figures })
}

/// Returns a figure whose value is 300 bytes; at most 256.
pub fn long_figure_value(_: &Params) -> Result<Summary, RunError> {
    Ok(Summary {
        figures: vec![Figure {
            name: "avg".into(),
            value: "9".repeat(300),
        }],
    })
}

//! Bounds on what a guest hands the host, checked at the boundary before anything is gated,
//! stored or shown.
//!
//! Wasmtime first caps the bytes copied out of the guest per call (`call-bytes`, the store's
//! hostcall fuel), which also bounds a summary whose figures all alias one huge string. Then
//! each value is held to the size of what it is: a name is a short identifier, a figure a label
//! and a short value. Log lines are cut in [`crate::output`]; reports are budgeted in bytes and
//! checked as JSON.

use crate::error::HostError;
use crate::failure::{MAX_GUEST_MESSAGE_BYTES, RunFailure};
use sluice_text::{GuestText, cut, escape};

/// Longest tenant, resource or dataset name, in bytes.
pub const MAX_NAME_BYTES: usize = 64;
/// Most figures a summary may have.
pub const MAX_FIGURES: usize = 64;
/// Longest figure name, in bytes.
pub const MAX_FIGURE_NAME_BYTES: usize = 64;
/// Longest figure value, in bytes.
pub const MAX_FIGURE_VALUE_BYTES: usize = 256;

/// Whether `name` is a plain name: 1 to 64 ASCII letters, digits, `_` or `-`, not starting with
/// `-`. Tenants, resources and datasets are named so; such a name is safe in a path, a scope, a
/// SQL identifier and a terminal.
pub fn is_plain_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_NAME_BYTES
        && !name.starts_with('-')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// `Ok` for a plain name, else `invalid` naming what was wrong without echoing it whole.
pub(crate) fn check_name(kind: &str, name: &str) -> Result<(), HostError> {
    if is_plain_name(name) {
        return Ok(());
    }
    Err(HostError::Invalid(format!(
        "{kind} name '{}' ({} bytes) is not a plain name: 1-{MAX_NAME_BYTES} of A-Z a-z 0-9 _ -",
        escape(&cut(name, 32)),
        name.len()
    )))
}

/// One figure of a summary, as the guest wrote it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Figure {
    pub name: GuestText,
    pub value: GuestText,
}

/// What a successful run returned: named figures, shown in the host's output.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct Summary {
    pub figures: Vec<Figure>,
}

/// The guest's summary if it is within bounds; otherwise the run fails naming the bound.
pub(crate) fn check_summary(summary: crate::bindings::Summary) -> Result<Summary, RunFailure> {
    let count = summary.figures.len();
    if count > MAX_FIGURES {
        return Err(RunFailure::Refused(format!(
            "the summary has {count} figures; at most {MAX_FIGURES}"
        )));
    }
    let mut figures = Vec::with_capacity(count);
    for (i, figure) in summary.figures.into_iter().enumerate() {
        for (what, text, max) in [
            ("name", &figure.name, MAX_FIGURE_NAME_BYTES),
            ("value", &figure.value, MAX_FIGURE_VALUE_BYTES),
        ] {
            if text.len() > max {
                return Err(RunFailure::Refused(format!(
                    "figure {} {what} is {} bytes; at most {max}",
                    i + 1,
                    text.len()
                )));
            }
        }
        figures.push(Figure {
            name: GuestText::new(figure.name),
            value: GuestText::new(figure.value),
        });
    }
    Ok(Summary { figures })
}

/// A guest's own failure message, cut to [`MAX_GUEST_MESSAGE_BYTES`].
pub(crate) fn guest_message(message: &str) -> GuestText {
    GuestText::new(cut(message, MAX_GUEST_MESSAGE_BYTES))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_names_accept_identifiers_only() {
        for ok in ["bank", "analytics", "tenant_01", "a-b", &"x".repeat(64)] {
            assert!(is_plain_name(ok), "{ok}");
        }
        for bad in [
            "",
            "-x",
            "../etc",
            "a b",
            "a\n",
            "é",
            "a:b",
            &"x".repeat(65),
        ] {
            assert!(!is_plain_name(bad), "{bad:?}");
        }
    }

    #[test]
    fn a_bad_name_is_invalid_and_not_echoed_whole() {
        let name = format!("bank\n{}", "x".repeat(1 << 20));
        let Err(HostError::Invalid(message)) = check_name("tenant", &name) else {
            panic!("expected invalid");
        };
        assert!(message.len() < 200, "{message}");
        assert!(message.starts_with("tenant name 'bank\\nxxx"), "{message}");
        assert!(message.contains("(1048581 bytes)"), "{message}");
    }

    fn summary(figures: &[(&str, &str)]) -> crate::bindings::Summary {
        crate::bindings::Summary {
            figures: figures
                .iter()
                .map(|(n, v)| crate::bindings::Figure {
                    name: n.to_string(),
                    value: v.to_string(),
                })
                .collect(),
        }
    }

    #[test]
    fn summaries_past_their_bounds_fail_naming_the_bound() {
        let many = vec![("a", "1"); 65];
        assert_eq!(
            check_summary(summary(&many)).unwrap_err().to_string(),
            "refused: the summary has 65 figures; at most 64"
        );
        let long = "v".repeat(257);
        assert_eq!(
            check_summary(summary(&[("ok", "1"), ("avg", &long)]))
                .unwrap_err()
                .to_string(),
            "refused: figure 2 value is 257 bytes; at most 256"
        );
        let ok = check_summary(summary(&[("visits", "12,847")])).unwrap();
        assert_eq!(ok.figures[0].value.as_raw(), "12,847");
    }
}

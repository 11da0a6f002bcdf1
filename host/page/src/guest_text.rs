//! Text a tenant controls, as the page shows it: escaped twice over, each for its own danger.
//!
//! [`sluice_text::escape`] turns controls, bidi overrides and invisible characters into visible
//! `\u{..}` forms (so a tenant cannot reorder or hide what the page says), maud's splicing then
//! escapes `<`, `>`, `&` and `"` (so it cannot add markup), and `<bdi>` keeps right-to-left text
//! from reordering the cell around it.

use maud::{Markup, html};

pub fn guest(text: &str) -> Markup {
    html! { bdi { (sluice_text::escape(text)) } }
}

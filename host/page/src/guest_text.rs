//! Text a tenant controls, as the page shows it: escaped twice over, each for its own danger.
//!
//! [`sluice_text::escape`] turns controls, bidi overrides and invisible characters into visible
//! `\u{..}` forms (so a tenant cannot reorder or hide what the page says), maud's splicing then
//! escapes `<`, `>`, `&` and `"` (so it cannot add markup), and `<bdi>` keeps right-to-left text
//! from reordering the cell around it (ASCII, all that most text is once escaped, has no
//! right-to-left character and needs none).

use maud::{Markup, html};

pub fn guest(text: &str) -> Markup {
    let shown = sluice_text::escape(text);
    if shown.is_ascii() {
        return html! { (shown) };
    }
    html! { bdi { (shown) } }
}

#[cfg(test)]
mod tests {
    use super::guest;

    #[test]
    fn markup_is_text_and_right_to_left_text_is_isolated() {
        assert_eq!(
            guest("<script>x</script>").into_string(),
            "&lt;script&gt;x&lt;/script&gt;"
        );
        // An override is shown as its escape, which is ASCII: nothing left to isolate.
        assert_eq!(guest("\u{202e}abc").into_string(), "\\u{202e}abc");
        assert_eq!(guest("שלום <b>").into_string(), "<bdi>שלום &lt;b&gt;</bdi>");
    }
}

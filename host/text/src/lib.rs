//! Text a guest wrote, made safe to show: only the host draws lines on a terminal.
//!
//! A transform controls its log lines, figures and failure messages, and a tenant controls its
//! data (names in its files reach errors). Printed raw, a newline, an ANSI escape, a bidi
//! override or a run of invisible padding in them would let it forge host output (`[ALLOWED]
//! ...`, "Pipeline complete") or push its text to the start of a terminal row. [`GuestText`]
//! keeps the guest's bytes as they were (for JSON and the audit, which escape them their own
//! way) and displays them through [`escape`], which passes only what is plainly visible.

use std::borrow::Cow;
use std::fmt;

use unicode_properties::{GeneralCategoryGroup, UnicodeGeneralCategory as _};

/// A run of more plain spaces than this is shown as its length: padding that would push guest
/// text to the start of a terminal row (the host's own lines indent by at most a few spaces).
const MAX_SPACE_RUN: usize = 4;

/// `text` as a terminal may show it, by allowlist: letters, marks, numbers, punctuation,
/// symbols and the plain space pass raw; everything else (controls, line and paragraph
/// separators, format characters such as bidi overrides and tags, other spaces, invisible
/// fillers and variation selectors, unassigned and private-use code points) is escaped as `\n`,
/// `\r`, `\t` or `\u{..}`, and a run of more than four spaces is shown as `\u{20}×N`.
/// Idempotent: its output contains none of the characters it escapes, and backslashes are left
/// alone.
pub fn escape(text: &str) -> Cow<'_, str> {
    if text.chars().all(shown_raw) && !text.contains(&" ".repeat(MAX_SPACE_RUN + 1)) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            ' ' => {
                let mut run = 1;
                while chars.next_if_eq(&' ').is_some() {
                    run += 1;
                }
                if run > MAX_SPACE_RUN {
                    out.push_str(&format!("\\u{{20}}×{run}"));
                } else {
                    out.extend(std::iter::repeat_n(' ', run));
                }
            }
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if !shown_raw(c) => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// Whether `c` may reach a terminal as it is: a visible character of a letter, mark, number,
/// punctuation or symbol category, or the plain space.
fn shown_raw(c: char) -> bool {
    if c.is_ascii() {
        return c == ' ' || c.is_ascii_graphic();
    }
    matches!(
        c.general_category_group(),
        GeneralCategoryGroup::Letter
            | GeneralCategoryGroup::Mark
            | GeneralCategoryGroup::Number
            | GeneralCategoryGroup::Punctuation
            | GeneralCategoryGroup::Symbol
    ) && !invisible(c)
}

/// Letters, marks and symbols that draw nothing: Unicode's default-ignorable code points of
/// those categories (fillers, the grapheme joiner, variation selectors) and the blank Braille
/// pattern, which pads like a space.
fn invisible(c: char) -> bool {
    matches!(c,
        '\u{034f}'
        | '\u{115f}'..='\u{1160}'
        | '\u{17b4}'..='\u{17b5}'
        | '\u{180b}'..='\u{180f}'
        | '\u{2800}'
        | '\u{3164}'
        | '\u{fe00}'..='\u{fe0f}'
        | '\u{ffa0}'
        | '\u{1bca0}'..='\u{1bca3}'
        | '\u{1d173}'..='\u{1d17a}'
        | '\u{e0000}'..='\u{e0fff}')
}

/// At most `max` bytes of `text`, cut at a character boundary, with a note of the full length
/// when anything was cut.
pub fn cut(text: &str, max: usize) -> Cow<'_, str> {
    if text.len() <= max {
        return Cow::Borrowed(text);
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    Cow::Owned(format!(
        "{}…[cut: {} bytes in all]",
        &text[..end],
        text.len()
    ))
}

/// A string that came from a guest. Displays escaped (see [`escape`]); serializes as it is.
#[derive(Clone, Default, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(transparent)]
pub struct GuestText(String);

impl GuestText {
    pub fn new(text: impl Into<String>) -> GuestText {
        GuestText(text.into())
    }

    /// The guest's exact text. Never print it raw: use `Display`.
    pub fn as_raw(&self) -> &str {
        &self.0
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Display for GuestText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&escape(&self.0))
    }
}

impl fmt::Debug for GuestText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

impl From<&str> for GuestText {
    fn from(text: &str) -> Self {
        GuestText(text.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_text_is_borrowed_unchanged() {
        assert!(matches!(escape("avg_stay 3.2 days ✓"), Cow::Borrowed(_)));
    }

    #[test]
    fn line_breaks_and_terminal_controls_are_escaped() {
        assert_eq!(
            escape("ok\n  [ALLOWED] x\r\x1b[2K\x1b[8mhidden\u{7f}"),
            "ok\\n  [ALLOWED] x\\r\\u{1b}[2K\\u{1b}[8mhidden\\u{7f}"
        );
        assert_eq!(
            escape("a\u{2028}b\u{202e}c\u{200b}"),
            "a\\u{2028}b\\u{202e}c\\u{200b}"
        );
        assert_eq!(escape("\u{9b}31m"), "\\u{9b}31m", "C1 CSI");
    }

    #[test]
    fn escaping_is_idempotent() {
        for text in [
            "a\nb\x1b",
            "x          y",
            "a\u{2060}\u{e0041}b",
            "\\u{20}×9",
        ] {
            let once = escape(text).into_owned();
            assert_eq!(escape(&once), once, "{text:?}");
        }
    }

    #[test]
    fn invisible_and_format_characters_are_escaped_by_allowlist() {
        // Each drew nothing (or reordered text) when printed raw.
        for c in [
            '\u{061c}',
            '\u{2060}',
            '\u{2061}',
            '\u{2062}',
            '\u{2063}',
            '\u{2064}',
            '\u{180e}',
            '\u{00ad}',
            '\u{e0001}',
            '\u{e0041}',
            '\u{e007f}',
            '\u{fff9}',
            '\u{fffa}',
            '\u{fffb}',
            '\u{3164}',
            '\u{034f}',
            '\u{1d173}',
            '\u{00a0}',
            '\u{3000}',
            '\u{fe0f}',
            '\u{e0100}',
            '\u{115f}',
            '\u{ffa0}',
            '\u{2800}',
            '\u{e000}',
            '\u{0378}',
        ] {
            let text = format!("a{c}b");
            assert_eq!(
                escape(&text),
                format!("a\\u{{{:x}}}b", c as u32),
                "U+{:04X}",
                c as u32
            );
        }
    }

    #[test]
    fn visible_text_of_every_script_passes_raw() {
        for text in [
            "Zürich",
            "東京都",
            "مرحبا",
            "naïve café",
            "€ 12,50 ± 3 ✓",
            "e\u{301}",
            "👩‍💻",
        ] {
            // The zero-width joiner of an emoji sequence is a format character: escaped.
            let expected = text.replace('\u{200d}', "\\u{200d}");
            assert_eq!(escape(text), expected);
        }
    }

    #[test]
    fn long_runs_of_spaces_are_collapsed_so_text_cannot_be_pushed_to_a_new_row() {
        let forged = format!(
            "x{}[BLOCKED] datasets.open on read:analytics:bank",
            " ".repeat(226)
        );
        assert_eq!(
            escape(&forged),
            "x\\u{20}×226[BLOCKED] datasets.open on read:analytics:bank"
        );
        assert_eq!(escape("a    b"), "a    b", "four spaces are text");
    }

    #[test]
    fn cut_keeps_char_boundaries_and_says_how_long_it_was() {
        assert_eq!(cut("héllo", 2), "h…[cut: 6 bytes in all]");
        assert_eq!(cut("short", 10), "short");
    }

    #[test]
    fn guest_text_displays_escaped_and_serializes_raw() {
        let text = GuestText::new("1\n2");
        assert_eq!(text.to_string(), "1\\n2");
        assert_eq!(serde_json::to_string(&text).unwrap(), "\"1\\n2\"");
        assert_eq!(text.as_raw(), "1\n2");
    }
}

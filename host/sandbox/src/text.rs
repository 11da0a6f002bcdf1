//! Text a guest wrote, made safe to show: only the host draws lines on a terminal.
//!
//! A transform controls its log lines, figures and failure messages. Printed raw, a newline or an
//! ANSI escape in them would let it forge host output (`[ALLOWED] ...`, "Pipeline complete").
//! [`GuestText`] keeps the guest's bytes as they were (for JSON and the audit, which escape them
//! their own way) and displays them with every control character escaped.

use std::borrow::Cow;
use std::fmt;

/// `text` with control characters, line and paragraph separators, bidirectional overrides and
/// zero-width characters escaped as `\n`, `\r`, `\t` or `\u{..}`. Idempotent: its output
/// contains none of the characters it escapes, and backslashes are left alone.
pub fn escape(text: &str) -> Cow<'_, str> {
    if !text.chars().any(needs_escape) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if needs_escape(c) => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

fn needs_escape(c: char) -> bool {
    c.is_control()
        || matches!(c,
            // zero-width characters and direction marks
            '\u{200b}'..='\u{200f}'
            // line and paragraph separators
            | '\u{2028}' | '\u{2029}'
            // bidirectional embeddings, overrides and isolates
            | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}'
            | '\u{feff}')
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
#[derive(Clone, Default, PartialEq, Eq, Hash, serde::Serialize)]
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
        let once = escape("a\nb\x1b").into_owned();
        assert_eq!(escape(&once), once);
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

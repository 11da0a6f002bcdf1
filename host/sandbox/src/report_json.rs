//! The one check a report passes before it is committed: a single JSON document that every
//! reader parses the same way.
//!
//! That is RFC 8259 as I-JSON (RFC 7493) narrows it: UTF-8, no lone surrogates in `\u` escapes,
//! no duplicate member names, numbers that are finite as binary64, plus a nesting limit, because
//! recursive parsers (Python's `json`, most JavaScript engines) fail on deep documents. The
//! parser is recursive descent bounded by that same limit, so a hostile report cannot exhaust
//! the host's stack either.

use std::collections::HashSet;
use std::fmt;

/// Deepest nesting of arrays and objects a report may have.
pub const MAX_DEPTH: usize = 64;

/// Why a report is refused, and the byte offset where the parser saw it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JsonError {
    pub offset: usize,
    pub reason: String,
}

impl fmt::Display for JsonError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} at byte {}", self.reason, self.offset)
    }
}

/// Checks that `bytes` is exactly one I-JSON document (whitespace around it allowed).
pub fn check(bytes: &[u8]) -> Result<(), JsonError> {
    if let Err(e) = std::str::from_utf8(bytes) {
        return Err(JsonError {
            offset: e.valid_up_to(),
            reason: "invalid UTF-8".into(),
        });
    }
    let mut p = Parser { s: bytes, pos: 0 };
    p.ws();
    if p.pos == bytes.len() {
        return p.fail("empty document");
    }
    p.value(0)?;
    p.ws();
    if p.pos != bytes.len() {
        return p.fail("more than one JSON value");
    }
    Ok(())
}

struct Parser<'a> {
    s: &'a [u8],
    pos: usize,
}

impl Parser<'_> {
    fn fail<T>(&self, reason: impl Into<String>) -> Result<T, JsonError> {
        Err(JsonError {
            offset: self.pos,
            reason: reason.into(),
        })
    }

    fn peek(&self) -> Option<u8> {
        self.s.get(self.pos).copied()
    }

    fn ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.pos += 1;
        }
    }

    fn expect(&mut self, byte: u8, what: &str) -> Result<(), JsonError> {
        if self.peek() == Some(byte) {
            self.pos += 1;
            Ok(())
        } else {
            self.fail(format!("expected {what}"))
        }
    }

    fn value(&mut self, depth: usize) -> Result<(), JsonError> {
        match self.peek() {
            Some(b'{' | b'[') if depth >= MAX_DEPTH => {
                self.fail(format!("nested deeper than {MAX_DEPTH} levels"))
            }
            Some(b'{') => self.object(depth + 1),
            Some(b'[') => self.array(depth + 1),
            Some(b'"') => self.string(false).map(drop),
            Some(b't') => self.literal("true"),
            Some(b'f') => self.literal("false"),
            Some(b'n') => self.literal("null"),
            Some(b'-' | b'0'..=b'9') => self.number(),
            Some(_) => self.fail("expected a JSON value"),
            None => self.fail("unexpected end of document"),
        }
    }

    fn literal(&mut self, word: &str) -> Result<(), JsonError> {
        if self.s[self.pos..].starts_with(word.as_bytes()) {
            self.pos += word.len();
            Ok(())
        } else {
            self.fail("expected a JSON value")
        }
    }

    fn object(&mut self, depth: usize) -> Result<(), JsonError> {
        self.pos += 1;
        self.ws();
        if self.peek() == Some(b'}') {
            self.pos += 1;
            return Ok(());
        }
        let mut keys = HashSet::new();
        loop {
            self.ws();
            let at = self.pos;
            if self.peek() != Some(b'"') {
                return self.fail("expected a member name");
            }
            let key = self.string(true)?;
            if !keys.insert(key) {
                return Err(JsonError {
                    offset: at,
                    reason: "duplicate member name".into(),
                });
            }
            self.ws();
            self.expect(b':', "':'")?;
            self.ws();
            self.value(depth)?;
            self.ws();
            match self.peek() {
                Some(b',') => self.pos += 1,
                Some(b'}') => {
                    self.pos += 1;
                    return Ok(());
                }
                _ => return self.fail("expected ',' or '}'"),
            }
        }
    }

    fn array(&mut self, depth: usize) -> Result<(), JsonError> {
        self.pos += 1;
        self.ws();
        if self.peek() == Some(b']') {
            self.pos += 1;
            return Ok(());
        }
        loop {
            self.ws();
            self.value(depth)?;
            self.ws();
            match self.peek() {
                Some(b',') => self.pos += 1,
                Some(b']') => {
                    self.pos += 1;
                    return Ok(());
                }
                _ => return self.fail("expected ',' or ']'"),
            }
        }
    }

    /// A string, decoded when `decode` (member names are compared decoded: `"a"` and `"\u0061"`
    /// are the same name).
    fn string(&mut self, decode: bool) -> Result<String, JsonError> {
        self.pos += 1;
        let mut out = String::new();
        loop {
            let start = self.pos;
            while let Some(b) = self.peek() {
                if b == b'"' || b == b'\\' || b < 0x20 {
                    break;
                }
                self.pos += 1;
            }
            if decode {
                // The document was checked to be UTF-8 and runs stop at ASCII bytes.
                out.push_str(std::str::from_utf8(&self.s[start..self.pos]).unwrap_or_default());
            }
            match self.peek() {
                Some(b'"') => {
                    self.pos += 1;
                    return Ok(out);
                }
                Some(b'\\') => {
                    let c = self.escape()?;
                    if decode {
                        out.push(c);
                    }
                }
                Some(_) => return self.fail("unescaped control character in a string"),
                None => return self.fail("unterminated string"),
            }
        }
    }

    fn escape(&mut self) -> Result<char, JsonError> {
        self.pos += 1;
        let c = match self.peek() {
            Some(b'"') => '"',
            Some(b'\\') => '\\',
            Some(b'/') => '/',
            Some(b'b') => '\u{8}',
            Some(b'f') => '\u{c}',
            Some(b'n') => '\n',
            Some(b'r') => '\r',
            Some(b't') => '\t',
            Some(b'u') => {
                self.pos += 1;
                let at = self.pos - 2;
                let unit = self.hex4()?;
                let code = match unit {
                    0xD800..=0xDBFF => {
                        if !self.s[self.pos..].starts_with(b"\\u") {
                            return Err(JsonError {
                                offset: at,
                                reason: "lone surrogate in a \\u escape".into(),
                            });
                        }
                        self.pos += 2;
                        let low = self.hex4()?;
                        if !(0xDC00..=0xDFFF).contains(&low) {
                            return Err(JsonError {
                                offset: at,
                                reason: "lone surrogate in a \\u escape".into(),
                            });
                        }
                        0x10000 + ((unit - 0xD800) << 10) + (low - 0xDC00)
                    }
                    0xDC00..=0xDFFF => {
                        return Err(JsonError {
                            offset: at,
                            reason: "lone surrogate in a \\u escape".into(),
                        });
                    }
                    other => other,
                };
                return char::from_u32(code).map_or_else(|| self.fail("invalid \\u escape"), Ok);
            }
            _ => return self.fail("invalid escape"),
        };
        self.pos += 1;
        Ok(c)
    }

    fn hex4(&mut self) -> Result<u32, JsonError> {
        let digits = self.s.get(self.pos..self.pos + 4);
        let value = digits
            .and_then(|d| std::str::from_utf8(d).ok())
            .filter(|d| d.bytes().all(|b| b.is_ascii_hexdigit()))
            .and_then(|d| u32::from_str_radix(d, 16).ok());
        match value {
            Some(v) => {
                self.pos += 4;
                Ok(v)
            }
            None => self.fail("invalid \\u escape"),
        }
    }

    fn number(&mut self) -> Result<(), JsonError> {
        let start = self.pos;
        if self.peek() == Some(b'-') {
            self.pos += 1;
        }
        match self.peek() {
            Some(b'0') => self.pos += 1,
            Some(b'1'..=b'9') => self.digits(),
            _ => return self.fail("invalid number"),
        }
        if self.peek() == Some(b'.') {
            self.pos += 1;
            if !matches!(self.peek(), Some(b'0'..=b'9')) {
                return self.fail("invalid number");
            }
            self.digits();
        }
        if matches!(self.peek(), Some(b'e' | b'E')) {
            self.pos += 1;
            if matches!(self.peek(), Some(b'+' | b'-')) {
                self.pos += 1;
            }
            if !matches!(self.peek(), Some(b'0'..=b'9')) {
                return self.fail("invalid number");
            }
            self.digits();
        }
        let text = std::str::from_utf8(&self.s[start..self.pos]).unwrap_or_default();
        match text.parse::<f64>() {
            Ok(n) if n.is_finite() => Ok(()),
            _ => Err(JsonError {
                offset: start,
                reason: "number out of range of a 64-bit float".into(),
            }),
        }
    }

    fn digits(&mut self) {
        while matches!(self.peek(), Some(b'0'..=b'9')) {
            self.pos += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reason(doc: &[u8]) -> String {
        check(doc).unwrap_err().to_string()
    }

    #[test]
    fn accepts_what_every_reader_reads_alike() {
        for doc in [
            &br#"{"tenant":"bank","figures":{"avg":"$8,420"}}"#[..],
            b" [1, -0, 2.5e-3, 1E+2, true, false, null, \"\\u00e9\\ud83d\\ude00\\n\"] ",
            "\"caf\u{e9}\"".as_bytes(),
            b"{\"a\":{\"a\":1},\"b\":[{\"a\":2}]}",
        ] {
            assert_eq!(check(doc), Ok(()), "{}", String::from_utf8_lossy(doc));
        }
    }

    #[test]
    fn rejects_what_readers_disagree_on_with_the_reason() {
        assert_eq!(
            reason(b"{\"a\":1,\"a\":2}"),
            "duplicate member name at byte 7"
        );
        assert_eq!(
            reason(b"{\"a\":1,\"\\u0061\":2}"),
            "duplicate member name at byte 7"
        );
        assert_eq!(
            reason(b"[\"\\ud800\"]"),
            "lone surrogate in a \\u escape at byte 2"
        );
        assert_eq!(
            reason(b"[\"\\udc00x\"]"),
            "lone surrogate in a \\u escape at byte 2"
        );
        assert_eq!(
            reason(b"[1e400]"),
            "number out of range of a 64-bit float at byte 1"
        );
        assert_eq!(reason(b"[\"a\xff\"]"), "invalid UTF-8 at byte 3");
        assert_eq!(reason(b"{} {}"), "more than one JSON value at byte 3");
        assert_eq!(reason(b""), "empty document at byte 0");
        assert_eq!(reason(b"[01]"), "expected ',' or ']' at byte 2");
        assert_eq!(reason(b"[NaN]"), "expected a JSON value at byte 1");
        assert_eq!(
            reason(b"[\"a\nb\"]"),
            "unescaped control character in a string at byte 3"
        );
    }

    #[test]
    fn nesting_is_bounded_without_recursing_past_the_bound() {
        let ok = format!("{}{}", "[".repeat(MAX_DEPTH), "]".repeat(MAX_DEPTH));
        assert_eq!(check(ok.as_bytes()), Ok(()));
        let deep = "[".repeat(100_000);
        assert_eq!(
            reason(deep.as_bytes()),
            format!("nested deeper than {MAX_DEPTH} levels at byte {MAX_DEPTH}")
        );
    }
}

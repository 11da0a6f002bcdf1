//! Text forms of Arrow's date, timestamp and decimal types, for sources that store them as text
//! (SQLite has no such types): `2026-11-28`, `2026-11-28T23:59:00.123456Z` (or a space for `T`,
//! an offset for `Z`), `-1234.50`. Exact: no floating point on the way.

use sluice_sandbox::{SourceError, cut, escape, is_plain_name};

/// Names reach paths and queries in sources: checked again there, whoever calls (the sandbox
/// checks them at its boundary first).
pub fn check_name(kind: &str, name: &str) -> Result<(), SourceError> {
    if is_plain_name(name) {
        Ok(())
    } else {
        Err(SourceError::Invalid(format!(
            "{kind} name '{}' must be 1-64 ASCII letters, digits, '_' or '-'",
            escape(&cut(name, 32))
        )))
    }
}

/// Days from 1970-01-01 to the proleptic Gregorian date `y-m-d` (Howard Hinnant's algorithm).
pub fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (i64::from(m) + 9) % 12;
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn number(text: &str, what: &str) -> Result<u32, String> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("'{}' is not a {what}", escape(&cut(text, 32))));
    }
    text.parse()
        .map_err(|_| format!("'{text}' is not a {what}"))
}

/// `YYYY-MM-DD` as days since 1970-01-01.
pub(crate) fn parse_date(text: &str) -> Result<i32, String> {
    let bad = || format!("'{}' is not a date (YYYY-MM-DD)", escape(&cut(text, 32)));
    let mut parts = text.splitn(3, '-');
    let (Some(y), Some(m), Some(d)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(bad());
    };
    let (y, m, d) = (
        number(y, "year").map_err(|_| bad())?,
        number(m, "month").map_err(|_| bad())?,
        number(d, "day").map_err(|_| bad())?,
    );
    let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    let days_in_month = [
        31,
        if leap { 29 } else { 28 },
        31,
        30,
        31,
        30,
        31,
        31,
        30,
        31,
        30,
        31,
    ];
    if y.to_string().len() != 4
        || !(1..=12).contains(&m)
        || d == 0
        || d > days_in_month[m as usize - 1]
    {
        return Err(bad());
    }
    i32::try_from(days_from_civil(i64::from(y), m, d)).map_err(|_| bad())
}

/// An ISO-8601 instant, `YYYY-MM-DD[T ]HH:MM:SS[.ffffff](Z|±HH:MM)`, as microseconds since the
/// epoch; without a zone it is taken as UTC.
pub(crate) fn parse_timestamp(text: &str) -> Result<i64, String> {
    let bad = || {
        format!(
            "'{}' is not a timestamp (YYYY-MM-DD HH:MM:SS[.ffffff][Z|±HH:MM])",
            escape(&cut(text, 40))
        )
    };
    if text.len() < 19 || !text.is_char_boundary(10) || !text.is_char_boundary(19) {
        return Err(bad());
    }
    let days = parse_date(&text[..10]).map_err(|_| bad())?;
    if !matches!(text.as_bytes()[10], b'T' | b' ') {
        return Err(bad());
    }
    let clock: Vec<&str> = text[11..19].split(':').collect();
    let [h, mi, s] = clock.as_slice() else {
        return Err(bad());
    };
    let (h, mi, s) = (
        number(h, "hour").map_err(|_| bad())?,
        number(mi, "minute").map_err(|_| bad())?,
        number(s, "second").map_err(|_| bad())?,
    );
    if h > 23 || mi > 59 || s > 59 {
        return Err(bad());
    }
    let mut rest = &text[19..];
    let mut micros = 0i64;
    if let Some(fraction) = rest.strip_prefix('.') {
        let digits = fraction.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 || digits > 9 {
            return Err(bad());
        }
        let padded = format!("{:0<6}", &fraction[..digits.min(6)]);
        micros = i64::from(number(&padded, "fraction").map_err(|_| bad())?);
        rest = &fraction[digits..];
    }
    let offset_seconds = match rest {
        "" | "Z" => 0,
        zone if zone.len() == 6 && (zone.starts_with('+') || zone.starts_with('-')) => {
            let (zh, zm) = (
                number(&zone[1..3], "hour").map_err(|_| bad())?,
                number(&zone[4..6], "minute").map_err(|_| bad())?,
            );
            if &zone[3..4] != ":" || zh > 23 || zm > 59 {
                return Err(bad());
            }
            let seconds = i64::from(zh * 3600 + zm * 60);
            if zone.starts_with('-') {
                -seconds
            } else {
                seconds
            }
        }
        _ => return Err(bad()),
    };
    let seconds = i64::from(days) * 86_400 + i64::from(h * 3600 + mi * 60 + s) - offset_seconds;
    Ok(seconds * 1_000_000 + micros)
}

/// A decimal's text (`-1234.5`, `42`) as its unscaled value at `scale`, refusing anything that
/// would lose digits or exceed `precision`.
pub(crate) fn parse_decimal(text: &str, precision: u8, scale: i8) -> Result<i128, String> {
    let bad = |why: &str| {
        format!(
            "'{}' is not a decimal({precision}, {scale}): {why}",
            escape(&cut(text, 40))
        )
    };
    let (negative, digits) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text.strip_prefix('+').unwrap_or(text)),
    };
    let (whole, fraction) = digits.split_once('.').unwrap_or((digits, ""));
    if whole.is_empty() && fraction.is_empty()
        || !whole.bytes().all(|b| b.is_ascii_digit())
        || !fraction.bytes().all(|b| b.is_ascii_digit())
    {
        return Err(bad("not a number"));
    }
    let scale_digits = usize::try_from(scale.max(0)).unwrap_or(0);
    let fraction = fraction.trim_end_matches('0');
    if fraction.len() > scale_digits {
        return Err(bad("more digits after the point than its scale"));
    }
    let unscaled = format!("{whole}{fraction:0<scale_digits$}");
    let significant = unscaled.trim_start_matches('0');
    if significant.len() > usize::from(precision) {
        return Err(bad("more digits than its precision"));
    }
    let value: i128 = if significant.is_empty() {
        0
    } else {
        significant.parse().map_err(|_| bad("out of range"))?
    };
    Ok(if negative { -value } else { value })
}

/// `(precision, scale)` of a declared type such as `DECIMAL(12, 2)` or `NUMERIC(10)`.
pub fn declared_decimal(declared: &str) -> Option<(u8, i8)> {
    let upper = declared.to_ascii_uppercase();
    if !(upper.starts_with("DECIMAL") || upper.starts_with("NUMERIC")) {
        return None;
    }
    let inside = upper.split_once('(')?.1.strip_suffix(')')?;
    let mut parts = inside.split(',').map(str::trim);
    let precision: u8 = parts.next()?.parse().ok()?;
    let scale: i8 = parts.next().map_or(Some(0), |s| s.parse().ok())?;
    ((1..=38).contains(&precision) && scale >= 0 && scale as u8 <= precision)
        .then_some((precision, scale))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_timestamps_and_decimals_parse_exactly() {
        assert_eq!(parse_date("1970-01-01"), Ok(0));
        assert_eq!(parse_date("2000-03-01"), Ok(11_017));
        assert_eq!(parse_date("1969-12-31"), Ok(-1));
        assert!(parse_date("2023-02-29").is_err());
        assert!(parse_date("2024-13-01").is_err());
        assert_eq!(parse_timestamp("1970-01-01T00:00:01Z"), Ok(1_000_000));
        assert_eq!(parse_timestamp("1970-01-01 00:00:00.5"), Ok(500_000));
        assert_eq!(parse_timestamp("1970-01-01T01:00:00+01:00"), Ok(0));
        assert!(parse_timestamp("1970-01-01T24:00:00Z").is_err());
        assert_eq!(parse_decimal("-1234.5", 10, 2), Ok(-123_450));
        assert_eq!(parse_decimal("42", 5, 0), Ok(42));
        assert_eq!(parse_decimal("0.10", 3, 1), Ok(1));
        assert!(parse_decimal("1.234", 10, 2).is_err());
        assert!(parse_decimal("123456", 5, 0).is_err());
        assert_eq!(declared_decimal("DECIMAL(12, 2)"), Some((12, 2)));
        assert_eq!(declared_decimal("numeric(10)"), Some((10, 0)));
        assert_eq!(declared_decimal("REAL"), None);
    }
}

//! Formatting of report figures the way the seed shows them: `12,847`, `2.4M`, `$8,420`, `4.1%`.
//!
//! Rounding is done in integers where the inputs are integers, so a figure never flips on a
//! floating-point tie.

/// `12847` → `12,847`.
pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// `2_400_000` → `2.4M`, `847_000` → `847K`, `999` → `999`: one decimal, `.0` dropped.
pub fn compact(n: u64) -> String {
    let (unit, suffix) = match n {
        1_000_000_000.. => (1_000_000_000, "B"),
        1_000_000.. => (1_000_000, "M"),
        1_000.. => (1_000, "K"),
        _ => return n.to_string(),
    };
    // Tenths of the unit, rounded half up.
    let tenths = (n * 10 + unit / 2) / unit;
    if tenths.is_multiple_of(10) {
        format!("{}{suffix}", tenths / 10)
    } else {
        format!("{}.{}{suffix}", tenths / 10, tenths % 10)
    }
}

/// `part / whole` as a percentage with `decimals` decimals: `percent(527, 12847, 1)` → `4.1%`.
pub fn percent(part: u64, whole: u64, decimals: u32) -> String {
    if whole == 0 {
        return "n/a".to_string();
    }
    let scale = 10u128.pow(decimals);
    let scaled = (u128::from(part) * 100 * scale * 2 + u128::from(whole)) / (u128::from(whole) * 2);
    fixed(scaled, decimals) + "%"
}

/// The mean of `total_cents` over `count` as dollars with `decimals` (0 or 2) decimals and
/// thousands separators: `dollars(842_000 * n, n, 0)` → `$8,420`.
pub fn dollars(total_cents: i128, count: u64, decimals: u32) -> String {
    if count == 0 {
        return "n/a".to_string();
    }
    let count = i128::from(count);
    let divisor = count * 10i128.pow(2 - decimals.min(2));
    let rounded = (total_cents * 2 + total_cents.signum() * divisor) / (divisor * 2);
    let sign = if rounded < 0 { "-" } else { "" };
    let rounded = rounded.unsigned_abs();
    let scale = 10u128.pow(decimals.min(2));
    let whole = thousands((rounded / scale) as u64);
    if decimals == 0 {
        format!("{sign}${whole}")
    } else {
        format!(
            "{sign}${whole}.{:0width$}",
            rounded % scale,
            width = decimals.min(2) as usize
        )
    }
}

fn fixed(scaled: u128, decimals: u32) -> String {
    if decimals == 0 {
        return scaled.to_string();
    }
    let scale = 10u128.pow(decimals);
    format!(
        "{}.{:0width$}",
        scaled / scale,
        scaled % scale,
        width = decimals as usize
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seed_figures() {
        assert_eq!(thousands(12_847), "12,847");
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(1_000), "1,000");
        assert_eq!(compact(2_400_000), "2.4M");
        assert_eq!(compact(847_000), "847K");
        assert_eq!(compact(12_847), "12.8K");
        assert_eq!(compact(999), "999");
        assert_eq!(percent(527, 12_847, 1), "4.1%");
        assert_eq!(percent(480, 2_400_000, 2), "0.02%");
        assert_eq!(percent(71_148, 847_000, 1), "8.4%");
        assert_eq!(dollars(842_000 * 7, 7, 0), "$8,420");
        assert_eq!(dollars(6_730 * 3, 3, 2), "$67.30");
        assert_eq!(dollars(842_049, 1, 0), "$8,420");
        assert_eq!(dollars(842_050, 1, 0), "$8,421");
        assert_eq!(dollars(-150, 1, 2), "-$1.50");
    }
}

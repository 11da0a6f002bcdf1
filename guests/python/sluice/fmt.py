"""Formatting of report figures the way the seed shows them: ``12,847``, ``2.4M``, ``$8,420``,
``4.1%``. Integer arithmetic where the inputs are integers, exactly as the Rust SDK's ``fmt``, so
every language writes the same bytes."""


def thousands(n: int) -> str:
    """``12847`` -> ``12,847``."""
    return f"{n:,}"


def compact(n: int) -> str:
    """``2_400_000`` -> ``2.4M``, ``847_000`` -> ``847K``, ``999`` -> ``999``."""
    for unit, suffix in ((1_000_000_000, "B"), (1_000_000, "M"), (1_000, "K")):
        if n >= unit:
            tenths = (n * 10 + unit // 2) // unit
            if tenths % 10 == 0:
                return f"{tenths // 10}{suffix}"
            return f"{tenths // 10}.{tenths % 10}{suffix}"
    return str(n)


def _fixed(scaled: int, decimals: int) -> str:
    if decimals == 0:
        return str(scaled)
    scale = 10**decimals
    return f"{scaled // scale}.{scaled % scale:0{decimals}d}"


def percent(part: int, whole: int, decimals: int) -> str:
    """``part / whole`` as a percentage: ``percent(527, 12847, 1)`` -> ``4.1%``."""
    if whole == 0:
        return "n/a"
    scale = 10**decimals
    scaled = (part * 100 * scale * 2 + whole) // (whole * 2)
    return _fixed(scaled, decimals) + "%"


def dollars(total_cents: int, count: int, decimals: int) -> str:
    """The mean of ``total_cents`` over ``count`` as dollars: ``dollars(842_000 * 7, 7, 0)`` ->
    ``$8,420``."""
    if count == 0:
        return "n/a"
    decimals = min(decimals, 2)
    divisor = count * 10 ** (2 - decimals)
    sign_of_total = (total_cents > 0) - (total_cents < 0)
    numerator = total_cents * 2 + sign_of_total * divisor
    # Rust's integer division truncates toward zero.
    rounded = abs(numerator) // (divisor * 2) * (1 if numerator >= 0 else -1)
    sign = "-" if rounded < 0 else ""
    rounded = abs(rounded)
    scale = 10**decimals
    whole = thousands(rounded // scale)
    if decimals == 0:
        return f"{sign}${whole}"
    return f"{sign}${whole}.{rounded % scale:0{decimals}d}"

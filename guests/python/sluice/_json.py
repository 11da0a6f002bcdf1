"""The JSON every Sluice SDK writes for a report: compact, keys in the given order, the same
escapes as the Rust SDK's writer, so the same figures are the same bytes in every language."""

from typing import List, Tuple, Union

Value = Union[str, int, List[Tuple[str, "Value"]]]


def _string(text: str) -> str:
    out = ['"']
    for ch in text:
        if ch == '"':
            out.append('\\"')
        elif ch == "\\":
            out.append("\\\\")
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\r":
            out.append("\\r")
        elif ch == "\t":
            out.append("\\t")
        elif ord(ch) < 0x20:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def to_json(members: List[Tuple[str, Value]]) -> str:
    """``members`` as a compact JSON object; a list value is a nested object."""
    parts = []
    for key, value in members:
        if isinstance(value, str):
            rendered = _string(value)
        elif isinstance(value, int):
            rendered = str(value)
        else:
            rendered = to_json(value)
        parts.append(f"{_string(key)}:{rendered}")
    return "{" + ",".join(parts) + "}"

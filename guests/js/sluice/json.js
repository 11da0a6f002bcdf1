//! The JSON every Sluice SDK writes for a report: compact, keys in the given order, the same
//! escapes as the Rust SDK's writer, so the same figures are the same bytes in every language.

/** @param {string} text @returns {string} */
function string(text) {
  let out = '"';
  for (const ch of text) {
    const code = ch.codePointAt(0);
    if (ch === '"') out += '\\"';
    else if (ch === "\\") out += "\\\\";
    else if (ch === "\n") out += "\\n";
    else if (ch === "\r") out += "\\r";
    else if (ch === "\t") out += "\\t";
    else if (code < 0x20) out += "\\u" + code.toString(16).padStart(4, "0");
    else out += ch;
  }
  return out + '"';
}

/**
 * `members` as a compact JSON object; an array value is a nested object.
 * @typedef {string | number | bigint | Array<[string, any]>} Value
 * @param {Array<[string, Value]>} members
 * @returns {string}
 */
export function toJson(members) {
  const parts = members.map(([key, value]) => {
    const rendered =
      typeof value === "string"
        ? string(value)
        : typeof value === "number" || typeof value === "bigint"
          ? String(value)
          : toJson(value);
    return `${string(key)}:${rendered}`;
  });
  return "{" + parts.join(",") + "}";
}

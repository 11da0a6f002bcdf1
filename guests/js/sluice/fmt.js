//! Formatting of report figures the way the seed shows them: `12,847`, `2.4M`, `$8,420`, `4.1%`.
//! Integer arithmetic in `bigint`, exactly as the Rust SDK's `fmt`, so every language writes the
//! same bytes; every function takes `number` (an integer) or `bigint`.

/** @param {number | bigint} n @returns {bigint} */
const big = (n) => (typeof n === "bigint" ? n : BigInt(n));

/** `12847` -> `12,847`. @param {number | bigint} n @returns {string} */
export function thousands(n) {
  const v = big(n);
  const digits = (v < 0n ? -v : v).toString();
  let out = "";
  for (let i = 0; i < digits.length; i++) {
    if (i > 0 && (digits.length - i) % 3 === 0) out += ",";
    out += digits[i];
  }
  return (v < 0n ? "-" : "") + out;
}

/** `2400000` -> `2.4M`, `847000` -> `847K`, `999` -> `999`. @param {number | bigint} n */
export function compact(n) {
  const v = big(n);
  for (const [unit, suffix] of [
    [1000000000n, "B"],
    [1000000n, "M"],
    [1000n, "K"],
  ]) {
    if (v >= unit) {
      const tenths = (v * 10n + unit / 2n) / unit;
      return tenths % 10n === 0n
        ? `${tenths / 10n}${suffix}`
        : `${tenths / 10n}.${tenths % 10n}${suffix}`;
    }
  }
  return v.toString();
}

/** @param {bigint} scaled @param {number} decimals */
function fixed(scaled, decimals) {
  if (decimals === 0) return scaled.toString();
  const scale = 10n ** BigInt(decimals);
  return `${scaled / scale}.${(scaled % scale).toString().padStart(decimals, "0")}`;
}

/**
 * `part / whole` as a percentage: `percent(527, 12847, 1)` -> `4.1%`.
 * @param {number | bigint} part @param {number | bigint} whole @param {number} decimals
 */
export function percent(part, whole, decimals) {
  const p = big(part);
  const w = big(whole);
  if (w === 0n) return "n/a";
  const scale = 10n ** BigInt(decimals);
  return fixed((p * 100n * scale * 2n + w) / (w * 2n), decimals) + "%";
}

/**
 * The mean of `totalCents` over `count` as dollars: `dollars(5894000n, 7, 0)` -> `$8,420`.
 * @param {number | bigint} totalCents @param {number | bigint} count @param {number} decimals
 */
export function dollars(totalCents, count, decimals) {
  const total = big(totalCents);
  const n = big(count);
  if (n === 0n) return "n/a";
  const d = Math.min(decimals, 2);
  const divisor = n * 10n ** BigInt(2 - d);
  const sign = total > 0n ? 1n : total < 0n ? -1n : 0n;
  // bigint division truncates toward zero, as Rust's does.
  let rounded = (total * 2n + sign * divisor) / (divisor * 2n);
  const minus = rounded < 0n ? "-" : "";
  if (rounded < 0n) rounded = -rounded;
  const scale = 10n ** BigInt(d);
  const whole = thousands(rounded / scale);
  if (d === 0) return `${minus}$${whole}`;
  return `${minus}$${whole}.${(rounded % scale).toString().padStart(d, "0")}`;
}

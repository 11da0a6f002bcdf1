#!/usr/bin/env python3
"""Interleaved A/B of two builds of the sandbox benchmark: A, B, A, B, ... for N rounds.

Usage: tests/benches/ab.py A_BINARY B_BINARY [--rounds 5]

Each binary is a `cargo bench --no-run -p sluice-tests --bench sandbox` executable (for example
one built from an earlier commit in a worktree, with its own target directory). Every round runs
A then B on the same machine within seconds of each other, so a noisy neighbour hits both; the
report gives each side's median and the median of the per-round ratios B/A.
"""

import argparse
import re
import statistics
import subprocess
import sys

METRICS = {
    "instantiation, pooling (us)": r"pooling: median ([\d.]+) µs",
    "instantiation, on-demand (us)": r"on-demand: median ([\d.]+) µs",
    "gated call, min of rounds (ns)": r"([\d.]+) ns per gated call \(min\)",
    "gated call, median of rounds (ns)": r"\(min\), ([\d.]+) ns \(median\)",
    "bank guest (ms)": r"guest ([\d.]+) ms, native",
    "bank native (ms)": r"native ([\d.]+) ms =>",
    "bank guest/native speed (x)": r"guest runs at ([\d.]+)x native",
}


def run(binary):
    out = subprocess.run([binary, "--bench"], capture_output=True, text=True, check=True).stdout
    values = {}
    for name, pattern in METRICS.items():
        match = re.search(pattern, out)
        if match:
            values[name] = float(match.group(1))
    return values


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("a")
    parser.add_argument("b")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    rounds = []
    for i in range(args.rounds):
        a, b = run(args.a), run(args.b)
        rounds.append((a, b))
        print(f"round {i + 1}: A {a}\n         B {b}", file=sys.stderr)
    print(f"| measurement | A median | B median | B/A, median of {args.rounds} paired rounds |")
    print("|---|---|---|---|")
    for name in METRICS:
        pairs = [(a[name], b[name]) for a, b in rounds if name in a and name in b]
        if not pairs:
            continue
        a_med = statistics.median(p[0] for p in pairs)
        b_med = statistics.median(p[1] for p in pairs)
        ratio = statistics.median(p[1] / p[0] for p in pairs)
        print(f"| {name} | {a_med:.1f} | {b_med:.1f} | {ratio:.2f} |")


if __name__ == "__main__":
    main()

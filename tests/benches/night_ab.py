#!/usr/bin/env python3
"""Interleaved A/B of two `sluice` binaries running the same nights: A, B, A, B, ... per config.

Usage: tests/benches/night_ab.py A_SLUICE B_SLUICE CONFIG [CONFIG ...] [--rounds 5]

Each CONFIG is a night (for example the seed tenants over SQLite, Parquet or CSV, with the
embedded broker). Every round runs A then B on the same config within seconds of each other, so a
noisy neighbour hits both; the report gives, per config, each side's median wall time of the
whole `sluice run` process, its CPU time (user + system: what the host computed, without the
waits for fsync that make wall times on a VM's disk jump by hundreds of milliseconds), and each
tenant's run (from `--json`), and the median of the per-round ratios B/A.
"""

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time


def cpu_seconds():
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run(binary, config):
    cpu = cpu_seconds()
    start = time.monotonic()
    done = subprocess.run(
        [binary, "run", config, "--json", "--concurrency", "1"],
        capture_output=True,
        text=True,
    )
    wall = (time.monotonic() - start) * 1000
    cpu = (cpu_seconds() - cpu) * 1000
    if done.returncode != 0:
        sys.exit(f"{binary} run {config} exited {done.returncode}: {done.stderr}")
    summary = json.loads(done.stdout)
    values = {"night, wall (ms)": wall, "night, CPU (ms)": cpu}
    for tenant in summary["tenants"]:
        values[f"{tenant['id']} (ms)"] = tenant["elapsed_ms"]
    return values


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("a")
    parser.add_argument("b")
    parser.add_argument("configs", nargs="+")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    for config in args.configs:
        run(args.a, config), run(args.b, config)  # warm caches (compiled plugins, page cache)
        rounds = []
        for i in range(args.rounds):
            a, b = run(args.a, config), run(args.b, config)
            rounds.append((a, b))
            print(f"{config} round {i + 1}: A {a}\n    B {b}", file=sys.stderr)
        print(f"\n{config}\n")
        print(f"| measurement | A median | B median | B/A, median of {args.rounds} paired rounds |")
        print("|---|---|---|---|")
        for name in rounds[0][0]:
            pairs = [(a[name], b[name]) for a, b in rounds if name in a and name in b]
            a_med = statistics.median(p[0] for p in pairs)
            b_med = statistics.median(p[1] for p in pairs)
            ratio = statistics.median(p[1] / max(p[0], 1) for p in pairs)
            print(f"| {name} | {a_med:.0f} | {b_med:.0f} | {ratio:.2f} |")


if __name__ == "__main__":
    main()

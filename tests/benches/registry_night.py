#!/usr/bin/env python3
"""A night of the seed tenants with their plugins from an OCI registry (locked, in the plugin
store, compiled cache warm) against the same night from plugin files, interleaved; and the
first pull of the 19 MB Python bank plugin.

Usage (from the workspace root, after `cargo xtask guests` and `cargo build --release -p sluice-cli`;
run it with the project venv's Python, where PyPI's `oras` is):
    $SLUICE_VENV/bin/python tests/benches/registry_night.py target/release/sluice [--rounds 7]

It starts Debian's docker-registry on a free loopback port, pushes the plugins with oras
(tests/python/oci_publish.py), and runs `sluice run CONFIG --json --concurrency 1`: files then
registry in each round, so a noisy neighbour hits both; it prints each side's median wall time
and the median of the per-round ratios registry/files.
"""

import argparse
import hashlib
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
GUESTS = os.path.join(ROOT, "target", "guests")
PUBLISH = os.path.join(ROOT, "tests", "python", "oci_publish.py")
TENANTS = [("hospital", "visits"), ("bank", "transactions"), ("retail", "orders")]


def sha256(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_registry(tmp):
    port = free_port()
    config = os.path.join(tmp, "registry.yml")
    with open(config, "w") as f:
        f.write(
            f"version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n"
            f"    rootdirectory: {tmp}/registry\nhttp:\n  addr: 127.0.0.1:{port}\n"
        )
    server = subprocess.Popen(["docker-registry", "serve", config], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(300):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return server, f"127.0.0.1:{port}"
        except OSError:
            time.sleep(0.05)
    sys.exit("docker-registry did not start")


def config(tmp, name, plugins, data, extra=""):
    text = f'reports = "{tmp}/{name}-reports"\naudit = "{tmp}/{name}-audit.jsonl"\n{extra}\n'
    for (tenant, dataset), plugin in zip(TENANTS, plugins):
        text += (
            f'\n[[tenants]]\nid = "{tenant}"\nname = "{tenant}"\ndata_type = "analytics"\n{plugin}\n'
            f'read_scope = "read:analytics:{tenant}"\nwrite_scope = "write:reports:{tenant}"\n\n'
            f'[[tenants.datasets]]\nname = "{dataset}"\npath = "{data}/{tenant}/analytics.db"\n'
            f'resource = "analytics"\n'
        )
    path = os.path.join(tmp, f"{name}.toml")
    with open(path, "w") as f:
        f.write(text)
    return path


def timed(args):
    start = time.monotonic()
    done = subprocess.run(args, capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"{' '.join(args)} exited {done.returncode}: {done.stdout}{done.stderr}")
    return (time.monotonic() - start) * 1000


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("sluice")
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    sluice = os.path.abspath(args.sluice)
    with tempfile.TemporaryDirectory() as tmp:
        server, host = start_registry(tmp)
        try:
            data = os.path.join(tmp, "data")
            subprocess.run([sluice, "data", "seed", "--dir", data], check=True, capture_output=True)
            files, oci = [], []
            for tenant, _ in TENANTS:
                wasm = os.path.join(GUESTS, f"{tenant}.wasm")
                files.append(f'plugin = "{wasm}"\nsha256 = "{sha256(wasm)}"')
                subprocess.run([sys.executable, PUBLISH, "push", f"{host}/seed/{tenant}:v1", wasm], check=True, capture_output=True)
                oci.append(f'plugin = "oci://{host}/seed/{tenant}:v1"')
            store = f'[plugins]\nstore = "{tmp}/store"'
            by_file = config(tmp, "files", files, data)
            by_registry = config(tmp, "registry", oci, data, store)
            timed([sluice, "lock", by_registry])
            nights = {"files": by_file, "registry": by_registry}
            for night in nights.values():  # warm the compiled cache and the page cache
                timed([sluice, "run", night, "--json", "--concurrency", "1"])
            times = {name: [] for name in nights}
            ratios = []
            for _ in range(args.rounds):
                round_times = {name: timed([sluice, "run", night, "--json", "--concurrency", "1"]) for name, night in nights.items()}
                for name, ms in round_times.items():
                    times[name].append(ms)
                ratios.append(round_times["registry"] / round_times["files"])
            for name, ms in times.items():
                print(f"night from {name:8}: median {statistics.median(ms):7.0f} ms over {args.rounds} rounds")
            print(f"registry/files: median ratio {statistics.median(ratios):.3f} (per round: {', '.join(f'{r:.3f}' for r in ratios)})")

            # The first pull of the Python bank (CPython inside): `sluice lock` with an empty
            # store against one with the plugin already stored, compiled cache warm for both.
            py = os.path.join(GUESTS, "bank-py.wasm")
            subprocess.run([sys.executable, PUBLISH, "push", f"{host}/seed/bank-py:v1", py], check=True, capture_output=True)
            pulls, stored = [], []
            for i in range(args.rounds):
                lock_config = config(
                    tmp, f"py{i}", [p for p in files[:1]] + [f'plugin = "oci://{host}/seed/bank-py:v1"\nlanguage = "python"'] + files[2:], data,
                    f'[plugins]\nstore = "{tmp}/py-store-{i}"',
                )
                pulls.append(timed([sluice, "lock", lock_config]))
                stored.append(timed([sluice, "lock", lock_config]))
            size = os.path.getsize(py) / 1e6
            print(f"first pull of bank-py ({size:.1f} MB) by `sluice lock`: median {statistics.median(pulls):.0f} ms; "
                  f"the same lock with it stored: {statistics.median(stored):.0f} ms; "
                  f"the pull itself: {statistics.median(pulls) - statistics.median(stored):.0f} ms")
        finally:
            server.kill()


if __name__ == "__main__":
    main()

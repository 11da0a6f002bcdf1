"""Hostile Python transform for Sluice's tests: the attacks an interpreter makes possible,
chosen by the ``attack`` parameter (the list is ``sluice-hostile-list``'s ``INTERPRETED``). Each
must fail with its cause on one line while the host and every other tenant carry on.

The modules an attack needs are imported at the top, as a real attacker would: componentize-py
keeps only what the module imported when it was built.

Parameters: ``attack``; ``port`` (a loopback port to reach, e.g. the broker's); ``plugin`` (this
component's own file)."""

import encodings.idna  # noqa: F401 - sockets encode host names with it
import os
import socket
import subprocess
import sys
import urllib.request

import sluice
from sluice import Dataset, Figures, Table, TransformFailed


def read_passwd(params: sluice.Params) -> Figures:
    with open("/etc/passwd") as f:
        data = f.read()
    raise TransformFailed(f"read {len(data)} bytes of /etc/passwd")


def read_own_plugin(params: sluice.Params) -> Figures:
    with open(sluice.param(params, "plugin") or "hostile-py.wasm", "rb") as f:
        data = f.read()
    raise TransformFailed(f"read {len(data)} bytes of the plugin")


def read_env(params: sluice.Params) -> Figures:
    # Whatever is visible goes into the failure message, where the test looks for it.
    raise TransformFailed(f"environment {dict(os.environ)!r}, arguments {sys.argv!r}")


def connect_broker(params: sluice.Params) -> Figures:
    port = int(sluice.param(params, "port") or "8080")
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.connect(("127.0.0.1", port))
    raise TransformFailed(f"connected to 127.0.0.1:{port}")


def http_request(params: sluice.Params) -> Figures:
    port = sluice.param(params, "port") or "8080"
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/v1/health", timeout=1) as r:
        raise TransformFailed(f"fetched {len(r.read())} bytes")


def spawn_process(params: sluice.Params) -> Figures:
    out = subprocess.run(["/bin/sh", "-c", "id"], capture_output=True).stdout
    raise TransformFailed(f"ran a process: {out!r}")


def read_other_tenant(params: sluice.Params) -> Figures:
    Dataset.open("bank", "analytics", "transactions").next_batch()
    raise TransformFailed("read the bank's transactions")


def table_lies_about_rows(params: sluice.Params) -> Figures:
    # Says 5 rows, hands over 3 values: the host checks every batch against its schema.
    me = sluice.whoami()
    schema = [sluice.Column("x", sluice.columns.ColumnType_Int64(), False)]
    table = Table.create(me.tenant, "reports", "t", schema)
    table.append(5, [sluice.column(sluice.columns.ColumnValues_Int64([1, 2, 3]))])
    raise TransformFailed("appended 3 values as 5 rows")


def spin(params: sluice.Params) -> Figures:
    while True:
        pass


def memory_hog(params: sluice.Params) -> Figures:
    hog = []
    while True:
        hog.append(bytearray(8 << 20))


def recurse(params: sluice.Params) -> Figures:
    # Past Python's own guard, so the interpreter's C stack is what runs out.
    sys.setrecursionlimit(10**8)

    def down(n: int) -> int:
        return down(n + 1) + 1

    down(0)
    raise TransformFailed("recursion ended")


ATTACKS = {
    f.__name__: f
    for f in [
        read_passwd,
        read_own_plugin,
        read_env,
        connect_broker,
        http_request,
        spawn_process,
        read_other_tenant,
        table_lies_about_rows,
        spin,
        memory_hog,
        recurse,
    ]
}


def run(params: sluice.Params) -> Figures:
    attack = sluice.param(params, "attack")
    if attack not in ATTACKS:
        raise TransformFailed(f"no attack named {attack!r}")
    return ATTACKS[attack](params)


WitWorld = sluice.export(run)

"""Starts `sluice broker dev` on a free loopback port for the official SDK to talk to."""

from __future__ import annotations

import os
import socket
import subprocess
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CEILING = ["read:analytics:*", "write:reports:*", "read:data:*"]


def sluice_binary() -> str:
    explicit = os.environ.get("SLUICE_BIN")
    if explicit:
        return explicit
    target = Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target"))
    path = target / "debug" / "sluice"
    if not path.exists():
        pytest.exit(f"{path} is missing: run `cargo build -p sluice-cli` (or set SLUICE_BIN)", 2)
    return str(path)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def broker():
    """The broker's URL and the app's credentials, as `sluice broker dev` prints them."""
    state = tempfile.mkdtemp(prefix="sluice-broker-")
    args = [sluice_binary(), "broker", "dev", "--addr", f"127.0.0.1:{free_port()}",
            "--state", state, "--app", "sdk-conformance"]
    for scope in CEILING:
        args += ["--ceiling", scope]
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    env: dict[str, str] = {}
    assert proc.stdout is not None
    for line in proc.stdout:
        if line.startswith("export "):
            key, _, value = line[len("export "):].strip().partition("=")
            env[key] = value
        if "AGENTWRIT_CLIENT_SECRET" in env:
            break
    else:
        proc.wait(5)
        pytest.exit(f"sluice broker dev exited early with {proc.returncode}", 2)
    yield env
    proc.terminate()
    proc.wait(10)

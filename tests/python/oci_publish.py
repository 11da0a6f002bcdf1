"""Publishes Sluice plugins the way a tenant would, with tools Sluice did not write: PyPI's
`oras` pushes the component as an OCI artifact, and `openssl` signs cosign's simple-signing
payload (ECDSA P-256), pushed under cosign's `sha256-<digest>.sig` tag.

    oci_publish.py push REGISTRY/REPO:TAG PLUGIN.wasm          -> prints the manifest digest
    oci_publish.py sign REGISTRY/REPO@DIGEST KEY.pem [--payload-digest D] [--tamper]
"""

import base64
import json
import os
import subprocess
import sys
import tempfile

import oras.client

WASM_LAYER = "application/wasm"
WASM_CONFIG = "application/vnd.wasm.config.v0+json"
SIMPLE_SIGNING = "application/vnd.dev.cosignproject.cosign/simplesigning.v1+json"
SIGNATURE = "dev.cosignproject.cosign/signature"


def client(target):
    host = target.split("/")[0]
    if not os.environ.get("OCI_PUBLISH_USER"):
        return oras.client.OrasClient(hostname=host, insecure=True)
    # A registry with a login (HTTP basic; oras' login() would go through a Docker daemon): the
    # credentials come from the environment, as in CI.
    c = oras.client.OrasClient(hostname=host, insecure=True, auth_backend="basic")
    c.auth.set_basic_auth(os.environ["OCI_PUBLISH_USER"], os.environ["OCI_PUBLISH_PASSWORD"])
    return c


def push(target, plugin):
    with tempfile.TemporaryDirectory() as tmp:
        config = os.path.join(tmp, "config.json")
        with open(config, "w") as f:
            json.dump({"architecture": "wasm", "os": "wasip2"}, f)
        response = client(target).push(
            target=target,
            files=[f"{plugin}:{WASM_LAYER}"],
            manifest_config=f"{config}:{WASM_CONFIG}",
            disable_path_validation=True,
            quiet=True,
        )
    print(response.headers["Docker-Content-Digest"])


def sign(target, key, payload_digest=None, tamper=False):
    repository, digest = target.split("@")
    payload = {
        "critical": {
            "identity": {"docker-reference": repository},
            "image": {"docker-manifest-digest": payload_digest or digest},
            "type": "cosign container image signature",
        },
        "optional": None,
    }
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "payload.json")
        with open(path, "w") as f:
            json.dump(payload, f)
        signature = subprocess.run(
            ["openssl", "dgst", "-sha256", "-sign", key, path],
            check=True,
            capture_output=True,
        ).stdout
        if tamper:
            # The signed bytes, changed after signing: the signature no longer matches them.
            payload["optional"] = {"note": "changed after signing"}
            with open(path, "w") as f:
                json.dump(payload, f)
        annotations = os.path.join(tmp, "annotations.json")
        with open(annotations, "w") as f:
            json.dump({path: {SIGNATURE: base64.b64encode(signature).decode()}}, f)
        tag = "sha256-" + digest.split(":", 1)[1] + ".sig"
        client(repository).push(
            target=f"{repository}:{tag}",
            files=[f"{path}:{SIMPLE_SIGNING}"],
            annotation_file=annotations,
            disable_path_validation=True,
            quiet=True,
        )


def main(argv):
    if argv[0] == "push":
        push(argv[1], argv[2])
    elif argv[0] == "sign":
        rest = argv[3:]
        payload_digest = rest[rest.index("--payload-digest") + 1] if "--payload-digest" in rest else None
        sign(argv[1], argv[2], payload_digest, "--tamper" in rest)
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main(sys.argv[1:])

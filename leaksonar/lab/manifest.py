"""The lab manifest (`DIR/manifest.json`): what runs where, with which PID, credentials and data."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from leaksonar.lab.spec import LabError

Manifest = dict[str, Any]
"""{"base", "dir", "services": [{"name", "ip", "port", "protocol", "auth", "software", "pid",
"credentials", "databases": [{"name", "collections": [{"name", "rows"}]}], "keys" (memcached only),
"attack" (attacked services only: {"infected": true, "kind", "wiped", "places": [{"database",
"collection", "key" (key-value stores)}], "btc_addresses", "emails", "onion", "amount_btc"}),
"kind" (proxies only: the kind that runs the server, e.g. "nginx"), "hostname" and "tls" (TLS services
only: {"names", "sha256", "self_signed", "expired", "required", "twin"})}], "mmdb", "tls_ca" (the lab
CA's certificate, or null)}"""

FILENAME = "manifest.json"


def manifest_path(directory: Path) -> Path:
    return directory / FILENAME


def write_manifest(directory: Path, manifest: Manifest) -> None:
    """Write atomically, readable only by the owner (it holds the protected services' passwords)."""
    tmp = directory / f".{FILENAME}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        json.dump(manifest, out, indent=2, ensure_ascii=False)
        out.write("\n")
    tmp.replace(manifest_path(directory))


def read_manifest(directory: Path) -> Manifest:
    path = manifest_path(directory)
    try:
        manifest = json.loads(path.read_text())
    except FileNotFoundError:
        raise LabError(f"no lab in {directory} (no {FILENAME})") from None
    except (OSError, ValueError) as exc:
        raise LabError(f"unreadable lab manifest {path}: {exc}") from None
    if not isinstance(manifest, dict) or not isinstance(manifest.get("services"), list):
        raise LabError(f"{path} is not a lab manifest")
    return manifest


def service(manifest: Manifest, name: str) -> dict[str, Any]:
    """The manifest entry of the service called `name`."""
    for entry in manifest["services"]:
        if entry["name"] == name:
            return dict(entry)
    raise LabError(f"no service {name!r} in the lab manifest")


def total_rows(entry: dict[str, Any]) -> int:
    return sum(c["rows"] for db in entry["databases"] for c in db["collections"])

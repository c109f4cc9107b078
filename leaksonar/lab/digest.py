"""A content digest of everything a lab service holds, read with the real client libraries.

Two equal digests, taken before and after a scan, prove the scan changed nothing. Each kind hashes its
own servers (`ServerKind.digest`); this module holds what they share.
"""

from __future__ import annotations

import hashlib
from typing import Any

from leaksonar.lab import kinds


class Hasher:
    def __init__(self) -> None:
        self._h = hashlib.sha256()

    def add(self, *parts: object) -> None:
        """Feed values unambiguously (each length-prefixed)."""
        for part in parts:
            raw = part if isinstance(part, bytes) else repr(part).encode()
            self._h.update(len(raw).to_bytes(8, "big") + raw)

    def hexdigest(self) -> str:
        return self._h.hexdigest()


def credentials(entry: dict[str, Any], user: str) -> tuple[str, str | None]:
    """(user, password) of a manifest entry; `user` and None when it has no credentials."""
    creds = entry.get("credentials") or {}
    return creds.get("user") or user, creds.get("password")


def lab_digest(manifest_service: dict[str, Any]) -> str:
    """SHA-256 over all data of one lab service (a manifest entry); uses its credentials if it has any."""
    h = Hasher()
    kinds.kind(manifest_service["protocol"]).digest(manifest_service, h)
    return h.hexdigest()

"""API keys: created once (the key is printed, only its sha256 is stored), listed, revoked."""

from __future__ import annotations

import hashlib
import re
import secrets
from datetime import UTC, datetime

from leaksonar.store.db import Store
from leaksonar.store.rows import KeyRow

LEVELS = ("public", "analyst")
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,63}")
PREFIX = "lsk_"


class ApiKeyError(ValueError):
    """A key cannot be created or revoked; the message is one line."""


def digest(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def create_key(store: Store, name: str, level: str = "public") -> str:
    """Store a new key for `name` at `level`; returns the key (the only time it is known)."""
    if not NAME.fullmatch(name):
        raise ApiKeyError(f"key name {name!r}: use 1-64 letters, digits, '.', '_', '@' or '-'")
    if level not in LEVELS:
        raise ApiKeyError(f"level {level!r}: use one of {', '.join(LEVELS)}")
    key = PREFIX + secrets.token_urlsafe(32)
    if not store.keys.add(name, level, digest(key), _now()):
        raise ApiKeyError(f"a key named {name!r} exists already (revoked keys keep their name)")
    return key


def revoke_key(store: Store, name: str) -> None:
    """Revoke the key `name`; it is refused from then on."""
    if not store.keys.revoke(name, _now()):
        raise ApiKeyError(f"no valid key named {name!r}")


def lookup(store: Store, key: str) -> KeyRow | None:
    """The valid (not revoked) key, or None."""
    return store.keys.lookup(digest(key))

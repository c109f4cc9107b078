"""API keys: created once (the key is printed, only its sha256 is stored), listed, revoked; and the web
sessions signed in with them (a random token in the browser's cookie, only its sha256 stored)."""

from __future__ import annotations

import hashlib
import re
import secrets
from datetime import UTC, datetime, timedelta

from leaksonar.store.db import Store
from leaksonar.store.rows import KeyRow

LEVELS = ("public", "analyst")
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,63}")
PREFIX = "lsk_"
SESSION_LIFETIME = timedelta(hours=12)
"""A sign-in lasts this long (not extended by use); then the UI asks for the key again."""


class ApiKeyError(ValueError):
    """A key cannot be created or revoked; the message is one line."""


def digest(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()


def _now(later: timedelta = timedelta()) -> str:
    return (datetime.now(UTC) + later).strftime("%Y-%m-%dT%H:%M:%SZ")


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


def open_session(store: Store, key: str) -> str | None:
    """A new session token for the valid `key` (expired sessions are purged meanwhile); None for an
    unknown or revoked key."""
    token = secrets.token_urlsafe(32)
    if not store.keys.open_session(digest(key), digest(token), _now(), _now(SESSION_LIFETIME)):
        return None
    return token


def session_key(store: Store, token: str) -> KeyRow | None:
    """The valid key of an unexpired session, or None."""
    return store.keys.session(digest(token), _now())


def close_session(store: Store, token: str) -> None:
    """End the session (signing out)."""
    store.keys.close_session(digest(token))

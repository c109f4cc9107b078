"""API keys: created once (the key is printed, only its sha256 is stored), listed, revoked."""

from __future__ import annotations

import hashlib
import re
import secrets
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from leaksonar.store.db import Store
from leaksonar.store.schema import api_keys

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
    row = {"name": name, "level": level, "key_sha256": digest(key), "created": _now(), "revoked": None}
    try:
        with store.engine.begin() as conn:
            conn.execute(api_keys.insert().values(**row))
    except IntegrityError:
        raise ApiKeyError(f"a key named {name!r} exists already (revoked keys keep their name)") from None
    return key


def list_keys(store: Store) -> list[dict[str, Any]]:
    """Every key's name, level, creation and revocation time (never the key or its hash), by name."""
    query = select(api_keys.c.name, api_keys.c.level, api_keys.c.created, api_keys.c.revoked)
    with store.engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(query.order_by(api_keys.c.name))]


def revoke_key(store: Store, name: str) -> None:
    """Revoke the key `name`; it is refused from then on."""
    with store.engine.begin() as conn:
        done = conn.execute(
            api_keys.update()
            .where(api_keys.c.name == name, api_keys.c.revoked.is_(None))
            .values(revoked=_now())
        )
    if done.rowcount != 1:
        raise ApiKeyError(f"no valid key named {name!r}")


def lookup(store: Store, key: str) -> dict[str, Any] | None:
    """The valid (not revoked) key's name and level, or None."""
    query = select(api_keys.c.name, api_keys.c.level).where(
        api_keys.c.key_sha256 == digest(key), api_keys.c.revoked.is_(None)
    )
    with store.engine.connect() as conn:
        row = conn.execute(query).first()
    return dict(row._mapping) if row else None

"""Secrets the index keeps for itself (not API keys): random bytes made on first use and the same ever
after, for every process that opens the index."""

from __future__ import annotations

import secrets

from sqlalchemy import Engine, select

from leaksonar.store.schema import index_secrets
from leaksonar.store.sql import insert

SECRET_BYTES = 32


class Keyring:
    """`store.keyring`."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._known: dict[str, bytes] = {}

    def secret(self, name: str) -> bytes:
        """The index's secret `name`: made (SECRET_BYTES random bytes) by the first process that asks,
        read by every other one."""
        if name not in self._known:
            with self.engine.begin() as conn:
                made = {"name": name, "value": secrets.token_hex(SECRET_BYTES)}
                conn.execute(insert(conn, index_secrets).on_conflict_do_nothing().values(**made))
                value = conn.execute(select(index_secrets.c.value).where(index_secrets.c.name == name))
                self._known[name] = bytes.fromhex(value.scalar_one())
        return self._known[name]

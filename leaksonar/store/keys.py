"""API keys as the index keeps them: a name, a level and the key's SHA-256, never the key."""

from __future__ import annotations

from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError

from leaksonar.store.rows import KeyRow
from leaksonar.store.schema import api_keys
from leaksonar.store.sql import select_as


class Keys:
    """`store.keys`."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def add(self, name: str, level: str, key_sha256: str, created: str) -> bool:
        """Store a key; False when a key of that name exists (revoked keys keep their name)."""
        row = {"name": name, "level": level, "key_sha256": key_sha256, "created": created, "revoked": None}
        try:
            with self.engine.begin() as conn:
                conn.execute(api_keys.insert().values(**row))
        except IntegrityError:
            return False
        return True

    def all(self) -> list[KeyRow]:
        """Every key, by name."""
        with self.engine.connect() as conn:
            return [
                KeyRow(*row) for row in conn.execute(select_as(KeyRow, api_keys).order_by(api_keys.c.name))
            ]

    def revoke(self, name: str, when: str) -> bool:
        """Revoke the valid key `name`; False when there is none."""
        with self.engine.begin() as conn:
            done = conn.execute(
                api_keys.update()
                .where(api_keys.c.name == name, api_keys.c.revoked.is_(None))
                .values(revoked=when)
            )
        return done.rowcount == 1

    def lookup(self, key_sha256: str) -> KeyRow | None:
        """The valid (not revoked) key with this SHA-256."""
        query = select_as(KeyRow, api_keys).where(
            api_keys.c.key_sha256 == key_sha256, api_keys.c.revoked.is_(None)
        )
        with self.engine.connect() as conn:
            row = conn.execute(query).first()
        return KeyRow(*row) if row else None

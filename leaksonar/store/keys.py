"""API keys as the index keeps them (a name, a level and the key's SHA-256, never the key) and the web
sessions signed in with them (the token's SHA-256, never the token)."""

from __future__ import annotations

from sqlalchemy import Engine, select
from sqlalchemy.exc import IntegrityError

from leaksonar.store.rows import KeyRow
from leaksonar.store.schema import api_keys, sessions
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
        """Revoke the valid key `name` and end its sessions; False when there is none."""
        with self.engine.begin() as conn:
            done = conn.execute(
                api_keys.update()
                .where(api_keys.c.name == name, api_keys.c.revoked.is_(None))
                .values(revoked=when)
            )
            conn.execute(
                sessions.delete().where(
                    sessions.c.key_id.in_(select(api_keys.c.id).where(api_keys.c.name == name))
                )
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

    def open_session(self, key_sha256: str, token_sha256: str, created: str, expires: str) -> bool:
        """Start a session for the valid key with this SHA-256, forgetting every expired session;
        False when the key is unknown or revoked."""
        with self.engine.begin() as conn:
            conn.execute(sessions.delete().where(sessions.c.expires <= created))
            key_id = conn.execute(
                select(api_keys.c.id).where(api_keys.c.key_sha256 == key_sha256, api_keys.c.revoked.is_(None))
            ).scalar()
            if key_id is None:
                return False
            row = {"token_sha256": token_sha256, "key_id": key_id, "created": created, "expires": expires}
            conn.execute(sessions.insert().values(**row))
        return True

    def session(self, token_sha256: str, now: str) -> KeyRow | None:
        """The valid key of the session with this SHA-256 that has not expired by `now`."""
        query = (
            select_as(KeyRow, api_keys)
            .join(sessions, sessions.c.key_id == api_keys.c.id)
            .where(
                sessions.c.token_sha256 == token_sha256,
                sessions.c.expires > now,
                api_keys.c.revoked.is_(None),
            )
        )
        with self.engine.connect() as conn:
            row = conn.execute(query).first()
        return KeyRow(*row) if row else None

    def close_session(self, token_sha256: str) -> None:
        """End the session with this SHA-256 (nothing when there is none)."""
        with self.engine.begin() as conn:
            conn.execute(sessions.delete().where(sessions.c.token_sha256 == token_sha256))

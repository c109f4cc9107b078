"""The index's schema history (Alembic revisions in versions/): `upgrade` brings an index, empty or made
by an older leaksonar, to the schema of leaksonar.store.schema. Alembic is imported only when there is
something to do."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Connection, Engine, inspect

REVISIONS = ("0001", "0002", "0003", "0004", "0005", "0006", "0007", "0008", "0009", "0010", "0011", "0012")
"""Every revision, oldest first; the last is the schema this leaksonar writes."""
HEAD = REVISIONS[-1]
_LOCK = 0x6C73_6462  # PostgreSQL advisory lock: one process migrates at a time


class SchemaError(Exception):
    """The index's schema cannot be brought to this leaksonar's; the message is one line."""


def current(conn: Connection) -> str | None:
    """The index's revision; None for an empty index or one made before migrations (0001's tables)."""
    if not inspect(conn).has_table("alembic_version"):
        return None
    return conn.exec_driver_sql("SELECT version_num FROM alembic_version").scalar()


def upgrade(engine: Engine) -> None:
    """Migrate the index to HEAD unless it is there; one process at a time (PostgreSQL: an advisory
    lock, SQLite: a write transaction), so that workers opening an empty index together do not collide."""
    with engine.connect() as conn:
        if current(conn) == HEAD:
            return
    from alembic import command
    from alembic.config import Config

    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_LOCK})")
        else:
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        found = current(conn)
        if found == HEAD:
            return
        if found is not None and found not in REVISIONS:
            raise SchemaError(f"the index has schema revision {found}, from a newer leaksonar")
        config = Config()
        config.set_main_option("script_location", str(Path(__file__).parent))
        config.attributes["connection"] = conn
        command.upgrade(config, "head")

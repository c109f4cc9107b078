"""Opening the index (SQLite file or PostgreSQL URL, migrated to this leaksonar's schema) and `Store`, the
index as its parts: one per concern, each owning its tables and statements."""

from __future__ import annotations

import os
from collections.abc import Sequence
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import Any

import platformdirs
from sqlalchemy import Engine, create_engine, event, inspect, make_url
from sqlalchemy.exc import DatabaseError

from leaksonar.store import DB_ENV, StoreError
from leaksonar.store import search as views
from leaksonar.store.deliveries import Deliveries
from leaksonar.store.events import Events
from leaksonar.store.findings import Findings
from leaksonar.store.keyring import Keyring
from leaksonar.store.keys import Keys
from leaksonar.store.query import FACET_FIELDS
from leaksonar.store.reports import Reports
from leaksonar.store.rows import SearchPage, Stats
from leaksonar.store.scans import Scans
from leaksonar.store.services import Hosts, Services

__all__ = ["DB_ENV", "Store", "StoreError", "default_db", "schema_revision"]


def default_db() -> str:
    """`LEAKSONAR_DB`, else leaksonar.db in the user's data directory."""
    return os.environ.get(DB_ENV) or str(Path(platformdirs.user_data_dir("leaksonar")) / "leaksonar.db")


def _missing(db: str) -> StoreError:
    return StoreError(f"no index at {_shown(db)} (run `leaksonar scan` first)")


def _url(db: str, create: bool = True) -> str:
    """The SQLAlchemy URL of `db`; a file's directory is made with `create`, else the file must exist."""
    scheme, found, rest = db.partition("://")
    if found and scheme in ("postgresql", "postgres"):
        return f"postgresql+psycopg://{rest}"  # psycopg 3, not SQLAlchemy's default psycopg2
    if found and scheme == "sqlite":
        file = make_url(db).database
        if not create and file and file != ":memory:" and not Path(file).exists():
            raise _missing(db)
        return db
    if found:
        raise StoreError(f"{scheme}:// is not a database leaksonar uses: give a file or a postgresql:// URL")
    path = Path(db).expanduser()
    if not create:
        if not path.exists():
            raise _missing(db)
        return f"sqlite:///{path}"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StoreError(f"cannot create the directory for {db}: {exc.strerror}") from None
    return f"sqlite:///{path}"


def _shown(db: str) -> str:
    """`db` for a message: a URL without its password."""
    return make_url(db).render_as_string(hide_password=True) if "://" in db else db


def _unreadable(db: str, exc: DatabaseError) -> StoreError:
    """The one-line error for an index that cannot be opened."""
    reason = str(exc.orig).strip().splitlines()[0] if str(exc.orig).strip() else type(exc.orig).__name__
    return StoreError(f"{_shown(db)} is not a leaksonar index: {reason}")


def schema_revision(db: str | None = None) -> str | None:
    """The index's schema revision, read without migrating it (None: empty, or made by the release
    before migrations)."""
    from leaksonar.store.migrations import current

    db = db or default_db()
    engine = create_engine(_url(db, create=False))
    try:
        with engine.connect() as conn:
            return current(conn)
    except DatabaseError as exc:
        raise _unreadable(db, exc) from None
    finally:
        engine.dispose()


READING_CACHE_MIB = 64
"""SQLite's page cache for those that read the index (search, the web UI): large indexes stay in memory."""
WRITING_CACHE_MIB = 8
"""SQLite's page cache for a scan, which writes: the pages it revisits are few, the rest come from the
system's file cache, and the scan's memory stays flat whatever the size of the index."""


def _sqlite_pragmas(cache_mib: int, dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.execute(f"PRAGMA cache_size=-{int(cache_mib) * 1024}")
    cursor.close()


class Store:
    """The leaksonar index. Re-scanning updates hosts and services; findings are kept per scan.

    Its parts: `scans`, `findings` (per scan, and the write path of every scan), `hosts` and `services`
    (latest state), `events`, `deliveries` (of alerts), `keys` (API keys), `reports` (disclosure report
    history), `keyring` (the index's own secrets); search, facets and totals span them all."""

    def __init__(
        self, db: str | None = None, *, create: bool = True, cache_mib: int = READING_CACHE_MIB
    ) -> None:
        """Open (and migrate) the index `db` (None: the default); without `create`, a database that holds no
        index (a missing file, an empty database) is refused, and nothing is made. `cache_mib`: SQLite's
        page cache per connection. Raises StoreError."""
        self.db = db or default_db()
        self.engine: Engine = create_engine(_url(self.db, create))
        if not create:
            self._require_index()
        if self.engine.dialect.name == "sqlite":
            event.listen(self.engine, "connect", partial(_sqlite_pragmas, cache_mib))
        from leaksonar.store.migrations import SchemaError, upgrade

        try:
            upgrade(self.engine)
            views.prepare(self.engine)
        except DatabaseError as exc:
            raise _unreadable(self.db, exc) from None
        except SchemaError as exc:
            raise StoreError(f"{_shown(self.db)}: {exc}") from None
        self.scans = Scans(self.engine)
        self.findings = Findings(self.engine)
        self.hosts = Hosts(self.engine)
        self.services = Services(self.engine)
        self.events = Events(self.engine, self.scans, _shown(self.db))
        self.deliveries = Deliveries(self.engine)
        self.keys = Keys(self.engine)
        self.reports = Reports(self.engine)
        self.keyring = Keyring(self.engine)

    def _require_index(self) -> None:
        """StoreError unless the database holds an index, of any revision (checked before the SQLite pragmas,
        which would turn an empty file into a database)."""
        from leaksonar.store.migrations import current

        try:
            with self.engine.connect() as conn:
                found = current(conn) is not None or inspect(conn).has_table("scans")
        except DatabaseError as exc:
            raise _unreadable(self.db, exc) from None
        finally:
            self.engine.dispose()
        if not found:
            raise _missing(self.db)

    def close(self) -> None:
        """Close the index's connections (a later use opens them again)."""
        self.engine.dispose()

    def search(
        self,
        query: str,
        *,
        limit: int = 50,
        offset: int = 0,
        now: datetime | None = None,
        public: bool = False,
    ) -> SearchPage:
        """Services matching `query` (docs/search.md), most severe first; QueryError for a bad query.
        `public`: over the visible set only (`query.public_only`), before counting and paging."""
        return views.search(self.engine, query, limit=limit, offset=offset, now=now, public=public)

    def facets(
        self,
        query: str,
        fields: Sequence[str] = FACET_FIELDS,
        top: int = 10,
        *,
        now: datetime | None = None,
        public: bool = False,
    ) -> dict[str, list[tuple[str, int]]]:
        """The `top` values of each facet field among the services matching `query` (`public`: of the
        visible set only)."""
        return views.facets(self.engine, query, fields, top, now=now, public=public)

    def stats(self) -> Stats:
        """Totals over the whole index: global aggregates that take no query."""
        return views.stats(self.engine)

"""The index's read side: search (ordered, paged, counted), facets and the dashboard's totals. Also keeps
the search tables in step with `services` (written on every ingest; derived once for an index made by an
older leaksonar)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, Engine, and_, bindparam, func, select
from sqlalchemy.sql.elements import True_

from leaksonar.model import SEVERITIES, SEVERITY_RANK
from leaksonar.store import bulk
from leaksonar.store.fulltext import stored
from leaksonar.store.query import (
    CRITICAL_RANK,
    FACET_FIELDS,
    NO_SEVERITY,
    Clause,
    compile_query,
    public_only,
)
from leaksonar.store.rows import Hit, LastScan, SearchPage, Stats
from leaksonar.store.schema import (
    events,
    facet_counts,
    findings,
    hosts,
    scans,
    service_btc,
    service_cert_names,
    service_pii,
    services,
    services_fts,
)
from leaksonar.store.sql import storable

if TYPE_CHECKING:
    from leaksonar.model.record import FindingRecord

MAX_LIMIT = 1000
"""Most hits one search returns."""
MAX_ROW_ID = 2**63 - 1
"""Largest id of a finding or event (64-bit on both databases): a greater one names nothing."""
ORDER = (services.c.rank.desc(), services.c.rows.desc().nulls_last(), services.c.ip_key, services.c.port)
"""Search order: severity (critical first), then rows (most first, unknown last), address, port."""
SERVICE_COLUMNS = dict(services.c.items())
"""The columns of `services` by name in a plain dict: reading one from `services.c` costs microseconds,
too much for every finding stored."""
_CERT_NAME = service_cert_names.c.name
_BACKFILL_CHUNK = 2000
_FOLD_LOCK = 0x6C73_6663  # "lsfc": the advisory lock of fold_summary
SORTED_MATCHES = 5000
"""Matches up to which a page is sorted from the matches rather than read in search order from its index
(sorting 5,000 narrow rows takes milliseconds; reading the order's index for a page of few matches
spread through it reads up to every service)."""
_ANALYZE_FROM = 1000
"""Services below which the planner's default guesses are good enough."""


# writing ------------------------------------------------------------------------------------------


def clip(value: str | None, column: Any) -> str | None:
    """`value` as its column holds it (`sql.storable`), cut to the column's length (PostgreSQL refuses a
    longer one; a server names its software, and a network its owner, as it likes)."""
    return storable(value)[: column.type.length] if value is not None else None


def int64(value: Any) -> int | None:
    """`value` when it is a whole number a 64-bit column holds, else None: a record's numbers come from
    servers and files, and one out of range must not fail the write of the whole batch."""
    if isinstance(value, int) and not isinstance(value, bool) and -(2**63) <= value < 2**63:
        return value
    return None


def _name(value: str | None, column: Any) -> str | None:
    """A server's name (certificate, hostname) as its column matches it: lower case, `clip`ped."""
    return clip(value.lower(), column) if value is not None else None


def cert_names(record: FindingRecord) -> list[str]:
    """The distinct names of the certificate a record's service presented, as service_cert_names holds
    them."""
    cert = (record.get("tls") or {}).get("cert") or {}
    found = (_name(n, _CERT_NAME) for n in cert.get("names") or ())
    return list(dict.fromkeys(n for n in found if n))


def search_columns(record: FindingRecord) -> dict[str, Any]:
    """The search columns of `services` for a finding record."""
    network = record.get("network") or {}
    tls = record.get("tls")
    cert = (tls or {}).get("cert") or {}
    return {
        "rank": SEVERITY_RANK.get(record.get("severity") or "", NO_SEVERITY),
        "infected": bool((record.get("ransom") or {}).get("infected")),
        "collections": len(record.get("collections") or ()),
        "country": clip((record.get("geo") or {}).get("country"), SERVICE_COLUMNS["country"]),
        "asn": int64(network.get("asn")),
        "org": clip(network.get("org"), SERVICE_COLUMNS["org"]),
        "summary": clip(record.get("summary"), SERVICE_COLUMNS["summary"]),
        "tls": tls is not None,
        "hostname": _name(record.get("hostname"), SERVICE_COLUMNS["hostname"]),
        "cert_sha256": _name(cert.get("sha256"), SERVICE_COLUMNS["cert_sha256"]),
        "cert_issuer": clip(cert.get("issuer") or "", SERVICE_COLUMNS["cert_issuer"]) or None,
        "cert_expired": bool(cert.get("expired")) if cert else None,
        "cert_self_signed": bool(cert.get("self_signed")) if cert else None,
    }


_SEARCH_TABLES = (
    (service_pii, "service_id"),
    (service_btc, "service_id"),
    (service_cert_names, "service_id"),
    (services_fts, "rowid"),
)


def _btc_addresses(record: dict[str, Any]) -> list[str]:
    """The distinct BTC addresses of a record's ransom notes, sorted."""
    notes = (record.get("ransom") or {}).get("notes", ())
    return sorted({address for note in notes for address in note.get("btc_addresses", ())})


_FACETED = {
    "protocol": "protocol",
    "country": "country",
    "severity": "severity",
    "software": "software",
    "cert.issuer": "cert_issuer",
}
"""The facet fields a row of `services` counts in facet_counts, and their columns (software in lower case)."""
STATE = ("id", "ip", "port", "rank", *_FACETED.values())
"""The columns of `services` write_search reads of the services it writes (and SQLite's writers before)."""
_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")
"""SQLite's lower(): ASCII letters only."""
_COUNT = (
    "INSERT INTO facet_counts (field, value, visible, n) VALUES (?, ?, ?, ?)"
    " ON CONFLICT (field, value, visible) DO UPDATE SET n = n + excluded.n"
)
FacetKey = tuple[str, str, int]


def _visible(rank: int | None) -> int:
    """Whether a row of that rank is in the visible set, as facet_counts keys it (0009: none, not)."""
    return int(rank is not None and rank < CRITICAL_RANK)


def _facet_keys(service: Any) -> Iterator[FacetKey]:
    """The facet_counts keys a row of `services` (with the STATE columns) adds one to."""
    visible = _visible(service.rank)
    for field, column in _FACETED.items():
        value = getattr(service, column)
        if value is not None:
            yield field, value.translate(_ASCII_LOWER) if field == "software" else value, visible


@contextmanager
def counting(conn: Connection) -> Iterator[None]:
    """SQLite: the write lock, and leave to write `services` and `service_pii` within (migration 0012
    refuses a write that does not count facets): a row of facet_counts_writer, taken out again before the
    transaction ends, so that no other connection ever sees it (a failed write rolls it back). PostgreSQL
    counts by triggers (0010): nothing."""
    if conn.dialect.name != "sqlite":
        yield
        return
    conn.exec_driver_sql("INSERT INTO facet_counts_writer (counting) VALUES (1)")
    yield
    conn.exec_driver_sql("DELETE FROM facet_counts_writer")


def facet_state(conn: Connection, places: Sequence[tuple[str, int]]) -> list[Any]:
    """SQLite: the STATE of these (ip, port) services as stored now (within `counting`), what their next
    write_search takes away from facet_counts; PostgreSQL counts by triggers (migration 0010): nothing."""
    if conn.dialect.name != "sqlite":
        return []
    return bulk.pairs(conn, services, STATE, ("ip", "port"), places)


def write_search(conn: Connection, records: Iterable[dict[str, Any]], before: Sequence[Any] = ()) -> None:
    """Replace the PII, BTC, certificate name and free-text rows of the services these (stored) records
    describe: their ids in a few statements, then per table a DELETE of their rows and an INSERT of the
    new ones (`bulk`). SQLite: then add to facet_counts, in one statement, what the services (`before`:
    their `facet_state` before they were written) and their PII rows changed, as 0009's row triggers did
    (the counters of every value touched, a zero change too)."""
    latest = {(r["ip"], r["port"]): r for r in records}
    found = bulk.pairs(conn, services, STATE, ("ip", "port"), list(latest))
    ids = {(r.ip, r.port): (r.id, r.rank) for r in found}
    described = [(*ids[place], r) for place, r in latest.items() if place in ids]
    rows: dict[str, list[dict[str, Any]]] = {
        "service_pii": [
            {"service_id": sid, "category": category, "rank": rank}
            for sid, rank, r in described
            for category in r.get("pii") or {}
        ],
        "service_btc": [
            {"service_id": sid, "address": address}
            for sid, _, r in described
            for address in _btc_addresses(r)
        ],
        "service_cert_names": [
            {"service_id": sid, "name": name, "name_reversed": name[::-1]}
            for sid, _, r in described
            for name in cert_names(r)
        ],
        "services_fts": [
            {
                "rowid": sid,
                "summary": stored(conn, r.get("summary") or ""),
                "collections": stored(conn, " ".join(c["name"] for c in r.get("collections") or ())),
                "fields": stored(
                    conn, " ".join(f for c in r.get("collections") or () for f in c.get("fields", ()))
                ),
            }
            for sid, _, r in described
        ],
    }
    service_ids = [sid for sid, _, _ in described]
    counting = conn.dialect.name == "sqlite"
    counts: Counter[FacetKey] = Counter()
    for table, key in _SEARCH_TABLES:
        pii = counting and table is service_pii
        gone = bulk.delete(conn, table, key, service_ids, ("category", "rank") if pii else ())
        bulk.write(conn, table, rows[table.name])
        if pii:
            counts.update(("pii", r["category"], _visible(r["rank"])) for r in rows["service_pii"])
            counts.subtract(("pii", category, _visible(rank)) for category, rank in gone)
    if counting:
        for service in found:
            counts.update(_facet_keys(service))
        for service in before:
            counts.subtract(_facet_keys(service))
        if counts:
            conn.exec_driver_sql(_COUNT, [(*key, n) for key, n in sorted(counts.items())])


def prepare(engine: Engine) -> None:
    """Derive the search columns and tables of services stored before they existed (by an older
    leaksonar: migration 0002 adds them empty)."""
    state = [services.c[name] for name in STATE]
    pending = select(services.c.record, *state).where(services.c.rank.is_(None)).limit(_BACKFILL_CHUNK)
    update = (
        services.update()
        .where(services.c.id == bindparam("b_id"))
        .values({name: bindparam(name) for name in search_columns({})})
    )
    while True:
        with engine.begin() as conn:
            if not conn.execute(pending).first():
                refresh_statistics(conn)
                break
            with counting(conn):  # read again under the write lock: the counts take away what is stored
                rows = conn.execute(pending).all()
                if rows:
                    conn.execute(update, [{"b_id": r.id, **search_columns(r.record)} for r in rows])
                    write_search(conn, (r.record for r in rows), rows)
    fold_summary(engine)


def fold_summary(engine: Engine) -> None:
    """PostgreSQL: fold the deltas of facet_counts (migration 0010) into one row per field, value and
    visibility, so that reads sum a few hundred rows. Rows a concurrent writer inserts meanwhile are not
    seen by the DELETE and stay; one folder at a time (a busy one: skipped, the next write folds)."""
    if engine.dialect.name != "postgresql":
        return
    with engine.begin() as conn:
        if conn.exec_driver_sql("SELECT pg_try_advisory_xact_lock(%s)", (_FOLD_LOCK,)).scalar():
            conn.exec_driver_sql(
                "WITH folded AS (DELETE FROM facet_counts RETURNING field, value, visible, n)"
                " INSERT INTO facet_counts (field, value, visible, n) SELECT field, value, visible, sum(n)"
                " FROM folded GROUP BY field, value, visible HAVING sum(n) <> 0"
            )


def refresh_statistics(conn: Connection) -> None:
    """SQLite: sample the indexes again (ANALYZE, bounded) once `services` has doubled since the last
    time, so the query planner knows which condition of a query is the selective one. PostgreSQL does
    this itself (autovacuum)."""
    if conn.dialect.name != "sqlite":
        return
    count = conn.execute(select(func.max(services.c.id))).scalar() or 0
    if count < _ANALYZE_FROM:
        return
    have = conn.exec_driver_sql("SELECT 1 FROM sqlite_master WHERE name = 'sqlite_stat1'").first()
    known = (
        have
        and conn.exec_driver_sql(
            "SELECT stat FROM sqlite_stat1 WHERE tbl = 'services' AND idx = 'ix_services_order'"
        ).scalar()
    )
    if not known or count > 2 * int(str(known).split()[0]):
        for table in (
            services,
            service_pii,
            service_btc,
            service_cert_names,
        ):  # whole tables: samples mislead the planner
            conn.exec_driver_sql(f"ANALYZE {table.name}")


# reading ------------------------------------------------------------------------------------------


_LATEST = (
    select(findings.c.id)
    .where(
        findings.c.scan_id == services.c.last_scan_id,
        findings.c.ip == services.c.ip,
        findings.c.port == services.c.port,
    )
    .scalar_subquery()
    .label("finding_id")
)
HIT_COLUMNS = (services.c.id, services.c.record, services.c.first_seen, services.c.last_seen, _LATEST)
"""A search hit: the service's latest record, the findings id of that record, first and last seen."""


def hit(row: Any) -> Hit:
    """The `Hit` of a row of HIT_COLUMNS."""
    return Hit(id=row.finding_id, first_seen=row.first_seen, last_seen=row.last_seen, record=row.record)


def narrowed(where: Clause, *, public: bool) -> Clause:
    """`where` over `services`; with `public`, within the visible set only."""
    return and_(public_only(services), where) if public else where


def search(
    engine: Engine,
    query: str,
    *,
    limit: int = 50,
    offset: int = 0,
    now: datetime | None = None,
    public: bool = False,
) -> SearchPage:
    """Services matching `query` (with `public`: of the visible set), in search order; raises QueryError
    for a bad query."""
    if not 0 <= limit <= MAX_LIMIT or offset < 0:
        raise ValueError(f"limit must be 0..{MAX_LIMIT} and offset >= 0")
    matched = compile_query(query, now=now)
    where = narrowed(matched, public=public)
    with engine.connect() as conn:
        if isinstance(matched, True_):
            total = _everything(conn, public=public)
        else:
            total = conn.execute(select(func.count()).select_from(services).where(where)).scalar_one()
        if not limit or offset >= total:
            return SearchPage(total=total, hits=[], offset=offset, limit=limit)
        ids = list(conn.execute(_page(where, total, limit, offset)).scalars())
        found = {r.id: hit(r) for r in conn.execute(select(*HIT_COLUMNS).where(services.c.id.in_(ids)))}
        return SearchPage(total=total, hits=[found[i] for i in ids], offset=offset, limit=limit)


def _page(where: Clause, total: int, limit: int, offset: int) -> Any:
    """The ids of a page of the `total` services matching `where`, in search order (sorting narrow rows;
    their records are read next). Up to SORTED_MATCHES matches are found first and then sorted, whatever
    the planner guesses: read in search order from its index instead, they would be sought among every
    service (PostgreSQL chose that for 29 matches of 200,000 on a stale or generic estimate: 0.5 s)."""
    if total > SORTED_MATCHES:
        return select(services.c.id).where(where).order_by(*ORDER).limit(limit).offset(offset)
    keys = [services.c.id, services.c.rank, services.c.rows, services.c.ip_key, services.c.port]
    matches = select(*keys).where(where).cte("matches").prefix_with("MATERIALIZED")
    order = (matches.c.rank.desc(), matches.c.rows.desc().nulls_last(), matches.c.ip_key, matches.c.port)
    return select(matches.c.id).order_by(*order).limit(limit).offset(offset)


def _everything(conn: Connection, *, public: bool) -> int:
    """How many services there are (with `public`: visible), from facet_counts: every service has a
    protocol."""
    protocols = facet_counts.c.field == "protocol"
    where = and_(protocols, facet_counts.c.visible.is_(True)) if public else protocols
    return conn.execute(select(func.coalesce(func.sum(facet_counts.c.n), 0)).where(where)).scalar_one()


def facets(
    engine: Engine,
    query: str,
    fields: Sequence[str] = FACET_FIELDS,
    top: int = 10,
    now: datetime | None = None,
    public: bool = False,
) -> dict[str, list[tuple[str, int]]]:
    """The `top` values of each field among the services matching `query` (with `public`: of the visible
    set), most frequent first."""
    unknown = [f for f in fields if f not in FACET_FIELDS]
    if unknown:
        raise ValueError(f"unknown facet field {unknown[0]!r}; facets: {', '.join(FACET_FIELDS)}")
    if not 1 <= top <= MAX_LIMIT:
        raise ValueError(f"top must be 1..{MAX_LIMIT}")
    where = compile_query(query, now=now)
    narrowing = None if isinstance(where, True_) else where
    with engine.connect() as conn:
        if narrowing is None:
            return _summarised(conn, fields, top, public=public)
        return {field: _counted(conn, field, narrowing, top, public=public) for field in fields}


def _summarised(
    conn: Connection, fields: Sequence[str], top: int, *, public: bool
) -> dict[str, list[tuple[str, int]]]:
    """Facets of everything from facet_counts, in one statement: the same values and counts, in the same
    order, as counting every service, from a few hundred rows (PostgreSQL: and the deltas since the last
    fold)."""
    n = func.sum(facet_counts.c.n).label("n")
    query = (
        select(facet_counts.c.field, facet_counts.c.value, n)
        .where(facet_counts.c.field.in_(fields))
        .group_by(facet_counts.c.field, facet_counts.c.value)
        .having(n > 0)
        .order_by(n.desc(), facet_counts.c.value)
    )
    if public:
        query = query.where(facet_counts.c.visible.is_(True))
    found: dict[str, list[tuple[str, int]]] = {field: [] for field in fields}
    for field, value, count in conn.execute(query):
        if len(found[field]) < top:
            found[field].append((value, count))
    return found


def _facet_column(field: str) -> Any:
    """The column a facet counts (software in lower case, as its index holds it and as it matches)."""
    if field == "pii":
        return service_pii.c.category
    if field == "software":
        return func.lower(services.c.software)
    return services.c[field.replace(".", "_")]  # cert.issuer: cert_issuer


def _counted(
    conn: Connection, field: str, where: Clause | None, top: int, *, public: bool
) -> list[tuple[str, int]]:
    """The `top` most frequent values of a facet field, with their counts, among the services matching
    `where` (None: every service; with `public`, of the visible set)."""
    column = _facet_column(field)
    if where is None:  # the field's own index holds all it needs: the value, then the rank
        table = service_pii if field == "pii" else services
        source, conditions = table, [public_only(table)] if public else []
    else:  # a service counts once per PII category it holds
        joined = service_pii.join(services, services.c.id == service_pii.c.service_id)
        source, conditions = joined if field == "pii" else services, [narrowed(where, public=public)]
    count = func.count().label("n")
    counted = (
        select(column, count)
        .select_from(source)
        .where(*conditions, column.is_not(None))
        .group_by(column)
        .order_by(count.desc(), column)
        .limit(top)
    )
    return [(value, n) for value, n in conn.execute(counted)]


def stats(engine: Engine) -> Stats:
    """Totals for the dashboard, over the whole index (global aggregates: no query narrows them)."""

    def count(table: Any, *where: Any) -> int:
        return conn.execute(select(func.count()).select_from(table).where(*where)).scalar_one()

    def by(column: Any) -> dict[str, int]:
        n = func.count().label("n")
        query = select(column, n).where(column.is_not(None)).group_by(column).order_by(n.desc(), column)
        return {value: total for value, total in conn.execute(query)}

    with engine.connect() as conn:
        last = conn.execute(
            select(scans.c.id, scans.c.started_at, scans.c.finished_at, scans.c.status)
            .order_by(scans.c.started_at.desc(), scans.c.id.desc())
            .limit(1)
        ).first()
        severities = by(services.c.severity)
        return Stats(
            hosts=count(hosts),
            services=count(services),
            exposed=count(services, services.c.exposed.is_(True)),
            infected=count(services, services.c.infected.is_(True)),
            findings=count(findings),
            scans=count(scans),
            by_severity={s: severities[s] for s in reversed(SEVERITIES) if s in severities},
            by_protocol=by(services.c.protocol),
            by_country=by(services.c.country),
            events_by_type=by(events.c.type),
            last_scan=LastScan(*last) if last else None,
        )

"""InfluxDB 1.x: recognised from the X-Influxdb-Version header, inspected read-only over HTTP GET /query.

InfluxDB puts `X-Influxdb-Version` on every reply, the 404 to the generic `GET /` included. GET
/query runs only read statements (SHOW, SELECT; anything that writes needs POST), and inspection
sends only these: SHOW DATABASES; per database SHOW MEASUREMENTS (LIMIT) and SHOW SERIES CARDINALITY
(an estimate, kept in details); per measurement `SELECT count(*)` and `SELECT * ... LIMIT n`.
Authentication is required on 401 ("unable to parse authentication credentials", "authorization
failed") or 403 ("create admin user first").

Naming: database = InfluxDB database (the server's own `_internal` statistics are left out),
collection = measurement. Rows = points: the largest of the per-field counts of `count(*)` (a point
holds at least one field); None if counting fails within `Limits.timeout`. When the fields' counts
differ, some points lack some fields and the largest is only a lower bound: rows_estimated. Fields =
the sampled columns (tags and fields) except `time`.
"""

from __future__ import annotations

import re
from functools import partial
from typing import Any

from leaksonar.model import Collection, Identity, Inspection, Limits, Sample, Software
from leaksonar.protocols.base import AuthRequired, CommandRefused, Endpoint, ProtocolError
from leaksonar.protocols.http import PROTOCOL as HTTP
from leaksonar.protocols.httpclient import (
    HttpClient,
    bounded_client,
    get_bounded,
    http_parts,
)
from leaksonar.protocols.kit import SERVER_ERRORS, Learned, bounded, count, run_inspection

NAME = "influxdb"
_HEADER = re.compile(rb"\r\nX-Influxdb-Version:[ \t]*([^\r\n]{1,64})\r\n", re.IGNORECASE)
_SYSTEM_DATABASES = frozenset(("_internal",))


def quote(name: str) -> str:
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


async def query(
    client: HttpClient, base: str, statement: str, db: str | None, limits: Limits
) -> list[dict[str, Any]]:
    """The series of one read statement's result (GET /query)."""
    params = {"q": statement, **({"db": db} if db is not None else {})}
    response = await client.request("GET", f"{base}/query", limits, params=params)
    try:
        document = response.json()
    except ValueError:
        document = None
    error = document.get("error") if isinstance(document, dict) else None
    if response.status in (401, 403):
        raise AuthRequired(str(error or response.status)[:200])
    if response.status != 200 or error:
        raise CommandRefused(
            f"{statement.split(' FROM')[0]} answered HTTP {response.status}: {str(error)[:200]}"
        )
    results = document.get("results") if isinstance(document, dict) else None
    if not isinstance(results, list) or not results or not isinstance(results[0], dict):
        raise ProtocolError("a /query reply holds no result")
    if results[0].get("error"):
        raise CommandRefused(f"{statement.split(' FROM')[0]} was refused: {str(results[0]['error'])[:200]}")
    series = results[0].get("series") or []
    return [s for s in series if isinstance(s, dict)] if isinstance(series, list) else []


def _values(series: list[dict[str, Any]]) -> list[list[Any]]:
    return [row for s in series for row in (s.get("values") or []) if isinstance(row, list)]


def _names(series: list[dict[str, Any]]) -> list[str]:
    return [row[0] for row in _values(series) if row and isinstance(row[0], str)]


async def _points(
    client: HttpClient, base: str, db: str, measurement: str, limits: Limits
) -> tuple[int, bool]:
    """The measurement's points, and whether that is a lower bound (its fields' counts differ)."""
    series = await query(client, base, f"SELECT count(*) FROM {quote(measurement)}", db, limits)
    counts = [n for row in _values(series) for v in row[1:] if (n := count(v)) is not None]
    return max(counts, default=0), len(set(counts)) > 1


async def _sample(
    client: HttpClient, base: str, db: str, measurement: str, limits: Limits
) -> tuple[dict[str, Any], ...]:
    statement = f"SELECT * FROM {quote(measurement)} LIMIT {limits.sample_rows}"
    documents = []
    for s in await query(client, base, statement, db, limits):
        columns = [str(c) for c in s.get("columns") or []]
        for row in (s.get("values") or [])[: limits.sample_rows]:
            if isinstance(row, list):
                documents.append({c: bounded(v, limits) for c, v in zip(columns, row, strict=False)})
    return tuple(documents[: limits.sample_rows])


async def _measurement(client: HttpClient, base: str, db: str, name: str, learned: Learned) -> int | None:
    """Add measurement `name` of `db` with its point count and sample; return the count."""
    limits = learned.limits
    points: int | None = None
    estimated = False
    documents: tuple[dict[str, Any], ...] = ()
    try:
        points, estimated = await _points(client, base, db, name, limits)
    except SERVER_ERRORS as exc:
        learned.failed(f"Counting {db}.{name}", exc)
    try:
        documents = await _sample(client, base, db, name, limits)
    except SERVER_ERRORS as exc:
        learned.failed(f"Sampling {db}.{name}", exc)
    fields = tuple(sorted({k for d in documents for k in d} - {"time"}))
    learned.collections.append(Collection(db, name, points, None, fields, estimated))
    if documents:
        learned.samples.append(Sample(db, name, documents))
    return points


async def _database(client: HttpClient, base: str, db: str, learned: Learned) -> list[int]:
    """Measurements of `db` (within the collection cap) and their point counts."""
    limits = learned.limits
    left = limits.max_collections - len(learned.collections)
    names = _names(await query(client, base, f"SHOW MEASUREMENTS LIMIT {left + 1}", db, limits))
    if len(names) > left:
        learned.left_out(f"Only the first {left} measurements of {db} were inspected.")
    cardinality = _values(await query(client, base, "SHOW SERIES CARDINALITY", db, limits))
    learned.details.setdefault("series", {})[db] = sum(
        n for row in cardinality for v in row if (n := count(v)) is not None
    )
    counted = []
    for name in names[:left]:
        if (points := await _measurement(client, base, db, name, learned)) is not None:
            counted.append(points)
    return counted


async def _inspect(endpoint: Endpoint, learned: Learned) -> None:
    base, limits = endpoint.url, learned.limits
    async with bounded_client(endpoint, limits) as client:
        ping = await get_bounded(f"{base}/ping", limits, client)
        if version := ping.headers.get("X-Influxdb-Version"):
            learned.software = Software(NAME, version[:40])
        try:
            databases = [
                d
                for d in _names(await query(client, base, "SHOW DATABASES", None, limits))
                if d not in _SYSTEM_DATABASES
            ]
        except AuthRequired as exc:
            learned.details["refusal"] = str(exc)
            raise
        learned.auth = "none"
        shown = databases[: limits.max_databases]
        learned.capped(len(shown), len(databases), "databases")
        learned.databases = len(databases)
        counted = []
        for i, db in enumerate(shown):
            if len(learned.collections) >= limits.max_collections:
                learned.left_out(f"{len(shown) - i} databases were not looked into (max_collections).")
                break
            counted += await _database(client, base, db, learned)
        learned.rows = sum(counted) if counted or not learned.collections else None


class InfluxdbProtocol:
    name = NAME
    default_ports = (8086,)
    probe = HTTP.probe
    """The generic `GET /`: its answer (a 404) already carries the version header."""

    def match(self, reply: bytes) -> Identity | None:
        """Any HTTP reply carrying InfluxDB's X-Influxdb-Version header."""
        if (parts := http_parts(reply)) is None:
            return None
        _, head, _, banner = parts
        if (found := _HEADER.search(head + b"\r\n")) is None:
            return None
        version = found.group(1).decode("latin-1").strip()
        return Identity(
            self.name, Software(NAME, version or None), "unknown", f"{banner} X-Influxdb-Version: {version}"
        )

    async def inspect(self, endpoint: Endpoint, identity: Identity, limits: Limits) -> Inspection:
        """Databases, measurements, series cardinality, point counts and a bounded sample; GET only."""
        return await run_inspection(self.name, partial(_inspect, endpoint), identity, limits, Software(NAME))


PROTOCOL = InfluxdbProtocol()

"""CouchDB and wire-compatible servers (HTTP, 5984): recognised from `GET /`; inspected with GETs only.

`GET /` answers `{"couchdb":"Welcome","version":"3.3.3",...}` (with `Server: CouchDB/3.3.3 (Erlang
OTP/24)`); pouchdb-server's express-pouchdb answers `{"express-pouchdb":"Welcome!","version":"4.2.0",...}`
and is reported as software "express-pouchdb". A CouchDB that requires a login for everything answers
`GET /` with 401 and its `Server: CouchDB/...` header.

Inspection reads `/`, `/_session` (an anonymous session holding the `_admin` role is the "admin party":
`details["admin_party"]`), `/_all_dbs` (401/403: authentication required), then per database `/{db}`
(doc_count, sizes) and `/{db}/_all_docs?limit=N&include_docs=true`. Naming: database = the CouchDB
database's name, collection = the same name (one collection per database); rows = `doc_count`, size =
`sizes.file` (older servers: `disk_size`). System databases (names starting with "_": `_users`,
`_replicator`, `_global_changes`) are skipped. Fields are the sampled documents' top-level fields,
without CouchDB's own (`_id`, `_rev`, ...); design documents are not sampled.
"""

from __future__ import annotations

import asyncio
import json
import re
from functools import partial
from typing import Any
from urllib.parse import quote

from leaksonar.model import Auth, Collection, ErrorKind, Identity, Inspection, Limits, Sample, Software
from leaksonar.protocols.base import AuthRequired, Endpoint, ProtocolError
from leaksonar.protocols.http import PROTOCOL as HTTP
from leaksonar.protocols.httpclient import (
    Fetch,
    bounded_client,
    fetcher,
    http_parts,
    json_body,
    json_software,
    refused,
)
from leaksonar.protocols.kit import SERVER_ERRORS, Learned, bounded, count, run_inspection

_SERVER = re.compile(rb"^server:[ \t]*CouchDB/([\w.+-]{1,40})", re.I | re.M)
_CONCURRENCY = 4
"""Databases read at the same time."""


def root_software(info: Any) -> Software | None:
    """CouchDB or express-pouchdb with its version, if `info` is the JSON of a server's `GET /`."""
    if not isinstance(info, dict):
        return None
    version = info.get("version")
    version = version[:40] if isinstance(version, str) else None
    if info.get("couchdb") == "Welcome":
        return Software("couchdb", version)
    welcome = info.get("express-pouchdb")
    if isinstance(welcome, str) and welcome.startswith("Welcome"):
        return Software("express-pouchdb", version)
    return None


def db_counts(info: Any) -> tuple[int | None, int | None]:
    """Documents and bytes on disk from a database's `GET /{db}`."""
    if not isinstance(info, dict):
        raise ProtocolError("a database's info is not an object")
    sizes = info.get("sizes")
    size = count(sizes.get("file")) if isinstance(sizes, dict) else None
    return count(info.get("doc_count")), size if size is not None else count(info.get("disk_size"))


def sample_documents(result: Any, limits: Limits) -> tuple[dict[str, Any], ...]:
    """The bounded documents of an `_all_docs?include_docs=true` answer, design documents left out."""
    rows = result.get("rows") if isinstance(result, dict) else None
    if not isinstance(rows, list):
        raise ProtocolError("_all_docs did not answer rows")
    docs = (row.get("doc") for row in rows if isinstance(row, dict))
    return tuple(
        bounded(doc, limits)
        for doc in docs
        if isinstance(doc, dict) and not str(doc.get("_id", "")).startswith("_design/")
    )[: limits.sample_rows]


def _fields(documents: tuple[dict[str, Any], ...]) -> tuple[str, ...]:
    return tuple(sorted({key for doc in documents for key in doc if not key.startswith("_")}))


async def _admin_party(fetch: Fetch, learned: Learned) -> None:
    """Whether an anonymous session holds the `_admin` role (no admin exists: anyone administers)."""
    response = await fetch("/_session")
    if response.status != 200:
        return
    try:
        context = json.loads(response.body).get("userCtx") or {}
        learned.details["admin_party"] = "_admin" in (context.get("roles") or ())
    except (ValueError, RecursionError, AttributeError, TypeError):
        learned.add(ErrorKind.PROTOCOL_ERROR, "GET /_session did not answer a session object.")


async def _database(fetch: Fetch, name: str, learned: Learned) -> None:
    """One database's counts and a bounded sample into `learned`."""
    limits = learned.limits
    path = f"/{quote(name, safe='')}"
    rows = size = None
    documents: tuple[dict[str, Any], ...] = ()
    try:
        rows, size = db_counts(json_body(await fetch(path), path))
        sample = f"{path}/_all_docs?limit={limits.sample_rows}&include_docs=true"
        documents = sample_documents(json_body(await fetch(sample), sample), limits)
    except SERVER_ERRORS as exc:
        learned.failed(f"Reading database {name}", exc)
    learned.collections.append(Collection(name, name, rows, size, _fields(documents)))
    if documents:
        learned.samples.append(Sample(name, name, documents))


async def _databases(fetch: Fetch, learned: Learned) -> None:
    limits = learned.limits
    response = await fetch("/_all_dbs")
    if refused(response):
        raise AuthRequired(f"GET /_all_dbs answered HTTP {response.status}")
    names = json_body(response, "/_all_dbs")
    if not isinstance(names, list):
        raise ProtocolError("/_all_dbs did not answer a list")
    learned.auth = "none"
    user = sorted(n for n in names if isinstance(n, str) and not n.startswith("_"))
    learned.databases = len(user)
    shown = user[: min(limits.max_databases, limits.max_collections)]
    learned.capped(len(shown), len(user), "databases")
    gate = asyncio.Semaphore(_CONCURRENCY)

    async def read(name: str) -> None:
        async with gate:
            await _database(fetch, name, learned)

    await asyncio.gather(*(read(name) for name in shown))
    learned.collections.sort(key=lambda c: c.name)
    learned.samples.sort(key=lambda s: s.collection)
    counted = [c for c in learned.collections if c.rows is not None]
    learned.rows = sum(c.rows or 0 for c in counted) if counted else None
    learned.size_bytes = sum(c.size_bytes or 0 for c in learned.collections) or None


async def _inspect(endpoint: Endpoint, learned: Learned) -> None:
    async with bounded_client(endpoint, learned.limits) as client:
        fetch = fetcher(endpoint.url, learned.limits, client)
        root = await fetch("/")
        if refused(root):
            raise AuthRequired(f"GET / answered HTTP {root.status}")
        learned.software = root_software(json_body(root, "/")) or learned.software
        await _admin_party(fetch, learned)
        await _databases(fetch, learned)


class CouchdbProtocol:
    name = "couchdb"
    default_ports = (5984,)
    probe = HTTP.probe

    def match(self, reply: bytes) -> Identity | None:
        """The welcome JSON of `GET /`, or CouchDB's `Server` header on any answer (e.g. a 401)."""
        if (parts := http_parts(reply)) is None:
            return None
        status, head, body, banner = parts
        auth: Auth = "required" if status == 401 else "unknown"
        software = json_software(body, root_software)
        if software is None and (server := _SERVER.search(head)) is not None:
            software = Software("couchdb", server.group(1).decode("ascii"))
        return Identity(self.name, software, auth, banner) if software else None

    async def inspect(self, endpoint: Endpoint, identity: Identity, limits: Limits) -> Inspection:
        """Server, admin party, databases with their counts and a bounded sample each; GETs only."""
        return await run_inspection(self.name, partial(_inspect, endpoint), identity, limits)


PROTOCOL = CouchdbProtocol()

"""etcd v3: recognised from its HTTP answers, inspected read-only through the v3 JSON gateway.

Identification: etcd answers the generic `GET /` with a 404 "404 page not found" carrying its own CORS
headers (Allow-Headers "accept, content-type, authorization", Allow-Methods "POST, GET, OPTIONS, PUT,
DELETE"); its own probe, `GET /version`, gets {"etcdserver": "3.4.23", "etcdcluster": "3.4.0"}.

Inspection: `GET /version`, then POSTs. The gateway maps gRPC calls to POST, so POST is how it is
read: `kv/range` (a read: count_only for the key count; a page of key names; the values of
`Limits.sample_rows` keys spread over the key prefixes, one range each) and `maintenance/status` (a
read: the database size). Nothing that writes (put, delete_range, txn, lease, compaction, auth
changes) is ever sent. The gateway lives at /v3/ (etcd 3.4 and later), /v3beta/ (3.3) or /v3alpha/
(3.2); the first that answers is used.
Authentication is required when range answers "user name is empty" or 401.

Naming: one collection, database "" and name "keys"; rows = the server's key count; fields = the
object fields of the sampled JSON values.
"""

from __future__ import annotations

import base64
import json
import re
from functools import partial
from typing import Any
from urllib.parse import urlsplit

from leaksonar.model import Identity, Inspection, Limits, Software
from leaksonar.protocols.base import AuthRequired, CommandRefused, Endpoint, ProtocolError
from leaksonar.protocols.httpclient import (
    HttpClient,
    bounded_client,
    get_bounded,
    http_parts,
)
from leaksonar.protocols.kit import Learned, count, decode_value, run_inspection, text

NAME = "etcd"
_PREFIXES = ("/v3", "/v3beta", "/v3alpha")
_EVERY_KEY = {"key": base64.b64encode(b"\0").decode(), "range_end": base64.b64encode(b"\0").decode()}
_CORS = re.compile(
    rb"\r\nAccess-Control-Allow-Headers: accept, content-type, authorization\r\n"
    rb"Access-Control-Allow-Methods: POST, GET, OPTIONS, PUT, DELETE\r\n",
    re.IGNORECASE,
)
_AUTH_ERRORS = ("user name is empty", "invalid auth token", "permission denied", "authentication failed")
_SHORT = Limits(value_chars=200)
_KEY_PAGE = 200
"""Key names read to choose the sampled keys from."""
_VERSION = re.compile(r"\d+(?:\.\d+){1,3}[\w.+-]{0,20}")


def _version_document(body: bytes) -> str | None:
    """The server version of a `/version` body, None unless it is etcd's."""
    try:
        document = json.loads(body)
    except (ValueError, RecursionError):
        return None
    if not isinstance(document, dict) or not {"etcdserver", "etcdcluster"} <= document.keys():
        return None
    server = document["etcdserver"]
    return server if isinstance(server, str) and _VERSION.fullmatch(server) else None


async def post_bounded(client: HttpClient, url: str, payload: dict[str, Any], limits: Limits) -> Any:
    """POST `payload` as JSON to a gateway read call; the reply body capped and parsed as JSON."""

    response = await client.request("POST", url, limits, payload=payload)
    status, body = response.status, response.body
    path = urlsplit(url).path
    try:
        document = json.loads(body)
    except (ValueError, RecursionError):
        document = None
    if status != 200:
        said = (
            document.get("message") or document.get("error")
            if isinstance(document, dict)
            else body.decode("utf-8", "replace")
        )
        raise CommandRefused(f"HTTP {status} from {path}: {text(str(said).encode(), _SHORT)}")
    if not isinstance(document, dict):
        raise ProtocolError(f"{path} answered with something other than a JSON object")
    return document


def _is_auth_refusal(exc: CommandRefused) -> bool:
    return str(exc).startswith("HTTP 401 ") or any(marker in str(exc) for marker in _AUTH_ERRORS)


def _b64(value: Any) -> bytes:
    try:
        return base64.b64decode(value if isinstance(value, str) else "", validate=True)
    except ValueError:
        raise ProtocolError("a key or value is not base64") from None


async def _gateway(client: HttpClient, base: str, limits: Limits) -> tuple[str, int | None]:
    """The gateway prefix that answers, and the key count (a proto3 int64: text, absent means 0)."""
    for prefix in _PREFIXES:
        try:
            counted = await post_bounded(
                client, f"{base}{prefix}/kv/range", {**_EVERY_KEY, "count_only": True}, limits
            )
        except CommandRefused as exc:
            if str(exc).startswith("HTTP 404 "):
                continue
            if _is_auth_refusal(exc):
                raise AuthRequired(str(exc)) from exc
            raise
        return prefix, count(counted.get("count") or 0)
    raise CommandRefused("no v3 gateway answered (tried /v3, /v3beta, /v3alpha)")


def spread(keys: list[bytes], want: int) -> list[bytes]:
    """Up to `want` of `keys`, taken in turn from each top-level prefix (users/, config/ ...)."""
    groups: dict[bytes, list[bytes]] = {}
    for key in keys:
        groups.setdefault(key.lstrip(b"/").split(b"/", 1)[0], []).append(key)
    picked: list[bytes] = []
    while len(picked) < want and any(groups.values()):
        picked += [group.pop(0) for group in groups.values() if group][: want - len(picked)]
    return picked


async def _sample(client: HttpClient, url: str, limits: Limits) -> tuple[dict[str, Any], ...]:
    """A page of key names, then the values of a few keys spread over their prefixes, one range each."""
    page = await post_bounded(client, url, {**_EVERY_KEY, "limit": _KEY_PAGE, "keys_only": True}, limits)
    documents = []
    for key in spread([_b64(kv.get("key")) for kv in _kvs(page)], limits.sample_rows):
        kvs = _kvs(await post_bounded(client, url, {"key": base64.b64encode(key).decode()}, limits))
        value = decode_value(_b64(kvs[0].get("value")), limits) if kvs else None
        documents.append({"key": text(key, limits), "value": value})
    return tuple(documents)


def _kvs(page: dict[str, Any]) -> list[dict[str, Any]]:
    kvs = page.get("kvs") or []
    if not isinstance(kvs, list):
        raise ProtocolError("range returned no list of keys")
    return [kv for kv in kvs if isinstance(kv, dict)]


async def _inspect(endpoint: Endpoint, learned: Learned) -> None:
    base, limits = endpoint.url, learned.limits
    async with bounded_client(endpoint, limits) as client:
        version = await get_bounded(f"{base}/version", limits, client)
        if (found := _version_document(version.body)) is not None:
            learned.software = Software(NAME, found)
        prefix, keys = await _gateway(client, base, limits)
        learned.auth, learned.databases, learned.rows = "none", 1, keys
        learned.details["gateway"] = prefix
        status = await post_bounded(client, f"{base}{prefix}/maintenance/status", {}, limits)
        learned.size_bytes = count(status.get("dbSize")) or None
        sampling = _sample(client, f"{base}{prefix}/kv/range", limits)
        await learned.add_sampled("", "keys", keys, learned.size_bytes, sampling)


class EtcdProtocol:
    name = NAME
    default_ports = (2379,)
    probe = b"GET /version HTTP/1.0\r\n\r\n"

    def match(self, reply: bytes) -> Identity | None:
        """etcd's JSON answer to `GET /version`, or its 404 to `GET /` with etcd's CORS headers."""
        if (parts := http_parts(reply)) is None:
            return None
        status, head, body, banner = parts
        if status == 200 and (version := _version_document(body)) is not None:
            return Identity(self.name, Software(NAME, version), "unknown", f"{banner} etcdserver {version}")
        if status == 404 and _CORS.search(head + b"\r\n") and body == b"404 page not found\n":
            return Identity(self.name, Software(NAME), "unknown", banner)
        return None

    async def inspect(self, endpoint: Endpoint, identity: Identity, limits: Limits) -> Inspection:
        """Version, key count, database size and a bounded sample of keys; read calls only."""
        return await run_inspection(self.name, partial(_inspect, endpoint), identity, limits, Software(NAME))


PROTOCOL = EtcdProtocol()

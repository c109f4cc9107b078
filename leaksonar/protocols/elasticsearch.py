"""Elasticsearch and OpenSearch (REST over HTTP, 9200): recognised from `GET /`; inspected with GETs only.

`GET /` names the cluster: `cluster_name`, `version.number` and the tagline "You Know, for Search"
(OpenSearch: `version.distribution` "opensearch" and its own tagline). A 401/403 with
`WWW-Authenticate: Basic realm="security"` (OpenSearch: realm="OpenSearch Security") or a
`security_exception` body means authentication is required.

Inspection reads `/` (unless identification read it already and no hostname may pick another virtual
host), `/_cat/indices?format=json&bytes=b`, `/_mapping` and `/{index}/_search?size=N`, over one
keep-alive connection (one more for each further 8 indices, at most 4).
Naming: one database "" (the cluster); one collection per index, named by the index, with rows =
`docs.count` and size_bytes = `store.size` as the server reports them. Hidden and system indices
(names starting with ".") are skipped. Fields are the mapping's leaf paths, dotted ("addr.city"),
without multi-fields ("xm.keyword"); a sample document is an index document's bounded `_source`.

`cluster_root` and `read_indices` take the transport as a `Fetch` (GET one API path), so that Kibana's
module reads the same cluster through Kibana's console proxy.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from dataclasses import dataclass
from functools import partial
from typing import Any
from urllib.parse import quote

from leaksonar.model import Collection, ErrorKind, Identity, Inspection, Limits, Sample, Software
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

TAGLINE = "You Know, for Search"
_REALM = re.compile(rb'^www-authenticate:[ \t]*basic realm="(?:security|opensearch security)"', re.I | re.M)
_MAX_FIELDS = 1000
_MAX_MAPPING_DEPTH = 16
_CONCURRENCY = 4
"""Most indices sampled at the same time, each on a connection of its own."""
_SEARCHES_PER_CONNECTION = 8
"""Indices sampled in turn on one connection before another is opened: a small cluster costs one
connection, not one per index (a connection costs both sides more CPU than a request on a kept one)."""


def cluster_software(info: Any) -> Software | None:
    """Elasticsearch or OpenSearch with its version, if `info` is the JSON of a cluster's `GET /`."""
    if not isinstance(info, dict) or not isinstance(info.get("cluster_name"), str):
        return None
    version = info.get("version")
    if not isinstance(version, dict) or not isinstance(version.get("number"), str):
        return None
    opensearch = version.get("distribution") == "opensearch"
    if not opensearch and info.get("tagline") != TAGLINE:
        return None
    return Software("opensearch" if opensearch else "elasticsearch", version["number"][:40])


# --- indices, mappings, samples -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Index:
    name: str
    rows: int | None
    size_bytes: int | None


def parse_indices(rows: Any) -> list[Index]:
    """The visible indices of `_cat/indices?format=json&bytes=b`, by name."""
    if not isinstance(rows, list):
        raise ProtocolError("_cat/indices did not answer a list")
    found = [
        Index(row["index"], count(row.get("docs.count")), count(row.get("store.size")))
        for row in rows
        if isinstance(row, dict) and isinstance(row.get("index"), str) and not row["index"].startswith(".")
    ]
    return sorted(found, key=lambda index: index.name)


def _leaves(properties: Any, prefix: str, depth: int) -> Iterator[str]:
    if not isinstance(properties, dict) or depth > _MAX_MAPPING_DEPTH:
        return
    for name, spec in properties.items():
        path = f"{prefix}{name}"
        if isinstance(spec, dict) and "properties" in spec:  # object and nested fields
            yield from _leaves(spec["properties"], f"{path}.", depth + 1)
        else:
            yield path


def mapping_fields(mapping: Any) -> tuple[str, ...]:
    """Sorted leaf field paths of one index's `_mapping` entry (typeless, or 6.x with mapping types)."""
    mappings = mapping.get("mappings") if isinstance(mapping, dict) else None
    if not isinstance(mappings, dict):
        return ()
    typed = [m for m in mappings.values() if isinstance(m, dict) and "properties" in m]
    roots = [mappings] if "properties" in mappings else typed
    names: set[str] = set()
    for root in roots:
        for name in _leaves(root["properties"], "", 0):
            if len(names) >= _MAX_FIELDS:
                break
            names.add(name)
    return tuple(sorted(names))


def sample_documents(result: Any, limits: Limits) -> tuple[dict[str, Any], ...]:
    """The bounded `_source` of each hit of a `_search` answer."""
    hits = result.get("hits") if isinstance(result, dict) else None
    hits = hits.get("hits") if isinstance(hits, dict) else None
    if not isinstance(hits, list):
        raise ProtocolError("_search did not answer hits")
    sources = (hit.get("_source") for hit in hits[: limits.sample_rows] if isinstance(hit, dict))
    return tuple(bounded(source, limits) for source in sources if isinstance(source, dict))


async def _mappings(fetch: Fetch, learned: Learned) -> dict[str, Any]:
    """Index -> mapping entry; {} (and an error) if `_mapping` cannot be read."""
    try:
        mappings = json_body(await fetch("/_mapping"), "/_mapping")
    except SERVER_ERRORS as exc:
        learned.failed("Reading the mappings", exc)
        return {}
    return mappings if isinstance(mappings, dict) else {}


async def _sample(fetch: Fetch, index: str, learned: Learned) -> tuple[dict[str, Any], ...]:
    path = f"/{quote(index, safe='')}/_search?size={learned.limits.sample_rows}"
    try:
        return sample_documents(json_body(await fetch(path), path), learned.limits)
    except SERVER_ERRORS as exc:
        learned.failed(f"Sampling {index}", exc)
        return ()


async def cluster_root(fetch: Fetch) -> Software | None:
    """The cluster's software from `GET /` (None if it does not name itself); AuthRequired on 401/403."""
    root = await fetch("/")
    if refused(root):
        raise AuthRequired(f"GET / answered HTTP {root.status}")
    return cluster_software(json_body(root, "/"))


async def read_indices(fetch: Fetch, learned: Learned) -> None:
    """The cluster's visible indices into `learned`: counts, sizes, mapping fields, a bounded sample."""
    limits = learned.limits
    cat = await fetch("/_cat/indices?format=json&bytes=b")
    if refused(cat):
        learned.auth = "required"
        learned.add(ErrorKind.AUTH_REQUIRED, f"Listing the indices needs credentials (HTTP {cat.status}).")
        return
    indices = parse_indices(json_body(cat, "/_cat/indices"))
    learned.auth = "none"
    learned.databases = 1
    learned.rows = sum(index.rows or 0 for index in indices)
    learned.size_bytes = sum(index.size_bytes or 0 for index in indices)
    shown = indices[: limits.max_collections]
    learned.capped(len(shown), len(indices), "indices", counted=False)
    mappings = await _mappings(fetch, learned) if shown else {}
    gate = asyncio.Semaphore(max(1, min(_CONCURRENCY, -(-len(shown) // _SEARCHES_PER_CONNECTION))))

    async def sample(index: Index) -> tuple[dict[str, Any], ...]:
        async with gate:
            return await _sample(fetch, index.name, learned)

    samples = await asyncio.gather(*(sample(index) for index in shown))
    for index, documents in zip(shown, samples, strict=True):
        fields = mapping_fields(mappings.get(index.name))
        learned.collections.append(Collection("", index.name, index.rows, index.size_bytes, fields))
        if documents:
            learned.samples.append(Sample("", index.name, documents))


async def _inspect(endpoint: Endpoint, learned: Learned) -> None:
    """`GET /` only if identification did not already read the cluster's own answer to it. Its probe
    goes without a Host field and inspection's requests name the hostname, which a name-based front may
    route to another cluster: with a hostname, `GET /` is asked again."""
    async with bounded_client(endpoint, learned.limits) as client:
        fetch = fetcher(endpoint.url, learned.limits, client)
        if learned.software is None or endpoint.hostname is not None:
            learned.software = await cluster_root(fetch) or learned.software
        await read_indices(fetch, learned)


class ElasticsearchProtocol:
    name = "elasticsearch"
    default_ports = (9200, 9201)
    probe = HTTP.probe

    def match(self, reply: bytes) -> Identity | None:
        """A cluster's JSON answer to `GET /`, or its security realm's refusal."""
        if (parts := http_parts(reply)) is None:
            return None
        status, head, body, banner = parts
        if status in (401, 403) and (_REALM.search(head) or b'"security_exception"' in body):
            return Identity(self.name, None, "required", banner)
        software = json_software(body, cluster_software)
        return Identity(self.name, software, "unknown", banner) if software else None

    async def inspect(self, endpoint: Endpoint, identity: Identity, limits: Limits) -> Inspection:
        """Cluster, indices with their counts and mappings, a bounded sample each; GETs only."""
        return await run_inspection(self.name, partial(_inspect, endpoint), identity, limits)


PROTOCOL = ElasticsearchProtocol()

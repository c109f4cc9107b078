"""Kibana (HTTP, 5601): recognised from its `kbn-*` headers or its `/api/status` JSON; the Elasticsearch
or OpenSearch cluster behind it is inspected through Kibana itself.

Kibana stamps `kbn-name` and `kbn-license-sig` (older releases `kbn-version`, `kbn-xpack-sig`) on its
answers; `GET /` redirects to `/login?next=...` when it asks for credentials. It is open when
`/api/status` answers without login (401/403: authentication required).

The cluster is read through Kibana's console proxy, the way Kibana's own Dev Tools console does:
`POST /api/console/proxy?path=<path>&method=GET` with `kbn-xsrf: true`. The HTTP verb to Kibana is
POST, but the request forwarded to the cluster is the `method` parameter, and this module only ever
sends GET there, with an empty body: a read. The paths and their parsing are elasticsearch.py's
(`cluster_root`, `read_indices`), so collections are named the same way (database "", one collection
per index). If the cluster behind an open status page refuses the proxied reads, auth is "required".

The finding's details say how the data was reached: `{"via": "kibana", "elasticsearch": {"software",
"version"}}`; its software is Kibana's own.
"""

from __future__ import annotations

import re
from functools import partial
from typing import Any

from leaksonar.model import Auth, Identity, Inspection, Limits, Software
from leaksonar.protocols.base import Endpoint
from leaksonar.protocols.elasticsearch import cluster_root, read_indices
from leaksonar.protocols.http import PROTOCOL as HTTP
from leaksonar.protocols.httpclient import (
    HttpClient,
    Response,
    bounded_client,
    get_bounded,
    http_parts,
    json_body,
    json_software,
    refused,
)
from leaksonar.protocols.kit import Learned, run_inspection

_KBN_HEADER = re.compile(rb"^kbn-(?:name|version|license-sig|xpack-sig):", re.I | re.M)
_KBN_VERSION = re.compile(rb"^kbn-version:[ \t]*(\d[\w.+-]{0,39})", re.I | re.M)
_LOGIN = re.compile(rb"^location:[ \t]*\S*/login\b", re.I | re.M)
PROXY = "/api/console/proxy"


def status_software(status: Any) -> Software | None:
    """Kibana and its version, if `status` is the JSON of Kibana's `/api/status`."""
    if not isinstance(status, dict) or not isinstance(status.get("name"), str):
        return None
    version, state = status.get("version"), status.get("status")
    if not (isinstance(version, dict) and isinstance(version.get("number"), str)):
        return None
    if not (isinstance(state, dict) and isinstance(state.get("overall"), dict)):
        return None
    return Software("kibana", version["number"][:40])


async def proxied(base: str, limits: Limits, client: HttpClient, path: str) -> Response:
    """GET `path` on the cluster behind Kibana, through the console proxy; the body is capped."""
    params = {"path": path, "method": "GET"}
    return await client.request("POST", base + PROXY, limits, params=params, headers={"kbn-xsrf": "true"})


async def _inspect(endpoint: Endpoint, learned: Learned) -> None:
    base, limits = endpoint.url, learned.limits
    async with bounded_client(endpoint, limits) as client:
        status = await get_bounded(base + "/api/status", limits, client)
        if refused(status):
            learned.auth = "required"
            return
        learned.software = status_software(json_body(status, "/api/status")) or learned.software
        learned.auth = "none"
        learned.details["via"] = "kibana"
        fetch = partial(proxied, base, limits, client)
        cluster = await cluster_root(fetch)
        if cluster is not None:
            learned.details["elasticsearch"] = {"software": cluster.name, "version": cluster.version}
        await read_indices(fetch, learned)


class KibanaProtocol:
    name = "kibana"
    default_ports = (5601,)
    probe = HTTP.probe

    def match(self, reply: bytes) -> Identity | None:
        """An HTTP answer carrying Kibana's `kbn-*` headers, or the JSON of its `/api/status`."""
        if (parts := http_parts(reply)) is None:
            return None
        status, head, body, banner = parts
        if _KBN_HEADER.search(head):
            found = _KBN_VERSION.search(head)
            version = found.group(1).decode() if found else None
            login = status in (401, 403) or _LOGIN.search(head) is not None
            auth: Auth = "required" if login else "unknown"
            return Identity(self.name, Software("kibana", version), auth, banner)
        software = json_software(body, status_software)
        return Identity(self.name, software, "none", banner) if software else None

    async def inspect(self, endpoint: Endpoint, identity: Identity, limits: Limits) -> Inspection:
        """Kibana's status, then the cluster's indices through the console proxy (forwarded GETs only)."""
        return await run_inspection(self.name, partial(_inspect, endpoint), identity, limits)


PROTOCOL = KibanaProtocol()

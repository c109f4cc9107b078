"""Every protocol module runs over TLS unchanged: each open lab service of every protocol that speaks
TLS from the first byte is put behind a TLS terminator on 127.0.0.1 (as stunnel or an nginx stream
proxy would be), and is identified and inspected through it with the same facts as the manifest's,
plus the certificate. PostgreSQL and MySQL negotiate TLS inside their protocol: the lab's own TLS
services cover them (tests/test_scan_tls.py)."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
from collections.abc import AsyncIterator
from typing import Any

import certs
import hostile
import pytest

from leaksonar.lab import total_rows
from leaksonar.model import Limits
from leaksonar.scan.examine import inspect_service
from leaksonar.scan.identify import identify

TLS_FROM_THE_FIRST_BYTE = (
    "redis",
    "memcached",
    "mongodb",
    "elasticsearch",
    "kibana",
    "couchdb",
    "etcd",
    "influxdb",
    "cassandra",
)
"""Protocols whose one port a TLS terminator can front (ClickHouse's inspection also uses its native
port, which a terminator on another port cannot stand for)."""
LIMITS = Limits(timeout=3.0)
CERT = certs.make("front.example.lab", "front.example.lab", "127.0.0.1", key="ec")


@contextlib.asynccontextmanager
async def tls_front(ip: str, port: int) -> AsyncIterator[int]:
    """A TLS terminator on 127.0.0.1 in front of ip:port; yields its port."""
    relay = hostile._stoppable(hostile.relay_to(ip, port))
    async with await asyncio.start_server(relay, "127.0.0.1", 0, ssl=CERT.server_context()) as server:
        yield server.sockets[0].getsockname()[1]


def _open_service(lab: dict[str, Any], protocol: str) -> dict[str, Any]:
    return next(s for s in lab["services"] if s["protocol"] == protocol and s["auth"] == "none")


@pytest.mark.parametrize("protocol", TLS_FROM_THE_FIRST_BYTE)
def test_every_protocol_is_identified_and_inspected_behind_tls(lab: dict[str, Any], protocol: str) -> None:
    service = _open_service(lab, protocol)

    async def through_tls() -> tuple[Any, Any]:
        async with tls_front(service["ip"], service["port"]) as port:
            identity = await identify("127.0.0.1", port, None, LIMITS)
            return identity, await inspect_service("127.0.0.1", port, identity, LIMITS)

    identity, inspection = asyncio.run(through_tls())
    assert identity.protocol == protocol
    assert identity.tls is not None and identity.tls.cert is not None
    assert identity.tls.cert.sha256 == hashlib.sha256(CERT.der).hexdigest()
    assert identity.tls.cert.names == ("front.example.lab", "127.0.0.1")
    assert inspection.auth == "none" and inspection.exposed
    assert inspection.software is not None
    assert inspection.software.name == service["software"]["name"]
    assert inspection.rows == total_rows(service), [e.message for e in inspection.errors]

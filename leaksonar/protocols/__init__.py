"""Protocol modules, in the order their `match` is tried on a reply."""

from __future__ import annotations

from leaksonar.protocols import http, memcached, mysql, postgres, redis
from leaksonar.protocols.base import Endpoint, ProtocolModule

PROTOCOLS: tuple[ProtocolModule, ...] = (
    mysql.PROTOCOL,
    postgres.PROTOCOL,
    redis.PROTOCOL,
    memcached.PROTOCOL,
    http.PROTOCOL,
)
BY_NAME: dict[str, ProtocolModule] = {p.name: p for p in PROTOCOLS}

__all__ = ["BY_NAME", "PROTOCOLS", "Endpoint", "ProtocolModule"]

"""Protocol modules, in the order their `match` is tried on a reply."""

from __future__ import annotations

from leaksonar.protocols import (
    cassandra,
    clickhouse,
    couchdb,
    elasticsearch,
    etcd,
    http,
    influxdb,
    kibana,
    memcached,
    mongodb,
    mysql,
    postgres,
    redis,
)
from leaksonar.protocols.base import Endpoint, ProtocolModule

PROTOCOLS: tuple[ProtocolModule, ...] = (
    mysql.PROTOCOL,
    postgres.PROTOCOL,
    redis.PROTOCOL,
    memcached.PROTOCOL,
    elasticsearch.PROTOCOL,
    kibana.PROTOCOL,
    mongodb.PROTOCOL,
    couchdb.PROTOCOL,
    clickhouse.PROTOCOL,
    cassandra.PROTOCOL,
    etcd.PROTOCOL,
    influxdb.PROTOCOL,
    http.PROTOCOL,
)
BY_NAME: dict[str, ProtocolModule] = {p.name: p for p in PROTOCOLS}

__all__ = ["BY_NAME", "PROTOCOLS", "Endpoint", "ProtocolModule"]

"""Protocol modules, in the order their `match` is tried on a reply."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from leaksonar.model import Identity, Inspection, Limits
from leaksonar.protocols import (
    cassandra,
    clickhouse,
    couchdb,
    docker_registry,
    elasticsearch,
    etcd,
    ftp,
    hdfs,
    http,
    influxdb,
    kibana,
    memcached,
    mongodb,
    mysql,
    postgres,
    redis,
    rsync,
    s3,
    smb,
)
from leaksonar.protocols.base import BoundedStream, Endpoint, ProtocolModule

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
    ftp.PROTOCOL,
    hdfs.PROTOCOL,
    s3.PROTOCOL,
    rsync.PROTOCOL,
    smb.PROTOCOL,
    docker_registry.PROTOCOL,
    http.PROTOCOL,
)
BY_NAME: dict[str, ProtocolModule] = {p.name: p for p in PROTOCOLS}
REQUEST_TLS: dict[str, Callable[[BoundedStream], Awaitable[bool]]] = {
    postgres.NAME: postgres.request_tls,
    mysql.NAME: mysql.request_tls,
}
"""Protocols that negotiate TLS inside the plaintext connection: how to ask for it (True: the TLS
handshake is next). Every other protocol speaks TLS from the connection's first byte, if at all."""
CONTINUES: dict[str, Callable[[BoundedStream, Endpoint, Identity, Limits], Awaitable[Inspection]]] = {
    redis.PROTOCOL.name: redis.inspect_on,
}
"""Protocols whose own probe leaves the connection clean: when it identified the service, the
inspection goes on over that connection (it owns it and closes it) instead of opening another."""
CONFIRMS: dict[str, tuple[Callable[[bytes], bool], bytes]] = {
    docker_registry.NAME: (docker_registry.looks_like, docker_registry.PROBE),
}
"""Protocols whose `GET /` answer only the generic HTTP module names: when that answer looks like theirs,
identification sends their own request (one more connection) and keeps what it identifies."""

__all__ = ["BY_NAME", "CONFIRMS", "CONTINUES", "PROTOCOLS", "REQUEST_TLS", "Endpoint", "ProtocolModule"]

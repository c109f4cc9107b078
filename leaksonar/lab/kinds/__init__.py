"""The registry of lab server kinds: protocol -> module `leaksonar.lab.kinds.<module>`.

Adding a kind is adding its module and ONE line to `MODULES` (see docs/lab.md). Modules are imported on
first use, so `import leaksonar.lab` and `leaksonar lab --help` load no database driver.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from leaksonar.lab.kinds.base import ServerKind

MODULES: dict[str, str] = {
    "redis": "redis",
    "postgresql": "postgresql",
    "mysql": "mysql",
    "memcached": "memcached",
    # Added kinds (their offsets in the comment; 40 and 61-120 are for new kinds):
    "mongodb": "mongodb",  # offsets 11-14
    "elasticsearch": "opensearch",  # offsets 15-18
    "kibana": "kibana",  # offsets 19-20
    "cassandra": "cassandra",  # offsets 21-23
    "couchdb": "couchdb",  # offsets 24-26
    "clickhouse": "clickhouse",  # offsets 27-30
    "etcd": "etcd",  # offsets 31-34
    "influxdb": "influxdb",  # offsets 35-38
    "ftp": "ftp",  # offset 39
    "hdfs": "hdfs",  # offsets 65-66
    "s3": "s3",  # offset 61
    "rsync": "rsync",  # offset 63
    "smb": "smb",  # offset 64
    "docker-registry": "docker_registry",  # offsets 67-68
    # Offsets 41-60: TLS variants (postgresql 43, redis 44, mysql 45) and TLS proxies:
    "nginx": "nginx",  # offsets 41-42, runs services of the protocols it proxies (ServiceSpec.kind)
}
"""protocol (or, for a proxy, its own name) -> module name under leaksonar.lab.kinds; the key must equal
the module's KIND.protocol."""


def module(protocol: str) -> object:
    """The kind module for `protocol` (imported now, if it was not yet)."""
    try:
        name = MODULES[protocol]
    except KeyError:
        from leaksonar.lab.spec import LabError

        raise LabError(f"no lab server kind for protocol {protocol!r}") from None
    return importlib.import_module(f"{__name__}.{name}")


def kind(protocol: str) -> ServerKind:
    """The server kind for `protocol` (its module's `KIND`)."""
    kind: ServerKind = module(protocol).KIND  # type: ignore[attr-defined]
    return kind

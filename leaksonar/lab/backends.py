"""A broker Redis and a store PostgreSQL on a loopback address, started with the lab's own server kinds:
what the tests and the scale-out bench run workers against."""

from __future__ import annotations

import shutil
import socket
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from leaksonar.lab import kinds, servers
from leaksonar.lab.kinds.base import Launch
from leaksonar.lab.kinds.postgresql import wait_accepting


@dataclass(frozen=True, slots=True)
class Backends:
    broker: str
    """redis://IP:PORT/0"""
    db: str
    """postgresql://postgres@IP:PORT/postgres (trust authentication on loopback)"""


def _free_port(ip: str) -> int:
    with socket.socket() as probe:
        probe.bind((ip, 0))
        return int(probe.getsockname()[1])


@contextmanager
def backends(ip: str) -> Iterator[Backends]:
    """Start redis-server and PostgreSQL 15 on `ip` (a 127.x address), each on a free port; stop both and
    remove their data on exit."""
    directory = Path(tempfile.mkdtemp(prefix="leaksonar-dist-"))
    started: list[tuple[int, str]] = []
    try:
        ports = {}
        for protocol in ("redis", "postgresql"):
            kind, port = kinds.kind(protocol), _free_port(ip)
            workdir = directory / protocol
            workdir.mkdir(mode=0o755)
            launch = Launch(protocol, ip, port, workdir, None, workdir / "server.log")
            how = kind.start(launch)
            pid = servers.spawn(how.argv, launch.log, how.account, how.env)
            started.append((pid, protocol))
            servers.wait_listening(pid, ip, port, launch.log)
            if protocol == "postgresql":
                wait_accepting(ip, port)
            ports[protocol] = port
        yield Backends(
            f"redis://{ip}:{ports['redis']}/0", f"postgresql://postgres@{ip}:{ports['postgresql']}/postgres"
        )
    finally:
        for pid, protocol in started:
            servers.stop(pid, protocol, ip)
        shutil.rmtree(directory, ignore_errors=True)

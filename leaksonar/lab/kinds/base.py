"""The interface of a lab server kind: how to start, seed and digest one kind of server.

A kind module (`leaksonar/lab/kinds/<name>.py`) defines one class satisfying `ServerKind` and
`KIND = ThatClass()`; optionally `SERVICES: tuple[ServiceSpec, ...]` (see docs/lab.md). The lab does
the rest: directories, spawning, waiting for the ports, the manifest, stopping.
"""

from __future__ import annotations

import signal
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from leaksonar.lab.digest import Hasher
from leaksonar.lab.seed import Seeded
from leaksonar.lab.servers import Account
from leaksonar.lab.tls import Leaf


@dataclass(frozen=True, slots=True)
class Launch:
    """What a kind gets to start one service."""

    name: str
    """The service name, e.g. "mongodb-open"."""
    ip: str
    port: int
    workdir: Path
    """The service's own directory inside the lab directory (created, empty, mode 0755)."""
    password: str | None
    """Set for services with auth "required"."""
    log: Path
    """workdir / "server.log" (the server's stdout and stderr)."""
    tls: Leaf | None = None
    """Set for a service behind TLS: its certificate and key (`tls.write(directory, account)` puts them
    in files); the kind serves TLS with them and its seeder and digest connect over TLS."""


@dataclass(frozen=True, slots=True)
class Started:
    """What a kind returns from `start`: the server command and how to run it."""

    argv: list[str]
    """The server command, started by `servers.spawn` in its own session."""
    account: Account | None = None
    """Run as this system user (PostgreSQL under root)."""
    socket: Path | None = None
    """A unix socket the seeder may use (MariaDB)."""
    env: dict[str, str] | None = None
    """Extra environment for the server process (added to the lab's own)."""
    ports: tuple[int, ...] = ()
    """Extra ports to wait for besides `Launch.port`."""


class ServerKind(Protocol):
    protocol: str
    """The protocol the scanner reports, and the manifest's "protocol"."""
    programs: tuple[str, ...]
    """Basenames that may appear as argv[0] or argv[1] in /proc/PID/cmdline (e.g. ("secantusd-py",)
    run by python): how `lab down` recognises its server before signalling a recorded PID."""
    software: str
    """The manifest's software name."""
    user: str | None
    """The credentials user for auth-required services (None: password only)."""
    stop_signal: signal.Signals
    standin: bool
    """True when the lab runs a wire-compatible substitute, not the real server (none is packaged
    here): a third-party one (secantusdb, osmem-server, pouchdb-server) or one written for the lab."""

    def start(self, launch: Launch) -> Started:
        """Prepare the data (`servers.run` for init commands) and return the server command."""
        ...

    def seed(self, launch: Launch, started: Started) -> Seeded:
        """Load this service's data (dispatch on `launch.name`); return version and databases (+ keys,
        attack)."""
        ...

    def digest(self, entry: dict[str, Any], h: Hasher) -> None:
        """Hash all data of a running service (its manifest entry)."""
        ...

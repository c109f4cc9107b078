"""A second server of a lab service's kind, on that service's address and an unusual port: what the tests
of identification away from a protocol's default ports inspect (started once per test module, which only
reads from it)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from leaksonar.lab import servers
from leaksonar.lab.kinds import kind
from leaksonar.lab.kinds.base import Launch


@contextmanager
def moved_server(
    lab: dict[str, Any], name: str, port: int, *, seeded: bool = False
) -> Iterator[dict[str, Any]]:
    """Lab service `name`'s kind started again on `port` (`seeded`: loaded with the same data, for kinds
    whose data is not written by `start`); yields the lab service's manifest entry."""
    service = next(s for s in lab["services"] if s["name"] == name)
    workdir = Path(lab["dir"]) / f"moved-{name}"  # inside the lab dir: reachable by PostgreSQL's user
    workdir.mkdir(mode=0o755)
    server = kind(service["protocol"])
    launch = Launch(f"{name}-moved", service["ip"], port, workdir, None, workdir / "server.log")
    started = server.start(launch)
    pid = servers.spawn(started.argv, launch.log, started.account, started.env)
    try:
        servers.wait_listening(pid, launch.ip, port, launch.log)
        if seeded:
            server.seed(launch, started)
        yield service
    finally:
        servers.stop(pid, service["protocol"], launch.ip)
        shutil.rmtree(workdir, ignore_errors=True)

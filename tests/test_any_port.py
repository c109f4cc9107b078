"""Identification does not trust the port number: the foundation's servers on ports nothing expects."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import jsonl_records, leaksonar

from leaksonar.lab import servers
from leaksonar.lab.kinds import kind
from leaksonar.lab.kinds.base import Launch
from leaksonar.model import Limits
from leaksonar.scan.identify import identify

FAST = Limits(timeout=1.0, service_budget=5.0)


@pytest.fixture(
    scope="module",
    params=[("redis-open", 7000), ("postgres-trust", 5433), ("mariadb-open", 3307), ("memcached", 11311)],
)
def moved(request: pytest.FixtureRequest, lab: dict[str, Any]) -> Iterator[tuple[dict[str, Any], int]]:
    """A second server of a lab service's kind, on that service's address and an unusual port (each started
    once for the tests of the module, which only read from it)."""
    name, port = request.param
    service = next(s for s in lab["services"] if s["name"] == name)
    workdir = Path(lab["dir"]) / f"moved-{name}"  # inside the lab dir: reachable by PostgreSQL's user
    workdir.mkdir(mode=0o755)
    server = kind(service["protocol"])
    launch = Launch(f"{name}-moved", service["ip"], port, workdir, None, workdir / "server.log")
    started = server.start(launch)
    pid = servers.spawn(started.argv, launch.log, started.account, started.env)
    try:
        servers.wait_listening(pid, launch.ip, port, launch.log)
        yield service, port
    finally:
        servers.stop(pid, service["protocol"], launch.ip)
        shutil.rmtree(workdir, ignore_errors=True)


def test_moved_server_is_identified(moved: tuple[dict[str, Any], int]) -> None:
    service, port = moved
    identity = asyncio.run(identify(service["ip"], port, None, FAST))
    assert identity.protocol == service["protocol"]
    assert identity.software is not None and identity.software.name == service["software"]["name"]


def test_moved_server_is_found_by_a_scan(moved: tuple[dict[str, Any], int], tmp_path: Path) -> None:
    service, port = moved
    jsonl = tmp_path / "f.jsonl"
    leaksonar(
        "scan", service["ip"], "-p", str(port), "--db", str(tmp_path / "i.db"), "--jsonl", str(jsonl), "-q"
    )
    _, (record,) = jsonl_records(jsonl)
    assert (record["port"], record["protocol"]) == (port, service["protocol"])

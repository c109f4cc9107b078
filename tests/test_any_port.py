"""Identification does not trust the port number: the foundation's servers on ports nothing expects."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import jsonl_records, leaksonar
from moved import moved_server

from leaksonar.model import Limits
from leaksonar.scan.identify import identify

FAST = Limits(timeout=1.0, service_budget=5.0)


@pytest.fixture(
    scope="module",
    params=[("redis-open", 7000), ("postgres-trust", 5433), ("mariadb-open", 3307), ("memcached", 11311)],
)
def moved(request: pytest.FixtureRequest, lab: dict[str, Any]) -> Iterator[tuple[dict[str, Any], int]]:
    """A second server of a lab service's kind, on its address and an unusual port."""
    name, port = request.param
    with moved_server(lab, name, port) as service:
        yield service, port


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

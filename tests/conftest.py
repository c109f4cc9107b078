"""Shared fixtures. `lab`: real database servers on loopback (base 127.78.0.0), one per test session;
`scanned`: one scan of the whole lab, shared by the tests that read its findings."""

from __future__ import annotations

import ipaddress
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

os.environ["LEAKSONAR_SCOPE"] = "127.0.0.0/8"

TEST_LAB_BASE = "127.78.0.0"


def _running_lab(directory: Path) -> dict[str, Any] | None:
    """The manifest of the lab in `directory` if every one of its services runs."""
    from leaksonar.lab import LabError, lab_status, read_manifest

    try:
        statuses = lab_status(directory)
    except LabError:
        return None
    return read_manifest(directory) if statuses and all(s["running"] for s in statuses) else None


def _start(directory: Path) -> dict[str, Any]:
    """Start the session lab on 127.78.0.0, or on the next free 127.78.(16*k).0 when another test run
    sharing this machine already holds the addresses."""
    from leaksonar.lab import LabError, lab_up

    first = ipaddress.IPv4Address(TEST_LAB_BASE)
    *bases, last = (str(first + k * 16 * 256) for k in range(8))
    for base in bases:
        try:
            return lab_up(directory, base)
        except LabError as exc:
            if "in use" not in str(exc):
                raise
    return lab_up(directory, last)


@pytest.fixture(scope="session")
def lab() -> Iterator[dict[str, Any]]:
    """The lab manifest. Reuses the lab in $LEAKSONAR_TEST_LAB_DIR if it runs; else starts one for the
    session in a temporary directory (traversable by the postgres user) and stops it at the end."""
    from leaksonar.lab import lab_down

    reuse = os.environ.get("LEAKSONAR_TEST_LAB_DIR")
    manifest = _running_lab(Path(reuse)) if reuse else None
    if manifest is not None:
        yield manifest
        return
    directory = Path(tempfile.mkdtemp(prefix="leaksonar-lab-"))
    try:
        yield _start(directory)
    finally:
        if (directory / "manifest.json").exists():
            lab_down(directory)
        shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture
def lab_service(lab: dict[str, Any]) -> Callable[[str], dict[str, Any]]:
    """`lab_service("redis-open")`: that service's manifest entry."""
    from leaksonar.lab import service

    return lambda name: service(lab, name)


def leaksonar(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run the `leaksonar` command; unless `check` is false, fail on a non-zero exit."""
    result = subprocess.run(
        [sys.executable, "-m", "leaksonar", *args], capture_output=True, text=True, timeout=120
    )
    if check and result.returncode != 0:
        raise AssertionError(f"leaksonar {' '.join(args)} exited {result.returncode}: {result.stderr}")
    return result


def jsonl_records(path: Path) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """What `scan --jsonl` wrote to `path`: its header record (how the scan was made) and its findings."""
    header, *found = map(json.loads, path.read_text("utf-8").splitlines())
    assert set(header) == {"scan"}, "the first record says how the scan was made"
    return header, found


def leaksonar_here(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """`leaksonar(*args)` run in this process (no interpreter to start: about a second less on a loaded
    machine), for commands that start no server and install no signal handler. An exception the command
    lets out is raised here (the `leaksonar` command would print it as one line, exit 1)."""
    from typer.testing import CliRunner

    from leaksonar.cli.app import app

    result = CliRunner().invoke(app, list(args))
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    if check and result.exit_code != 0:
        raise AssertionError(f"leaksonar {' '.join(args)} exited {result.exit_code}: {result.stderr}")
    return subprocess.CompletedProcess(list(args), result.exit_code, result.stdout, result.stderr)


def lab_block(manifest: dict[str, Any]) -> str:
    """The /24 the lab's services live in."""
    return manifest["base"].rsplit(".", 1)[0] + ".0/24"


@pytest.fixture(scope="session")
def scanned(lab: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """One scan of the whole lab; digests of every service taken before and after it."""
    from leaksonar.lab import lab_digest

    work = tmp_path_factory.mktemp("scan")
    db, jsonl = work / "index.db", work / "findings.jsonl"
    before = {s["name"]: lab_digest(s) for s in lab["services"]}
    started = time.monotonic()
    result = leaksonar("scan", lab_block(lab), "--db", str(db), "--jsonl", str(jsonl))
    elapsed = time.monotonic() - started
    wal = Path(f"{db}-wal")
    left_in_wal = wal.stat().st_size if wal.exists() else 0
    after = {s["name"]: lab_digest(s) for s in lab["services"]}
    _, records = jsonl_records(jsonl)
    return {
        "db": db,
        "jsonl": jsonl,
        "records": {(r["ip"], r["port"]): r for r in records},
        "stdout": result.stdout,
        "stderr": result.stderr,
        "elapsed": elapsed,
        "left_in_wal": left_in_wal,
        "before": before,
        "after": after,
    }


@pytest.fixture(scope="session")
def hostile_index(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """The hostile-text kit (tests/hostile_text.py: servers whose every string is hostile) scanned twice
    with the CLI into an index, so it holds hostile findings and change events; the kit runs on (stage 2)
    for the session. A hostile_text.HostileIndex: db, jsonl, ip, kit, scans."""
    from hostile_text import scanned_kit

    with scanned_kit(tmp_path_factory.mktemp("hostile-text")) as found:
        yield found


DIST_IP = "127.79.0.1"
"""Where the session's Redis and PostgreSQL listen (each on a free port)."""


@pytest.fixture(scope="session")
def dist_backends() -> Iterator[Any]:
    """Redis and PostgreSQL 15 on loopback for the session (leaksonar.lab.backends.Backends)."""
    from leaksonar.lab.backends import backends

    with backends(DIST_IP) as started:
        yield started


def new_postgres_database(server: str) -> str:
    """Create an empty database on the PostgreSQL at `server` (a postgresql:// URL); its URL."""
    import psycopg

    name = f"index_{uuid.uuid4().hex}"  # unique although tests import this module twice (as tests.conftest)
    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    return f"{server.rsplit('/', 1)[0]}/{name}"


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def new_index(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Callable[[], str]:
    """`new_index()`: a new empty index (its --db) of the module's kind; the tests using this fixture run
    once with SQLite files and once with databases on the session's PostgreSQL."""
    if request.param == "sqlite":
        return lambda: str(tmp_path_factory.mktemp("index") / "index.db")
    server = request.getfixturevalue("dist_backends").db
    return lambda: new_postgres_database(server)


def index_contents(engine: Any) -> tuple[Any, ...]:
    """Every table of an index (a Store's engine) with its rows, to compare before and after something
    that must not write."""
    from sqlalchemy import inspect, text

    with engine.connect() as conn:
        return tuple(
            (name, sorted(map(repr, conn.execute(text(f'SELECT * FROM "{name}"')))))
            for name in sorted(inspect(conn).get_table_names())
        )

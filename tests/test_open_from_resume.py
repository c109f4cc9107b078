"""`scan --open-from FILE` stopped mid-way is finished by `scan --resume` from its checkpoint, unless the file
changed (or was standard input); every scan says how it was made, in `--jsonl` and in /api/scans."""

from __future__ import annotations

import json
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import closing, contextmanager
from pathlib import Path
from typing import Any

import pytest
from conftest import jsonl_records, leaksonar
from fastapi.testclient import TestClient
from test_open_from import endpoints

from leaksonar.store.db import Store
from leaksonar.web.app import create_app
from leaksonar.web.keys import create_key

SILENT = [(f"127.79.70.{host}", 7000) for host in range(1, 71)]
"""More ports than the scan inspects at once (64) that accept a connection and never answer: while they
hold every inspection slot, the ports listed after them are not read yet."""


def query(db: Path, sql: str, *args: Any) -> list[tuple[Any, ...]]:
    with closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as conn:
        return conn.execute(sql, args).fetchall()


def state(db: Path) -> tuple[str, dict[str, Any], set[tuple[str, int]]] | None:
    """The running scan's id, checkpoint and recorded services, once it has a checkpoint."""
    try:
        rows = query(db, "SELECT id, checkpoint FROM scans") if db.exists() else []
        if not rows or rows[0][1] is None:
            return None
        found = query(db, "SELECT ip, port FROM findings WHERE scan_id = ?", rows[0][0])
    except sqlite3.OperationalError:  # the scan is still making its tables
        return None
    return rows[0][0], json.loads(rows[0][1]), set(found)


@contextmanager
def silent_services() -> Iterator[None]:
    socks = []
    try:
        for pair in SILENT:
            sock = socket.socket()
            sock.bind(pair)
            sock.listen(16)
            socks.append(sock)
        yield
    finally:
        for sock in socks:
            sock.close()


def masscan_list(pairs: list[tuple[str, int]]) -> str:
    return "\n".join(["#masscan", *(f"open tcp {port} {ip} 1700000000" for ip, port in pairs), "# end", ""])


def stop_when(
    db: Path, args: list[str], ready: Any, how: signal.Signals, **popen: Any
) -> tuple[str, dict[str, Any], subprocess.Popen[bytes]]:
    """Run `scan ARGS --db DB -q`; once its state satisfies `ready`, send it `how`. Returns the scan id, the
    checkpoint seen and the stopped process."""
    command = [sys.executable, "-m", "leaksonar", "scan", *args, "--db", str(db), "-q"]
    process = subprocess.Popen(command, stderr=subprocess.PIPE, start_new_session=True, **popen)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            assert process.poll() is None, process.stderr.read() if process.stderr else ""
            seen = state(db)
            if seen and ready(*seen[1:]):
                process.send_signal(how)
                process.wait(30)
                return seen[0], seen[1], process
            time.sleep(0.05)
        raise AssertionError("the scan did not get there within 60 s")
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


@pytest.mark.slow
def test_an_interrupted_open_from_scan_resumes_where_it_stopped(lab: dict[str, Any], tmp_path: Path) -> None:
    services = endpoints(lab)
    first, rest = services[: len(services) // 2], services[len(services) // 2 :]
    listed = [*first, *SILENT, *rest]
    source, db = tmp_path / "masscan.txt", tmp_path / "index.db"
    source.write_text(masscan_list(listed))
    silent = set(SILENT)

    def ready(checkpoint: dict[str, Any], found: set[tuple[str, int]]) -> bool:
        """The first services recorded, and only silent ports pending at the checkpoint."""
        (shard,) = checkpoint["shards"]
        pending = {(ip, port) for ip, port, _ in shard["open"]}
        return set(first) <= found and bool(pending) and pending <= silent

    with silent_services():
        scan_id, mark, process = stop_when(
            db, ["--open-from", str(source), "--read-timeout", "1"], ready, signal.SIGINT
        )
        assert process.returncode == 130
        assert f"leaksonar scan --resume {scan_id}" in (
            process.stderr.read().decode() if process.stderr else ""
        )
        assert query(db, "SELECT status FROM scans") == [("interrupted",)]
        assert mark["shards"][0]["position"] < len(listed), "stopped before the end of the file"
        before = dict(
            ((ip, port), (time_, record))
            for ip, port, time_, record in query(db, "SELECT ip, port, time, record FROM findings")
        )
        jsonl = tmp_path / "resumed.jsonl"
        leaksonar("scan", "--resume", scan_id, "--db", str(db), "--jsonl", str(jsonl), "-q")
    header, found = jsonl_records(jsonl)
    assert header["scan"]["id"] == scan_id and header["scan"]["resumed"] is True
    assert header["scan"]["source"]["format"] == "masscan-list"
    rows = query(db, "SELECT ip, port, time, record FROM findings WHERE scan_id = ?", scan_id)
    assert sorted((ip, port) for ip, port, _, _ in rows) == sorted(listed), "every port once"
    after = {(ip, port): (time_, record) for ip, port, time_, record in rows}
    assert all(after[pair] == before[pair] for pair in first), "what was recorded is not examined again"
    assert {(r["ip"], r["port"]) for r in found} >= set(rest), "the rest of the file is read"
    assert query(db, "SELECT status FROM scans") == [("done",)]
    assert query(db, "PRAGMA integrity_check") == [("ok",)]


def test_a_changed_file_or_standard_input_is_not_resumed(tmp_path: Path) -> None:
    source, db = tmp_path / "naabu.txt", tmp_path / "index.db"
    source.write_text(f"{SILENT[0][0]}:{SILENT[0][1]}\n")
    with silent_services():
        scan_id, _, process = stop_when(db, ["--open-from", str(source)], lambda *_: True, signal.SIGKILL)
    source.write_text(f"{SILENT[0][0]}:{SILENT[0][1]}\n127.0.0.1:1\n")
    result = leaksonar("scan", "--resume", scan_id, "--db", str(db), check=False)
    assert result.returncode == 2 and len(result.stderr.splitlines()) == 1, result.stderr
    assert f"{source} changed since scan {scan_id} read it" in result.stderr

    piped = tmp_path / "piped.db"
    with silent_services():
        scan_id, _, process = stop_when(
            piped, ["--open-from", "-"], lambda *_: True, signal.SIGINT, stdin=subprocess.PIPE
        )
    assert process.returncode == 130
    result = leaksonar("scan", "--resume", scan_id, "--db", str(piped), check=False)
    assert result.returncode == 2 and "standard input" in result.stderr, result.stderr
    assert len(result.stderr.splitlines()) == 1


def test_every_scan_says_how_it_was_made(lab: dict[str, Any], tmp_path: Path) -> None:
    (ip, port), db = endpoints(lab)[0], tmp_path / "index.db"
    source = tmp_path / "secret-name.txt"
    source.write_text(masscan_list([(ip, port)]))
    own, read = tmp_path / "own.jsonl", tmp_path / "read.jsonl"
    leaksonar("scan", ip, "-p", str(port), "--rate", "500", "--db", str(db), "--jsonl", str(own), "-q")
    leaksonar("scan", "--open-from", str(source), "--db", str(db), "--jsonl", str(read), "-q")
    (own_header, [own_found]), (read_header, [read_found]) = jsonl_records(own), jsonl_records(read)
    assert (own_found["ip"], own_found["port"]) == (read_found["ip"], read_found["port"]) == (ip, port)
    assert own_header["scan"]["source"] == {"kind": "discovery"}
    assert own_header["scan"]["settings"]["rate"] == 500 and own_header["scan"]["ports"] == str(port)
    made = read_header["scan"]["source"]
    assert (made["kind"], made["format"], made["file"]) == ("open-from", "masscan-list", str(source))
    assert own_header["scan"]["version"] == read_header["scan"]["version"]
    assert own_header["scan"]["version"] is not None

    store = Store(str(db), create=False)
    key = create_key(store, "ana", "analyst")
    app = create_app(store, allowed_hosts=["testserver"], rate_limit="1000000/minute")
    with TestClient(app) as public, TestClient(app, headers={"X-API-Key": key}) as analyst:
        shown, seen = public.get("/api/scans").json(), analyst.get("/api/scans").json()
    store.close()
    by_id = {scan["id"]: scan for scan in seen}
    assert by_id[read_header["scan"]["id"]]["source"]["file"] == str(source)
    assert by_id[own_header["scan"]["id"]]["settings"]["rate"] == 500
    assert {scan["version"] for scan in shown} == {own_header["scan"]["version"]}
    assert sorted(scan["source"]["kind"] for scan in shown) == ["discovery", "open-from"]
    assert "secret-name" not in json.dumps(shown), "no file name for the public"
    assert all(scan["settings"] is None and scan["source"]["file"] is None for scan in shown)
    assert {scan["source"]["format"] for scan in shown} == {None, "masscan-list"}

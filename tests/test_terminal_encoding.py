"""A terminal that cannot show every character (LC_ALL=C, a Latin-1 terminal, PYTHONIOENCODING=ascii):
every command shows what a server wrote, escaped where the terminal cannot encode it, and never fails."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from hostile import Reply, redis
from hostile_text import serving

VERSION = "7.0.15 中文é"
KEY = "名前é"


def _bulk(data: bytes) -> bytes:
    return b"$%d\r\n%s\r\n" % (len(data), data)


def _answer(command: list[bytes]) -> Reply:
    verb = command[0].upper()
    if verb == b"INFO":
        return _bulk(f"redis_version:{VERSION}\r\n# Keyspace\r\ndb0:keys=1,expires=0\r\n".encode())
    if verb == b"SCAN":
        return b"*2\r\n$1\r\n0\r\n*1\r\n" + _bulk(KEY.encode())
    if verb == b"TYPE":
        return b"+string\r\n"
    if verb == b"GETRANGE":
        return _bulk("café 中文 alice@example.com".encode())
    return b"+OK\r\n"


def run(encoding: str, *args: str) -> subprocess.CompletedProcess[bytes]:
    env = {**os.environ, "LC_ALL": "C", "PYTHONUTF8": "0", "PYTHONIOENCODING": encoding}
    return subprocess.run(
        [sys.executable, "-m", "leaksonar", *args], capture_output=True, env=env, timeout=120, check=False
    )


@pytest.fixture(scope="module")
def index(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """An index whose finding holds Chinese and accented server text, scanned on an ASCII terminal."""
    db = tmp_path_factory.mktemp("encoding") / "index.db"
    with serving(redis(_answer)) as (port,):
        scanned = run("ascii", "scan", "127.0.0.1", "-p", str(port), "--db", str(db))
        assert scanned.returncode == 0, scanned.stderr
        assert rb"redis 7.0.15 \u4e2d\u6587\u00e9" in scanned.stdout
        yield db


@pytest.mark.parametrize("encoding", ["ascii", "latin-1"])
@pytest.mark.parametrize(
    "command", [["search", ""], ["show", "127.0.0.1"], ["hosts"], ["events"], ["export", "--format", "csv"]]
)
def test_tables_and_lines_show_escapes(index: Path, encoding: str, command: list[str]) -> None:
    db = index
    done = run(encoding, *command, "--db", str(db))
    assert done.returncode == 0, done.stderr
    assert b"Traceback" not in done.stderr and b"internal error" not in done.stderr
    shown = done.stdout.decode(encoding)
    if command[0] in ("search", "show", "export"):
        assert r"\u4e2d\u6587" in shown
        assert ("é" if encoding == "latin-1" else r"\u00e9") in shown


@pytest.mark.parametrize("encoding", ["ascii", "latin-1"])
@pytest.mark.parametrize("command", [["search", ""], ["show", "127.0.0.1"], ["hosts"], ["events"]])
def test_json_stays_exact(index: Path, encoding: str, command: list[str]) -> None:
    db = index
    done = run(encoding, *command, "--db", str(db), "--json")
    assert done.returncode == 0, done.stderr
    text = done.stdout.decode(encoding)
    values = (
        [json.loads(line) for line in text.splitlines()] if command[0] == "events" else [json.loads(text)]
    )
    assert VERSION in json.dumps(values, ensure_ascii=False) or command[0] in ("hosts", "events")


def test_scan_jsonl_to_stdout_is_json(tmp_path: Path) -> None:
    with serving(redis(_answer)) as (port,):
        done = run(
            "ascii", "scan", "127.0.0.1", "-p", str(port), "--db", str(tmp_path / "i.db"), "--jsonl", "-"
        )
    assert done.returncode == 0, done.stderr
    _, record = [json.loads(line) for line in done.stdout.decode("ascii").splitlines()]  # 1st: the scan
    assert record["software"]["version"] == VERSION
    assert rb"\u4e2d\u6587\u00e9" in done.stderr  # the summary table


def test_an_error_quoting_server_text_is_escaped(index: Path) -> None:
    db = index
    done = run("ascii", "search", "中文:x", "--db", str(db))
    assert done.returncode == 2
    assert done.stderr.decode("ascii").count("\n") == 1


def test_log_records_are_escaped() -> None:
    code = (
        "import logging\n"
        "from leaksonar.cli.logs import LogLevel, setup_logging\n"
        "from leaksonar.terminal import escape_unencodable\n"
        "escape_unencodable()\n"
        "setup_logging(LogLevel.info)\n"
        "logging.getLogger('leaksonar.watch').warning('version %s', '\\u4e2d\\u6587\\u00e9')\n"
    )
    env = {**os.environ, "LC_ALL": "C", "PYTHONUTF8": "0", "PYTHONIOENCODING": "ascii"}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, env=env, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stderr.endswith(b" WARNING leaksonar.watch: version \\u4e2d\\u6587\\u00e9\n")

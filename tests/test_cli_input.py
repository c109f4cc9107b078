"""Bad input: one line naming the problem, exit code 2, nothing stored lost."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from leaksonar.store.db import Store


def run(*args: str, netns: bool = False) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "leaksonar", *args]
    if netns:  # a private network namespace: even a bug could not send a packet anywhere
        command = ["unshare", "-n", "sh", "-c", 'ip link set lo up && exec "$@"', "sh", *command]
    return subprocess.run(command, capture_output=True, text=True, timeout=60)


def assert_bad_input(result: subprocess.CompletedProcess[str], message: str) -> None:
    assert result.returncode == 2, result
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], result.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["scan", "127.0.0.300"], "'127.0.0.300' is not an IPv4 address"),
        (["scan", "db..example"], "is not an IPv4 or IPv6 address, CIDR block, range or host name"),
        (
            ["scan", "127.0.0.1", "--resolve", "db.lab:db"],
            "'db.lab:db' has an address that is not an IPv4 or IPv6 address",
        ),
        (["scan", "127.0.0.1", "-p", "0"], "must lie within 1-65535"),
        (["scan", "127.0.0.1", "-p", "http"], "port 'http' is not a number"),
        (["scan"], "no targets given"),
        (["scan", "127.0.0.1", "-iL", "/nonexistent/list.txt"], "/nonexistent/list.txt: cannot read"),
        (["scan", "127.0.0.1", "--scope", "nowhere"], "scope: target 'nowhere'"),
        (["show", "127.0.0.1:http"], "is not IP or IP:PORT"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(args: list[str], message: str, tmp_path: Path) -> None:
    assert_bad_input(run(*args, "--db", str(tmp_path / "i.db")), message)


SECRET = "root:$6$Hunter2secret$Xq:19000:0:99999:7:::"
"""A line of a file handed over by mistake (/etc/shadow): errors about it must not print it."""


@pytest.mark.parametrize(
    ("args", "content", "message"),
    [
        (["scan", "-iL", "{file}"], f"127.0.0.1\n{SECRET}\n", "{file}: line 2: a target is not an IPv4"),
        (["scan", "127.0.0.1", "--exclude-file", "{file}"], f"# opt-out\n\n{SECRET}", "{file}: line 3: a "),
        (["scan", "127.0.0.1", "-iL", "{file}"], b"127.0.0.1\n\xff secret\n", "{file}: line 2: not UTF-8"),
        (["scan", "-iL", "{file}"], "1" * 70_000 + "\n", "{file}: line 1: longer than 65,536 bytes"),
        (["scan", "127.0.0.1", "--alerts", "{file}"], f"[rule]\n{SECRET}\n", "{file}: line 2: invalid TOML"),
        (["report", "--asn", "1", "--owners", "{file}"], f"{SECRET}\n", "{file}: line 1: invalid TOML at"),
    ],
)
def test_an_input_file_error_names_the_file_and_line_not_its_content(
    args: list[str], content: str | bytes, message: str, tmp_path: Path
) -> None:
    path = tmp_path / "given.txt"
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content)
    result = run(*(arg.format(file=path) for arg in args), "--db", str(tmp_path / "i.db"))
    assert_bad_input(result, message.format(file=path))
    said = result.stderr.replace(str(path), "FILE")
    assert "secret" not in said.lower() and "root" not in said


@pytest.mark.skipif(shutil.which("unshare") is None, reason="needs unshare")
def test_out_of_scope_target_is_refused_before_any_packet(tmp_path: Path) -> None:
    result = run(
        "scan", "127.0.0.1", "10.9.8.7", "--scope", "127.0.0.0/8", "--db", str(tmp_path / "i.db"), netns=True
    )
    assert_bad_input(result, "target 10.9.8.7 is outside the allowed scope 127.0.0.0/8")
    assert Store(str(tmp_path / "i.db")).hosts.top() == []


def test_not_an_index_is_refused_and_left_alone(tmp_path: Path) -> None:
    precious = tmp_path / "notes.db"
    precious.write_bytes(b"my notes, not a database" * 100)
    result = run("hosts", "--db", str(precious))
    assert_bad_input(result, "is not a leaksonar index")
    assert precious.read_bytes() == b"my notes, not a database" * 100


def test_a_value_of_the_wrong_type_in_alert_rules_is_named_not_echoed(tmp_path: Path) -> None:
    rules = tmp_path / "alerts.toml"
    rules.write_text("[[webhook]]\nname = 'h'\nurl = 'http://127.0.0.1:9/'\nsecret = 8675309123\n")
    result = run("scan", "127.0.0.1", "--alerts", str(rules), "--db", str(tmp_path / "i.db"))
    assert_bad_input(result, f"{rules}: webhook[1].secret: must be a string, not a number")
    assert "8675309123" not in result.stderr


ALERTS = (
    "[[webhook]]\nname = 'h'\nurl = 'http://127.0.0.1:9/'\nsecret = 'k'\n"
    "[[rule]]\nname = 'r'\nchannels = ['h']\n"
)
READING = [
    ["hosts"],
    ["search", "protocol:redis"],
    ["show", "127.0.0.1"],
    ["events"],
    ["serve", "--port", "18089"],
    ["report", "--asn", "1"],
    ["alerts", "send", "--config", "{alerts}"],
    ["keys", "list"],
    ["keys", "revoke", "alice"],
    ["db", "current"],
    ["scan", "--resume", "s1"],
]


@pytest.mark.parametrize("args", READING, ids=lambda args: " ".join(args[:2]))
def test_a_reading_command_on_a_missing_index_creates_nothing(args: list[str], tmp_path: Path) -> None:
    (tmp_path / "alerts.toml").write_text(ALERTS)
    db = tmp_path / "nowhere" / "index.db"
    result = run(*(arg.format(alerts=tmp_path / "alerts.toml") for arg in args), "--db", str(db))
    assert_bad_input(result, f"no index at {db} (run `leaksonar scan` first)")
    assert not db.parent.exists()


def test_an_empty_file_or_database_is_no_index(tmp_path: Path) -> None:
    empty = tmp_path / "empty.db"
    empty.touch()
    assert_bad_input(run("hosts", "--db", str(empty)), f"no index at {empty}")
    assert empty.read_bytes() == b""
    url = f"sqlite:///{tmp_path}/nowhere/index.db"
    assert_bad_input(run("hosts", "--db", url), f"no index at {url}")
    assert not (tmp_path / "nowhere").exists()
    refused = run("hosts", "--db", "postgresql://leaksonar:secret@127.0.0.1:9/nowhere")
    assert_bad_input(refused, "postgresql://leaksonar:***@127.0.0.1:9/nowhere")
    assert "secret" not in refused.stderr


def test_scan_into_a_bad_index_leaves_no_worker_behind(tmp_path: Path) -> None:
    """A new scan's discovery workers probe while the index opens; when it cannot, they are stopped."""
    precious = tmp_path / "notes.db"
    precious.write_bytes(b"my notes, not a database" * 100)
    scan = [sys.executable, "-m", "leaksonar", "scan", "127.1.0.0/24", "-p", "9", "--rate", "20"]
    process = subprocess.Popen(
        [*scan, "--workers", "2", "--db", str(precious)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own process group: the workers' too
    )
    _, errors = process.communicate(timeout=60)
    assert process.returncode == 2 and errors.count("\n") == 1 and "is not a leaksonar index" in errors
    with pytest.raises(ProcessLookupError):
        os.killpg(process.pid, 0)  # no process of the group is left
    assert precious.read_bytes() == b"my notes, not a database" * 100


def test_sigterm_stops_serve_cleanly(tmp_path: Path) -> None:
    db = str(tmp_path / "index.db")
    assert run("db", "upgrade", "--db", db).returncode == 0
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    command = [sys.executable, "-m", "leaksonar", "serve", "--db", db, "--port", str(port)]
    server = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
                break
            time.sleep(0.1)
        server.send_signal(signal.SIGTERM)
        _, errors = server.communicate(timeout=30)
    finally:
        server.kill()
    assert server.returncode == 0, errors
    assert "Finished server process" in errors and "Traceback" not in errors


def test_help_explains_every_command() -> None:
    result = run("--help")
    assert result.returncode == 0
    for command in ("scan", "hosts", "show", "lab"):
        assert command in result.stdout
    scan_help = run("scan", "--help").stdout
    for option in ("--ports", "--jsonl", "--scope", "--exclude-file", "--rate", "--db"):
        assert option in scan_help

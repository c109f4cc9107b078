"""Names as targets: a host name is looked up once (or taken from --resolve), its addresses pass the scope
guard like typed ones, and the name goes out as HTTP Host and comes back as the record's `hostname`.

No real name is ever looked up: lookups run in a private network namespace whose /etc/hosts is this
test's own (`isolated`), or not at all (--resolve)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest
from conftest import jsonl_records, leaksonar

from leaksonar.run.distributed.shards import describe, rebuild
from leaksonar.run.job import new_job, resume_job
from leaksonar.scan.engine import ScanOptions, ShardMark
from leaksonar.store.db import Store
from leaksonar.targets import Scope, ScopeError, TargetError, TargetSpace, build_space, host_name

LOOPBACK = Scope.parse("127.0.0.0/8")
HOSTS = """\
127.0.0.1 localhost
::1 dual.example.lab
127.0.0.1 dual.example.lab
fd00::1 six.example.lab
10.0.0.1 far.example.lab
"""
"""The isolated resolver's /etc/hosts: names with IPv4 and IPv6, IPv6 only, and out of scope."""


def isolated(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """`leaksonar ARGS` in a private network namespace (loopback only, no DNS server reachable) with HOSTS
    as its /etc/hosts: a name there resolves, any other fails at once."""
    hosts = tmp_path / "hosts"
    hosts.write_text(HOSTS)
    script = 'mount --bind "$0" /etc/hosts && ip link set lo up && exec "$@"'
    command = ["unshare", "-rmn", "sh", "-c", script, str(hosts), sys.executable, "-m", "leaksonar", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=60)


def _can_isolate() -> bool:
    if shutil.which("unshare") is None:
        return False
    probe = subprocess.run(["unshare", "-rmn", "true"], capture_output=True, timeout=10)
    return probe.returncode == 0


needs_isolation = pytest.mark.skipif(not _can_isolate(), reason="needs user, mount and network namespaces")


def one_error(result: subprocess.CompletedProcess[str], message: str) -> None:
    assert result.returncode == 2, result
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], result.stderr


@pytest.mark.parametrize(
    ("text", "name"),
    [
        ("ES.Example.Lab.", "es.example.lab"),
        ("localhost", "localhost"),
        ("127.0.0.5-1", None),  # a mistyped range stays a range
        ("127.0.0.300", None),
        ("db..example", None),
        ("-db.example", None),
        ("ｅs.example", None),
    ],
)
def test_what_reads_as_a_host_name(text: str, name: str | None) -> None:
    assert host_name(text) == name


def test_localhost_is_looked_up_and_names_its_address() -> None:
    space = build_space(["localhost"], (6379,), scope=LOOPBACK)
    assert space.names == {"127.0.0.1": "localhost"}
    assert list(space) == [("127.0.0.1", 6379)]


def test_a_resolve_for_a_name_among_no_targets_is_said_to_be_ignored() -> None:
    """`scan 127.0.0.9 --resolve es.example.lab:127.0.0.9` names nothing (the name is not a target): the
    user expecting es.example.lab as SNI and Host is told, not left with an anonymous scan."""
    warnings: list[str] = []
    space = build_space(
        ["127.0.0.9", "a.example.lab"],
        (80,),
        scope=LOOPBACK,
        resolve=[("es.example.lab", 0x7F000009), ("a.example.lab", 0x7F00000A)],
        warn=warnings.append,
    )
    assert space.names == {"127.0.0.10": "a.example.lab"}
    assert warnings == ["--resolve es.example.lab ignored: the name is not among the targets"]


def test_an_address_of_two_names_keeps_the_first_and_warns_once() -> None:
    warnings: list[str] = []
    space = build_space(
        ["b.example.lab", "127.0.0.2", "a.example.lab"],
        (80,),
        scope=LOOPBACK,
        resolve=[("b.example.lab", 0x7F000009), ("a.example.lab", 0x7F000009), ("a.example.lab", 0x7F00000A)],
        warn=warnings.append,
    )
    assert space.names == {"127.0.0.9": "b.example.lab", "127.0.0.10": "a.example.lab"}
    assert sorted(ip for ip, _ in space) == ["127.0.0.10", "127.0.0.2", "127.0.0.9"]
    assert warnings == [
        "127.0.0.9 is named b.example.lab and a.example.lab; it keeps b.example.lab (one name per address)"
    ]


def test_an_opted_out_address_loses_its_name_too(tmp_path: Path) -> None:
    optout = tmp_path / "optout.txt"
    optout.write_text("127.0.0.9\n")
    resolve = [("a.example.lab", 0x7F000009), ("b.example.lab", 0x7F00000A)]
    space = build_space(
        ["a.example.lab", "b.example.lab"], (80,), scope=LOOPBACK, resolve=resolve, exclude_files=[optout]
    )
    assert space.names == {"127.0.0.10": "b.example.lab"}
    assert list(space) == [("127.0.0.10", 80)]


def test_a_name_resolving_out_of_scope_is_refused_by_the_target_code() -> None:
    with pytest.raises(TargetError, match=r"target 10\.0\.0\.1 \(far\.example\.lab\) is outside the allowed"):
        build_space(["far.example.lab"], (80,), scope=LOOPBACK, resolve=[("far.example.lab", 0x0A000001)])


def test_a_name_in_a_target_list_is_resolved_and_errors_name_the_line(tmp_path: Path) -> None:
    targets = tmp_path / "targets.txt"
    targets.write_text("# lab\n127.0.0.3 es.example.lab\n")
    space = build_space([], (80,), list_files=[targets], resolve=[("es.example.lab", 0x7F000004)])
    assert space.names == {"127.0.0.4": "es.example.lab"}
    with pytest.raises(
        ScopeError, match=r"target 10\.0\.0\.1 \(.*targets\.txt: line 2\) is outside"
    ) as caught:
        build_space([], (80,), list_files=[targets], scope=LOOPBACK, resolve=[("es.example.lab", 0x0A000001)])
    assert "es.example" not in str(caught.value)
    targets.write_text("127.0.0.3\nroot:$6$secret\n")
    with pytest.raises(
        ValueError, match=r"targets\.txt: line 2: a target is not an IPv4 or IPv6 address, CIDR block, "
    ):
        build_space([], (80,), list_files=[targets])


@pytest.mark.parametrize("spec", ["es.example.lab", "es.example.lab:", ":127.0.0.1", "es..lab:127.0.0.1"])
def test_a_bad_resolve_is_one_line_and_exit_2(spec: str, tmp_path: Path) -> None:
    result = leaksonar("scan", "127.0.0.1", "--resolve", spec, "--db", str(tmp_path / "i.db"), check=False)
    one_error(result, "is not NAME:ADDR")
    assert not (tmp_path / "i.db").exists()


@needs_isolation
def test_resolve_out_of_scope_is_refused_before_any_scan(tmp_path: Path) -> None:
    """In a private network namespace: were the guard to fail, nothing could leave the machine."""
    db = tmp_path / "i.db"
    result = isolated(
        tmp_path, "scan", "far.example.lab", "--resolve", "far.example.lab:10.0.0.1", "--db", str(db)
    )
    one_error(result, "target 10.0.0.1 (far.example.lab) is outside the allowed scope 127.0.0.0/8")
    assert not db.exists()


@needs_isolation
def test_ipv6_answers_are_scanned_within_the_scope(tmp_path: Path) -> None:
    scope = ("--scope", "127.0.0.0/8 ::1/128")
    result = isolated(tmp_path, "scan", "dual.example.lab", "-p", "9", *scope, "--db", str(tmp_path / "i.db"))
    assert result.returncode == 0, result.stderr
    assert result.stderr.strip() == ""
    assert "2 address/port pairs" in result.stdout


@needs_isolation
@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("nosuch.example.lab", "name 'nosuch.example.lab' does not resolve ("),
        ("six.example.lab", "target fd00::1 (six.example.lab) is outside the allowed scope 127.0.0.0/8"),
        ("dual.example.lab", "target ::1 (dual.example.lab) is outside the allowed scope 127.0.0.0/8"),
        ("far.example.lab", "target 10.0.0.1 (far.example.lab) is outside the allowed scope 127.0.0.0/8"),
    ],
)
def test_a_name_that_gives_nothing_to_scan_is_one_line_and_exit_2(
    name: str, message: str, tmp_path: Path
) -> None:
    db = tmp_path / "i.db"
    one_error(isolated(tmp_path, "scan", "127.0.0.1", name, "-p", "9", "--db", str(db)), message)
    assert not db.exists()


def test_names_survive_resume_and_shards(tmp_path: Path) -> None:
    space = build_space(["a.example.lab", "127.0.0.0/30"], (80, 81), resolve=[("a.example.lab", 0x7F000101)])
    store = Store(str(tmp_path / "i.db"), create=True)
    job = new_job(space, ScanOptions(workers=1), store)
    store.scans.checkpoint(job.scan_id, {"shards": [ShardMark().to_record()], "probes": 0, "open": 0})
    assert resume_job(job.scan_id, store).space.names == {"127.0.1.1": "a.example.lab"}
    shards = [rebuild(json.loads(json.dumps(describe(space, LOOPBACK))), k, 2, LOOPBACK) for k in range(2)]
    assert all(shard.names == {"127.0.1.1": "a.example.lab"} for shard in shards)
    assert sorted(pair for shard in shards for pair in shard) == sorted(space)


@needs_isolation
def test_resume_refuses_a_recorded_space_outside_the_scope(tmp_path: Path) -> None:
    """A scan recorded without a scope (or in another index) resumed where LEAKSONAR_SCOPE is set: its
    stored targets pass the guard like typed ones. In a private network namespace: nothing leaves."""
    db = tmp_path / "i.db"
    store = Store(str(db), create=True)
    job = new_job(TargetSpace([(0xC6336400, 0xC6336403)], (80,)), ScanOptions(workers=1), store)
    store.scans.checkpoint(job.scan_id, {"shards": [ShardMark().to_record()], "probes": 0, "open": 0})
    one_error(
        isolated(tmp_path, "scan", "--resume", job.scan_id, "--db", str(db)),
        "target 198.51.100.0-198.51.100.3 is outside the allowed scope 127.0.0.0/8",
    )
    assert Store(str(db)).scans.get(job.scan_id).checkpoint["probes"] == 0


def test_redis_found_by_name_keeps_it_in_every_output(lab_service: Any, tmp_path: Path) -> None:
    redis = lab_service("redis-open")
    db, jsonl, name = tmp_path / "i.db", tmp_path / "f.jsonl", "redis.example.lab"
    result = leaksonar(
        "scan", name, "--resolve", f"{name}:{redis['ip']}", "-p", str(redis["port"]),
        "--db", str(db), "--jsonl", str(jsonl),
    )  # fmt: skip
    _, (record,) = jsonl_records(jsonl)
    assert (record["ip"], record["port"], record["hostname"]) == (redis["ip"], redis["port"], name)
    assert f"{redis['ip']}:{redis['port']} ({name})" in result.stdout
    hits = json.loads(leaksonar("search", "protocol:redis", "--db", str(db), "--json").stdout)["hits"]
    assert [hit["hostname"] for hit in hits] == [name]
    shown = json.loads(leaksonar("show", f"{redis['ip']}:{redis['port']}", "--db", str(db), "--json").stdout)
    assert shown["hostname"] == name


class _HostRecorder(BaseHTTPRequestHandler):
    """An Elasticsearch-like root that records each request's Host header."""

    hosts: ClassVar[list[str | None]] = []

    def do_GET(self) -> None:
        self.hosts.append(self.headers.get("Host"))
        body = (
            b'{"name":"n","cluster_name":"c","version":{"number":"7.10.2"},"tagline":"You Know, for Search"}'
        )
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def http_server() -> Iterator[tuple[int, list[str | None]]]:
    hosts: ClassVar[list[str | None]] = []
    handler = type("Recorder", (_HostRecorder,), {"hosts": hosts})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1], hosts
    finally:
        server.shutdown()
        server.server_close()


def test_an_http_service_receives_the_name_as_host(
    http_server: tuple[int, list[str | None]], tmp_path: Path
) -> None:
    port, hosts = http_server
    jsonl = tmp_path / "f.jsonl"
    leaksonar(
        "scan", "es.example.lab", "--resolve", "es.example.lab:127.0.0.1", "-p", str(port),
        "--db", str(tmp_path / "i.db"), "--jsonl", str(jsonl),
    )  # fmt: skip
    _, (record,) = jsonl_records(jsonl)
    assert record["hostname"] == "es.example.lab"
    assert f"es.example.lab:{port}" in hosts, hosts

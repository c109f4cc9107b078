"""A whole scan of a hostile network (tests/hostile.py: tarpits, huge announced lengths, endless bodies,
gzip bombs, deeply nested JSON, malformed frames, resets, millions of keys, enormous rows): it ends in
time, stays small, exits 0, and every finding says what went wrong."""

from __future__ import annotations

import ipaddress
import re
import subprocess
import sys
import time
from pathlib import Path

import hostile
import pytest
from conftest import jsonl_records

from leaksonar.model import Identity, Limits
from leaksonar.protocols import BY_NAME

HANDSHAKE, RETRIES, READ = 1.5, 1, 2.0
"""--timeout, --retries and --read-timeout of the scan (generous: a loaded machine must not make a
hostile server look silent)."""
BUDGET = Limits().service_budget
"""The scan's service budget (its default)."""
STARTUP = 3.0
"""Seconds for the interpreter to start and the scan to open its database."""
BOUND = STARTUP + (1 + RETRIES) * HANDSHAKE + (2 * READ + 0.2) + BUDGET + READ
"""Handshakes, identification (a first probe, then the others at once, a short extra read), inspection
(the budget, and a read's grace): the longest a scan of services that all answer the handshake may take."""
MAX_RSS = 200 << 20


LAUNCHER = """
import os, sys
pid = os.fork()
if pid == 0:
    os.dup2(os.open(os.devnull, os.O_WRONLY), 1)
    os.execv(sys.argv[1], sys.argv[1:])
_, status, usage = os.wait4(pid, 0)
print(usage.ru_maxrss * 1024)
sys.exit(os.waitstatus_to_exitcode(status))
"""
"""Runs the scan from a small fresh interpreter and prints its peak RSS (bytes): a scan forked straight
from pytest would count pytest's own pages, resident in the child until it execs."""


def scan(targets: str, ports: str, work: Path) -> tuple[int, float, int, str]:
    """Exit status, wall-clock seconds, peak RSS (bytes) and stderr of `leaksonar scan`."""
    command = [
        *(sys.executable, "-m", "leaksonar", "scan", targets, "--ports", ports, "-q"),
        *("--db", str(work / "index.db"), "--jsonl", str(work / "findings.jsonl")),
        *("--timeout", str(HANDSHAKE), "--read-timeout", str(READ), "--retries", str(RETRIES)),
    ]
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-c", LAUNCHER, *command], capture_output=True, text=True, timeout=120
    )
    elapsed = time.monotonic() - started
    return done.returncode, elapsed, int(done.stdout.strip() or 0), done.stderr


@pytest.mark.slow
def test_scan_of_a_hostile_network_is_bounded_and_says_what_went_wrong(tmp_path: Path) -> None:
    with hostile.network() as endpoints:
        ips = sorted((e.ip for e in endpoints.values()), key=ipaddress.ip_address)
        ports = ",".join(sorted({str(s.port) for s in hostile.NETWORK}))
        status, elapsed, rss, stderr = scan(f"{ips[0]}-{ips[-1]}", ports, tmp_path)
    assert status == 0, stderr
    assert not re.search(r"Traceback|internal error|Exception", stderr), stderr
    assert elapsed < BOUND
    assert rss < MAX_RSS, f"peak RSS {rss >> 20} MB"
    findings = {(f["ip"], f["port"]): f for f in jsonl_records(tmp_path / "findings.jsonl")[1]}
    for server in hostile.NETWORK:
        endpoint = endpoints[server.name]
        finding = findings.get((endpoint.ip, endpoint.port))
        assert finding is not None, f"{server.name}: no finding"
        assert finding["protocol"] == server.protocol, server.name
        assert server.expect in {e["kind"] for e in finding["errors"]}, (server.name, finding["errors"])
    assert len(findings) == len(hostile.NETWORK)


SQL_FLOODS = [s for s in hostile.NETWORK if s.name.endswith(("-huge-row", "-endless-rows"))]


@pytest.mark.parametrize("server", SQL_FLOODS, ids=lambda s: s.name)
def test_sql_driver_reads_stay_within_the_byte_cap(server: hostile.HostileServer) -> None:
    """asyncpg and aiomysql read through a capped relay: a flood after login ends at max_bytes."""
    limits = Limits(timeout=1.0, service_budget=5.0, max_bytes=256 * 1024)
    found, elapsed = hostile.run(BY_NAME[server.protocol], server.handler, Identity(server.protocol), limits)
    assert found.auth == "none" and elapsed < limits.timeout + 2
    assert server.expect in {e.kind for e in found.errors}, found.errors


@pytest.mark.slow
def test_scan_of_hostile_tls_is_bounded_and_small(tmp_path: Path) -> None:
    """Handshakes that never end, garbage, alert storms, a 16 MB certificate message, a 5 MB chain
    (OpenSSL's client refuses a chain over 100 KiB) and an endless stream after the handshake."""
    with hostile.network(hostile.TLS_NETWORK) as endpoints:
        ips = sorted((e.ip for e in endpoints.values()), key=ipaddress.ip_address)
        status, elapsed, rss, stderr = scan(f"{ips[0]}-{ips[-1]}", "443", tmp_path)
    assert status == 0 and not re.search(r"Traceback|internal error|Exception|Warning", stderr), stderr
    assert elapsed < BOUND
    assert rss < MAX_RSS, f"peak RSS {rss >> 20} MB"
    _, findings = jsonl_records(tmp_path / "findings.jsonl")
    assert {(f["ip"], f["protocol"]) for f in findings} == {
        (endpoints[s.name].ip, s.protocol) for s in hostile.TLS_NETWORK
    }
    assert all(f["errors"] for f in findings)

"""`scan --open-from FILE|-`: open ports another scanner found go straight to identification, inspection and
the index, and find what a scan of the same services finds. Addresses outside 127.0.0.0/8 appear only in
tests run in a private network namespace (`isolated`), where no packet can leave."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import time
from contextlib import closing
from pathlib import Path
from typing import Any

from conftest import jsonl_records, leaksonar
from test_names import needs_isolation

from leaksonar.store.db import Store

KEPT = ("ip", "port", "protocol", "software", "auth", "exposed", "dataset", "collections", "pii", "severity")


def endpoints(lab: dict[str, Any]) -> list[tuple[str, int]]:
    return sorted(
        (service["ip"], port)
        for service in lab["services"]
        for port in (service["port"], *service.get("extra_ports", ()))
    )


def _sizeless(value: Any) -> Any:
    """`value` without its byte sizes (a live server's memory use changes between two reads)."""
    if isinstance(value, dict):
        return {key: _sizeless(item) for key, item in value.items() if key != "size_bytes"}
    return [_sizeless(item) for item in value] if isinstance(value, list) else value


def _kept(record: dict[str, Any]) -> dict[str, Any]:
    """What two scans of a service agree on: not byte sizes (memory use changes) nor sample counts (a
    memcached sample is not always the same keys), but the PII categories found; for Redis, whose
    fields and their PII come from randomly sampled keys, only the collections' counts."""
    kept = {key: record[key] for key in KEPT} | {"pii": sorted(record["pii"])}
    if record["protocol"] == "redis":
        drop = ("fields", "pii")
        kept |= {
            "pii": [],
            "collections": [{k: v for k, v in c.items() if k not in drop} for c in kept["collections"]],
        }
    return _sizeless(kept)


def records(path: Path) -> dict[tuple[str, int], dict[str, Any]]:
    _, found = jsonl_records(path)
    return {(r["ip"], r["port"]): _kept(r) for r in found}


def kept(scanned: dict[str, Any], pairs: list[tuple[str, int]]) -> dict[tuple[str, int], dict[str, Any]]:
    return {pair: _kept(scanned["records"][pair]) for pair in pairs}


def test_masscan_list_finds_what_a_scan_finds(
    lab: dict[str, Any], scanned: dict[str, Any], tmp_path: Path
) -> None:
    pairs = endpoints(lab)
    opted_out = pairs[0]
    lines = ["#masscan", *(f"open tcp {port} {ip} 1700000000" for ip, port in pairs)]
    lines += [f"open tcp {pairs[1][1]} {pairs[1][0]} 1700000001", "open udp 53 127.0.0.1 1700000000", "# end"]
    (tmp_path / "masscan.txt").write_text("\n".join(lines) + "\n")
    (tmp_path / "optout.txt").write_text(f"{opted_out[0]}\n")
    jsonl = tmp_path / "found.jsonl"
    result = leaksonar(
        "scan", "--open-from", str(tmp_path / "masscan.txt"), "--exclude-file", str(tmp_path / "optout.txt"),
        "--db", str(tmp_path / "i.db"), "--jsonl", str(jsonl),
    )  # fmt: skip
    rest = [pair for pair in pairs if pair[0] != opted_out[0]]
    assert records(jsonl) == kept(scanned, rest)
    counts = result.stderr.strip().splitlines()[-1]
    assert counts.startswith(f"open ports from {tmp_path / 'masscan.txt'} (masscan-list): ")
    assert f"{len(pairs)} open ports, 1 duplicates" in counts
    assert "1 entries not open TCP" in counts
    assert f"{len(pairs) - len(rest)} blocklisted or opted out" in counts
    assert f"{len(rest)} services" in result.stdout
    store = Store(str(tmp_path / "i.db"), create=False)
    (scan,) = store.scans.latest()
    store.close()
    assert scan.status == "done" and scan.source is not None
    assert (scan.source["kind"], scan.source["format"]) == ("open-from", "masscan-list")
    assert scan.source["file"] == str(tmp_path / "masscan.txt")


def test_naabu_lines_closed_left_out(lab: dict[str, Any], scanned: dict[str, Any], tmp_path: Path) -> None:
    """A listed port that no longer accepts a connection gets no finding and counts as not open."""
    pairs = endpoints(lab)[:3]
    lines = [f"{ip}:{port}" for ip, port in pairs] + [f"{pairs[0][0]}:1"]
    (tmp_path / "naabu.txt").write_text("\n".join(lines) + "\n")
    jsonl = tmp_path / "found.jsonl"
    source, db = str(tmp_path / "naabu.txt"), str(tmp_path / "i.db")
    result = leaksonar("scan", "--open-from", source, "--db", db, "--jsonl", str(jsonl))
    assert records(jsonl) == kept(scanned, pairs)
    assert "(naabu-hostport)" in result.stderr
    assert "4 address/port pairs" in result.stdout and "3 open, 3 services" in result.stdout


def test_zmap_addresses_take_the_port_of_p(
    lab: dict[str, Any], scanned: dict[str, Any], tmp_path: Path
) -> None:
    ip, port = endpoints(lab)[0]
    (tmp_path / "zmap.txt").write_text(f"{ip}\n")
    jsonl = tmp_path / "found.jsonl"
    source, db = str(tmp_path / "zmap.txt"), str(tmp_path / "i.db")
    leaksonar("scan", "--open-from", source, "-p", str(port), "--db", db, "--jsonl", str(jsonl), "-q")
    assert records(jsonl) == kept(scanned, [(ip, port)])
    several = leaksonar("scan", "--open-from", source, "-p", "1,2", check=False)
    assert several.returncode == 2 and "one port with -p" in several.stderr


PRODUCER = """
import pathlib, sys, time
first, second, jsonl, seen = sys.argv[1:]
out = pathlib.Path(jsonl)
print(first, flush=True)
deadline = time.monotonic() + 60
while time.monotonic() < deadline and not (out.exists() and out.stat().st_size):
    time.sleep(0.1)
pathlib.Path(seen).write_text("recorded" if out.exists() and out.stat().st_size else "not recorded")
print(second, flush=True)
"""


def test_standard_input_is_inspected_while_the_producer_runs(
    lab: dict[str, Any], scanned: dict[str, Any], tmp_path: Path
) -> None:
    """The producer writes its second line only once the first service's record is out (or after 60 s)."""
    (a_ip, a_port), (b_ip, b_port) = endpoints(lab)[:2]
    jsonl, seen = tmp_path / "found.jsonl", tmp_path / "seen"
    producer = subprocess.Popen(
        [sys.executable, "-c", PRODUCER, f"{a_ip}:{a_port}", f"{b_ip}:{b_port}", str(jsonl), str(seen)],
        stdout=subprocess.PIPE,
    )
    scan = subprocess.run(
        [sys.executable, "-m", "leaksonar", "scan", "--open-from", "-", "--db", str(tmp_path / "i.db"),
         "--jsonl", str(jsonl), "-q"],
        stdin=producer.stdout, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert producer.wait(10) == 0 and scan.returncode == 0, scan.stderr
    assert seen.read_text() == "recorded"
    assert records(jsonl) == kept(scanned, [(a_ip, a_port), (b_ip, b_port)])


def test_a_bad_line_stops_or_is_skipped(lab: dict[str, Any], tmp_path: Path) -> None:
    ip, port = endpoints(lab)[0]
    source = tmp_path / "hostport.txt"
    source.write_text(f"{ip}:{port}\nsecret-token-xyz\n")
    db = tmp_path / "i.db"
    bad = leaksonar("scan", "--open-from", str(source), "--db", str(db), check=False)
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1
    assert f"{source}: line 2: " in bad.stderr and "secret-token-xyz" not in bad.stderr
    assert not db.exists()  # refused before the index (or any connection)
    skipped = leaksonar(
        "scan", "--open-from", str(source), "--skip-bad-lines", "--db", str(db), "-q", "--jsonl", "-"
    )
    header, *found = map(json.loads, skipped.stdout.splitlines())
    assert header["scan"]["source"]["skip_bad_lines"] is True and [r["port"] for r in found] == [port]
    alone = leaksonar("scan", "--skip-bad-lines", ip, check=False)
    assert alone.returncode == 2 and "--skip-bad-lines goes with --open-from" in alone.stderr


def test_targets_and_discovery_options_are_refused(tmp_path: Path) -> None:
    source = tmp_path / "ports.txt"
    source.write_text("127.0.0.1:6379\n")
    for extra in (
        ["127.0.0.1"],
        ["-iL", str(source)],
        ["--rate", "10"],
        ["--per-host", "3"],
        ["--distributed"],
    ):
        result = leaksonar(
            "scan", "--open-from", str(source), *extra, "--db", str(tmp_path / "i.db"), check=False
        )
        assert result.returncode == 2 and result.stderr.count("\n") == 1, extra
        assert "--open-from scans open ports found elsewhere: drop" in result.stderr, extra
    assert not (tmp_path / "i.db").exists()


def isolated(tmp_path: Path, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    """`leaksonar ARGS` in a private network namespace with only loopback up: nothing leaves it."""
    command = ["unshare", "-rn", "sh", "-c", 'ip link set lo up && exec "$@"', "-", sys.executable, "-m",
               "leaksonar", *args]  # fmt: skip
    return subprocess.run(command, input=stdin, capture_output=True, text=True, timeout=60, cwd=tmp_path)


@needs_isolation
def test_a_file_line_outside_the_scope_refuses_the_run_before_any_connection(tmp_path: Path) -> None:
    source = tmp_path / "masscan.txt"
    source.write_text(
        "#masscan\nopen tcp 6379 127.0.0.1 1700000000\nopen tcp 6379 10.0.0.1 1700000000\n# end\n"
    )
    db = tmp_path / "i.db"
    result = isolated(tmp_path, "scan", "--open-from", str(source), "--db", str(db))
    assert result.returncode == 2 and result.stderr.count("\n") == 1, result.stderr
    assert f"{source}: line 3: an address outside the allowed scope 127.0.0.0/8" in result.stderr
    assert "nothing was scanned" in result.stderr and "10.0.0.1" not in result.stderr
    assert not db.exists()


@needs_isolation
def test_a_standard_input_line_outside_the_scope_stops_the_run(tmp_path: Path) -> None:
    db = tmp_path / "i.db"
    result = isolated(
        tmp_path, "scan", "--open-from", "-", "--db", str(db), stdin="127.0.0.1:9\n10.0.0.1:9\n"
    )
    assert result.returncode == 2 and "-: line 2: an address outside the allowed scope" in result.stderr
    assert "the scan stopped" in result.stderr and "10.0.0.1" not in result.stderr
    store = Store(str(db), create=False)
    (scan,) = store.scans.latest()
    store.close()
    assert scan.status == "failed"
    again = leaksonar("scan", "--resume", scan.id, "--db", str(db), check=False)
    assert again.returncode == 2 and "from standard input, which cannot be read again" in again.stderr


def recorded(db: Path) -> bool:
    """Whether the index `db` has recorded a scan (read-only; False while it is being made)."""
    try:
        with closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as conn:
            return bool(conn.execute("SELECT count(*) FROM scans").fetchone()[0])
    except sqlite3.Error:
        return False


def test_stopping_while_standard_input_waits_exits_at_once(tmp_path: Path) -> None:
    """SIGTERM (as Ctrl-C) while the reader waits on a silent pipe: exit 130 at once, not resumable."""
    scan = subprocess.Popen(
        [sys.executable, "-m", "leaksonar", "scan", "--open-from", "-", "--db", str(tmp_path / "i.db")],
        stdin=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    deadline = time.monotonic() + 30
    while not recorded(tmp_path / "i.db") and time.monotonic() < deadline:  # the index is made first
        time.sleep(0.1)
    time.sleep(0.5)
    scan.terminate()
    assert scan.wait(10) == 130
    assert scan.stderr is not None and scan.stdin is not None
    said = scan.stderr.read()
    scan.stdin.close()
    assert said == "leaksonar: interrupted; findings so far are stored.\n"

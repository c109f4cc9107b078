"""Inspection at scale: thousands of open services of one kind, identified, inspected and recorded, inside a
new network namespace.

    .venv/bin/python bench/inspect_scale.py [--sizes 2048,8192] [--kinds redis,opensearch,mongodb]
                                            [--nmap-count 256]

Re-runs itself under `unshare -n` (`unshare -rn` when not root), where only the namespace's own loopback
exists: one real server of each kind listens on 0.0.0.0, so every 127.x address answers, seeded with a
little data: redis-server (300 small hashes and 300 plain string keys), the OpenSearch stand-in osmem-server
(three small indexes) and the MongoDB-wire stand-in SecantusDB (three small collections in two databases).
For each kind and SIZE, `leaksonar scan 127.90.0.1-LAST -p PORT` with a fresh SQLite index is timed from
start to exit (wall, CPU of the scan and its workers, peak RSS), with the CPU the server spent meanwhile
(where it nears the wall time, the server, not the scanner, sets the pace). Every open port must end in
a record: the --jsonl records (services, and unidentified ones as protocol "unknown") are counted against
the open ports the scan recorded and the SIZE addresses that answer; any loss is printed. The peer:
`nmap -sV --script redis-info -p 6379 -Pn -n` on the first NMAP_COUNT Redis addresses, with leaksonar on
the same addresses in the same run (none with --nmap-count 0, without Redis among the kinds, or where nmap
is not installed). Prints one table and writes bench/results/inspect_scale.json. Nothing
leaves the namespace.
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NamedTuple

import httpx
import osmem_server
import pymongo
import redis

sys.path.insert(0, str(Path(__file__).resolve().parent))

from benchlib import LEAKSONAR, LOOPBACK, describe, machine, rerun_in_namespace, run, save

from leaksonar.lab.kinds.opensearch import bulk_body
from leaksonar.lab.servers import port_open

FIRST = ipaddress.IPv4Address("127.90.0.1")
REDIS_PORT, OPENSEARCH_PORT, MONGODB_PORT = 6379, 9200, 27017
TARGETS = {"redis": 2000, "opensearch": 1000, "mongodb": 1000}
"""The services/s issue 16 asks of each kind on this 2-core machine."""
VENV_BIN = Path(sys.executable).parent


class Kind(NamedTuple):
    port: int
    command: Callable[[Path], list[str]]
    """The server's command line, given a scratch directory."""
    seed: Callable[[str], str]
    """Put the data in through one address; a description of it."""


def _redis_command(tmp: Path) -> list[str]:
    return [
        "redis-server", "--port", str(REDIS_PORT), "--bind", "0.0.0.0", "--save", "", "--appendonly", "no",
        "--dir", str(tmp), "--protected-mode", "no", "--maxclients", "20000",
    ]  # fmt: skip


def _redis_seed(ip: str) -> str:
    client = redis.Redis(host=ip, port=REDIS_PORT)
    with client.pipeline(transaction=False) as pipe:
        for i in range(300):
            fields = {"name": f"user{i}", "email": f"user{i}@example.com", "city": "Hangzhou", "visits": i}
            pipe.hset(f"user:{i}", mapping=fields)
            pipe.set(f"session:{i}", f"token-{i:06d}")
        pipe.execute()
    client.close()
    return "300 hashes + 300 strings"


def _opensearch_command(tmp: Path) -> list[str]:
    program = Path(osmem_server.__file__).parent / "bin" / "osmem-server"
    return [str(program), "-addr", f"0.0.0.0:{OPENSEARCH_PORT}", "-no-stdin-watch", "-no-ja"]


def _opensearch_seed(ip: str) -> str:
    documents = {
        index: {
            str(i): {"name": f"{index}{i}", "email": f"{index}{i}@example.com", "n": i} for i in range(50)
        }
        for index in ("customers", "orders", "logs")
    }
    headers = {"Content-Type": "application/x-ndjson"}
    with httpx.Client(timeout=30, trust_env=False) as http:
        url = f"http://{ip}:{OPENSEARCH_PORT}/_bulk?refresh=true"
        answer = http.post(url, content=bulk_body(documents), headers=headers)
        answer.raise_for_status()
    return "3 indexes x 50 documents"


def _mongodb_command(tmp: Path) -> list[str]:
    return [
        str(VENV_BIN / "secantusd-py"), "--host", "0.0.0.0", "--port", str(MONGODB_PORT),
        "--storage-path", ":memory:", "--standalone",
    ]  # fmt: skip


def _mongodb_seed(ip: str) -> str:
    with pymongo.MongoClient(ip, MONGODB_PORT, directConnection=True, serverSelectionTimeoutMS=10_000) as c:
        for db, name in (("app", "users"), ("app", "orders"), ("logs", "events")):
            c[db][name].insert_many(
                [{"name": f"{name}{i}", "email": f"{name}{i}@example.com"} for i in range(50)]
            )
    return "SecantusDB, 3 collections x 50 documents"


KINDS = {
    "redis": Kind(REDIS_PORT, _redis_command, _redis_seed),
    "opensearch": Kind(OPENSEARCH_PORT, _opensearch_command, _opensearch_seed),
    "mongodb": Kind(MONGODB_PORT, _mongodb_command, _mongodb_seed),
}


def cpu_seconds(pid: int) -> float:
    """User + system CPU time process `pid` has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@contextmanager
def serving(kind: Kind, tmp: Path) -> Iterator[tuple[int, str]]:
    """The kind's server on 0.0.0.0, seeded, until leaving; its PID and what it holds."""
    log = (tmp / "server.log").open("wb")
    server = subprocess.Popen(kind.command(tmp), stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 20
        while not port_open(str(FIRST), kind.port):
            if server.poll() is not None or time.monotonic() > deadline:
                sys.exit(f"{kind.command(tmp)[0]} did not listen on 0.0.0.0:{kind.port}: see {log.name}")
            time.sleep(0.05)
        yield server.pid, kind.seed(str(FIRST))
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        log.close()


def scan(kind: str, port: int, size: int, server: int, tmp: Path) -> dict[str, Any]:
    """One timed scan of SIZE addresses with its own index; its records counted against its open ports,
    and the CPU the `server` process spent meanwhile."""
    name = f"{kind}-{size}"
    findings, db = tmp / f"{name}.jsonl", tmp / f"{name}.db"
    command = [
        LEAKSONAR, "scan", f"{FIRST}-{FIRST + size - 1}", "-p", str(port), "--db", str(db),
        "--scope", LOOPBACK, "--jsonl", str(findings), "--quiet",
    ]  # fmt: skip
    served = cpu_seconds(server)
    seconds, rss, cpu = run(command)
    served = cpu_seconds(server) - served
    records = unidentified = with_errors = exposed = 0
    with findings.open() as lines:  # a record at a time
        next(lines)  # the scan's header record
        for line in lines:
            record = json.loads(line)
            records += 1
            unidentified += record["protocol"] == "unknown"
            with_errors += bool(record.get("errors"))
            exposed += bool(record.get("exposed"))
    with sqlite3.connect(db) as conn:
        (open_ports,) = conn.execute("SELECT open_ports FROM scans").fetchone()
    return {
        "kind": kind,
        "size": size,
        "seconds": round(seconds, 2),
        "rate": round(size / seconds),
        "cpu_ms_per_service": round(cpu * 1000 / size, 2),
        "rss_mb": round(rss, 1),
        "server_cpu_s": round(served, 1),
        "open": open_ports,
        "services": records - unidentified,
        "unidentified": unidentified,
        "lost": size - records,
        "with_errors": with_errors,
        "exposed": exposed,
        "command": " ".join(["leaksonar", *command[1:]]),
    }


def nmap_peer(count: int, tmp: Path) -> dict[str, Any]:
    """nmap's version scan and redis-info script on COUNT Redis addresses (the server must be running)."""
    xml, listing = tmp / "nmap.xml", tmp / "nmap-targets.txt"
    listing.write_text("".join(f"{FIRST + i}\n" for i in range(count)))
    command = [
        "nmap",
        "-sV",
        "--script",
        "redis-info",
        "-p",
        str(REDIS_PORT),
        "-Pn",
        "-n",
        "-iL",
        str(listing),
    ]
    seconds, rss, cpu = run([*command, "-oX", str(xml)])
    text = xml.read_text()
    return {
        "count": count,
        "seconds": round(seconds, 2),
        "rate": round(count / seconds, 1),
        "cpu_ms_per_service": round(cpu * 1000 / count, 2),
        "rss_mb": round(rss, 1),
        "open": text.count('<state state="open"'),
        "redis_info": text.count('id="redis-info"'),
        "command": " ".join(command),
    }


def inside(sizes: list[int], chosen: list[str], nmap_count: int) -> None:
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    runs: list[dict[str, Any]] = []
    seeded: dict[str, str] = {}
    peer: dict[str, Any] | None = None
    with tempfile.TemporaryDirectory(prefix="leaksonar-inspect-scale-") as tmp_name:
        tmp = Path(tmp_name)
        for name in chosen:
            kind = KINDS[name]
            with serving(kind, tmp) as (server, seeded[name]):
                for size in sizes:
                    print(f"  {name} x {size:,} ...", flush=True)
                    runs.append(scan(name, kind.port, size, server, tmp))
                if name == "redis" and nmap_count:
                    print(f"  nmap and leaksonar on {nmap_count} redis ...", flush=True)
                    peer = {
                        "leaksonar": scan(name, kind.port, nmap_count, server, tmp),
                        "nmap": nmap_peer(nmap_count, tmp),
                    }
    report(runs, seeded, peer)


def report(runs: list[dict[str, Any]], seeded: dict[str, str], peer: dict[str, Any] | None) -> None:
    print("inspection at scale: one server on 0.0.0.0 per kind, every address of 127.90.0.1.. answers")
    print(f"  machine: {describe(machine())}")
    for name, what in seeded.items():
        print(f"  {name}: {what}")
    header = ("tool", "kind", "services", "seconds", "svc/s", "target", "cpu ms/svc", "rss MB", "server s",
              "open", "records", "unident.", "lost", "errors")  # fmt: skip
    line = "  {:<9} {:<10} {:>8} {:>8} {:>7} {:>7} {:>10} {:>7} {:>8} {:>6} {:>7} {:>8} {:>5} {:>6}"
    print(line.format(*header))
    for r in runs:
        records = r["services"] + r["unidentified"]
        print(
            line.format(
                "leaksonar", r["kind"], f"{r['size']:,}", r["seconds"], f"{r['rate']:,}",
                f"{TARGETS[r['kind']]:,}", r["cpu_ms_per_service"], r["rss_mb"], r["server_cpu_s"],
                f"{r['open']:,}", f"{records:,}", r["unidentified"], r["lost"], r["with_errors"],
            )
        )  # fmt: skip
    if peer:
        ours, nmap = peer["leaksonar"], peer["nmap"]
        for tool, r in (("leaksonar", ours), ("nmap", nmap)):
            size = r.get("size", r.get("count"))
            print(
                line.format(
                    tool, "redis", size, r["seconds"], r["rate"], "", r["cpu_ms_per_service"], r["rss_mb"],
                    r.get("server_cpu_s", ""), r["open"], "", "", "", "",
                )
            )  # fmt: skip
        peer["ratio"] = round(nmap["seconds"] / ours["seconds"], 1)
        print(f"  nmap -sV --script redis-info / leaksonar time on {nmap['count']} redis: {peer['ratio']}x")
    for kind in dict.fromkeys(r["kind"] for r in runs):
        sized = sorted((r for r in runs if r["kind"] == kind), key=lambda r: r["size"])
        if len(sized) > 1:
            first, last = sized[0], sized[-1]
            growth = round(100 * (last["rss_mb"] / first["rss_mb"] - 1))
            print(f"  {kind}: peak RSS {first['size']:,} -> {last['size']:,} services: {growth:+}%", end="")
            print(" (target: within 15% and under 150 MB)")
    for r in runs:
        if r["lost"] or r["open"] != r["size"]:
            print(
                f"  LOSS {r['kind']} x {r['size']:,}: {r['open']:,} open ports recorded by the scan,", end=""
            )
            print(f" {r['lost']:,} of {r['size']:,} answering addresses without a record")
    save(
        "inspect_scale",
        {"targets": TARGETS, "seeded": seeded, "runs": runs, "nmap": peer},
    )


def parse_list(text: str, option: str) -> list[str]:
    items = [item.strip() for item in text.split(",") if item.strip()]
    if not items:
        sys.exit(f"{option}: empty")
    return items


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="2048,8192", help="services per kind, comma-separated")
    parser.add_argument("--kinds", default=",".join(KINDS), help=f"subset of {','.join(KINDS)}")
    parser.add_argument("--nmap-count", type=int, default=256, help="Redis addresses nmap inspects (0: none)")
    parser.add_argument("--inside", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    try:
        sizes = [int(size) for size in parse_list(args.sizes, "--sizes")]
    except ValueError:
        sys.exit(f"--sizes: expected numbers, got {args.sizes!r}")
    if not all(1 <= size <= 60000 for size in sizes):
        sys.exit("--sizes must be 1..60000 each")
    chosen = parse_list(args.kinds, "--kinds")
    if unknown := [name for name in chosen if name not in KINDS]:
        sys.exit(f"--kinds: unknown kind {unknown[0]!r} (one of {', '.join(KINDS)})")
    if not 0 <= args.nmap_count <= 60000:
        sys.exit("--nmap-count must be 0..60000")
    nmap_count = args.nmap_count if "redis" in chosen else 0
    if nmap_count and shutil.which("nmap") is None:
        if not args.inside:
            print("nmap is not installed: no nmap peer (as with --nmap-count 0)", file=sys.stderr)
        nmap_count = 0
    if args.inside:
        inside(sizes, chosen, nmap_count)
        return
    rerun_in_namespace(
        __file__, [*(["redis-server"] if "redis" in chosen else []), *(["nmap"] if nmap_count else [])]
    )


if __name__ == "__main__":
    main()

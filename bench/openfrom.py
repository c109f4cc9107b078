"""Open ports from another scanner: 10,000 open ports inspected via `scan --open-from` against the same
ports found by leaksonar's own discovery, inside a new network namespace.

    .venv/bin/python bench/openfrom.py [--addresses 5000]

Re-runs itself under `unshare -n` (`unshare -rn` when not root), where only the namespace's own loopback
exists: one real redis-server listens on every address at 6379 and one real memcached at 11211, so each of
ADDRESSES addresses of 127.90.0.0/16 has two open ports (10,000 by default). The open ports are written as
masscan writes them (`-oL`), then two scans with the same inspection settings and a fresh index each:
`scan --open-from masscan.txt` and `scan FIRST-LAST -p 6379,11211` (discovery finds the same ports).
Prints a table (seconds, open ports per second, services recorded, peak RSS, CPU) with the ratio and writes
bench/results/openfrom.json. Nothing leaves the namespace.
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from benchlib import LEAKSONAR, LOOPBACK, describe, machine, rerun_in_namespace, run, save

FIRST = ipaddress.IPv4Address("127.90.0.1")
REDIS, MEMCACHED = 6379, 11211
PORTS = (REDIS, MEMCACHED)


def start_servers(tmp: Path) -> list[subprocess.Popen[bytes]]:
    """A real redis-server and memcached listening on every address, once both accept connections."""
    servers = [
        subprocess.Popen(
            ["redis-server", "--port", str(REDIS), "--bind", "0.0.0.0", "--save", "", "--appendonly", "no",
             "--dir", str(tmp), "--protected-mode", "no", "--maxclients", "20000"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        ),
        subprocess.Popen(
            ["memcached", "-u", "root", "-l", "0.0.0.0", "-p", str(MEMCACHED), "-U", "0", "-c", "20000"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        ),
    ]  # fmt: skip
    deadline = time.monotonic() + 10
    for port in PORTS:
        while True:
            try:
                socket.create_connection((str(FIRST), port), timeout=0.5).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    for server in servers:
                        server.kill()
                    sys.exit(f"port {port} did not open inside the namespace")
                time.sleep(0.05)
    return servers


def masscan_list(path: Path, addresses: int) -> None:
    """The open ports as masscan -oL writes them."""
    now = int(time.time())
    with path.open("w") as handle:
        handle.write("#masscan\n")
        for offset in range(addresses):
            for port in PORTS:
                handle.write(f"open tcp {port} {FIRST + offset} {now}\n")
        handle.write("# end\n")


def scan(name: str, arguments: list[str], tmp: Path) -> dict[str, Any]:
    """One scan with its own index; its findings counted from --jsonl."""
    findings = tmp / f"{name}.jsonl"
    command = [
        LEAKSONAR, "scan", *arguments, "--db", str(tmp / f"{name}.db"), "--scope", LOOPBACK,
        "--jsonl", str(findings), "--quiet",
    ]  # fmt: skip
    seconds, rss, cpu = run(command)
    _header, *records = map(json.loads, findings.read_text().splitlines())  # the scan's header, then findings
    return {
        "seconds": round(seconds, 2),
        "services": len(records),
        "exposed": sum(1 for r in records if r.get("exposed")),
        "protocols": sorted({r["protocol"] for r in records}),
        "rss_mb": round(rss, 1),
        "cpu_s": round(cpu, 1),
        "command": " ".join(["leaksonar", *command[1:]]),
    }


def inside(addresses: int) -> None:
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    with tempfile.TemporaryDirectory(prefix="leaksonar-openfrom-") as tmp_name:
        tmp = Path(tmp_name)
        servers = start_servers(tmp)
        try:
            listing = tmp / "masscan.txt"
            masscan_list(listing, addresses)
            block = f"{FIRST}-{FIRST + addresses - 1}"
            ports = ",".join(map(str, PORTS))
            runs = {
                "open-from": scan("openfrom", ["--open-from", str(listing)], tmp),
                "discovery": scan("discovery", [block, "-p", ports, "--seed", "1"], tmp),
            }
        finally:
            for server in servers:
                server.terminate()
                server.wait(timeout=10)
    report(addresses * len(PORTS), runs)


def report(open_ports: int, runs: dict[str, dict[str, Any]]) -> None:
    print(f"{open_ports:,} open ports (redis-server and memcached on {open_ports // len(PORTS):,} addresses)")
    print(f"  machine: {describe(machine())}")
    print("  {:<10} {:>8} {:>10} {:>9} {:>8} {:>7} {:>7}".format(
        "source", "seconds", "ports/s", "services", "exposed", "rss MB", "cpu s"))  # fmt: skip
    for name, r in runs.items():
        print(
            f"  {name:<10} {r['seconds']:>8} {round(open_ports / r['seconds']):>10,} {r['services']:>9,}"
            f" {r['exposed']:>8,} {r['rss_mb']:>7} {r['cpu_s']:>7}"
        )
    ratio = round(runs["discovery"]["seconds"] / runs["open-from"]["seconds"], 2)
    print(f"  discovery / open-from time: {ratio}x")
    save("openfrom", {"open_ports": open_ports, "runs": runs, "ratio": ratio})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--addresses", type=int, default=5000, help="addresses with two open ports each")
    parser.add_argument("--inside", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if not 1 <= args.addresses <= 60000:
        sys.exit("--addresses must be 1..60000")
    if args.inside:
        inside(args.addresses)
        return
    rerun_in_namespace(__file__, ["redis-server", "memcached"])


if __name__ == "__main__":
    main()

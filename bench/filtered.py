"""Filtered-network benchmark: a /16 where nftables drops SYNs, inside a new network namespace.

    .venv/bin/python bench/filtered.py [--settings 2000:1.0,2000:0.5,8000:0.5] [--nmap-block 20] [--skip-wide]

Re-runs itself under `unshare -n` (`unshare -rn` when not root), where only the namespace's own
loopback exists: `ip link set lo up`, then an nftables input rule drops every SYN to 127.88.0.0/14
except to eight addresses of 127.90.0.0/16: four with a real server listening (redis-server: open),
four with nothing (closed: the kernel resets). leaksonar scans the /16 on one port at each CONCURRENCY:TIMEOUT
setting (no retries), so the rate should follow concurrency / timeout while peak RSS stays flat; one
more run covers a /14 at the last setting. nmap (`-sT -Pn -n -T5 --min-rate 100000`) scans a smaller
block (a /20 by default: its rate on filtered ports is far lower). Prints a table and writes
bench/results/filtered.json. Nothing leaves the namespace.
"""

from __future__ import annotations

import argparse
import re
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from benchlib import LEAKSONAR, LOOPBACK, describe, machine, rerun_in_namespace, run, save

BLOCK = "127.90.0.0/16"
WIDE_BLOCK = "127.88.0.0/14"
"""Holds BLOCK; every SYN to it is dropped but those to OPEN and CLOSED."""
PORT = 6379
OPEN = [f"127.90.0.{n}" for n in range(1, 5)]
CLOSED = [f"127.90.0.{n}" for n in range(5, 9)]


def nft_rules() -> str:
    answering = ", ".join(OPEN + CLOSED)
    return f"""
table inet leaksonar_bench {{
  chain input {{
    type filter hook input priority 0; policy accept;
    ip daddr {WIDE_BLOCK} ip daddr != {{ {answering} }} tcp flags & (syn | ack) == syn drop
  }}
}}
"""


def start_server(tmp: Path) -> subprocess.Popen[bytes]:
    """A real redis-server on the open addresses (no persistence), once it accepts connections."""
    server = subprocess.Popen(
        ["redis-server", "--port", str(PORT), "--bind", *OPEN, "--save", "", "--appendonly", "no",
         "--dir", str(tmp), "--protected-mode", "no"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            socket.create_connection((OPEN[-1], PORT), timeout=0.5).close()
            return server
        except OSError:
            time.sleep(0.05)
    server.kill()
    sys.exit("redis-server did not start inside the namespace")


def leaksonar_run(block: str, concurrency: int, timeout: float, db: Path) -> dict[str, Any]:
    command = [
        LEAKSONAR, "scan", block, "-p", str(PORT), "--concurrency", str(concurrency),
        "--timeout", str(timeout), "--retries", "0", "--db", str(db), "--scope", LOOPBACK,
    ]  # fmt: skip
    out = db.with_suffix(".out")
    with out.open("wb") as handle:
        seconds, rss, _ = run(command, stdout=handle.fileno())
    summary = out.read_text()
    found = re.search(
        r"([\d,]+) address/port pairs in ([\d.]+) s .*?: (\d+) open, (\d+) services", summary, re.S
    )
    if not found:
        sys.exit(f"no summary line in leaksonar's output: {summary[-300:]}")
    pairs = int(found[1].replace(",", ""))
    return {
        "block": block,
        "concurrency": concurrency,
        "timeout_s": timeout,
        "pairs": pairs,
        "open": int(found[3]),
        "services": int(found[4]),
        "seconds": round(seconds, 2),
        "rate": round(pairs / seconds),
        "scan_s": float(found[2]),
        "scan_rate": round(pairs / float(found[2])),
        "ceiling": round(concurrency / timeout),
        "rss_mb": round(rss, 1),
        "command": " ".join(["leaksonar", *command[1:]]),
    }


def nmap_run(block: str, tmp: Path) -> dict[str, Any]:
    xml = tmp / "nmap.xml"
    command = [
        "nmap",
        "-sT",
        "-Pn",
        "-n",
        "-T5",
        "--min-rate",
        "100000",
        "-p",
        str(PORT),
        block,
        "-oX",
        str(xml),
    ]
    seconds, rss, _ = run(command)
    text = xml.read_text()
    pairs = 2 ** (32 - int(block.split("/")[1]))
    return {
        "block": block,
        "pairs": pairs,
        "open": len(re.findall(r'<state state="open"', text)),
        "seconds": round(seconds, 2),
        "rate": round(pairs / seconds),
        "rss_mb": round(rss, 1),
        "command": " ".join(command[:-2]),
    }


def inside(settings: list[tuple[int, float]], nmap_prefix: int, skip_wide: bool) -> None:
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    subprocess.run(["nft", "-f", "-"], input=nft_rules().encode(), check=True)
    with tempfile.TemporaryDirectory(prefix="leaksonar-filtered-") as tmp_name:
        tmp = Path(tmp_name)
        server = start_server(tmp)
        try:
            runs = [leaksonar_run(BLOCK, c, t, tmp / f"c{c}-t{t}.db") for c, t in settings]
            wide = None if skip_wide else leaksonar_run(WIDE_BLOCK, *settings[-1], tmp / "wide.db")
            nmap = nmap_run(f"127.90.0.0/{nmap_prefix}", tmp)
        finally:
            server.terminate()
            server.wait(timeout=10)
    report(runs, wide, nmap)


def report(runs: list[dict[str, Any]], wide: dict[str, Any] | None, nmap: dict[str, Any]) -> None:
    print(f"filtered network, port {PORT}: SYNs dropped except {len(OPEN)} open + {len(CLOSED)} closed")
    print(f"  machine: {describe(machine())}")
    header = (
        "tool",
        "block",
        "concurrency",
        "timeout",
        "seconds",
        "rate/s",
        "scan/s",
        "c/t",
        "open",
        "rss MB",
    )
    print("  {:<10} {:<16} {:>11} {:>7} {:>8} {:>8} {:>8} {:>7} {:>4} {:>7}".format(*header))
    for r in [*runs, *([wide] if wide else [])]:
        print(
            f"  {'leaksonar':<10} {r['block']:<16} {r['concurrency']:>11} {r['timeout_s']:>7}"
            f" {r['seconds']:>8} {r['rate']:>8,} {r['scan_rate']:>8,} {r['ceiling']:>7,} {r['open']:>4}"
            f" {r['rss_mb']:>7}"
        )
    print(
        f"  {'nmap':<10} {nmap['block']:<16} {'(T5)':>11} {'':>7} {nmap['seconds']:>8} {nmap['rate']:>8,}"
        f" {'':>8} {'':>7} {nmap['open']:>4} {nmap['rss_mb']:>7}"
    )
    save(
        "filtered",
        {"port": PORT, "open": OPEN, "closed": CLOSED, "leaksonar": runs, "wide": wide, "nmap": nmap},
    )


def parse_settings(text: str) -> list[tuple[int, float]]:
    try:
        pairs = [item.split(":") for item in text.split(",")]
        return [(int(c), float(t)) for c, t in pairs]
    except ValueError:
        sys.exit(f"--settings: expected CONCURRENCY:TIMEOUT[,...], got {text!r}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--settings", default="2000:1.0,2000:0.5,8000:0.5", help="CONCURRENCY:TIMEOUT,...")
    parser.add_argument("--nmap-block", type=int, default=20, help="prefix length of nmap's block (>= 16)")
    parser.add_argument("--skip-wide", action="store_true", help="skip the /14 run")
    parser.add_argument("--inside", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    settings = parse_settings(args.settings)
    if not 16 <= args.nmap_block <= 32:
        sys.exit("--nmap-block must be 16..32")
    if args.inside:
        inside(settings, args.nmap_block, args.skip_wide)
        return
    rerun_in_namespace(__file__, ["nft", "nmap", "redis-server"])


if __name__ == "__main__":
    main()

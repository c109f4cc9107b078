"""Discovery benchmark: leaksonar vs nmap connect scan over loopback, and memory from a /16 to a /12.

Run: make bench   (or .venv/bin/python bench/discovery.py [--prefix 127.1] [--port 9])
Everything targets 127.0.0.0/8 only. Prints a table and writes bench/results/discovery.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LEAKSONAR = str(ROOT / ".venv" / "bin" / "leaksonar")


def run(command: list[str]) -> tuple[float, float]:
    """Wall seconds and peak RSS (MB) of one command."""
    started = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(process.pid, 0)
    elapsed = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"{command[0]} failed: {process.stderr.read().decode()[-500:] if process.stderr else ''}")
    return elapsed, usage.ru_maxrss / 1024


def leaksonar(block: str, port: int, db: Path) -> list[str]:
    return [LEAKSONAR, "scan", block, "-p", str(port), "--db", str(db), "--quiet", "--scope", "127.0.0.0/8"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prefix", default="127.1", help="first two octets of the /16 (loopback)")
    parser.add_argument("--port", type=int, default=9, help="a closed port")
    parser.add_argument("--skip-memory", action="store_true", help="skip the /12 memory run")
    args = parser.parse_args()
    if not args.prefix.startswith("127."):
        sys.exit("the benchmark only scans loopback (127.0.0.0/8)")
    if shutil.which("nmap") is None:
        sys.exit("nmap is not installed (make setup installs it)")
    block = f"{args.prefix}.0.0/16"
    addresses = 65536
    results: dict[str, object] = {"machine": f"{platform.machine()}, {os.cpu_count()} cores", "block": block}
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "bench.db"
        ours, ours_rss = run(leaksonar(block, args.port, db))
        nmap_cmd = [
            "nmap",
            "-sT",
            "-Pn",
            "-n",
            "-T5",
            "--min-rate",
            "100000",
            "-p",
            str(args.port),
            block,
            "-oX",
            "-",
        ]
        theirs, theirs_rss = run(nmap_cmd)
        results["discovery"] = {
            "leaksonar_s": round(ours, 2),
            "leaksonar_rate": round(addresses / ours),
            "nmap_s": round(theirs, 2),
            "nmap_rate": round(addresses / theirs),
            "ratio": round(theirs / ours, 2),
            "leaksonar_rss_mb": round(ours_rss, 1),
            "nmap_rss_mb": round(theirs_rss, 1),
        }
        if not args.skip_memory:
            first, second = (int(x) for x in args.prefix.split(".")[:2])
            big_block = f"{first}.{second & 0xF0}.0.0/12"
            big, big_rss = run(leaksonar(big_block, args.port, Path(tmp) / "big.db"))
            nmap_big, nmap_big_rss = run([*nmap_cmd[:-3], big_block, "-oX", "-"])
            results["memory"] = {
                "block": big_block,
                "rss_16_mb": round(ours_rss, 1),
                "rss_12_mb": round(big_rss, 1),
                "leaksonar_rate_12": round(16 * addresses / big),
                "nmap_rate_12": round(16 * addresses / nmap_big),
                "nmap_rss_12_mb": round(nmap_big_rss, 1),
            }
    print(f"discovery, {block} port {args.port} ({results['machine']})")
    d = results["discovery"]
    print(f"  leaksonar {d['leaksonar_s']:>6} s  {d['leaksonar_rate']:>8,}/s  rss {d['leaksonar_rss_mb']} MB")
    print(f"  nmap      {d['nmap_s']:>6} s  {d['nmap_rate']:>8,}/s  rss {d['nmap_rss_mb']} MB")
    print(f"  ratio (leaksonar rate / nmap rate): {d['ratio']}x")
    if "memory" in results:
        m = results["memory"]
        print(
            f"{m['block']}: leaksonar {m['leaksonar_rate_12']:,}/s, nmap {m['nmap_rate_12']:,}/s,"
            f" ratio {m['leaksonar_rate_12'] / m['nmap_rate_12']:.2f}x"
        )
        print(
            f"peak RSS: leaksonar /16 {m['rss_16_mb']} MB, /12 {m['rss_12_mb']} MB;"
            f" nmap /16 {d['nmap_rss_mb']} MB, /12 {m['nmap_rss_12_mb']} MB"
        )
    out = ROOT / "bench" / "results"
    out.mkdir(exist_ok=True)
    (out / "discovery.json").write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()

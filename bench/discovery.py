"""Discovery benchmark: leaksonar vs nmap connect scan over loopback, and memory from a /16 to a /12.

    .venv/bin/python bench/discovery.py [--prefix 127.1] [--port 9] [--repeat 5] [--skip-memory]

Whole commands, timed from start to exit (start-up included), alternating leaksonar and
`nmap -sT -Pn -n -T5 --min-rate 100000` `--repeat` times over the same /16 of closed ports; the
median run of each is reported (the machine may be shared). Then one run of each over the /12 that
holds the /16, for the peak RSS of the scanning process (flat: the target space is never held in
memory). Everything targets 127.0.0.0/8 only. Prints a table and writes bench/results/discovery.json.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from benchlib import LEAKSONAR, LOOPBACK, describe, machine, run, save

TARGET_RATIO = 2.0


def leaksonar(block: str, port: int, db: Path) -> list[str]:
    return [LEAKSONAR, "scan", block, "-p", str(port), "--db", str(db), "--quiet", "--scope", LOOPBACK]


def nmap(block: str, port: int) -> list[str]:
    return ["nmap", "-sT", "-Pn", "-n", "-T5", "--min-rate", "100000", "-p", str(port), block, "-oX", "-"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prefix", default="127.1", help="first two octets of the /16 (loopback)")
    parser.add_argument("--port", type=int, default=9, help="a closed port")
    parser.add_argument("--repeat", type=int, default=5, help="runs of each tool over the /16")
    parser.add_argument("--skip-memory", action="store_true", help="skip the /12 runs")
    args = parser.parse_args()
    if not args.prefix.startswith("127.") or args.prefix.count(".") != 1:
        sys.exit("--prefix: the first two octets of a loopback /16, e.g. 127.1")
    if shutil.which("nmap") is None:
        sys.exit("nmap is not installed (make setup installs it)")
    block, pairs = f"{args.prefix}.0.0/16", 65536
    ours, theirs = [], []
    with tempfile.TemporaryDirectory(prefix="leaksonar-discovery-") as tmp:
        for n in range(max(1, args.repeat)):
            ours.append(run(leaksonar(block, args.port, Path(tmp) / f"run{n}.db")))
            theirs.append(run(nmap(block, args.port)))
        memory = None
        if not args.skip_memory:
            first, second = (int(x) for x in args.prefix.split("."))
            big_block = f"{first}.{second & 0xF0}.0.0/12"
            big = run(leaksonar(big_block, args.port, Path(tmp) / "big.db"))
            nmap_big = run(nmap(big_block, args.port))
            memory = {
                "block": big_block,
                "leaksonar_s": round(big.seconds, 2),
                "leaksonar_rate": round(16 * pairs / big.seconds),
                "leaksonar_rss_mb": round(big.rss_mb, 1),
                "leaksonar_cpu_s": round(big.cpu_s, 2),
                "nmap_s": round(nmap_big.seconds, 2),
                "nmap_rate": round(16 * pairs / nmap_big.seconds),
                "nmap_rss_mb": round(nmap_big.rss_mb, 1),
                "nmap_cpu_s": round(nmap_big.cpu_s, 2),
                "ratio": round(nmap_big.seconds / big.seconds, 2),
            }
    our_s, their_s = statistics.median(m.seconds for m in ours), statistics.median(m.seconds for m in theirs)
    discovery = {
        "block": block,
        "port": args.port,
        "runs": len(ours),
        "leaksonar_s": round(our_s, 2),
        "leaksonar_runs_s": [round(m.seconds, 2) for m in ours],
        "leaksonar_rate": round(pairs / our_s),
        "leaksonar_rss_mb": round(max(m.rss_mb for m in ours), 1),
        "leaksonar_cpu_s": round(statistics.median(m.cpu_s for m in ours), 2),
        "nmap_s": round(their_s, 2),
        "nmap_runs_s": [round(m.seconds, 2) for m in theirs],
        "nmap_rate": round(pairs / their_s),
        "nmap_rss_mb": round(max(m.rss_mb for m in theirs), 1),
        "nmap_cpu_s": round(statistics.median(m.cpu_s for m in theirs), 2),
        "ratio": round(their_s / our_s, 2),
        "target_ratio": TARGET_RATIO,
        "leaksonar_command": " ".join(["leaksonar", *leaksonar(block, args.port, Path("DB"))[1:]]),
        "nmap_command": " ".join(nmap(block, args.port)),
    }
    print(f"discovery, {block} port {args.port}, median of {len(ours)} whole-command runs")
    print(f"  machine: {describe(machine())}")
    for tool, seconds in (("leaksonar", our_s), ("nmap", their_s)):
        print(
            f"  {tool:<9} {seconds:6.2f} s  {discovery[f'{tool}_rate']:>8,}/s"
            f"  cpu {discovery[f'{tool}_cpu_s']} s  rss {discovery[f'{tool}_rss_mb']} MB"
            f"  runs {discovery[f'{tool}_runs_s']}"
        )
    print(f"  ratio (leaksonar rate / nmap rate): {discovery['ratio']}x (target >= {TARGET_RATIO}x)")
    if memory:
        print(
            f"  {memory['block']}: leaksonar {memory['leaksonar_rate']:,}/s, nmap {memory['nmap_rate']:,}/s,"
            f" ratio {memory['ratio']}x"
        )
        print(
            f"  peak RSS: leaksonar /16 {discovery['leaksonar_rss_mb']} MB,"
            f" /12 {memory['leaksonar_rss_mb']} MB; nmap /16 {discovery['nmap_rss_mb']} MB,"
            f" /12 {memory['nmap_rss_mb']} MB"
        )
    save("discovery", {"discovery": discovery, "memory": memory})


if __name__ == "__main__":
    main()

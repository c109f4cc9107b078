"""The benchmark suite (`make bench`): discovery, full pipeline, TLS, filtered network, open ports from
another scanner, inspection at scale, assessment, storage, index.

    .venv/bin/python bench/suite.py [--only discovery,pipeline,...] [--findings 200000]

Runs each benchmark as its own process (its own output shows as it goes), then prints one table of
the headline figures and writes bench/results/suite.json (each benchmark also writes its own JSON
there). The index benchmark (bench/index.py) is run with a smaller size; it is skipped with a note
if it is not there.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from benchlib import RESULTS, describe, machine, save

BENCH = Path(__file__).resolve().parent
Summary = list[tuple[str, str, str]]
"""(figure, value, target/comparison) rows of the table."""


def _load(name: str) -> dict[str, Any]:
    return json.loads((RESULTS / f"{name}.json").read_text())


def discovery() -> Summary:
    d = _load("discovery")
    rows = [
        (
            f"discovery {d['discovery']['block']} (closed port)",
            f"{d['discovery']['leaksonar_rate']:,}/s vs nmap {d['discovery']['nmap_rate']:,}/s",
            f"{d['discovery']['ratio']}x (target >= 2x)",
        )
    ]
    if m := d.get("memory"):
        rows.append(
            (
                f"discovery {m['block']}",
                f"{m['leaksonar_rate']:,}/s vs nmap {m['nmap_rate']:,}/s",
                f"{m['ratio']}x",
            )
        )
        rows.append(
            (
                "peak RSS /16 -> /12",
                f"{d['discovery']['leaksonar_rss_mb']} -> {m['leaksonar_rss_mb']} MB",
                "flat",
            )
        )
    return rows


def pipeline() -> Summary:
    p = _load("pipeline")
    ours, theirs, n = p["totals"]["leaksonar"], p["totals"]["nmap"], p["services"]
    facts = (
        f"protocol {ours['product']}/{n} vs {theirs['product']}/{n}, version {ours['version']} vs"
        f" {theirs['version']}, auth {ours['auth']} vs {theirs['auth']}, names {ours['names']} vs"
        f" {theirs['names']} of {ours['names_total']}"
    )
    return [
        (
            f"full pipeline, lab ({n} services)",
            f"{p['leaksonar_s']} s vs nmap -sV+NSE {p['nmap_s']} s",
            f"{p['ratio']}x (target >= 20x)",
        ),
        ("facts found (leaksonar vs nmap)", facts, f"nmap-only: {', '.join(p['nmap_only']) or 'none'}"),
    ]


def tls() -> Summary:
    t = _load("tls")
    timed, n = t["timed"]["tls"], t["services"]
    ours, theirs = t["totals"]["leaksonar"], t["totals"]["nmap"]
    certs_l, certs_n = t["cert_totals"]["leaksonar"], t["cert_totals"]["nmap"]
    rate = t["throughput"]
    facts = (
        f"protocol {ours['product']}/{n} vs {theirs['product']}/{n}, version {ours['version']} vs"
        f" {theirs['version']}, auth {ours['auth']} vs {theirs['auth']}; cert names {certs_l['names']} vs"
        f" {certs_n['names']} of {certs_l['names_total']}, sha256 {certs_l['sha256']} vs {certs_n['sha256']}"
    )
    return [
        (
            f"TLS services, lab ({n})",
            f"{timed['leaksonar_s']} s vs nmap -sV+ssl-cert+NSE {timed['nmap_s']} s",
            f"{timed['ratio']}x",
        ),
        ("TLS facts found (leaksonar vs nmap)", facts, f"nmap-only: {', '.join(t['nmap_only']) or 'none'}"),
        (
            "TLS identify+inspect throughput",
            f"{rate['tls_rate']:,} services/s vs plaintext twins {rate['twin_rate']:,}/s",
            f"TLS costs {rate['overhead']}x",
        ),
    ]


def filtered() -> Summary:
    f = _load("filtered")
    rows = [
        (
            f"filtered {r['block']} c={r['concurrency']} t={r['timeout_s']}",
            f"{r['rate']:,}/s whole command ({r['scan_rate']:,}/s scanning), rss {r['rss_mb']} MB",
            f"ceiling c/t {r['ceiling']:,}/s",
        )
        for r in [*f["leaksonar"], *([f["wide"]] if f.get("wide") else [])]
    ]
    n = f["nmap"]
    rows.append((f"filtered nmap {n['block']} (T5)", f"{n['rate']:,}/s ({n['seconds']} s)", ""))
    return rows


def openfrom() -> Summary:
    o = _load("openfrom")
    ours, found = o["runs"]["open-from"], o["runs"]["discovery"]
    return [
        (
            f"--open-from {o['open_ports']:,} open ports",
            f"{ours['seconds']} s ({ours['services']:,} services) vs own discovery {found['seconds']} s"
            f" ({found['services']:,})",
            f"discovery / open-from {o['ratio']}x",
        )
    ]


def inspect_scale() -> Summary:
    s = _load("inspect_scale")
    rows = [
        (
            f"inspect {r['size']:,} open {r['kind']}",
            f"{r['rate']:,} services/s, {r['cpu_ms_per_service']} ms CPU each, rss {r['rss_mb']} MB,"
            f" {r['lost']} lost",
            f"target >= {s['targets'][r['kind']]:,}/s",
        )
        for r in s["runs"]
    ]
    if peer := s.get("nmap"):
        ours, nmap = peer["leaksonar"], peer["nmap"]
        rows.append(
            (
                f"inspect {nmap['count']} open redis vs nmap",
                f"{ours['seconds']} s vs nmap -sV --script redis-info {nmap['seconds']} s",
                f"{peer['ratio']}x",
            )
        )
    return rows


def assessment() -> Summary:
    a = _load("pii_eval")
    categories = a["categories"].values()
    return [
        (
            "assessment (PII detection)",
            f"{a['values_per_second']:,} field values/s, one core",
            f"precision >= {min(c['precision'] for c in categories):.3f},"
            f" recall >= {min(c['recall'] for c in categories):.3f}",
        )
    ]


def ingest() -> Summary:
    return [
        (
            f"storage {r['findings']:,} findings, {r['database']}",
            f"{r['batched_per_s']:,}/s batched ({r['batched_cpu_us']:,} µs CPU each) vs"
            f" {r['one_by_one_per_s']:,}/s one at a time; events of a rescan {r['events_s']} s",
            "target >= 20,000/s",
        )
        for r in json.loads((RESULTS / "ingest.json").read_text())
    ]


def index() -> Summary:
    i = _load("index")
    selective = [q["p95_ms"] for q in i["queries"] if q["selective"]]
    rows = [
        (
            f"index {i['findings']:,} findings",
            f"ingest {i['ingest_per_s']:,}/s; selective queries p95 <= {max(selective):.1f} ms",
            "target < 100 ms",
        )
    ]
    if api := i.get("api"):
        rows.append(("index API /api/search", f"{api['requests_per_s']:,} requests/s", ""))
    return rows


def steps(findings: int) -> dict[str, tuple[list[str], Callable[[], Summary]]]:
    python = sys.executable
    return {
        "discovery": ([python, str(BENCH / "discovery.py")], discovery),
        "pipeline": ([python, str(BENCH / "pipeline.py")], pipeline),
        "tls": ([python, str(BENCH / "tls.py")], tls),
        "filtered": ([python, str(BENCH / "filtered.py")], filtered),
        "openfrom": ([python, str(BENCH / "openfrom.py")], openfrom),
        "inspect_scale": ([python, str(BENCH / "inspect_scale.py")], inspect_scale),
        "assessment": ([python, str(BENCH / "pii_eval.py")], assessment),
        "ingest": ([python, str(BENCH / "ingest.py"), "--json", str(RESULTS / "ingest.json")], ingest),
        "index": (
            [
                python,
                str(BENCH / "index.py"),
                "--findings",
                str(findings),
                "--json",
                str(RESULTS / "index.json"),
            ],
            index,
        ),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default="", help="comma-separated subset of the benchmarks")
    parser.add_argument("--findings", type=int, default=200_000, help="size of the index benchmark")
    args = parser.parse_args()
    plan = steps(args.findings)
    chosen = [name.strip() for name in args.only.split(",") if name.strip()] or list(plan)
    if unknown := [name for name in chosen if name not in plan]:
        sys.exit(f"--only: unknown benchmark {unknown[0]!r} (one of {', '.join(plan)})")
    RESULTS.mkdir(exist_ok=True)
    table: Summary = []
    outcome: dict[str, Any] = {}
    for name in chosen:
        command, summarise = plan[name]
        if not Path(command[1]).exists():
            table.append((name, "skipped", f"{Path(command[1]).name} is not there yet"))
            outcome[name] = {"status": "skipped"}
            continue
        print(
            f"\n=== {name}: {' '.join(Path(c).name if c.startswith('/') else c for c in command)}", flush=True
        )
        started = time.monotonic()
        code = subprocess.run(command, check=False).returncode
        seconds = round(time.monotonic() - started, 1)
        if code != 0:
            table.append((name, f"failed (exit {code})", ""))
            outcome[name] = {"status": "failed", "exit": code, "seconds": seconds}
            continue
        rows = summarise()
        table += rows
        outcome[name] = {"status": "ok", "seconds": seconds, "figures": rows}
    print(f"\nleaksonar benchmark suite ({describe(machine())})")
    widths = [max(len(row[i]) for row in table) for i in range(3)]
    for row in table:
        print("  " + "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)))
    path = save("suite", {"benchmarks": outcome})
    print(f"results: {path.parent}/ (suite.json and one file per benchmark)")
    if any(o["status"] == "failed" for o in outcome.values()):
        sys.exit(1)


if __name__ == "__main__":
    main()

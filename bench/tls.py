"""TLS benchmark: the lab's TLS services, leaksonar's scan against nmap -sV with ssl-cert, and throughput.

    .venv/bin/python bench/tls.py [--lab-dir DIR] [--base 127.x.0.0] [--rounds 32] [--concurrency 4]

Starts a lab of only the TLS services and their plaintext twins (the twins also back the nginx TLS
proxies), or uses the running lab in --lab-dir, then:

1. Facts: times both tools as whole commands over the TLS services' addresses and ports (and over
   the twins', for the cost of TLS to each tool), and compares per TLS service what each reported with
   the manifest: the facts pipeline.py compares (protocol, version, auth, databases, rows) and the
   certificate (TLS seen, names, SHA-256, self-signed, expired, issuer). nmap runs pipeline.py's
   read-only NSE scripts plus ssl-cert.
2. Throughput: every service identified and inspected (`identify`, `inspect_service`, `to_finding`:
   what a scan does per open port) `rounds` times, at most `concurrency` at once, in one event loop,
   each TLS service then its twin, twice in alternating order; services/s for each and the ratio.

Prints the tables and writes bench/results/tls.json.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from benchlib import describe, machine, run, running_lab, save
from pipeline import (
    NSE_SCRIPTS,
    compare,
    leaksonar_records,
    nmap_open_ports,
    print_table,
    scan_commands,
    totals,
)

from leaksonar.lab.tls import CA_NAME

SCRIPTS = ("ssl-cert", *NSE_SCRIPTS)
CERT_FACTS = ("tls", "names", "sha256", "self_signed", "expired", "issuer")
Service = dict[str, Any]


@dataclass
class CertFacts:
    """What one tool reported about a service's TLS and certificate (None: not reported)."""

    tls: bool = False
    names: list[str] = field(default_factory=list)
    sha256: str | None = None
    self_signed: bool | None = None
    expired: bool | None = None
    issuer: str = ""


def cert_truth(service: Service) -> CertFacts:
    """The manifest's certificate: a self-signed one issued by its first name, the others by the lab CA."""
    tls = service["tls"]
    issuer = tls["names"][0] if tls["self_signed"] else CA_NAME
    return CertFacts(True, tls["names"], tls["sha256"], tls["self_signed"], tls["expired"], issuer)


def leaksonar_cert(record: dict[str, Any]) -> CertFacts:
    tls = record.get("tls")
    if not tls:
        return CertFacts()
    cert = tls.get("cert") or {}
    return CertFacts(
        True,
        cert.get("names", []),
        cert.get("sha256"),
        cert.get("self_signed"),
        cert.get("expired"),
        cert.get("issuer", ""),
    )


def nmap_cert(port: ET.Element, now: datetime) -> CertFacts:
    """ssl-cert's output, as a reader takes it: nmap names no self-signed or expired certificate, so
    those are read off it (Subject = Issuer; Not valid after before the scan)."""
    service = port.find("service")
    facts = CertFacts(tls=service is not None and service.get("tunnel") == "ssl")
    script = port.find("script[@id='ssl-cert']")
    if script is None:
        return facts
    lines = (line.partition(": ") for line in script.get("output", "").splitlines())
    fields = {key.strip(): value.strip() for key, _, value in lines}
    subject, issuer = fields.get("Subject", ""), fields.get("Issuer", "")
    alternatives = fields.get("Subject Alternative Name", "").split(", ")
    alternatives = [re.sub(r"^(DNS|IP Address):", "", name) for name in alternatives]
    facts.tls = True
    facts.names = [*re.findall(r"commonName=([^/]+)", subject), *filter(None, alternatives)]
    if digest := fields.get("SHA-256"):  # printed by newer nmap; 7.93 prints MD5 and SHA-1 only
        facts.sha256 = digest.replace(" ", "").lower()
    facts.self_signed = bool(subject) and subject == issuer
    facts.issuer = issuer
    if not_after := fields.get("Not valid after"):
        facts.expired = datetime.fromisoformat(not_after).replace(tzinfo=UTC) < now
    return facts


def cert_verdicts(found: CertFacts, expected: CertFacts) -> dict[str, Any]:
    """Which of the manifest's certificate facts a tool's report holds (sha256 None: not reported)."""
    listed = {n.lower() for n in found.names}
    return {
        "tls": found.tls,
        "names": sum(n.lower() in listed for n in expected.names),
        "names_total": len(expected.names),
        "sha256": None if found.sha256 is None else found.sha256 == expected.sha256,
        "self_signed": found.self_signed == expected.self_signed,
        "expired": found.expired == expected.expired,
        "issuer": bool(found.issuer) and str(expected.issuer) in found.issuer,
    }


def compare_certs(services: list[Service], tmp: Path, now: datetime) -> list[dict[str, Any]]:
    ours, theirs = leaksonar_records(tmp), nmap_open_ports(tmp)
    rows = []
    for service in services:
        key, expected = (service["ip"], service["port"]), cert_truth(service)
        lk = leaksonar_cert(ours[key]) if key in ours else CertFacts()
        nm = nmap_cert(theirs[key], now) if key in theirs else CertFacts()
        rows.append(
            {
                "service": service["name"],
                "truth": asdict(expected),
                "leaksonar": {**cert_verdicts(lk, expected), "reported": asdict(lk)},
                "nmap": {**cert_verdicts(nm, expected), "reported": asdict(nm)},
            }
        )
    return rows


def _cell(value: bool | None) -> str:
    return "n/r" if value is None else "yes" if value else "-"


def _share(count: int | str, n: int) -> str:
    return count if isinstance(count, str) else f"{count}/{n}"


def print_cert_table(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Print the certificate facts per TLS service; return each tool's totals."""
    heads = ("tls", "names", "sha256", "self-signed", "expired", "issuer")
    print(f"{'service':<16}" + "".join(f"{head:^13}" for head in heads))
    print(f"{'':<16}" + f"{'L     N':^13}" * len(heads))
    for row in rows:
        lk, nm, total = row["leaksonar"], row["nmap"], row["leaksonar"]["names_total"]
        cells = [f"{lk['names']}/{total}  {nm['names']}/{total}" if fact == "names" else
                 f"{_cell(lk[fact]):>3}   {_cell(nm[fact]):<3}" for fact in CERT_FACTS]  # fmt: skip
        print(f"{row['service']:<16}" + "".join(f"{cell:^13}" for cell in cells))
    result: dict[str, dict[str, Any]] = {}
    for tool in ("leaksonar", "nmap"):
        counts: dict[str, Any] = {fact: sum(r[tool][fact] is True for r in rows) for fact in CERT_FACTS}
        counts["names"] = sum(r[tool]["names"] for r in rows)
        counts["names_total"] = sum(r[tool]["names_total"] for r in rows)
        if all(r[tool]["sha256"] is None for r in rows):
            counts["sha256"] = "not reported"
        result[tool] = counts
    return result


async def _inspect_once(service: Service) -> bool:
    """Identify and inspect a service as a scan does; True if it came out as the manifest says."""
    from leaksonar.model import Limits
    from leaksonar.scan.examine import inspect_service, to_finding
    from leaksonar.scan.identify import identify

    ip, port, limits = service["ip"], service["port"], Limits()
    identity = await identify(ip, port, None, limits)
    inspection = await inspect_service(ip, port, identity, limits)
    finding = to_finding(ip, port, identity, inspection, "bench-tls")
    return (
        finding.protocol == service["protocol"]
        and not inspection.errors
        and (finding.tls is not None) == bool(service.get("tls"))
    )


async def _batch(service: Service, rounds: int, concurrency: int) -> tuple[float, int]:
    """Seconds to identify and inspect `service` `rounds` times, `concurrency` at once; and the failures."""
    gate = asyncio.Semaphore(concurrency)

    async def once() -> bool:
        async with gate:
            return await _inspect_once(service)

    started = time.perf_counter()
    outcomes = await asyncio.gather(*(once() for _ in range(rounds)))
    return time.perf_counter() - started, outcomes.count(False)


async def throughput(
    pairs: list[tuple[Service, Service]], rounds: int, concurrency: int
) -> list[dict[str, Any]]:
    """Per (TLS service, twin): services/s of each over two passes of `rounds` // 2, in alternating order."""
    for pair in pairs:
        for service in pair:
            await _inspect_once(service)  # warm up: drivers and lexicons load on first use
    seconds = {s["name"]: 0.0 for pair in pairs for s in pair}
    failed = dict.fromkeys(seconds, 0)
    for turn in range(2):
        for pair in pairs:
            for service in pair if turn == 0 else pair[::-1]:
                spent, bad = await _batch(service, rounds // 2, concurrency)
                seconds[service["name"]] += spent
                failed[service["name"]] += bad
    done = rounds // 2 * 2
    return [
        {
            "tls": tls["name"],
            "twin": twin["name"],
            "services": done,
            "tls_s": round(seconds[tls["name"]], 3),
            "twin_s": round(seconds[twin["name"]], 3),
            "tls_rate": round(done / seconds[tls["name"]], 1),
            "twin_rate": round(done / seconds[twin["name"]], 1),
            "overhead": round(seconds[tls["name"]] / seconds[twin["name"]], 2),
            "failed": failed[tls["name"]] + failed[twin["name"]],
        }
        for tls, twin in pairs
    ]


def time_tools(services: list[Service], tmp: Path) -> dict[str, Any]:
    """Both tools as whole commands over `services`' addresses and ports, their output left in `tmp`."""
    tmp.mkdir()
    targets = sorted({s["ip"] for s in services})
    ports = sorted({s["port"] for s in services})
    ours_cmd, theirs_cmd = scan_commands(targets, ports, tmp, SCRIPTS)
    ours, theirs = run(ours_cmd), run(theirs_cmd)
    return {
        "targets": targets,
        "ports": ports,
        "leaksonar_command": ours_cmd,
        "nmap_command": theirs_cmd,
        "leaksonar_s": round(ours.seconds, 2),
        "nmap_s": round(theirs.seconds, 2),
        "ratio": round(theirs.seconds / ours.seconds, 1),
        "leaksonar_rate": round(len(services) / ours.seconds, 2),
        "nmap_rate": round(len(services) / theirs.seconds, 2),
    }


def _facts_line(label: str, rows: list[dict[str, Any]]) -> dict[str, dict[str, int]]:
    ours, theirs, n = totals(rows, "leaksonar"), totals(rows, "nmap"), len(rows)
    print(
        f"  {label}: protocol L {ours['product']}/{n} N {theirs['product']}/{n}; "
        f"version L {ours['version']}/{n} N {theirs['version']}/{n}; "
        f"auth L {ours['auth']}/{n} N {theirs['auth']}/{n}; "
        f"names L {ours['names']} N {theirs['names']} of {ours['names_total']}; "
        f"exact row counts L {ours['rows_counted']} N {theirs['rows_counted']}"
    )
    return {"leaksonar": ours, "nmap": theirs}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lab-dir", type=Path, help="use this running lab instead of starting one")
    parser.add_argument("--base", help="base of the lab to start (default: a free 127.x.0.0)")
    parser.add_argument("--rounds", type=int, default=32, help="inspections of each service (throughput)")
    parser.add_argument("--concurrency", type=int, default=4, help="inspections at once (throughput)")
    args = parser.parse_args()
    if shutil.which("nmap") is None:
        sys.exit("nmap is not installed (make setup installs it)")
    from leaksonar.lab.spec import services as lab_services

    wanted = [s for s in lab_services() if s.tls]
    names = [*(s.name for s in wanted), *(s.tls.twin for s in wanted if s.tls)]
    with tempfile.TemporaryDirectory(prefix="leaksonar-tls-") as tmp_name:
        tmp = Path(tmp_name)
        with running_lab(tmp, args.lab_dir, args.base, names) as manifest:
            by_name = {s["name"]: s for s in manifest["services"]}
            tls_services = [s for s in manifest["services"] if s.get("tls")]
            twins = [by_name[s["tls"]["twin"]] for s in tls_services]
            now = datetime.now(UTC)
            timed = {"tls": time_tools(tls_services, tmp / "tls"), "twins": time_tools(twins, tmp / "twins")}
            facts = compare(tls_services, tmp / "tls")
            twin_facts = compare(twins, tmp / "twins")
            certs = compare_certs(tls_services, tmp / "tls", now)
            pairs = list(zip(tls_services, twins, strict=True))
            started, load_before = time.perf_counter(), os.getloadavg()[0]
            rates = asyncio.run(throughput(pairs, args.rounds, args.concurrency))
            throughput_s, load = time.perf_counter() - started, (load_before, os.getloadavg()[0])
    n = len(tls_services)
    print(f"TLS services: {n} lab services behind TLS and their plaintext twins")
    print(f"  machine: {describe(machine())}")
    for label, t in timed.items():
        print(
            f"  {label:<5} leaksonar {t['leaksonar_s']:6.2f} s ({t['leaksonar_rate']:.2f} services/s)"
            f"   nmap -sV+ssl-cert+NSE {t['nmap_s']:6.2f} s ({t['nmap_rate']:.2f}/s)   ratio {t['ratio']}x"
        )
    print(
        f"  TLS cost, whole command (TLS time / twins' time): leaksonar "
        f"{timed['tls']['leaksonar_s'] / timed['twins']['leaksonar_s']:.2f}x, "
        f"nmap {timed['tls']['nmap_s'] / timed['twins']['nmap_s']:.2f}x"
    )
    print("facts found on the TLS services (L: leaksonar, N: nmap):")
    nmap_only = print_table(facts)
    fact_totals = _facts_line("totals", facts)
    twin_totals = _facts_line("the twins, for comparison", twin_facts)
    print(f"  nmap found where leaksonar did not: {', '.join(nmap_only) or 'nothing'}")
    print("certificate facts (n/r: not reported; nmap's self-signed and expired are read off its")
    print("Subject = Issuer and Not valid after, as a reader would: it does not say them):")
    cert_totals = print_cert_table(certs)
    for tool, counts in cert_totals.items():
        print(
            f"  {tool:<9} tls {counts['tls']}/{n}; names {counts['names']}/{counts['names_total']}; "
            f"sha256 {_share(counts['sha256'], n)}; "
            f"self-signed {counts['self_signed']}/{n}; expired {counts['expired']}/{n}; "
            f"issuer {counts['issuer']}/{n}"
        )
    print(
        f"throughput: identify + inspect, {args.rounds} times each, {args.concurrency} at once, one event"
        f" loop ({throughput_s:.1f} s in all; load average {load[0]:.1f} before, {load[1]:.1f} after):"
    )
    head = f"  {'TLS service':<16} {'services/s':>10}   {'twin':<16} {'services/s':>10}"
    print(f"{head}   {'TLS cost':>8}  failed")
    for r in rates:
        print(
            f"  {r['tls']:<16} {r['tls_rate']:>10}   {r['twin']:<16} {r['twin_rate']:>10}   "
            f"{r['overhead']:>7}x  {r['failed']}"
        )
    tls_s, twin_s = sum(r["tls_s"] for r in rates), sum(r["twin_s"] for r in rates)
    done = sum(r["services"] for r in rates)
    overall = {
        "tls_rate": round(done / tls_s, 1),
        "twin_rate": round(done / twin_s, 1),
        "overhead": round(tls_s / twin_s, 2),
        "failed": sum(r["failed"] for r in rates),
    }
    print(
        f"  {'all':<16} {overall['tls_rate']:>10}   {'all twins':<16} {overall['twin_rate']:>10}   "
        f"{overall['overhead']:>7}x  {overall['failed']}"
    )
    save(
        "tls",
        {
            "services": n,
            "nse_scripts": list(SCRIPTS),
            "timed": timed,
            "totals": fact_totals,
            "twin_totals": twin_totals,
            "cert_totals": cert_totals,
            "nmap_only": nmap_only,
            "services_compared": facts,
            "certificates_compared": certs,
            "throughput": {
                "rounds": args.rounds,
                "concurrency": args.concurrency,
                "seconds": round(throughput_s, 1),
                "load_1min": {"before": load[0], "after": load[1]},
                "pairs": rates,
                **overall,
            },
        },
    )


if __name__ == "__main__":
    main()

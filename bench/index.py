"""Index benchmark: N synthetic findings ingested through store.findings.add into a temporary SQLite
file (or the PostgreSQL database given with --db); ingest rate, p50/p95 of ten representative searches
and of facets, each for an analyst and for a public viewer (over the visible set: critical services left
out) on the same index, and /api/search requests per second from a second process when `leaksonar serve`
exists (SQLite only).

Run: .venv/bin/python bench/index.py [--findings 1000000] [--json bench/results/index.json]
     [--db postgresql://postgres@127.0.0.1:PORT/postgres] [--keep FILE]
--keep FILE keeps the SQLite index there, and an index already there is measured again without ingesting
(it is migrated to this leaksonar's schema first: measure a copy to keep the original's revision).
The records are synthetic; the only traffic is to local servers on 127.0.0.0/8.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from leaksonar.model import PII_CATEGORIES, Assessment, Collection, Finding, PiiHit, RansomNote, Software
from leaksonar.store.db import Store

ROOT = Path(__file__).resolve().parent.parent
BATCH = 5000
RUNS = 20
"""Timed runs of each query (after one warm-up run)."""
API_REQUESTS = 1000
API_CLIENTS = 8

PROTOCOLS = {  # protocol: (port, weight)
    "redis": (6379, 25), "elasticsearch": (9200, 15), "mongodb": (27017, 15), "mysql": (3306, 10),
    "postgresql": (5432, 8), "memcached": (11211, 8), "couchdb": (5984, 5), "clickhouse": (8123, 4),
    "etcd": (2379, 3), "influxdb": (8086, 3), "cassandra": (9042, 2), "kibana": (5601, 2),
}  # fmt: skip
COUNTRIES = ["US", "CN", "DE", "FR", "RU", "BR", "IN", "KR", "JP", "GB", "NL", "SG", "VN", "ID", "HK", "CA",
             "IR", "TR", "PL", "UA", "IT", "ES", "AU", "TW", "MX", "AR", "ZA", "TH", "SE", "NG"]  # fmt: skip
COLLECTIONS = {  # name: fields
    "person": ("xm", "sfzh", "sjhm", "dz"), "users": ("user_name", "email", "password_hash"),
    "orders": ("order_id", "total", "sku"), "customers": ("name", "phone", "address"),
    "case_files": ("ajbh", "case_text"), "logs": ("ts", "level", "message"), "sessions": ("token", "ip"),
    "payments": ("card_number", "amount"), "products": ("sku", "price"), "metrics": ("host", "value"),
    "employees": ("name", "birth_date", "passport_no"), "read_me": ("note",),
}  # fmt: skip
SENSITIVE = {"national_id", "passport", "payment_card", "bank_account", "password", "secret", "case_record"}
SEVERITY_ORDER = ("info", "low", "medium", "high", "critical")
BTC_POOL = [f"1Bench{n:06d}x" + "Qm9aZ" * 5 for n in range(500)]
TOP_ASN = 64512
"""The most frequent ASN (Zipf-like draw over 64512 ... 64512 + 4999)."""


def address(i: int) -> str:
    """The i-th address: a bijection of 0..2^24-1 onto 127.0.0.0/8 (synthetic records, no traffic)."""
    n = (127 << 24) | ((i * 2654435761) % (1 << 24))
    return ".".join(str((n >> s) & 255) for s in (24, 16, 8, 0))


def synthetic(count: int, seed: int = 7) -> Iterator[Finding]:
    rng = random.Random(seed)
    protocols = list(PROTOCOLS)
    weights = [w for _, w in PROTOCOLS.values()]
    country_weights = [1 / (k + 1) for k in range(len(COUNTRIES))]
    for i in range(count):
        protocol = rng.choices(protocols, weights)[0]
        exposed = rng.random() < 0.7
        rows = int(10 ** rng.uniform(0, 9)) if exposed and rng.random() < 0.9 else (0 if exposed else None)
        size = rows * rng.randint(50, 400) if rows is not None else None
        names = rng.sample(sorted(COLLECTIONS), rng.randint(1, 4)) if exposed else []
        pii: tuple[str, ...] = ()
        if exposed and rows and rng.random() < 0.4:
            pii = tuple(rng.sample(PII_CATEGORIES, rng.randint(1, 4)))
        infected = exposed and rng.random() < 0.03
        btc = (rng.choice(BTC_POOL),) if infected and rng.random() < 0.8 else ()
        if not exposed:
            severity = "info"
        elif (infected and pii) or (SENSITIVE & set(pii) and (rows or 0) >= 100):
            severity = "critical"
        elif pii or infected:
            severity = "high"
        else:
            severity = "medium" if rows else "low"
        asn = TOP_ASN + min(int(rng.paretovariate(1.2)) - 1, 4999)
        day = rng.randint(1, 180)
        time_ = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(1795824000 - day * 86400))
        summary = (
            f"{protocol} open: {len(names)} collections, {rows or 0} rows"
            + (f", personal data: {', '.join(pii)}" if pii else "")
            + (", ransom note" if infected else "")
            + (", police case files" if "case_files" in names and rng.random() < 0.01 else "")
        )
        yield Finding(
            ip=address(i),
            port=PROTOCOLS[protocol][0],
            protocol=protocol,
            software=Software(protocol, f"{rng.randint(1, 9)}.{rng.randint(0, 20)}.{rng.randint(0, 9)}"),
            auth="none" if exposed else "required",
            exposed=exposed,
            time=time_,
            scan_id=f"bench-{day:03d}",
            databases=1 if exposed else None,
            rows=rows,
            size_bytes=size,
            collections=tuple(Collection("db", n, None, None, COLLECTIONS[n]) for n in names),
            assessment=Assessment(
                pii={c: PiiHit(4, 5, ("f",), "***") for c in pii},
                collection_pii={},
                infected=infected,
                notes=(RansomNote("collection read_me", "pay to recover", btc, (), 0.05),)
                if infected
                else (),
                severity=severity,  # type: ignore[arg-type]
                summary=summary,
            ),
            geo={"country": rng.choices(COUNTRIES, country_weights)[0]},
            network={"asn": asn, "org": f"Example Network {asn}"},
        )


QUERIES = [  # (query, selective: an indexed condition in it matches under 1% of the services)
    (f"protocol:elasticsearch AND asn:AS{TOP_ASN + 40} AND pii:national_id AND rows:>1000000", True),
    ("ip:127.77.0.0/16", True),
    (f"btc:{BTC_POOL[42]}", True),
    ("country:NG AND severity:critical", True),
    (f'org:"Example Network {TOP_ASN + 400}"', True),
    ("police", True),
    ("first_seen:>=2026-11-27 AND infected:true", True),
    ("severity:critical", False),
    ("protocol:redis AND exposed:true AND rows:>1000", False),
    ("", False),
]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def timed(call: Any, runs: int = RUNS) -> tuple[float, float, Any]:
    result = call()
    laps = []
    for _ in range(runs):
        started = time.perf_counter()
        call()
        laps.append((time.perf_counter() - started) * 1000)
    return statistics.median(laps), percentile(laps, 0.95), result


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def api_load(db: Path) -> dict[str, Any] | None:
    """Requests/s for /api/search against `leaksonar serve` (its own process), from this one."""
    try:
        from leaksonar.web.app import create_app  # noqa: F401
    except ImportError:
        return None
    import httpx

    port = free_port()
    serve = ["serve", "--db", str(db), "--host", "127.0.0.1", "--port", str(port), "--anonymous", "analyst"]
    server = subprocess.Popen(
        [str(ROOT / ".venv/bin/leaksonar"), *serve, "--rate-limit", "1000000/minute"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        with httpx.Client(base_url=base, timeout=30) as client:
            for _ in range(300):
                try:
                    client.get("/api/stats")
                    break
                except httpx.TransportError:
                    time.sleep(0.1)
            queries = [q for q, selective in QUERIES if selective]
            statuses: list[int] = []

            def one(n: int) -> int:
                return client.get(
                    "/api/search", params={"q": queries[n % len(queries)], "limit": 20}
                ).status_code

            started = time.perf_counter()
            with ThreadPoolExecutor(API_CLIENTS) as pool:
                statuses = list(pool.map(one, range(API_REQUESTS)))
            elapsed = time.perf_counter() - started
    finally:
        server.terminate()
        server.wait(10)
    return {
        "requests": API_REQUESTS,
        "clients": API_CLIENTS,
        "seconds": round(elapsed, 2),
        "requests_per_s": round(API_REQUESTS / elapsed, 1),
        "ok": sum(s == 200 for s in statuses),
        "queries": "the selective ones, in turn",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--findings", type=int, default=1_000_000, help="synthetic findings to ingest")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    parser.add_argument(
        "--db",
        help="measure on this PostgreSQL database (a postgresql:// URL on 127.0.0.0/8) instead of a SQLite "
        "file; an index already there is measured without ingesting again",
    )
    parser.add_argument(
        "--keep",
        type=Path,
        help="keep the index at this path (default: a temporary file); an index already there is measured "
        "without ingesting again",
    )
    args = parser.parse_args()
    if args.findings < 1:
        sys.exit("--findings must be at least 1")
    console = Console(width=None if sys.stdout.isatty() else 150)  # the table, unwrapped, in a log too
    with tempfile.TemporaryDirectory() as tmp:
        db = args.keep or Path(tmp) / "bench.db"
        store = Store(args.db or str(db))
        reuse = store.stats().findings > 0
        started = time.perf_counter()
        batch: list[Finding] = []
        for found in () if reuse else synthetic(args.findings):
            batch.append(found)
            if len(batch) == BATCH:
                store.findings.add(batch)
                batch = []
        store.findings.add(batch)
        ingest = time.perf_counter() - started
        store.close()
        store = Store(args.db or str(db))  # as a user would open it next
        args.findings = store.stats().findings
        critical = store.search("severity:critical", limit=0).total
        services = store.stats().services
        database = store.engine.dialect.name
        results: dict[str, Any] = {
            "machine": f"{platform.machine()}, {os.cpu_count()} cores, {database}",
            "load_average_1m": round(os.getloadavg()[0], 1),  # the machine may be shared
            "findings": args.findings,
            "ingest_s": None if reuse else round(ingest, 1),
            "ingest_per_s": None if reuse else round(args.findings / ingest),
            "db_mb": None
            if args.db
            else round(sum(p.stat().st_size for p in db.parent.glob(db.name + "*")) / 1e6),
            "services": services,
            "critical_services": critical,
            "queries": [],
        }
        ingested = "measured again" if reuse else f"ingest {args.findings / ingest:,.0f}/s ({ingest:.0f} s)"
        table = Table(
            title=f"{args.findings:,} findings ({database}): {ingested}; {critical:,} of {services:,} "
            f"services critical ({critical / max(services, 1):.0%}), left out for a public viewer"
        )
        for column in ("query", "selective", "total", "public", "p50 ms", "p95 ms", "public p50", "p95", "x"):
            table.add_column(column, justify="left" if column == "query" else "right")

        def measure(kind: str, query: str, call: Any, runs: int, selective: bool = False) -> dict[str, Any]:
            """Analyst and public latency of one call on the same index, and their p95 ratio."""
            p50, p95, analyst = timed(lambda: call(query, public=False), runs)
            public_p50, public_p95, public = timed(lambda: call(query, public=True), runs)
            totals = [getattr(answer, "total", None) for answer in (analyst, public)]
            table.add_row(
                f"{kind}{query or '(everything)'}",
                "yes" if selective else "",
                *("" if n is None else f"{n:,}" for n in totals),
                *(f"{ms:.1f}" for ms in (p50, p95, public_p50, public_p95)),
                f"{public_p95 / p95:.1f}",
            )
            return {
                "query": query,
                "total": totals[0],
                "public_total": totals[1],
                "p50_ms": p50,
                "p95_ms": p95,
                "public_p50_ms": public_p50,
                "public_p95_ms": public_p95,
            }

        for query, selective in QUERIES:
            entry = measure("", query, lambda q, **kw: store.search(q, limit=50, **kw), RUNS, selective)
            results["queries"].append({**entry, "selective": selective})
        for query in ("", QUERIES[3][0]):
            results.setdefault("facets", []).append(measure("facets: ", query, store.facets, 5))
        console.print(table)
        for path in ("", "public_"):
            selective = [q[f"{path}p95_ms"] for q in results["queries"] if q["selective"]]
            broad = [q[f"{path}p95_ms"] for q in results["queries"] if not q["selective"]]
            facet = [f[f"{path}p95_ms"] for f in results["facets"]]
            console.print(
                f"{path.rstrip('_') or 'analyst'}: selective queries worst p95 {max(selective):.1f} ms "
                f"(target < 100 ms); broad {max(broad):.1f} ms; facets {max(facet):.1f} ms"
            )
        store.close()
        api = None if args.db else api_load(db)
        results["api"] = api
        if api:
            console.print(
                f"API /api/search: {api['requests_per_s']:,} requests/s ({api['ok']}/{api['requests']} ok, "
                f"{api['clients']} clients in a second process)"
            )
        else:
            console.print("API: leaksonar.web.app is not there; skipped")
    for entry in results["queries"] + results.get("facets", []):
        for key in ("p50_ms", "p95_ms", "public_p50_ms", "public_p95_ms"):
            entry[key] = round(entry[key], 2)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()

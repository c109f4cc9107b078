"""CPU time of assessing one finding (`leaksonar.assess.assess`: personal data, ransom signs, severity,
summary), in microseconds per finding on one core.

    .venv/bin/python bench/assess_cost.py [--findings 400] [--repeat 5] [--seed 7]

Workloads, each a stream of distinct inspections built from the lab's data generators, as the protocol
modules sample them (20 keys of a Redis database, 5 rows of a table):
- redis-users: 300 `user:i` hashes {name, email, city, visits} and 300 `session:i` strings;
- redis-lab:   the lab's open Redis (citizen hashes, JSON sessions, an SMS queue, a page cache);
- redis-attacked: the lab's Redis after the cron-job attack (cron lines, a planted SSH key);
- sql-lab:     the lab's PostgreSQL/MySQL tables (police, shop, hr, hospital, crm, payroll).
Prints the best of `--repeat` runs (each over its own `--findings` inspections: a cache of values
seen cannot flatter a later run) per workload, in CPU time of this process (steadier than wall time on
a shared machine), and writes bench/results/assess_cost.json. Run on demand: it is not a timed test.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from benchlib import describe, machine, save

from leaksonar.assess import assess
from leaksonar.lab import data
from leaksonar.model import Collection, Inspection, Limits, Sample
from leaksonar.protocols.kit import decode_value

_KEYS_SAMPLED = 20
_ROWS_SAMPLED = 5
_LIMITS = Limits()


def _document(key: str, value: str | dict[str, str] | list[str]) -> dict[str, Any]:
    """A sampled key as the Redis module reads it (JSON strings decoded)."""
    if isinstance(value, dict):
        return {"key": key, "type": "hash", "value": value}
    if isinstance(value, list):
        return {"key": key, "type": "list", "value": [decode_value(v.encode(), _LIMITS) for v in value]}
    return {"key": key, "type": "string", "value": decode_value(value.encode(), _LIMITS)}


def _keyed(rnd: random.Random, database: dict[str, Any], keys: int) -> Inspection:
    """A Redis inspection of one database: `_KEYS_SAMPLED` of its keys with their values."""
    chosen = rnd.sample(sorted(database), min(_KEYS_SAMPLED, len(database)))
    documents = tuple(_document(k, database[k]) for k in chosen)
    return Inspection(
        "redis",
        None,
        "none",
        databases=1,
        collections=(Collection("0", "db0", keys),),
        rows=keys,
        samples=(Sample("0", "db0", documents),),
    )


def redis_users(rnd: random.Random, count: int) -> list[Inspection]:
    synth = data.Synth(rnd.randrange(1 << 30))
    people = synth.people(300, english_share=0.5)
    inspections = []
    for _ in range(count):
        database: dict[str, Any] = {}
        for i, p in enumerate(rnd.sample(people, len(people)), 1):
            visits = str(rnd.randrange(10**4))
            user = {"name": p.name, "email": p.email, "city": p.birth_place, "visits": visits}
            database[f"user:{i}"] = user
            database[f"session:{i}"] = f"{rnd.getrandbits(128):032x}"
        inspections.append(_keyed(rnd, database, 600))
    return inspections


def redis_lab(rnd: random.Random, count: int) -> list[Inspection]:
    lab = data.redis_open()
    database: dict[str, Any] = {**lab.hashes[0], **lab.strings[0]}
    database.update(lab.lists[0])
    return [_keyed(rnd, database, len(database)) for _ in range(count)]


def redis_attacked(rnd: random.Random, count: int) -> list[Inspection]:
    lab = data.redis_attacked()
    database: dict[str, Any] = {**lab.hashes[0], **lab.strings[0]}
    return [_keyed(rnd, database, len(database)) for _ in range(count)]


def sql_lab(rnd: random.Random, count: int) -> list[Inspection]:
    tables = [
        (database, t)
        for database, maker in (
            ("police", data.police),
            ("shop", data.shop),
            ("hr", data.hr),
            ("hospital", data.hospital),
            ("crm", data.crm),
            ("payroll", data.payroll),
        )
        for t in maker()
    ]
    inspections = []
    for _ in range(count):
        database, table = rnd.choice(tables)
        rows = rnd.sample(table.rows, min(_ROWS_SAMPLED, len(table.rows)))
        documents = tuple(dict(zip(table.column_names, row, strict=True)) for row in rows)
        inspections.append(
            Inspection(
                "postgresql",
                None,
                "none",
                databases=1,
                collections=(Collection(database, table.name, len(table.rows)),),
                rows=len(table.rows),
                samples=(Sample(database, table.name, documents),),
            )
        )
    return inspections


WORKLOADS: dict[str, Callable[[random.Random, int], list[Inspection]]] = {
    "redis-users": redis_users,
    "redis-lab": redis_lab,
    "redis-attacked": redis_attacked,
    "sql-lab": sql_lab,
}


def cost(inspections: list[Inspection], repeat: int) -> float:
    """Best µs per finding of `assess` over `repeat` equal slices of `inspections` (each assessed once)."""
    size = len(inspections) // repeat
    best = float("inf")
    for run in range(repeat):
        start = time.process_time()
        for inspection in inspections[run * size : (run + 1) * size]:
            assess(inspection)
        best = min(best, time.process_time() - start)
    return best / size * 1e6


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--findings", type=int, default=400, help="distinct inspections per workload")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    assess(redis_attacked(random.Random(0), 1)[0])  # load the lexicon, signatures and validators first
    results: dict[str, float] = {}
    print(f"{'workload':<16} {'µs/finding':>10}")
    for name, build in WORKLOADS.items():
        inspections = build(random.Random(args.seed), args.findings * args.repeat)
        results[name] = round(cost(inspections, args.repeat), 1)
        print(f"{name:<16} {results[name]:>10,.1f}")
    path = save("assess_cost", {"findings": args.findings, "repeat": args.repeat, "us_per_finding": results})
    print(f"{describe(machine())}; written to {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

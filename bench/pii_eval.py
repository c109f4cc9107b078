"""Precision, recall and throughput of the personal-data detector on the labelled corpus.

Field level: for every labelled field, did `detect` report exactly its categories for that field?
A category reported for a field that does not hold it is a false positive; one not reported for a
field that holds it, a false negative. Throughput: sampled field values per second on one core
(the detector's own walk counts them), best of `--repeat` runs.

    .venv/bin/python bench/pii_eval.py [--seed 7] [--tables 600] [--seeds 1,2,3] [--errors 20]

Prints a table and writes bench/results/pii_eval.json.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from pii_corpus import Table, corpus

from leaksonar.assess.pii import detect, field_values
from leaksonar.model import PII_CATEGORIES, Sample

RESULTS = Path(__file__).resolve().parent / "results" / "pii_eval.json"
TARGET_PRECISION, TARGET_RECALL, TARGET_RATE = 0.95, 0.90, 50_000


def predicted_fields(sample: Sample) -> dict[str, set[str]]:
    """Field path -> categories, from the service-level hits of one sample."""
    pii, _ = detect([sample])
    found: dict[str, set[str]] = {}
    for category, hit in pii.items():
        for path in hit.fields:
            found.setdefault(path, set()).add(category)
    return found


def score(tables: list[Table]) -> tuple[dict[str, Counter[str]], Counter[str], list[dict[str, Any]]]:
    """Per category tp/fp/fn counts, per kind of field "fields"/"exact" counts, and the misjudged fields."""
    counts: dict[str, Counter[str]] = {c: Counter() for c in PII_CATEGORIES}
    kinds: Counter[str] = Counter()
    errors: list[dict[str, Any]] = []
    for table in tables:
        labels = table.labels()
        predicted = predicted_fields(table.sample())
        for path in labels.keys() | predicted.keys():
            label = labels.get(path)
            expected = set(label.expected) if label else set()
            got = predicted.get(path, set())
            for category in expected & got:
                counts[category]["tp"] += 1
            for category in got - expected:
                counts[category]["fp"] += 1
            for category in expected - got:
                counts[category]["fn"] += 1
            kind = label.kind if label else "key"
            kinds[f"{kind}:fields"] += 1
            kinds[f"{kind}:exact"] += expected == got
            if expected != got:
                errors.append(
                    {
                        "table": table.name,
                        "path": path,
                        "kind": kind,
                        "expected": sorted(expected),
                        "got": sorted(got),
                        "values": [str(v)[:60] for v in (label.values[:4] if label else ())],
                    }
                )
    return counts, kinds, errors


def throughput(samples: list[Sample], repeat: int) -> tuple[int, float]:
    """(field values, best values/s) of `detect` over every sample."""
    values = sum(len(v) for s in samples for v in field_values(s).values())
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        for sample in samples:
            detect([sample])
        best = min(best, time.perf_counter() - start)
    return values, values / best


def _ratio(part: int, whole: int) -> float:
    return part / whole if whole else 1.0


def report(counts: dict[str, Counter[str]]) -> dict[str, dict[str, float | int]]:
    rows = {}
    for category, c in counts.items():
        rows[category] = {
            "precision": round(_ratio(c["tp"], c["tp"] + c["fp"]), 4),
            "recall": round(_ratio(c["tp"], c["tp"] + c["fn"]), 4),
            "tp": c["tp"],
            "fp": c["fp"],
            "fn": c["fn"],
        }
    return rows


def by_kind(kinds: Counter[str]) -> dict[str, dict[str, float | int]]:
    """Kind of field -> how many, and the share given exactly their categories."""
    names = sorted({key.split(":")[0] for key in kinds})
    return {
        k: {
            "fields": kinds[f"{k}:fields"],
            "exact": round(_ratio(kinds[f"{k}:exact"], kinds[f"{k}:fields"]), 4),
        }
        for k in names
    }


def _print(rows: dict[str, dict[str, float | int]], values: int, rate: float) -> None:
    print(f"{'category':<14} {'precision':>9} {'recall':>7} {'tp':>5} {'fp':>4} {'fn':>4}")
    for category, r in rows.items():
        met = r["precision"] >= TARGET_PRECISION and r["recall"] >= TARGET_RECALL
        scores = f"{r['precision']:>9.3f} {r['recall']:>7.3f} {r['tp']:>5} {r['fp']:>4} {r['fn']:>4}"
        print(f"{category:<14} {scores}{'' if met else '  <- below target'}")
    print(f"throughput: {rate:,.0f} field values/s ({values:,} values, one core)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--tables", type=int, default=600)
    parser.add_argument(
        "--seeds", default="", help="also score these seeds (comma-separated), to check generality"
    )
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--errors", type=int, default=0, help="print up to N misjudged fields")
    args = parser.parse_args()

    tables = corpus(args.seed, args.tables)
    counts, kinds, errors = score(tables)
    values, rate = throughput([t.sample() for t in tables], args.repeat)
    rows, fields_by_kind = report(counts), by_kind(kinds)
    print(f"seed {args.seed}, {len(tables)} tables, {sum(len(t.fields) for t in tables)} labelled fields")
    _print(rows, values, rate)
    print("fields judged exactly right, by kind:")
    print("  " + ", ".join(f"{k} {v['exact']:.3f} of {v['fields']}" for k, v in fields_by_kind.items()))
    for error in errors[: args.errors]:
        print(json.dumps(error, ensure_ascii=False))

    others = {}
    for seed in (int(s) for s in args.seeds.split(",") if s):
        other_counts, _, _ = score(corpus(seed, args.tables))
        others[seed] = report(other_counts)
        worst_p = min(r["precision"] for r in others[seed].values())
        worst_r = min(r["recall"] for r in others[seed].values())
        print(f"seed {seed}: worst precision {worst_p:.3f}, worst recall {worst_r:.3f}")

    met = all(r["precision"] >= TARGET_PRECISION and r["recall"] >= TARGET_RECALL for r in rows.values())
    met = met and rate >= TARGET_RATE
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(
        json.dumps(
            {
                "seed": args.seed,
                "tables": len(tables),
                "fields": sum(len(t.fields) for t in tables),
                "values": values,
                "values_per_second": round(rate),
                "categories": rows,
                "by_kind": fields_by_kind,
                "other_seeds": others,
                "targets": {
                    "precision": TARGET_PRECISION,
                    "recall": TARGET_RECALL,
                    "values_per_second": TARGET_RATE,
                },
                "targets_met": met,
            },
            indent=2,
        )
        + "\n"
    )
    return 0 if met else 1


if __name__ == "__main__":
    raise SystemExit(main())

"""No raw personal data at rest: after a scan of the lab, no seeded national ID or phone number
appears unmasked in the index, the JSON lines, or anything printed."""

from __future__ import annotations

import re
from typing import Any

from conftest import leaksonar_here

from leaksonar.lab import data


def seeded_identifiers() -> set[str]:
    """Every national ID and phone number the lab's exposed services hold."""
    values: set[str] = set()
    for table in (*data.police(), *data.hospital(), *data.crm(), *data.shop()):
        for column in ("national_id", "id_card", "phone", "mobile"):
            if column in table.column_names:
                index = table.column_names.index(column)
                values.update(str(row[index]) for row in table.rows if row[index])
    for fields in data.redis_open().hashes.get(0, {}).values():
        values.update(v for k, v in fields.items() if k in ("id_number", "phone"))
    return values


def occurring(values: set[str], text: str) -> set[str]:
    """The `values` that occur in `text`. Each occurrence lies in a run of the characters `values` are
    made of, so only those runs are searched (one pass over `text`, not one per value)."""
    alphabet = "".join(sorted(set("".join(values))))
    lengths = {len(value) for value in values}
    return {
        run[start : start + length]
        for run in re.findall(f"[{re.escape(alphabet)}]+", text)
        for length in lengths
        for start in range(len(run) - length + 1)
        if run[start : start + length] in values
    }


def test_occurring_finds_values_anywhere_in_a_text() -> None:
    values = {"13812345678", "+1-611-716-2716x283", "11010519491231002X"}
    text = "a13812345678b 9+1-611-716-2716x2839 x1101051949123100 11010519491231002X"
    assert occurring(values, text) == values
    assert occurring(values, text.replace("678", "6*8").replace("2X", "2*").replace("283", "2.3")) == set()


def test_scan_outputs_hold_no_seeded_identifier(lab: dict[str, Any], scanned: dict[str, Any]) -> None:
    """The session's scan of the whole lab (its printout, JSON lines and index) and `show` of every
    service, in text and JSON (run in this process: one CLI start for 52 printouts)."""
    identifiers = seeded_identifiers()
    assert len(identifiers) > 5000
    db, jsonl = scanned["db"], scanned["jsonl"]
    shown = {
        (s["ip"], *extra): leaksonar_here("show", s["ip"], "--db", str(db), *extra).stdout
        for s in lab["services"]
        for extra in ((), ("--json",))
    }
    assert all(ip in text for (ip, *_), text in shown.items())  # every `show` printed its host
    assert "national_id" in jsonl.read_text()  # the assessment did see the identifiers
    texts = {
        "stdout": scanned["stdout"] + scanned["stderr"],
        "jsonl": jsonl.read_text(),
        "show": "\n".join(shown.values()),
        "index": b"".join(p.read_bytes() for p in db.parent.glob(f"{db.name}*")).decode("utf-8", "replace"),
    }
    for where, text in texts.items():
        leaked = occurring(identifiers, text)
        assert not leaked, f"{len(leaked)} raw identifiers in {where}, e.g. {sorted(leaked)[:1]}"

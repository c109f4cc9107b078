"""No raw personal data at rest: after a scan of the lab, no seeded national ID or phone number
appears unmasked in the index, the JSON lines, or anything printed."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

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


def test_scan_outputs_hold_no_seeded_identifier(lab: dict[str, Any], tmp_path: Path) -> None:
    identifiers = seeded_identifiers()
    assert len(identifiers) > 5000
    db, jsonl = tmp_path / "index.db", tmp_path / "findings.jsonl"
    block = lab["base"].rsplit(".", 1)[0] + ".0/24"
    command = [sys.executable, "-m", "leaksonar"]
    printed = subprocess.run(
        [*command, "scan", block, "--db", str(db), "--jsonl", str(jsonl)],
        capture_output=True,
        text=True,
        check=True,
    )
    shown = [
        subprocess.run(
            [*command, "show", s["ip"], "--db", str(db), *extra], capture_output=True, text=True
        ).stdout
        for s in lab["services"]
        for extra in ((), ("--json",))
    ]
    assert "national_id" in jsonl.read_text()  # the assessment did see the identifiers
    texts = {
        "stdout": printed.stdout + printed.stderr,
        "jsonl": jsonl.read_text(),
        "show": "\n".join(shown),
        "index": b"".join(p.read_bytes() for p in tmp_path.glob("index.db*")).decode("utf-8", "replace"),
    }
    for where, text in texts.items():
        leaked = [value for value in identifiers if value in text]
        assert not leaked, f"{len(leaked)} raw identifiers in {where}, e.g. {leaked[:1]}"

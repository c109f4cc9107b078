"""The JSON Schema of the finding record, generated from leaksonar.model.record.

`python -m leaksonar.model.schema` prints it; docs/finding.schema.json is that output (a test keeps
the two equal).
"""

import json
from typing import Any

from pydantic import TypeAdapter

from leaksonar.model.record import FindingRecord


def _closed(schema: Any) -> None:
    """Every object schema with named properties refuses other keys (in place)."""
    if isinstance(schema, dict):
        if "properties" in schema:
            schema.setdefault("additionalProperties", False)
        for value in schema.values():
            _closed(value)
    elif isinstance(schema, list):
        for value in schema:
            _closed(value)


def finding_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of one finding record."""
    schema = TypeAdapter(FindingRecord).json_schema(mode="serialization")
    _closed(schema)
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        **schema,
        "title": "leaksonar finding record",
    }


def schema_text() -> str:
    """The schema as published: indented JSON, keys in definition order, a final newline."""
    return json.dumps(finding_schema(), indent=2, ensure_ascii=False) + "\n"


if __name__ == "__main__":
    print(schema_text(), end="")

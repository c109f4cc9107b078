"""Personal data in sampled documents: categories per field, per collection and per service.

Each document is walked (bounded) into leaves named by their dotted path (``person.contact.phone``);
key-value documents (``{"key": "citizen:12", "value": {...}}``, as Redis and Memcached samples are)
are named by their key pattern (``citizen:*.id_number``), and the key's variable parts are a field of
their own. A field gets a category when

- enough of its values prove it alone (checksums, strict formats): `VALUE_RATE` (or `NAME_RATE` each
  when together they prove categories at `VALUE_RATE`, as a list of phones and e-mails does); or
- its name says the category and enough values agree: `NAME_RATE` for categories with a real
  validator, `PLAUSIBLE_RATE` for the others (names, addresses, genders ...).

Phones, e-mails, IDs, cards and IPs written inside free text count as values of their field. Raw
values never leave this module: hits carry counts and one masked example.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from itertools import islice
from typing import Any

from leaksonar.assess.lexicon import NameHint, name_hint
from leaksonar.assess.masks import mask
from leaksonar.assess.validators import NAME_CHECKS, VALIDATED, classify, embedded
from leaksonar.model import PII_CATEGORIES, PiiHit, Sample

VALUE_RATE = 0.6
"""Share of a field's values that must prove a category on their own."""
NAME_RATE = 0.3
"""Share that must validate when the field's name says the category."""
PLAUSIBLE_RATE = 0.6
"""Share that must look right when the name says a category that has no validator."""
MAX_DEPTH = 8
"""Levels of nesting read."""
MAX_KEYS = 500
"""Keys read per object and items per list."""
MAX_LEAVES = 2000
"""Leaves read per document."""
MAX_VALUES = 64
"""Values kept per field and sample."""
MAX_CHARS = 1024
"""Characters of one value looked at."""
_FREE_TEXT = 12
"""Shortest value scanned for phones, e-mails and IDs written inside it."""
_FREE_TEXT_CATEGORIES = frozenset({"case_record"})
"""Categories whose values are prose that may quote other personal data."""
_TEXT = re.compile(r"[\s\u3000-\u303f\u3400-\u9fff\uff00-\uffef]")
"""Free text has spaces or Chinese (a token or an identifier has neither)."""
_EMPTY = frozenset(
    {"", "null", "none", "nil", "nan", "n/a", "-", "--", "/", "undefined", "unknown", "无", "不详", "暂无"}
)
_EMPTY_CHARS = max(map(len, _EMPTY))
"""Longest empty marker: a longer text is not one (lower-casing never shortens a string)."""
_KV_KEYS = frozenset({"key", "type", "value", "ttl", "size", "flags", "encoding"})
_KEY_PARTS = re.compile(r"([:/|#])")


@dataclass(frozen=True, slots=True)
class FieldPii:
    """What one field of one collection holds."""

    path: str
    sampled: int
    """Non-empty values looked at."""
    matches: dict[str, int]
    """Category -> values that showed it (reported categories only)."""
    examples: dict[str, str]
    """Category -> one masked example."""


def leaf_text(value: Any) -> str | None:
    """A sampled scalar as stripped text, None when empty or not a scalar."""
    if isinstance(value, str):
        text = value[:MAX_CHARS].strip()
    elif isinstance(value, bool) or value is None:
        return None
    elif isinstance(value, int):
        text = str(value) if -(10**20) < value < 10**20 else ""
    elif isinstance(value, float):
        text = repr(value) if math.isfinite(value) else ""
    elif isinstance(value, Decimal | date):
        text = str(value)
    else:
        return None
    return None if len(text) <= _EMPTY_CHARS and text.lower() in _EMPTY else text


def key_pattern(key: str) -> tuple[str, list[str]]:
    """A key's pattern and variable parts: ``"citizen:12"`` -> (``"citizen:*"``, ["12"])."""
    parts = _KEY_PARTS.split(key[:MAX_CHARS])
    variable = []
    for i in range(0, len(parts), 2):
        part = parts[i]
        if len(part) > 24 or any(map(str.isdigit, part)):
            variable.append(part)
            parts[i] = "*"
    return "".join(parts), variable


class _Walk:
    """Collects the non-empty leaf values of documents by field path, within the bounds."""

    def __init__(self) -> None:
        self.fields: dict[str, list[str]] = {}
        self.leaves = 0

    def add(self, path: str, value: Any) -> None:
        text = leaf_text(value)
        if text is not None:
            values = self.fields.get(path)
            if values is None:
                self.fields[path] = [text]
            elif len(values) < MAX_VALUES:
                values.append(text)

    def walk(self, value: Any, path: str, depth: int = 0) -> None:
        if self.leaves >= MAX_LEAVES:
            return
        if isinstance(value, dict):
            if depth < MAX_DEPTH:
                prefix = f"{path}." if path else ""
                for key, child in islice(value.items(), MAX_KEYS):
                    name = prefix + str(key)[:200]
                    if type(child) is str:  # the common leaf, read here without a call
                        if self.leaves >= MAX_LEAVES:
                            return
                        self.leaves += 1
                        self.add(name, child)
                    else:
                        self.walk(child, name, depth + 1)
        elif isinstance(value, list | tuple):
            if depth < MAX_DEPTH:
                for child in value[:MAX_KEYS]:
                    self.walk(child, path, depth + 1)
        else:
            self.leaves += 1
            self.add(path, value)

    def document(self, document: dict[str, Any]) -> None:
        """One sampled document; key-value documents are named by their key pattern."""
        self.leaves = 0
        key = document.get("key")
        if isinstance(key, str) and "value" in document and document.keys() <= _KV_KEYS:
            pattern, variable = key_pattern(key)
            for part in variable:
                self.add(pattern, part)
            value = document["value"]
            self.walk(value if isinstance(value, dict) else {"value": value}, pattern)
        else:
            self.walk(document, "")


def field_values(sample: Sample) -> dict[str, list[str]]:
    """Field path -> the sample's non-empty values (bounded), in document order."""
    walk = _Walk()
    for document in sample.documents:
        if isinstance(document, dict):
            walk.document(document)
    return walk.fields


def _categories_of(value: str, hint: NameHint) -> dict[str, str]:
    """Category -> the matching text, for one value of a field named by `hint`. A value that agrees
    with its name is that, and nothing else unless it is prose (a case description quoting an ID)."""
    found: dict[str, str] = {}
    for named in hint.categories:
        if NAME_CHECKS[named](value):
            found[named] = value
            break
    if hint.not_personal or not found.keys() <= _FREE_TEXT_CATEGORIES:
        return found
    category = None if found else classify(value)
    if category is not None:
        found[category] = value
    elif len(value) >= _FREE_TEXT and _TEXT.search(value):
        for category, text in embedded(value):
            if len(text) < len(value):
                found.setdefault(category, text)
    return found


def _enough(matches: int, sampled: int, rate: float) -> bool:
    """`rate` of the values, and all of them when there is only one."""
    return matches > 0 and (matches == sampled if sampled < 2 else matches >= rate * sampled)


def _rate(category: str, hint: NameHint, mixed: bool) -> float:
    """The share of values that must show `category`; `mixed`: enough values pass a validator (a
    "contacts.value" of phones and e-mails), so each category they prove needs only the name rate."""
    if category in hint.categories:
        return NAME_RATE if category in VALIDATED else PLAUSIBLE_RATE
    return NAME_RATE if mixed else VALUE_RATE


def assess_field(path: str, values: Sequence[str]) -> FieldPii:
    """The categories of one field from its name and its sampled values."""
    hint = name_hint(path)
    counts: dict[str, int] = {}
    examples: dict[str, str] = {}
    judged: dict[str, dict[str, str]] = {}
    """Value -> its categories: a field repeats values ("user", "男"), each is judged once."""
    proven = 0
    for value in values:
        found = judged.get(value)
        if found is None:
            found = judged[value] = _categories_of(value, hint)
        if not found:
            continue
        proven += any(c in VALIDATED or c not in hint.categories for c in found)
        for category, text in found.items():
            counts[category] = counts.get(category, 0) + 1
            examples.setdefault(category, text)
    sampled = len(values)
    mixed = _enough(proven, sampled, VALUE_RATE)
    matches = {c: n for c, n in counts.items() if _enough(n, sampled, _rate(c, hint, mixed))}
    return FieldPii(path, sampled, matches, {c: mask(c, examples[c]) for c in matches})


def assess_sample(sample: Sample) -> list[FieldPii]:
    """Every field of one sample with what it holds (fields without personal data included)."""
    return [assess_field(path, values) for path, values in field_values(sample).items()]


@dataclass(slots=True)
class _Tally:
    matches: int = 0
    sampled: int = 0
    fields: tuple[str, ...] = ()
    example: str = ""

    def add(self, field: FieldPii, category: str) -> None:
        self.matches += field.matches[category]
        self.sampled += field.sampled
        if field.path not in self.fields:
            self.fields = (*self.fields, field.path)
        self.example = self.example or field.examples[category]


def _ordered(categories: Iterable[str]) -> tuple[str, ...]:
    found = set(categories)
    return tuple(c for c in PII_CATEGORIES if c in found)


def detect(
    samples: Sequence[Sample],
) -> tuple[dict[str, PiiHit], dict[tuple[str, str], tuple[str, ...]]]:
    """Personal data in one service's samples: category -> hit (counts, fields, one masked example),
    and (database, collection) -> the categories found in it (collections with none are left out)."""
    tallies: dict[str, _Tally] = {}
    places: dict[tuple[str, str], set[str]] = {}
    for sample in samples:
        for field in assess_sample(sample):
            for category in field.matches:
                tallies.setdefault(category, _Tally()).add(field, category)
                places.setdefault((sample.database, sample.collection), set()).add(category)
    pii = {
        c: PiiHit(t.matches, t.sampled, t.fields, t.example)
        for c in PII_CATEGORIES
        if (t := tallies.get(c)) is not None
    }
    return pii, {place: _ordered(categories) for place, categories in places.items()}

"""What a field's name says: one PII category, "not personal", or nothing (data/pii_fields.toml).

A path such as ``person.contact.phone`` or ``citizen:*.id_number`` is read from its last meaningful
segment; the segment before it is read along, so that ``customer.name`` is a name and ``product.name``
is not. Names are split into words on ``_ - . :`` spaces, camelCase and letter/digit boundaries.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from functools import cache, lru_cache
from importlib.resources import files

from leaksonar.model import PII_CATEGORIES

NOT_PERSONAL = "not_personal"
_MAX_PHRASE = 5
"""Longest phrase in words."""
_MIN_SUFFIX = 4
"""Shortest entry matched at the end of a run-together word ("customerphone"); personal categories only."""

_SEGMENTS = re.compile(r"[.:/\[\]]+")
_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")
_WORDS = re.compile(r"[a-z]+|[0-9]+|[\u3400-\u9fff\uf900-\ufaff]+")
_CJK = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")


@dataclass(frozen=True, slots=True)
class Lexicon:
    """Field-name tables built from the data file."""

    phrases: dict[str, str]
    """Compact phrase ("phonenumber", "sfzh") -> category or NOT_PERSONAL."""
    whole: dict[str, str]
    """Compact name -> category, only when it is a whole segment ("name")."""
    chinese: dict[str, str]
    """Chinese substring -> category or NOT_PERSONAL."""
    generic: frozenset[str]
    """Segments that say nothing by themselves ("value", "number")."""
    surnames: frozenset[str]
    """Chinese surnames, single and compound."""
    place_suffixes: frozenset[str]
    provinces: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class NameHint:
    """What a field's name says."""

    category: str | None
    """The PII category it names, if any."""
    not_personal: bool = False
    """The name says the field holds something else (a version, a hash, a price)."""


def words(segment: str) -> list[str]:
    """Lower-case words of one path segment: ``phoneNumber`` -> ["phone", "number"]."""
    return _WORDS.findall(_CAMEL.sub(" ", segment).lower())


def _add(table: dict[str, str], key: str, category: str) -> None:
    if table.setdefault(key, category) != category:
        raise ValueError(f"pii_fields.toml: {key!r} is listed under {table[key]} and {category}")


@cache
def lexicon() -> Lexicon:
    """The lexicon of the packaged data file (read once)."""
    data = tomllib.loads(files("leaksonar.assess").joinpath("data/pii_fields.toml").read_text("utf-8"))
    phrases: dict[str, str] = {}
    whole: dict[str, str] = {}
    chinese: dict[str, str] = {}
    for category in (*PII_CATEGORIES, NOT_PERSONAL):
        entry = data[category]
        for name in (*entry.get("en", ()), *entry.get("pinyin", ())):
            _add(phrases, "".join(words(name)), category)
        for name in entry.get("whole", ()):
            _add(whole, "".join(words(name)), category)
        for name in entry.get("zh", ()):
            _add(chinese if _CJK.search(name) else phrases, name.lower(), category)
    names, places = data["person_names"], data["places"]
    return Lexicon(
        phrases=phrases,
        whole=whole,
        chinese=chinese,
        generic=frozenset(data["generic"]["words"]),
        surnames=frozenset("".join(names["surnames"].split())) | frozenset(names["compound"]),
        place_suffixes=frozenset(places["suffixes"]),
        provinces=tuple(places["provinces"]),
    )


def _meaningful(path: str, generic: frozenset[str]) -> tuple[list[str], list[str]]:
    """Words of the last meaningful segment of `path` and of the one before it."""
    found: list[list[str]] = []
    for segment in reversed(_SEGMENTS.split(path)):
        segment_words = words(segment)
        segment_words = [w for w in segment_words if not w.isdigit()]
        if segment_words and "".join(segment_words) not in generic:
            found.append(segment_words)
            if len(found) == 2:
                break
    if not found:
        return [], []
    return found[0], found[1] if len(found) > 1 else []


def _best(candidates: list[tuple[float, int, str]]) -> str | None:
    """The match that ends last (the head word comes last, in English and in Chinese), the longest on a
    tie: candidates are (end, length, category)."""
    return max(candidates)[2] if candidates else None


def _span_matches(tokens: list[str], start: int, table: Lexicon) -> list[tuple[float, int, str]]:
    """Phrases over consecutive words that end inside the last segment (which begins at `start`).
    Whole-segment names may follow generic words ("new_name", "current_address")."""
    found: list[tuple[float, int, str]] = []
    whole_from = start
    while whole_from < len(tokens) - 1 and tokens[whole_from] in table.generic:
        whole_from += 1
    for end in range(start + 1, len(tokens) + 1):
        for begin in range(max(0, end - _MAX_PHRASE), end):
            key = "".join(tokens[begin:end])
            category = table.phrases.get(key)
            if category is None and start <= begin <= whole_from and end == len(tokens):
                category = table.whole.get(key)
            if category is not None:
                found.append((end, len(key), category))
    last = tokens[-1]
    for size in range(len(last) - 1, _MIN_SUFFIX - 1, -1):
        category = table.phrases.get(last[-size:])
        if category is not None and category != NOT_PERSONAL:
            found.append((len(tokens), size, category))
            break
    return found


def _chinese_matches(tokens: list[str], start: int, table: Lexicon) -> list[tuple[float, int, str]]:
    """Chinese names inside the Chinese words of the last segment; a match ending a word ends there."""
    found: list[tuple[float, int, str]] = []
    for index in range(start, len(tokens)):
        word = tokens[index]
        if _CJK.match(word):
            for name, category in table.chinese.items():
                at = word.rfind(name)
                if at >= 0:
                    found.append((index + (at + len(name)) / len(word), len(name), category))
    return found


@lru_cache(maxsize=8192)
def name_hint(path: str) -> NameHint:
    """What the field at `path` is named for: ``"person.contact.phone"`` -> phone,
    ``"sfzh"`` -> national_id, ``"app_version"`` -> not personal, ``"id"`` -> nothing."""
    table = lexicon()
    last, parent = _meaningful(path, table.generic)
    if not last:
        return NameHint(None)
    tokens = [*parent, *last]
    candidates = _span_matches(tokens, len(parent), table) + _chinese_matches(tokens, len(parent), table)
    category = _best(candidates)
    if category == NOT_PERSONAL:
        return NameHint(None, not_personal=True)
    return NameHint(category)

"""What a field's name says: the PII categories it names (best first), "not personal", or nothing.

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
from typing import NamedTuple

from leaksonar.model import PII_CATEGORIES

NOT_PERSONAL = "not_personal"
_MAX_PHRASE = 5
"""Longest phrase in words."""
_MAX_CATEGORIES = 2
"""Categories one name may say (the best first)."""
_MIN_SUFFIX = 4
"""Shortest entry matched at the end of a run-together word ("customerphone"); personal categories only."""

_SEGMENTS = re.compile(r"[.:/\[\]]+")
_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")
_WORDS = re.compile(r"[a-z]+|[0-9]+|[\u3400-\u9fff\uf900-\ufaff]+")
_CJK = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")
_LATIN = re.compile(r"[A-Za-z0-9]")


@dataclass(frozen=True, slots=True)
class Lexicon:
    """Field-name tables built from the data file."""

    phrases: dict[str, str]
    """Compact phrase ("phonenumber", "sfzh") -> category or NOT_PERSONAL."""
    weak: dict[str, str]
    """Compact phrase or Chinese name -> category, when no other category is named."""
    whole: dict[str, str]
    """Compact name -> category, only when it is a whole segment ("name")."""
    chinese: dict[str, str]
    """Chinese substring -> category or NOT_PERSONAL (names mixing in Latin letters are phrases)."""
    generic: frozenset[str]
    """Segments that say nothing by themselves ("value", "number")."""
    abbreviations: dict[str, str]
    """Word -> the word it stands for ("cust" -> "customer")."""
    surnames: frozenset[str]
    """Chinese surnames, single and compound."""
    place_suffixes: frozenset[str]
    provinces: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class NameHint:
    """What a field's name says."""

    categories: tuple[str, ...] = ()
    """The PII categories it names, best first: "travel_document_number" names a passport first and a
    national ID ("document number") second."""
    not_personal: bool = False
    """The name says the field holds something else (a version, a hash, a price)."""

    @property
    def category(self) -> str | None:
        """The category the name says first, if any."""
        return self.categories[0] if self.categories else None


def words(segment: str, abbreviations: dict[str, str] | None = None) -> list[str]:
    """Lower-case words of one path segment, abbreviations spelt out: ``custPhoneNo`` ->
    ["customer", "phone", "number"]."""
    found = _WORDS.findall(_CAMEL.sub(" ", segment).lower())
    return [abbreviations.get(w, w) for w in found] if abbreviations else found


def _add(table: dict[str, str], key: str, category: str) -> None:
    if table.setdefault(key, category) != category:
        raise ValueError(f"pii_fields.toml: {key!r} is listed under {table[key]} and {category}")


@cache
def lexicon() -> Lexicon:
    """The lexicon of the packaged data file (read once)."""
    data = tomllib.loads(files("leaksonar.assess").joinpath("data/pii_fields.toml").read_text("utf-8"))
    abbreviations: dict[str, str] = data["abbreviations"]
    phrases: dict[str, str] = {}
    whole: dict[str, str] = {}
    chinese: dict[str, str] = {}
    weak: dict[str, str] = {}
    for category in (*PII_CATEGORIES, NOT_PERSONAL):
        entry = data[category]
        for name in (*entry.get("en", ()), *entry.get("pinyin", ())):
            _add(phrases, "".join(words(name, abbreviations)), category)
        for name in entry.get("whole", ()):
            _add(whole, "".join(words(name, abbreviations)), category)
        for name in entry.get("zh", ()):
            if _LATIN.search(name):
                _add(phrases, "".join(words(name, abbreviations)), category)
            else:
                _add(chinese, name, category)
        for name in entry.get("weak", ()):
            _add(weak, "".join(words(name, abbreviations)), category)
    names, places = data["person_names"], data["places"]
    return Lexicon(
        phrases=phrases,
        weak=weak,
        whole=whole,
        chinese=chinese,
        generic=frozenset(data["generic"]["words"]),
        abbreviations=abbreviations,
        surnames=frozenset("".join(names["surnames"].split())) | frozenset(names["compound"]),
        place_suffixes=frozenset(places["suffixes"]),
        provinces=tuple(places["provinces"]),
    )


def _meaningful(path: str, table: Lexicon) -> tuple[list[str], list[str]]:
    """Words of the last meaningful segment of `path` and of the one before it."""
    found: list[list[str]] = []
    for segment in reversed(_SEGMENTS.split(path)):
        segment_words = [w for w in words(segment, table.abbreviations) if not w.isdigit()]
        if segment_words and "".join(segment_words) not in table.generic:
            found.append(segment_words)
            if len(found) == 2:
                break
    if not found:
        return [], []
    return found[0], found[1] if len(found) > 1 else []


class _Match(NamedTuple):
    """A name found in a field name: where it ends and begins (in words; fractions inside a Chinese
    word), its length in characters and its category."""

    end: float
    length: int
    category: str
    begin: float


def _ranked(matches: list[_Match]) -> list[str]:
    """Categories of the matches, best first: the match that ends last (the head word comes last, in
    English and in Chinese), the longest on a tie. A match inside a better one does not count: the
    "address" of "email_address", the "card" of "id_card"."""
    kept: list[_Match] = []
    for match in sorted(matches, reverse=True):
        if not any(k.begin <= match.begin and match.end <= k.end for k in kept):
            kept.append(match)
    return list(dict.fromkeys(m.category for m in kept))


def _span_matches(tokens: list[str], start: int, table: Lexicon) -> list[_Match]:
    """Phrases over consecutive words that end inside the last segment (which begins at `start`).
    Whole-segment names may follow generic words ("new_name", "current_address")."""
    found: list[_Match] = []
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
                found.append(_Match(end, len(key), category, begin))
    last = tokens[-1]
    for size in range(len(last) - 1, _MIN_SUFFIX - 1, -1):
        category = table.phrases.get(last[-size:])
        if category is not None and category != NOT_PERSONAL:
            found.append(_Match(len(tokens), size, category, len(tokens) - size / len(last)))
            break
    return found


def _chinese_matches(tokens: list[str], start: int, table: Lexicon) -> list[_Match]:
    """Chinese names inside the Chinese words of the last segment."""
    found: list[_Match] = []
    for index in range(start, len(tokens)):
        word = tokens[index]
        if _CJK.match(word):
            for name, category in table.chinese.items():
                at = word.rfind(name)
                if at >= 0:
                    found.append(
                        _Match(
                            index + (at + len(name)) / len(word), len(name), category, index + at / len(word)
                        )
                    )
    return found


def _weak_matches(last: list[str], table: Lexicon) -> list[str]:
    """Categories named by weak names in the last segment: a run of its words, or inside a Chinese word."""
    spans = {
        "".join(last[i:j])
        for i in range(len(last))
        for j in range(i + 1, min(len(last), i + _MAX_PHRASE) + 1)
    }
    return [
        category
        for name, category in table.weak.items()
        if name in spans or (_CJK.match(name) and any(name in word for word in last))
    ]


@lru_cache(maxsize=8192)
def name_hint(path: str) -> NameHint:
    """What the field at `path` is named for: ``"person.contact.phone"`` -> phone,
    ``"sfzh"`` -> national_id, ``"app_version"`` -> not personal, ``"id"`` -> nothing."""
    table = lexicon()
    last, parent = _meaningful(path, table)
    if not last:
        return NameHint()
    tokens = [*parent, *last]
    ranked = _ranked(_span_matches(tokens, len(parent), table) + _chinese_matches(tokens, len(parent), table))
    if ranked[:1] == [NOT_PERSONAL]:
        return NameHint(not_personal=True)
    named = [c for c in ranked if c != NOT_PERSONAL] + _weak_matches(last, table)
    return NameHint(tuple(dict.fromkeys(named))[:_MAX_CATEGORIES])

"""The assessment's shortcuts (per-name caches, per-field memos, early exits) give the answers of the
plain rules they stand for, whatever a server writes, and a flood of names keeps their caches bounded."""

from __future__ import annotations

import random
import re
from typing import Any

import phonenumbers
from hypothesis import given, settings
from hypothesis import strategies as st
from phonenumbers import re_util

from leaksonar.assess.pii import MAX_KEYS, MAX_LEAVES, MAX_VALUES, assess_field, field_values, leaf_text
from leaksonar.assess.ransom import Strength, name_strength, scan_ransom, signatures
from leaksonar.assess.summary import clean_line
from leaksonar.assess.validators import is_phone
from leaksonar.model import Inspection, Sample

_NAME_WORDS = ["README", "read_me", "Warning2", "How_To_Restore", "pwned", "notice", "İ", "K", ".", "-", "1"]
FIELD_VALUES = ["13800138000", "138 0013 8000", "user@example.com", "n/a", "42", "110105194912310025"]
names = st.lists(st.sampled_from(_NAME_WORDS) | st.text(max_size=8), max_size=30).map("".join)


def documented_strength(name: str) -> Strength:
    """The rule of data/ransom.toml, spelt out: the first 100 characters, lower-cased and squashed to
    a-z0-9; strong names are searched anywhere, weak ones must be the whole name or its last dotted part."""
    sig = signatures()
    cut = name[:100]
    squashed = re.sub("[^a-z0-9]", "", cut.lower())
    leaf = re.sub("[^a-z0-9]", "", cut.rsplit(".", 1)[-1].lower())
    if sig.strong.search(squashed):
        return Strength.STRONG
    return Strength.WEAK if sig.weak.fullmatch(squashed) or sig.weak.fullmatch(leaf) else Strength.NONE


@settings(max_examples=150, deadline=None)
@given(st.lists(names, min_size=1, max_size=10))
def test_name_strength_is_the_documented_rule_on_any_name(batch: list[str]) -> None:
    for name in batch + batch:  # asked twice: the second answer comes from the cache
        assert name_strength(name) is documented_strength(name)


def test_cut_names_share_a_cache_entry_but_not_a_wrong_answer() -> None:
    padding = "x" * 96
    assert name_strength(padding + "pwned") is Strength.NONE  # "pwned" lies past the 100 characters read
    assert name_strength(padding + "pwne") is Strength.NONE
    assert name_strength("orders.readme") is Strength.WEAK
    assert name_strength("readme.orders") is Strength.NONE
    assert name_strength("x" * 150 + ".readme") is Strength.NONE


def test_a_flood_of_names_keeps_the_cache_bounded_and_right() -> None:
    for n in range(20_000):
        name_strength(f"user:{n}")
    assert name_strength("READ_ME") is Strength.WEAK
    assert name_strength("please_read_me_now") is Strength.STRONG
    from leaksonar.assess.ransom import _strength

    info = _strength.cache_info()
    assert info.maxsize is not None and info.currsize <= info.maxsize


def test_key_names_are_judged_by_the_same_rule_in_a_scan() -> None:
    """A key named like a note, seen after thousands of ordinary keys, is still a note."""
    note = "Your database has been downloaded. Pay 0.05 BTC to 1BoatSLRHtKNngkdXEeobR76b53LETtpyT"
    documents = [{"key": f"user:{n}", "type": "string", "value": "x"} for n in range(5000)]
    documents.append({"key": "README", "type": "string", "value": note})
    scan = scan_ransom(Inspection("redis", None, "none", samples=(Sample("0", "db0", tuple(documents)),)))
    assert [(s.kind, s.key) for s in scan.signs] == [("note", "README")]
    assert scan.notes[0].where == "key README in db 0"


@settings(max_examples=100, deadline=None)
@given(
    st.lists(
        st.sampled_from(FIELD_VALUES),
        min_size=1,
        max_size=MAX_VALUES,
    ),
    st.sampled_from(["phone", "remark", "contact.value", "email"]),
)
def test_repeated_values_count_each_time(values: list[str], path: str) -> None:
    """A field of repeated values counts every occurrence, as if each were judged afresh."""
    field = assess_field(path, values)
    assert field.sampled == len(values)
    for category, matches in field.matches.items():
        assert matches == sum(category in assess_field(path, [v]).matches for v in values)


@settings(max_examples=300, deadline=None)
@given(
    st.one_of(
        st.text(max_size=20),
        st.sampled_from(["NULL", " None ", "N/A", "UNDEFINED", "undefined!", "不详", "İ", "\u3000-"]),
    )
)
def test_empty_markers_in_any_case_are_empty(text: str) -> None:
    stripped = text.strip()
    markers = {"", "null", "none", "nil", "nan", "n/a", "-", "--", "/", "undefined", "unknown"}
    markers |= {"无", "不详", "暂无"}
    assert (leaf_text(text) is None) is (stripped.lower() in markers)
    assert leaf_text(text) in (None, stripped)


def test_string_leaves_stop_at_the_leaf_bound() -> None:
    wide: dict[str, Any] = {f"g{i}": {f"f{n}": "x" for n in range(MAX_KEYS)} for i in range(5)}
    wide["late"] = "y"
    fields = field_values(Sample("db", "c", (wide, {"next": "z"})))
    assert sum(len(values) for values in fields.values()) == MAX_LEAVES + 1
    assert f"g3.f{MAX_KEYS - 1}" in fields and "g4.f0" not in fields and "late" not in fields
    assert fields["next"] == ["z"]  # the bound is per document


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=60), st.integers(min_value=1, max_value=30))
def test_clean_line_shows_only_printable_text_on_one_line(text: str, chars: int) -> None:
    line = clean_line(text, chars)
    plain = " ".join("".join(c if c.isprintable() else " " for c in text[: chars * 8]).split())
    assert line == (plain if len(plain) <= chars else plain[: chars - 1] + "…")
    assert line.isprintable()


def test_lenient_phone_check_accepts_possible_numbers_only_when_named() -> None:
    assert is_phone("13800138000") and is_phone("13800138000", lenient=True)
    assert not is_phone("+86 199 0000") and is_phone("+86 199 0000", lenient=True)  # possible, not valid
    assert not is_phone("12") and not is_phone("12", lenient=True)


def _strings_of(value: object, found: set[str], depth: int = 0) -> set[str]:
    if isinstance(value, str):
        found.add(value)
    elif isinstance(value, list | tuple):
        for item in value:
            _strings_of(item, found, depth)
    elif depth < 4 and hasattr(value, "__dict__"):
        for item in vars(value).values():
            _strings_of(item, found, depth + 1)
    return found


def test_phone_pattern_cache_holds_metadata_not_server_text() -> None:
    """The phone library's pattern cache holds only its own metadata, whatever numbers servers send."""
    metadata = {"NonMatch"}  # the library's pattern for "no international prefix"
    for region in phonenumbers.SUPPORTED_REGIONS:
        _strings_of(phonenumbers.PhoneMetadata.metadata_for_region(region), metadata)
    for code in phonenumbers.COUNTRY_CODES_FOR_NON_GEO_REGIONS:
        _strings_of(phonenumbers.PhoneMetadata.metadata_for_nongeo_region(code), metadata)
    rnd = random.Random(7)
    for _ in range(1000):
        is_phone(f"+{rnd.randrange(1, 999)} {rnd.randrange(10**9):09d}", lenient=rnd.random() < 0.5)
        is_phone(f"0{rnd.randrange(10**10):010d}", lenient=True)
    cached = set(re_util._COMPILED_PATTERNS or ())
    assert cached and cached <= metadata

"""Ransom notes and attack signs in one inspection: note names and text, payment demands in any value, notes
as files and directories of file stores, Redis cron-job and SSH-key plants, Meow wipes, and the wipe
pattern (every collection replaced by a note).

Signatures are data (data/ransom.toml). Pure functions; the work is bounded by the sample's size, and
odd values (any nesting, bytes, numbers, control characters) are read, never trusted.
"""

from __future__ import annotations

import base64
import hashlib
import re
import tomllib
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from enum import IntEnum
from functools import cache, lru_cache
from importlib import resources
from itertools import islice
from typing import Any, Literal

import base58
import bech32m

from leaksonar.assess.filenames import file_name
from leaksonar.assess.summary import Nouns, clean_line, nouns
from leaksonar.model import Inspection, RansomNote, Sample

Kind = Literal["note", "cron", "ssh_key", "meow"]
"""A ransom note; a crontab line that downloads and runs code; a planted SSH key; a Meow-wiped name."""

_MAX_DEPTH = 8
_MAX_FIELDS = 200
_NAME_CHARS = 100
_NOT_NAME_CHAR = re.compile(r"[^a-z0-9]")
"""Removed from lower-cased names before they are matched ("squashed")."""

_BASE58 = re.compile(r"(?<![A-Za-z0-9])[13][1-9A-HJ-NP-Za-km-z]{25,34}(?![A-Za-z0-9])")
_BECH32 = re.compile(r"(?<![A-Za-z0-9])bc1[02-9ac-hj-np-z]{8,87}(?![A-Za-z0-9])", re.I)
_EMAIL = re.compile(r"(?<![\w.%+-])[\w.%+-]{1,64}@(?:[A-Za-z0-9-]{1,63}\.){1,8}[A-Za-z]{2,24}(?![\w-])")
_ONION = re.compile(r"(?<![A-Za-z2-7])[a-z2-7]{56}\.onion\b", re.I)
_NUMBER = r"(\d{1,4}(?:\.\d{1,8}|,\d{1,8})?)"
_AMOUNT = re.compile(
    rf"(?<![\w.,]){_NUMBER}\s*(?:btc|xbt|bitcoins?)\b|(?:\b(?:btc|xbt)\s*:?|₿)\s*{_NUMBER}(?![\w.,])", re.I
)
_BITCOIN_WORDS = ("btc", "xbt", "bitcoin")


class Strength(IntEnum):
    """How much a name alone says: nothing, a note if its text reads like one, a note."""

    NONE = 0
    WEAK = 1
    STRONG = 2


@dataclass(frozen=True, slots=True)
class Signatures:
    """data/ransom.toml, compiled."""

    strong: re.Pattern[str]
    weak: re.Pattern[str]
    meow: re.Pattern[str]
    system_collection: re.Pattern[str]
    system_database: re.Pattern[str]
    threat: tuple[re.Pattern[str], ...]
    any_threat: re.Pattern[str]
    demand: tuple[re.Pattern[str], ...]
    pay: re.Pattern[str]
    cron_line: re.Pattern[str]
    cron_command: re.Pattern[str]
    ssh_key: re.Pattern[str]
    weights: Mapping[str, int]
    thresholds: Mapping[str, int]
    limits: Mapping[str, int]


def _any_of(patterns: Iterable[str]) -> str:
    return "|".join(f"(?:{p})" for p in patterns)


@cache
def signatures() -> Signatures:
    """The signatures shipped in data/ransom.toml."""
    raw = tomllib.loads(resources.files(__package__).joinpath("data/ransom.toml").read_text("utf-8"))
    names, text, attack = raw["names"], raw["text"], raw["attack"]
    return Signatures(
        strong=re.compile(_any_of(names["strong"])),
        weak=re.compile(_any_of(names["weak"])),
        meow=re.compile(names["meow"], re.I),
        system_collection=re.compile(names["system_collection"], re.I),
        system_database=re.compile(names["system_database"], re.I),
        threat=tuple(re.compile(p, re.I | re.S) for p in text["threat"]),
        any_threat=re.compile(_any_of(text["threat"]), re.I | re.S),
        demand=tuple(re.compile(p, re.I) for p in text["demand"]),
        pay=re.compile(text["pay"], re.I),
        cron_line=re.compile(attack["cron_line"], re.I | re.M),
        cron_command=re.compile(attack["cron_command"], re.I),
        ssh_key=re.compile(attack["ssh_key"]),
        weights=raw["weights"],
        thresholds=raw["thresholds"],
        limits=raw["limits"],
    )


# --- text -----------------------------------------------------------------------------------------


def _strings(value: Any, depth: int = 0) -> Iterator[str]:
    """Every string in a sampled value, field names included; depth- and breadth-bounded."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, bytes | bytearray):
        yield bytes(value[:65536]).decode("utf-8", "replace")
    elif depth < _MAX_DEPTH and isinstance(value, dict):
        for key, item in islice(value.items(), _MAX_FIELDS):
            if isinstance(key, str):
                yield key
            if isinstance(item, str):  # the common leaf, without a nested generator
                yield item
            else:
                yield from _strings(item, depth + 1)
    elif depth < _MAX_DEPTH and isinstance(value, list | tuple):
        for item in islice(value, _MAX_FIELDS):
            if isinstance(item, str):
                yield item
            else:
                yield from _strings(item, depth + 1)


def _bounded(strings: Iterable[str], chars: int) -> list[str]:
    """The leading strings, cut so that together they hold at most `chars` characters."""
    kept: list[str] = []
    for s in strings:
        if chars <= 0:
            break
        kept.append(s[:chars])
        chars -= len(kept[-1])
    return kept


# --- evidence mined from a note's text ------------------------------------------------------------


def valid_btc_address(address: str) -> bool:
    """A mainnet Bitcoin address with a valid checksum: base58check P2PKH/P2SH, or bech32/bech32m segwit."""
    if address[:3].lower() == "bc1":
        try:
            bech32m.decode("bc", address)
        except bech32m.DecodeError:
            return False
        return True
    try:
        payload = base58.b58decode_check(address)
    except ValueError:
        return False
    return len(payload) == 21 and payload[0] in (0x00, 0x05)


def valid_onion(address: str) -> bool:
    """A v3 onion address (56 base32 characters + .onion) whose checksum and version byte agree."""
    raw = base64.b32decode(address[:56].upper())
    key, checksum, version = raw[:32], raw[32:34], raw[34:]
    expected = hashlib.sha3_256(b".onion checksum" + key + version).digest()[:2]
    return version == b"\x03" and checksum == expected


def _first(items: Iterable[str], limit: int) -> tuple[str, ...]:
    return tuple(islice(dict.fromkeys(items), limit))


def _amount(text: str) -> float | None:
    """The first positive Bitcoin amount named in `text` ("0.05 BTC", "BTC 0.1", "10 bitcoins")."""
    for match in _AMOUNT.finditer(text):
        value = float((match.group(1) or match.group(2)).replace(",", "."))
        if value > 0:
            return value
    return None


@dataclass(frozen=True, slots=True)
class Evidence:
    """What a text holds that ransom notes hold."""

    btc_addresses: tuple[str, ...] = ()
    emails: tuple[str, ...] = ()
    onion: tuple[str, ...] = ()
    amount_btc: float | None = None
    threats: int = 0
    """Distinct threat phrases ("your database has been downloaded")."""
    demands: int = 0
    """Distinct demand words ("pay", "bitcoin", "contact")."""

    def score(self, weights: Mapping[str, int]) -> int:
        return (
            weights["threat"] * self.threats
            + min(weights["demand"] * self.demands, weights["demand_max"])
            + weights["btc_address"] * bool(self.btc_addresses)
            + weights["amount"] * (self.amount_btc is not None)
            + weights["onion"] * bool(self.onion)
            + weights["email"] * bool(self.emails)
        )


def _btc_addresses(text: str) -> Iterator[str]:
    """The validated Bitcoin addresses written in `text`, in order (bech32 ones lower-cased)."""
    found = [m.group() for m in _BASE58.finditer(text)]
    found += [m.group().lower() for m in _BECH32.finditer(text)]
    return filter(valid_btc_address, found)


def _names_bitcoin(text: str) -> bool:
    """`text` holds a word every amount in BTC holds (BTC, XBT, bitcoin, ₿); cheaper than a search."""
    lowered = text.lower()
    return "₿" in text or any(word in lowered for word in _BITCOIN_WORDS)


def demands_payment(strings: Iterable[str]) -> bool:
    """One of `strings` asks for an amount in BTC to a validated BTC address ("send 0.1 BTC to 1Boat..."):
    a ransom note whatever its key, collection or file is called. Verb, amount and address share one
    value: a wallet record with the address in one field and the balance in another is no demand, nor is
    a payout log ("payout 0.5 BTC to 1Boat...")."""
    pay = signatures().pay
    return any(
        _names_bitcoin(s)
        and pay.search(s)
        and _amount(s) is not None
        and next(_btc_addresses(s), None) is not None
        for s in strings
    )


def mine(text: str) -> Evidence:
    """Validated BTC addresses, e-mails, v3 onions, the amount asked and the phrases found in `text`."""
    sig = signatures()
    most = sig.limits["max_items"]
    lowered = text.lower()
    onions = [m.group().lower() for m in _ONION.finditer(text)] if ".onion" in lowered else []
    return Evidence(
        btc_addresses=_first(_btc_addresses(text), most),
        emails=_first((m.group() for m in _EMAIL.finditer(text)), most) if "@" in text else (),
        onion=_first(filter(valid_onion, onions), most),
        amount_btc=_amount(text),
        threats=sum(1 for p in sig.threat if p.search(text)),
        demands=sum(1 for p in sig.demand if p.search(text)),
    )


def _note(where: str, strings: Sequence[str], evidence: Evidence) -> RansomNote:
    """A note record; its excerpt is the longest string sampled there (the note's body)."""
    body = max(strings, key=len, default="")
    return RansomNote(
        where=where,
        excerpt=clean_line(body, signatures().limits["excerpt_chars"]),
        btc_addresses=evidence.btc_addresses,
        emails=evidence.emails,
        amount_btc=evidence.amount_btc,
        onion=evidence.onion,
    )


# --- names and places -----------------------------------------------------------------------------


def name_strength(name: str) -> Strength:
    """How strongly a database, collection or key name alone suggests a ransom note."""
    return _strength(name[:_NAME_CHARS])


@lru_cache(maxsize=4096)
def _strength(name: str) -> Strength:
    """`name_strength` of a name already cut to `_NAME_CHARS` (names recur: db0, users, public.orders)."""
    sig = signatures()
    squashed = _NOT_NAME_CHAR.sub("", name.lower())
    if sig.strong.search(squashed):
        return Strength.STRONG
    if sig.weak.fullmatch(squashed):
        return Strength.WEAK
    if "." not in name:  # the leaf is the whole name, already tried
        return Strength.NONE
    leaf = _NOT_NAME_CHAR.sub("", name.rsplit(".", 1)[-1].lower())  # public.readme -> readme
    return Strength.WEAK if sig.weak.fullmatch(leaf) else Strength.NONE


def _where(noun: Nouns, database: str, name: str) -> str:
    """ "index read_me", "collection README in database admin", "table WARNING in database X"."""
    place = f"{noun.collection_singular} {clean_line(name, _NAME_CHARS)}"
    if database:
        place += f" in {noun.database_singular} {clean_line(database, _NAME_CHARS)}"
    return place


def _where_key(database: str, key: str) -> str:
    """ "key backup1 in db 0" (key-value stores number their databases)."""
    place = f"key {clean_line(key, _NAME_CHARS)}"
    return f"{place} in db {clean_line(database, _NAME_CHARS)}" if database else place


# --- signs ----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Sign:
    """One ransom or attack sign and the place it holds: a whole collection, or one key of it."""

    kind: Kind
    note: RansomNote
    database: str
    collection: str
    key: str | None = None


@dataclass(frozen=True, slots=True)
class RansomScan:
    """All ransom and attack signs of one service."""

    signs: tuple[Sign, ...]
    wiped: bool
    """Every (non-system) collection was replaced by a note or left empty."""

    @property
    def infected(self) -> bool:
        return bool(self.signs)

    @property
    def notes(self) -> tuple[RansomNote, ...]:
        return tuple(s.note for s in self.signs[: signatures().limits["max_notes"]])

    def clean(self, samples: Iterable[Sample]) -> tuple[Sample, ...]:
        """`samples` without the attackers' text (note collections and note keys), for PII detection."""
        if not self.signs:
            return tuple(s for s in samples if s.documents)
        whole = {(s.database, s.collection) for s in self.signs if s.key is None}
        keys = {(s.database, s.collection, s.key) for s in self.signs if s.key is not None}
        kept = []
        for sample in samples:
            if (sample.database, sample.collection) in whole:
                continue
            docs = tuple(
                d for d in sample.documents if (sample.database, sample.collection, _key(d)) not in keys
            )
            if docs:
                kept.append(Sample(sample.database, sample.collection, docs))
        return tuple(kept)


def _key(document: Any) -> str:
    key = document.get("key") if isinstance(document, dict) else None
    return key if isinstance(key, str) else ""


def _reads_as_note(strength: Strength, evidence: Evidence) -> bool:
    """A strong name is enough; a weak one needs note-like text; no name needs a threat and more."""
    sig = signatures()
    score = evidence.score(sig.weights)
    if strength is Strength.STRONG:
        return True
    if strength is Strength.WEAK:
        return score >= sig.thresholds["weak"]
    return evidence.threats > 0 and score >= sig.thresholds["unnamed"]


def _judge(strength: Strength, strings: Sequence[str], text: str) -> Evidence | None:
    """The evidence in `strings` (`text`: them joined by newlines) if it makes a note of the place, else
    None: a payment demand always does. Without a telling name, a text with neither a threat phrase nor a
    word for bitcoin is passed over unmined (the common, clean case)."""
    if strength is Strength.NONE and not _names_bitcoin(text) and not signatures().any_threat.search(text):
        return None
    evidence = mine(text)
    return evidence if demands_payment(strings) or _reads_as_note(strength, evidence) else None


def _attack_line(text: str) -> tuple[Kind, str] | None:
    """A planted crontab line that fetches or runs code, or a planted SSH key, in a stored value."""
    sig = signatures()
    for line in sig.cron_line.finditer(text):
        if sig.cron_command.search(line.group(1)):
            return "cron", line.group()
    if sig.ssh_key.match(text):
        return "ssh_key", text
    return None


def _where_file(noun: Nouns, collection: str, path: str) -> str:
    """ "object README.txt in bucket backups", "file NODATA4U_SECUREYOURSHIT in directory /"."""
    where = f"{noun.row[0]} {clean_line(path, _NAME_CHARS)}"
    return f"{where} in {noun.collection_singular} {clean_line(collection, _NAME_CHARS)}"


def _key_signs(noun: Nouns, database: str, collection: str, documents: Iterable[Any]) -> Iterator[Sign]:
    """Signs among the sampled entries of a key-value store (planted cron/SSH lines and note keys), or
    among the files of a file store (notes by file name without its extension, and by head)."""
    chars = signatures().limits["text_chars"]
    for document in documents:
        key = _key(document)
        value = document.get("value") if isinstance(document, dict) else None
        strings = [value[:chars]] if isinstance(value, str) else _bounded(_strings(value), chars)
        text = "\n".join(strings)
        if noun.files:
            if evidence := _judge(name_strength(file_name(key).stem), strings, text):
                note = _note(_where_file(noun, collection, key), strings, evidence)
                yield Sign("note", note, database, collection, key)
        elif attack := _attack_line(text):
            kind, line = attack
            excerpt = clean_line(line, signatures().limits["excerpt_chars"])
            yield Sign(kind, RansomNote(_where_key(database, key), excerpt), database, collection, key)
        elif evidence := _judge(name_strength(key), strings, text):
            yield Sign("note", _note(_where_key(database, key), strings, evidence), database, collection, key)


def _collection_sign(
    noun: Nouns, database: str, name: str, rows: int | None, documents: Sequence[Any]
) -> Sign | None:
    """The sign a collection is, if any: a Meow-wiped name, or a note (by name, by text, or both)."""
    sig = signatures()
    where = _where(noun, database, name)
    if sig.meow.match(name[:_NAME_CHARS]) or sig.meow.match(database[:_NAME_CHARS]):
        return Sign("meow", RansomNote(where, ""), database, name)
    strength = max(name_strength(name), name_strength(database))
    small = rows is None or rows <= sig.thresholds["unnamed_rows_max"]
    if strength is Strength.NONE and not (documents and small):
        return None
    strings = _bounded((s for d in documents for s in _strings(d)), sig.limits["text_chars"])
    if evidence := _judge(strength, strings, "\n".join(strings)):
        return Sign("note", _note(where, strings, evidence), database, name)
    return None


def _places(inspection: Inspection) -> dict[tuple[str, str], int | None]:
    """(database, collection) -> rows for every collection listed or sampled."""
    places = {(c.database, c.name): c.rows for c in inspection.collections}
    for sample in inspection.samples:
        places.setdefault((sample.database, sample.collection), None)
    return places


def _wiped(places: Mapping[tuple[str, str], int | None], signs: Sequence[Sign]) -> bool:
    """Signs present, and every non-system collection is a note, empty, or holds only note keys."""
    sig = signatures()
    whole = {(s.database, s.collection) for s in signs if s.key is None}
    note_keys: dict[tuple[str, str], set[str]] = {}
    for s in signs:
        if s.key is not None:
            note_keys.setdefault((s.database, s.collection), set()).add(s.key)

    def replaced(place: tuple[str, str], rows: int | None) -> bool:
        return place in whole or (rows is not None and rows <= len(note_keys.get(place, ())))

    def system(database: str, name: str) -> bool:
        return bool(sig.system_database.match(database) or sig.system_collection.match(name))

    return bool(signs) and all(replaced(p, rows) for p, rows in places.items() if not system(*p))


def scan_ransom(inspection: Inspection) -> RansomScan:
    """Every ransom and attack sign of one inspection, and whether its data looks wiped."""
    noun = nouns(inspection.protocol)
    documents: dict[tuple[str, str], list[Any]] = {}
    for sample in inspection.samples:
        documents.setdefault((sample.database, sample.collection), []).extend(sample.documents)
    places = _places(inspection)
    signs: list[Sign] = []
    for (database, name), rows in places.items():
        docs = documents.get((database, name), [])
        if noun.keyed or noun.files:
            signs.extend(_key_signs(noun, database, name, docs))
        elif sign := _collection_sign(noun, database, name, rows, docs):
            signs.append(sign)
    return RansomScan(tuple(signs), _wiped(places, signs))


def find_ransom(inspection: Inspection) -> tuple[bool, tuple[RansomNote, ...]]:
    """(infected, notes): any ransom note or attack sign, and the notes (at most `max_notes`)."""
    scan = scan_ransom(inspection)
    return scan.infected, scan.notes

"""What a file's name says it holds: a database dump, a secret, an export of personal data.

Names come from file and object stores (S3 keys, FTP, SMB and rsync paths, HDFS paths) and are read
from their last component: ``backups/2024/shop.sql.gz`` is a database dump, ``.aws/credentials`` and
``deploy/id_ed25519`` secrets, ``exports/customers_2024.csv`` and ``用户信息.xlsx`` exports of people
(category ``name``), ``shenfenzheng.csv`` national IDs (the field-name lexicon read on the name). The
signatures are data (data/file_names.toml); everything here is pure and bounded by `MAX_PATH`.

How a storage protocol (one whose `summary.Nouns` has ``files``: s3, ftp, rsync, smb, hdfs) presents
what it listed, so that `assess.assess` sees it:

- each bucket, share, module or top directory is a `Collection` (database "" or the bucket's region,
  name the bucket/share, rows the files listed, size_bytes their sizes, fields notable file names);
- the files listed in it are the documents of its `Sample`, one per file or directory, in the shape of a
  key-value entry: ``{"key": "exports/customers.csv", "size": 48213}``, plus ``"value": <bytes>`` with
  at most `heads.MAX_HEAD` bytes of a small text file (CSV, JSON, SQL, TXT) that was read.

Assessment then names files by category (`named_files`; severity and summary), finds ransom notes by
file name and head (`ransom`), and reads heads into rows for the personal-data detector (`heads`).
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from functools import cache, lru_cache
from importlib.resources import files
from itertools import islice

from leaksonar.assess.lexicon import lexicon, name_hint, words
from leaksonar.assess.summary import nouns
from leaksonar.model import FILES_LISTED, PII_CATEGORIES, Inspection

FILE_CATEGORIES: tuple[str, ...] = ("database_dump", *PII_CATEGORIES)
"""Every category a file name may say, in report order (`secret` is a personal-data category too)."""

MAX_PATH = 1024
"""Characters of a path read (its end: the name is there)."""
_MAX_PHRASE = 3
"""Longest run of words matched against a dump name."""
_CJK = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")
_EXTENSION = re.compile(r"\.([a-z0-9]{1,12})$")


@dataclass(frozen=True, slots=True)
class FileName:
    """A path cut into what is matched: its last component, that without extensions, the extension."""

    base: str
    """The last component without wrappers and copies' suffixes, lower-cased (``shop.sql``)."""
    stem: str
    """The last component without its extensions, as written (``shop``; ``.env`` keeps its dot)."""
    extension: str
    """The extension under any archive or compression wrappers, lower-cased (``sql``), or ""."""
    parent: str
    """The directory it is in, lower-cased (``.aws``), or ""."""


@dataclass(frozen=True, slots=True)
class _Signatures:
    wrappers: frozenset[str]
    copies: frozenset[str]
    dump_extensions: frozenset[str]
    db_extension: str
    not_databases: frozenset[str]
    dump_names: frozenset[str]
    dump_name_extensions: frozenset[str]
    secret_names: frozenset[str]
    env_prefix: str
    not_env: frozenset[str]
    secret_directories: frozenset[str]
    secret_extensions: frozenset[str]
    not_secret: frozenset[str]
    people: frozenset[str]
    people_zh: tuple[str, ...]
    not_people: frozenset[str]
    export_extensions: frozenset[str]


def _compact(phrase: str) -> str:
    return "".join(words(phrase))


@cache
def _signatures() -> _Signatures:
    raw = tomllib.loads(files("leaksonar.assess").joinpath("data/file_names.toml").read_text("utf-8"))
    dump, secret, personal = raw["database_dump"], raw["secret"], raw["personal"]
    return _Signatures(
        wrappers=frozenset(raw["wrappers"]["extensions"]),
        copies=frozenset(raw["wrappers"]["copies"]),
        dump_extensions=frozenset(dump["extensions"]),
        db_extension=dump["db_extension"],
        not_databases=frozenset(dump["not_databases"]),
        dump_names=frozenset(map(_compact, dump["names"])),
        dump_name_extensions=frozenset(dump["name_extensions"]),
        secret_names=frozenset(secret["names"]),
        env_prefix=secret["env_prefix"],
        not_env=frozenset(secret["not_env"]),
        secret_directories=frozenset(secret["directories"]),
        secret_extensions=frozenset(secret["extensions"]),
        not_secret=frozenset(secret["not_secret"]),
        people=frozenset(personal["people_en"]) | frozenset(personal["people_pinyin"]),
        people_zh=tuple(personal["people_zh"]),
        not_people=frozenset(personal["not_people"]),
        export_extensions=frozenset(personal["extensions"]),
    )


def file_name(path: str) -> FileName:
    """`path` (``/``- or ``\\``-separated, a trailing separator ignored) cut into a `FileName`."""
    parts = path[-MAX_PATH:].replace("\\", "/").rstrip("/").rsplit("/", 2)
    written = parts[-1]
    parent = parts[-2].lower() if len(parts) > 1 else ""
    sig = _signatures()
    stem, extension = written, ""
    while (found := _EXTENSION.search(stem.lower())) and found.start() > 0:
        inner = _EXTENSION.search(stem[: found.start()].lower())
        copy = found.group(1) in sig.copies and inner is not None
        stem, extension = stem[: found.start()], found.group(1)
        if extension not in sig.wrappers and not copy:
            break
        extension = ""
    base = f"{stem}.{extension}" if extension else stem
    return FileName(base.lower(), stem, extension, parent)


def _runs(stem_words: list[str]) -> set[str]:
    """Every run of up to `_MAX_PHRASE` consecutive words, joined."""
    return {
        "".join(stem_words[i:j])
        for i in range(len(stem_words))
        for j in range(i + 1, min(len(stem_words), i + _MAX_PHRASE) + 1)
    }


def _is_dump(name: FileName, stem_words: list[str]) -> bool:
    sig = _signatures()
    if name.extension in sig.dump_extensions:
        return True
    if name.extension == sig.db_extension:
        return name.base not in sig.not_databases
    return name.extension in sig.dump_name_extensions and not sig.dump_names.isdisjoint(_runs(stem_words))


def _is_secret(name: FileName, stem_words: list[str]) -> bool:
    sig = _signatures()
    base = name.base
    if base in sig.secret_names:
        return True
    if name.extension in sig.secret_extensions:
        return sig.not_secret.isdisjoint(stem_words)
    if base.startswith(sig.env_prefix):
        return base.removeprefix(sig.env_prefix) not in sig.not_env
    return name.parent in sig.secret_directories and name.stem.lower() in {"credentials", "config"}


def _people(name: FileName, stem_words: list[str]) -> bool:
    """An export named for the people it lists (customers_2024.csv, 用户信息.xlsx, yonghu.csv)."""
    sig = _signatures()
    if not sig.not_people.isdisjoint(stem_words):
        return False
    if not sig.people.isdisjoint(stem_words):
        return True
    return any(_CJK.match(w) and any(p in w for p in sig.people_zh) for w in stem_words)


def file_categories(path: str) -> tuple[str, ...]:
    """The categories the file at `path` is named for, in `FILE_CATEGORIES` order: ``"db/shop.sql.gz"``
    -> ("database_dump",), ``".aws/credentials"`` -> ("secret",), ``"用户信息.xlsx"`` -> ("name",),
    ``"id.txt"`` or ``"key.js"`` -> ()."""
    return _categories(path[-MAX_PATH:])


@lru_cache(maxsize=8192)
def _categories(path: str) -> tuple[str, ...]:
    name = file_name(path)
    stem_words = words(name.stem, lexicon().abbreviations)
    found: set[str] = set()
    if _is_dump(name, stem_words):
        found.add("database_dump")
    if _is_secret(name, stem_words):
        found.add("secret")
    if name.extension in _signatures().export_extensions and stem_words:
        if _people(name, stem_words):
            found.add("name")
        hint = name_hint(name.stem)
        if not hint.categories and name.stem.endswith("s"):  # passwords.txt
            hint = name_hint(name.stem[:-1])
        found.update(hint.categories)
    return tuple(c for c in FILE_CATEGORIES if c in found)


MAX_FILES = FILES_LISTED
"""Files of one inspection whose names are read (`model.FILES_LISTED`, what a file store lists)."""
MAX_NAMED = 20
"""Paths kept per category."""


def named_files(inspection: Inspection) -> dict[str, tuple[str, ...]]:
    """Category -> the paths of a file store's listing named for it (at most `MAX_NAMED` each), from its
    samples' file documents and its collections' notable file names; empty for any other store."""
    if not nouns(inspection.protocol).files:
        return {}
    paths = [d.get("key") for s in inspection.samples for d in s.documents if isinstance(d, dict)]
    paths += [f for c in inspection.collections for f in c.fields]
    found: dict[str, list[str]] = {}
    for path in islice(dict.fromkeys(p for p in paths if isinstance(p, str)), MAX_FILES):
        for category in file_categories(path):
            named = found.setdefault(category, [])
            if len(named) < MAX_NAMED:
                named.append(path)
    return {c: tuple(found[c]) for c in FILE_CATEGORIES if c in found}

"""One human line per service: what answered, whether it asks for a password, what it holds and leaks.

"Elasticsearch 7.10.2 without authentication: 3 indices, 970M documents, 23 GB; national IDs, phone numbers"
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from leaksonar.formats import human_bytes, human_count
from leaksonar.model import PII_CATEGORIES, Inspection, PiiHit

if TYPE_CHECKING:
    from leaksonar.assess.ransom import RansomScan

Noun = tuple[str, str]
"""Singular and plural."""


@dataclass(frozen=True, slots=True)
class Nouns:
    """How a protocol names its units; None where it has no such level."""

    database: Noun | None
    collection: Noun | None
    row: Noun
    keyed: bool = False
    """A key-value store: each sampled document is one key ({"key": ..., "value": ...})."""
    files: bool = False
    """A file or object store: each sampled document is one file or directory listed ({"key": path,
    "size": bytes, "value": the head of a small text file}); see `assess.filenames`."""

    @property
    def database_singular(self) -> str:
        return self.database[0] if self.database else "database"

    @property
    def collection_singular(self) -> str:
        return self.collection[0] if self.collection else "collection"


_DATABASE: Noun = ("database", "databases")
_DOCUMENT: Noun = ("document", "documents")
_KEY: Noun = ("key", "keys")
_FILE: Noun = ("file", "files")
_SEARCH = Nouns(None, ("index", "indices"), _DOCUMENT)
_SQL = Nouns(_DATABASE, ("table", "tables"), ("row", "rows"))
_DEFAULT = Nouns(_DATABASE, ("collection", "collections"), ("row", "rows"))

NOUNS: dict[str, Nouns] = {
    "elasticsearch": _SEARCH,
    "opensearch": _SEARCH,
    "kibana": _SEARCH,  # the indices of the cluster behind it
    "mongodb": Nouns(_DATABASE, ("collection", "collections"), _DOCUMENT),
    "couchdb": Nouns(None, _DATABASE, _DOCUMENT),
    "postgresql": _SQL,
    "mysql": _SQL,
    "mariadb": _SQL,
    "clickhouse": _SQL,
    "cassandra": Nouns(("keyspace", "keyspaces"), ("table", "tables"), ("row", "rows")),
    "influxdb": Nouns(_DATABASE, ("measurement", "measurements"), ("point", "points")),
    "redis": Nouns(_DATABASE, None, _KEY, keyed=True),
    "memcached": Nouns(None, None, _KEY, keyed=True),
    "etcd": Nouns(None, None, _KEY, keyed=True),
    "s3": Nouns(None, ("bucket", "buckets"), ("object", "objects"), files=True),
    "ftp": Nouns(None, ("directory", "directories"), _FILE, files=True),
    "rsync": Nouns(None, ("module", "modules"), _FILE, files=True),
    "smb": Nouns(None, ("share", "shares"), _FILE, files=True),
    "hdfs": Nouns(None, ("directory", "directories"), _FILE, files=True),
    "docker-registry": Nouns(None, ("repository", "repositories"), ("tag", "tags")),
}
"""Per-protocol nouns (any other protocol: databases, collections, rows)."""

PRODUCTS = {
    "elasticsearch": "Elasticsearch",
    "opensearch": "OpenSearch",
    "kibana": "Kibana",
    "mongodb": "MongoDB",
    "couchdb": "CouchDB",
    "postgresql": "PostgreSQL",
    "mysql": "MySQL",
    "mariadb": "MariaDB",
    "clickhouse": "ClickHouse",
    "cassandra": "Cassandra",
    "influxdb": "InfluxDB",
    "redis": "Redis",
    "valkey": "Valkey",
    "memcached": "Memcached",
    "etcd": "etcd",
    "http": "HTTP",
    "ftp": "FTP",
    "s3": "S3",
    "minio": "MinIO",
    "amazon-s3": "Amazon S3",
    "ceph-rgw": "Ceph RGW",
    "seaweedfs": "SeaweedFS",
    "garage": "Garage",
    "rsync": "rsync",
    "smb": "SMB",
    "samba": "Samba",
    "hdfs": "HDFS",
    "hadoop": "Hadoop",
    "docker-registry": "Docker registry",
}
"""Display names by software (or protocol) name."""

PII_LABELS = {
    "name": "names",
    "national_id": "national IDs",
    "phone": "phone numbers",
    "email": "e-mail addresses",
    "address": "addresses",
    "birth_date": "birth dates",
    "age": "ages",
    "birth_place": "places of birth",
    "gender": "genders",
    "location": "locations",
    "payment_card": "payment cards",
    "bank_account": "bank accounts",
    "passport": "passport numbers",
    "password": "passwords",
    "secret": "secrets",
    "ip_address": "IP addresses",
    "case_record": "case records",
}

FILE_LABELS: dict[str, Noun] = {
    "database_dump": ("database dump", "database dumps"),
    "secret": ("secret file", "secret files"),
}
"""Files named for a category; files named for personal data are counted together."""
_PERSONAL_FILES: Noun = ("file named for personal data", "files named for personal data")

_LABEL_CHARS = 40


def nouns(protocol: str) -> Nouns:
    return NOUNS.get(protocol, _DEFAULT)


def clean_line(text: str, chars: int) -> str:
    """`text` on one printable line, whitespace collapsed, cut to `chars` (an ellipsis marks a cut)."""
    head = text[: chars * 8]
    if not head.isprintable():
        head = "".join(c if c.isprintable() else " " for c in head)
    line = " ".join(head.split())
    return line if len(line) <= chars else line[: chars - 1] + "…"


def _count(n: int, noun: Noun) -> str:
    return f"{human_count(n)} {noun[0] if n == 1 else noun[1]}"


def _label(inspection: Inspection) -> str:
    """ "Redis 7.0.15": the software's display name and version (server-given text, cleaned and capped)."""
    software = inspection.software
    name = software.name if software and software.name else inspection.protocol
    label = PRODUCTS.get(name.lower(), clean_line(name, _LABEL_CHARS))
    if software and software.version:
        label += " " + clean_line(software.version, _LABEL_CHARS)
    return label


def _dataset(inspection: Inspection, noun: Nouns) -> str:
    """ "2 databases, 5 tables, 7,040 rows, 16 MB", from what the server reported."""
    parts = []
    if noun.database and inspection.databases is not None:
        parts.append(_count(inspection.databases, noun.database))
    if noun.collection and inspection.collections:
        parts.append(_count(len(inspection.collections), noun.collection))
    if inspection.rows is not None:
        parts.append(_count(inspection.rows, noun.row))
    if inspection.size_bytes is not None:
        parts.append(human_bytes(inspection.size_bytes))
    return ", ".join(parts) or "nothing listed"


def _pii(pii: Mapping[str, PiiHit]) -> str:
    """The categories found, in the vocabulary's order: "names, national IDs, phone numbers"."""
    return ", ".join(PII_LABELS[c] for c in PII_CATEGORIES if c in pii) or "personal data"


def _attack(attack: RansomScan, noun: Nouns) -> str:
    """ "RANSOM NOTE (1 BTC address, asks 0.05 BTC)", "CRON-JOB ATTACK (4 keys)", "MEOW WIPE (3 indices)"."""
    kinds = Counter(s.kind for s in attack.signs)
    parts = []
    if kinds["note"]:
        notes = [s.note for s in attack.signs if s.kind == "note"]
        addresses = {a for n in notes for a in n.btc_addresses}
        amount = next((n.amount_btc for n in notes if n.amount_btc is not None), None)
        details = [_count(len(addresses), ("BTC address", "BTC addresses"))] if addresses else []
        details += [f"asks {amount:g} BTC"] if amount is not None else []
        head = "RANSOM NOTE" if kinds["note"] == 1 else f"{kinds['note']} RANSOM NOTES"
        parts.append(f"{head} ({', '.join(details)})" if details else head)
    if kinds["cron"]:
        parts.append(f"CRON-JOB ATTACK ({_count(kinds['cron'], _KEY)})")
    if kinds["ssh_key"]:
        parts.append(f"SSH KEY PLANTED ({_count(kinds['ssh_key'], _KEY)})")
    if kinds["meow"]:
        parts.append(f"MEOW WIPE ({_count(kinds['meow'], noun.collection or ('collection', 'collections'))})")
    if attack.wiped:
        parts.append("DATA WIPED")
    return ", ".join(parts)


def _files(named_files: Mapping[str, Sequence[str]]) -> str:
    """ "2 database dumps, 1 secret file, 3 files named for personal data"."""
    parts = [_count(len(named_files[c]), noun) for c, noun in FILE_LABELS.items() if c in named_files]
    personal = {p for c, paths in named_files.items() if c not in FILE_LABELS for p in paths}
    if personal:
        parts.append(_count(len(personal), _PERSONAL_FILES))
    return ", ".join(parts)


def summary(
    inspection: Inspection,
    pii: Mapping[str, PiiHit],
    attack: RansomScan | None = None,
    named_files: Mapping[str, Sequence[str]] | None = None,
) -> str:
    """One line: software, access, dataset, files named for what they hold, personal data found, attack
    signs."""
    label = _label(inspection)
    if inspection.auth == "required":
        return f"{label} requires a password"
    if not inspection.exposed:
        return f"{label}: authentication unknown"
    noun = nouns(inspection.protocol)
    clauses = [_dataset(inspection, noun)]
    if named_files:
        clauses.append(_files(named_files))
    if pii:
        clauses.append(_pii(pii))
    if attack and attack.infected:
        clauses.append(_attack(attack, noun))
    return f"{label} without authentication: " + "; ".join(clauses)

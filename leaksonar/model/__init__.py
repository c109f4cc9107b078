"""The records that flow between pipeline stages (typed, frozen).

targets -> discover -> identify -> inspect -> assess -> store.  Samples (raw documents read from a
server) live only inside an `Inspection`; they never reach `Finding`, the store or any output.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Literal, get_args

if TYPE_CHECKING:
    from leaksonar.model.record import AssessmentRecord, FindingRecord, GeoRecord, NetworkRecord, TlsRecord

Auth = Literal["none", "required", "unknown"]


class ErrorKind(StrEnum):
    """What kind of thing went wrong while identifying or inspecting a service (like zgrab2's status)."""

    TIMEOUT = "timeout"
    """No answer in time: one operation's timeout, or the inspection's budget."""
    REFUSED = "refused"
    """The connection was refused, reset or closed early."""
    PROTOCOL_ERROR = "protocol_error"
    """The server sent bytes that do not follow its protocol (or matched none)."""
    OVER_LIMIT = "over_limit"
    """A reply over the byte cap, or more items than a `Limits` cap allows."""
    AUTH_REQUIRED = "auth_required"
    """The server (or one of its databases) asks for a password; none is sent."""
    COMMAND_REFUSED = "command_refused"
    """The server answered a read command with an error."""
    UNKNOWN = "unknown"
    """Anything else, and errors of records written before kinds existed."""


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing that went wrong: its kind, and a plain sentence for the user."""

    kind: ErrorKind
    message: str

    def to_record(self) -> dict[str, str]:
        return {"kind": self.kind.value, "message": self.message}

    @classmethod
    def from_record(cls, value: Any) -> Problem:
        """A record's error: {"kind", "message"}, or a plain sentence (records before kinds existed)."""
        if isinstance(value, dict):
            kind = value.get("kind")
            known = kind in ErrorKind._value2member_map_
            return cls(ErrorKind(kind) if known else ErrorKind.UNKNOWN, str(value.get("message", "")))
        return cls(ErrorKind.UNKNOWN, str(value))


def current_record(record: dict[str, Any]) -> dict[str, Any]:
    """A stored finding record in today's shape: errors written as plain sentences (before error kinds
    existed) become {"kind": "unknown", "message": ...}; counts written before `rows_estimated` existed
    are read as the server's own (False)."""
    errors = record.get("errors")
    if errors and not all(isinstance(error, dict) for error in errors):
        record = {**record, "errors": [Problem.from_record(error).to_record() for error in errors]}
    if "rows_estimated" not in record:
        collections = [{"rows_estimated": False, **c} for c in record.get("collections", ())]
        record = {**record, "rows_estimated": False, "collections": collections}
    return record


FILES_LISTED = 5000
"""Files and directories a file store lists per service; the assessment reads as many names."""
FILE_HEAD = 64 * 1024
"""Bytes of one file's head that a file store reads and the assessment reads into rows."""


@dataclass(frozen=True, slots=True)
class Limits:
    """Bounds for every read made while identifying or inspecting one service."""

    timeout: float = 3.0
    """Seconds allowed for one network operation (connect, one request/response)."""
    service_budget: float = 20.0
    """Seconds allowed for the whole inspection of one service."""
    max_bytes: int = 1 << 20
    """Largest single reply read from a server."""
    banner_bytes: int = 4096
    """Largest identification reply kept."""
    max_databases: int = 32
    max_collections: int = 200
    sample_rows: int = 5
    """Documents/rows/keys sampled per collection."""
    value_chars: int = 1024
    """Longest sampled value kept (characters)."""
    exact_count_below: int = 1_000_000
    """Count rows exactly (SELECT count(*)) when the server's estimate is below this."""


@dataclass(frozen=True, slots=True)
class Software:
    name: str
    version: str | None = None


@dataclass(frozen=True, slots=True)
class Certificate:
    """The leaf certificate a TLS service presented: recorded, never verified (server text: hostile)."""

    subject: str
    """RFC 4514 distinguished name, e.g. CN=es.example.cn,O=Example."""
    names: tuple[str, ...]
    """The subject's common names and every DNS and IP subject alternative name, in that order."""
    issuer: str
    not_before: str
    """UTC, ISO 8601."""
    not_after: str
    self_signed: bool
    """Issued by its own subject and signed by its own key."""
    expired: bool
    """`not_after` had passed when the service was scanned."""
    sha256: str
    """Hex SHA-256 of the DER certificate (the fingerprint other tools show)."""
    key: str
    """Public key type and size, e.g. "RSA 2048", "EC secp256r1", "Ed25519"."""


@dataclass(frozen=True, slots=True)
class Tls:
    """How a service spoke TLS."""

    version: str
    """As negotiated, e.g. "TLSv1.3"."""
    cipher: str
    cert: Certificate | None
    """None when the server sent no certificate, or one that could not be parsed."""


@dataclass(frozen=True, slots=True)
class Identity:
    """What answered on an open port, from the first reply."""

    protocol: str
    software: Software | None = None
    auth: Auth = "unknown"
    banner: str = ""
    tls: Tls | None = None
    """How the service spoke TLS (None: plaintext); its inspection then runs over TLS too."""
    starttls: bool = False
    """TLS was negotiated inside the protocol's plaintext connection (PostgreSQL, MySQL), not spoken from
    the first byte (a TLS terminator in front of the server)."""


@dataclass(frozen=True, slots=True)
class Collection:
    """A table, collection, index, key space or similar unit of stored data."""

    database: str
    name: str
    rows: int | None = None
    size_bytes: int | None = None
    fields: tuple[str, ...] = ()
    rows_estimated: bool = False
    """`rows` is the server's estimate (or a count stopped at a cap), not an exact count."""


@dataclass(frozen=True, slots=True)
class Sample:
    """A few documents read from one collection. Kept in memory only, for assessment."""

    database: str
    collection: str
    documents: tuple[dict[str, Any], ...]


@dataclass(frozen=True, slots=True)
class Inspection:
    """Everything a protocol module learned about one service."""

    protocol: str
    software: Software | None
    auth: Auth
    databases: int | None = None
    collections: tuple[Collection, ...] = ()
    rows: int | None = None
    size_bytes: int | None = None
    rows_estimated: bool = False
    """`rows` is not an exact count: a collection's is estimated or unknown, or collections past a cap were
    left out (then it is a lower bound)."""
    samples: tuple[Sample, ...] = ()
    errors: tuple[Problem, ...] = ()
    """What went wrong (timeouts, caps hit, refused commands): kinds and plain sentences."""
    details: dict[str, Any] = field(default_factory=dict)
    """Protocol-specific facts worth keeping (never raw data)."""

    @property
    def exposed(self) -> bool:
        return self.auth == "none"


PiiCategory = Literal[
    "name", "national_id", "phone", "email", "address", "birth_date", "age", "birth_place", "gender",
    "location", "payment_card", "bank_account", "passport", "password", "secret", "ip_address", "case_record",
]  # fmt: skip
PII_CATEGORIES: tuple[PiiCategory, ...] = get_args(PiiCategory)
"""The fixed vocabulary of personal-data categories (DESIGN.md)."""

Severity = Literal["info", "low", "medium", "high", "critical"]
SEVERITIES: tuple[Severity, ...] = get_args(Severity)
"""Every severity, least severe first: the one definition of their order."""
SEVERITY_RANK: dict[str, int] = {severity: rank for rank, severity in enumerate(SEVERITIES)}
"""Severity -> its place in SEVERITIES (0 for info): compare ranks, never names."""


@dataclass(frozen=True, slots=True)
class PiiHit:
    """One personal-data category found in a service: counts and one masked example, never raw values."""

    matches: int
    """Sampled values that validated as this category."""
    sampled: int
    """Sampled values looked at in the fields that matched."""
    fields: tuple[str, ...]
    example: str
    """One masked example, e.g. 3101**********123X."""


@dataclass(frozen=True, slots=True)
class RansomNote:
    where: str
    """Where the note was found, e.g. "index read_me" or "database RECOVER_YOUR_DATA"."""
    excerpt: str
    btc_addresses: tuple[str, ...] = ()
    emails: tuple[str, ...] = ()
    amount_btc: float | None = None
    onion: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Assessment:
    """What a service's inspection means: personal data, attack signs, severity, one-line summary."""

    pii: dict[str, PiiHit]
    """Category -> hit, over the whole service."""
    collection_pii: dict[tuple[str, str], tuple[str, ...]]
    """(database, collection) -> categories found in it."""
    infected: bool
    notes: tuple[RansomNote, ...]
    severity: Severity
    summary: str


@dataclass(frozen=True, slots=True)
class Finding:
    """One service as stored and printed: the finding record of DESIGN.md, minus samples."""

    ip: str
    port: int
    protocol: str
    software: Software | None
    auth: Auth
    exposed: bool
    time: str
    scan_id: str
    databases: int | None = None
    rows: int | None = None
    size_bytes: int | None = None
    rows_estimated: bool = False
    """`rows` is not an exact count (Inspection.rows_estimated)."""
    collections: tuple[Collection, ...] = ()
    errors: tuple[Problem, ...] = ()
    details: dict[str, Any] = field(default_factory=dict)
    banner: str = ""
    assessment: Assessment | None = None
    geo: GeoRecord | None = None
    """{"country": "CN"}, from a country database (leaksonar.scan.enrich)."""
    network: NetworkRecord | None = None
    """{"asn": 64500, "org": "..."}, from an ASN database (leaksonar.scan.enrich)."""
    hostname: str | None = None
    """The name the service was scanned by (sent as TLS SNI and HTTP Host), None for an address."""
    tls: Tls | None = None

    def to_record(self) -> FindingRecord:
        """The JSON finding record (one per service), shaped as leaksonar.model.record defines it."""
        record: FindingRecord = {
            "ip": self.ip,
            "port": self.port,
            "protocol": self.protocol,
            "software": (
                {"name": self.software.name, "version": self.software.version} if self.software else None
            ),
            "auth": self.auth,
            "exposed": self.exposed,
            "dataset": {
                "databases": self.databases,
                "collections": len(self.collections),
                "rows": self.rows,
                "size_bytes": self.size_bytes,
            },
            "collections": [
                {
                    "database": c.database,
                    "name": c.name,
                    "rows": c.rows,
                    "size_bytes": c.size_bytes,
                    "rows_estimated": c.rows_estimated,
                    "fields": list(c.fields),
                }
                for c in self.collections
            ],
            "rows_estimated": self.rows_estimated,
            "time": self.time,
            "scan_id": self.scan_id,
            "hostname": self.hostname,
            "tls": _tls_record(self.tls) if self.tls else None,
        }
        if self.assessment is not None:
            record.update(_assessment_record(self.assessment))
            found = self.assessment.collection_pii
            for entry in record["collections"]:
                entry["pii"] = list(found.get((entry["database"], entry["name"]), ()))
        if self.errors:
            record["errors"] = [e.to_record() for e in self.errors]
        if self.details:
            record["details"] = self.details
        if self.banner:
            record["banner"] = self.banner
        if self.geo is not None:
            record["geo"] = self.geo
        if self.network is not None:
            record["network"] = self.network
        return record

    @classmethod
    def from_record(cls, record: FindingRecord) -> Finding:
        """The finding a record describes (one written by this or any earlier leaksonar)."""
        software = record.get("software")
        dataset = record.get("dataset") or {}
        return cls(
            ip=record["ip"],
            port=record["port"],
            protocol=record["protocol"],
            software=Software(software["name"], software.get("version")) if software else None,
            auth=record["auth"],
            exposed=record["exposed"],
            time=record["time"],
            scan_id=record["scan_id"],
            databases=dataset.get("databases"),
            rows=dataset.get("rows"),
            size_bytes=dataset.get("size_bytes"),
            rows_estimated=bool(record.get("rows_estimated")),
            collections=tuple(
                Collection(
                    c["database"],
                    c["name"],
                    c.get("rows"),
                    c.get("size_bytes"),
                    tuple(c.get("fields", ())),
                    bool(c.get("rows_estimated")),
                )
                for c in record.get("collections", ())
            ),
            errors=tuple(Problem.from_record(e) for e in record.get("errors") or ()),
            details=record.get("details", {}),
            banner=record.get("banner", ""),
            assessment=_assessment_from(record) if "severity" in record else None,
            geo=record.get("geo"),
            network=record.get("network"),
            hostname=record.get("hostname"),
            tls=_tls_from(tls) if (tls := record.get("tls")) else None,
        )


def _tls_record(tls: Tls) -> TlsRecord:
    cert = tls.cert
    return {
        "version": tls.version,
        "cipher": tls.cipher,
        "cert": {
            "subject": cert.subject,
            "names": list(cert.names),
            "issuer": cert.issuer,
            "not_before": cert.not_before,
            "not_after": cert.not_after,
            "self_signed": cert.self_signed,
            "expired": cert.expired,
            "sha256": cert.sha256,
            "key": cert.key,
        }
        if cert
        else None,
    }


def _tls_from(record: TlsRecord) -> Tls:
    cert = record.get("cert")
    return Tls(
        record["version"],
        record["cipher"],
        Certificate(**{**cert, "names": tuple(cert["names"])}) if cert else None,
    )


def _assessment_record(assessment: Assessment) -> AssessmentRecord:
    return {
        "pii": {
            category: {
                "matches": hit.matches,
                "sampled": hit.sampled,
                "fields": list(hit.fields),
                "example": hit.example,
            }
            for category, hit in assessment.pii.items()
        },
        "ransom": {
            "infected": assessment.infected,
            "notes": [
                {
                    "where": n.where,
                    "excerpt": n.excerpt,
                    "btc_addresses": list(n.btc_addresses),
                    "emails": list(n.emails),
                    "amount_btc": n.amount_btc,
                    "onion": list(n.onion),
                }
                for n in assessment.notes
            ],
        },
        "severity": assessment.severity,
        "summary": assessment.summary,
    }


def _assessment_from(record: FindingRecord) -> Assessment:
    ransom = record.get("ransom") or {}
    return Assessment(
        pii={
            category: PiiHit(hit["matches"], hit["sampled"], tuple(hit["fields"]), hit["example"])
            for category, hit in (record.get("pii") or {}).items()
        },
        collection_pii={
            (c["database"], c["name"]): tuple(c["pii"]) for c in record.get("collections", ()) if c.get("pii")
        },
        infected=bool(ransom.get("infected")),
        notes=tuple(
            RansomNote(
                n["where"],
                n["excerpt"],
                tuple(n.get("btc_addresses", ())),
                tuple(n.get("emails", ())),
                n.get("amount_btc"),
                tuple(n.get("onion", ())),
            )
            for n in ransom.get("notes", ())
        ),
        severity=record["severity"],
        summary=record.get("summary", ""),
    )


EVENT_TYPES = (
    "new_exposure", "closed", "reopened", "auth_enabled", "wiped", "shrunk", "grew",
    "ransom_note_appeared", "ransom_note_removed", "pii_added", "software_changed",
)  # fmt: skip
"""What can change on a service between two scans (DESIGN.md, monitor stage)."""


@dataclass(frozen=True, slots=True)
class Event:
    """One change on one service, found by diffing two consecutive snapshots of it."""

    ip: str
    port: int
    type: str
    """One of EVENT_TYPES."""
    time: str
    """When the scan that saw the change ran (UTC, ISO 8601)."""
    scan_id: str
    protocol: str
    severity: Severity | None
    """The service's severity after the change."""
    summary: str
    """One human line: what changed, with figures (never raw data)."""
    before: dict[str, Any] = field(default_factory=dict)
    after: dict[str, Any] = field(default_factory=dict)
    """The figures that changed (rows, size_bytes, notes, categories, software ...)."""
    id: int | None = None
    """The store's id, once stored."""

    def to_record(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "ip": self.ip,
            "port": self.port,
            "type": self.type,
            "time": self.time,
            "scan_id": self.scan_id,
            "protocol": self.protocol,
            "severity": self.severity,
            "summary": self.summary,
            "before": self.before,
            "after": self.after,
        }

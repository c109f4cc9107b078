"""The finding record's JSON shape (DESIGN.md), defined once.

`Finding.to_record` builds a `FindingRecord`, the API answers with it, the search columns are read from
it, and `docs/finding.schema.json` is generated from it (leaksonar.model.schema). Every record type is
closed: the published schema allows no key beyond those named here.
"""

from typing import Any, NotRequired, TypeVar

from typing_extensions import TypedDict  # pydantic reads typing's TypedDict only from Python 3.12

from leaksonar.model import Auth, ErrorKind, PiiCategory, Severity

T = TypeVar("T")


def documented(record_type: T) -> T:
    """Have pydantic describe each key by its docstring (in the schema and the API's OpenAPI): what
    `pydantic.with_config` sets, without importing pydantic on the scanning path."""
    record_type.__pydantic_config__ = {"use_attribute_docstrings": True}  # type: ignore[attr-defined]
    return record_type


class SoftwareRecord(TypedDict):
    name: str
    version: str | None


@documented
class DatasetRecord(TypedDict):
    """What the server reported as a whole."""

    databases: int | None
    collections: int
    """How many collections are listed in the record."""
    rows: int | None
    """The server's own count, not the sample's."""
    size_bytes: int | None


@documented
class CollectionRecord(TypedDict):
    """A table, collection, index, key space, bucket or share."""

    database: str
    name: str
    rows: int | None
    size_bytes: int | None
    rows_estimated: bool
    """`rows` is the server's estimate (e.g. PostgreSQL's reltuples, InnoDB's table_rows) or a count
    stopped at a cap, not an exact count (docs/protocols.md says which protocols estimate)."""
    fields: list[str]
    """Field or column names (notable file names for storage)."""
    pii: NotRequired[list[PiiCategory]]
    """The personal-data categories found in it (assessed records)."""


class PiiRecord(TypedDict):
    """One personal-data category found in a service: counts and one masked example, never raw values."""

    matches: int
    sampled: int
    fields: list[str]
    example: str


class NoteRecord(TypedDict):
    """A ransom note (or other attack sign) and what it asks."""

    where: str
    excerpt: str
    btc_addresses: list[str]
    emails: list[str]
    amount_btc: float | None
    onion: list[str]


class RansomRecord(TypedDict):
    infected: bool
    notes: list[NoteRecord]


class ProblemRecord(TypedDict):
    """What went wrong, as a kind (timeout, refused, over limit ...) and the user's sentence."""

    kind: ErrorKind
    message: str


@documented
class GeoRecord(TypedDict):
    country: str
    """ISO 3166-1 alpha-2 code."""


class NetworkRecord(TypedDict):
    asn: int
    org: str


class AssessmentRecord(TypedDict, total=False):
    """The keys an assessment adds to a finding record (all of them, once assessed)."""

    pii: dict[PiiCategory, PiiRecord]
    ransom: RansomRecord
    severity: Severity
    summary: str


@documented
class CertificateRecord(TypedDict):
    """The certificate a TLS service presented: recorded, never verified."""

    subject: str
    """RFC 4514 distinguished name."""
    names: list[str]
    """The subject's common names and every DNS and IP subject alternative name."""
    issuer: str
    not_before: str
    not_after: str
    self_signed: bool
    expired: bool
    """`not_after` had passed at scan time."""
    sha256: str
    """Hex SHA-256 of the DER certificate."""
    key: str
    """e.g. "RSA 2048", "EC secp256r1", "Ed25519"."""


@documented
class TlsRecord(TypedDict):
    """How the service spoke TLS."""

    version: str
    """e.g. "TLSv1.3"."""
    cipher: str
    cert: CertificateRecord | None


@documented
class FindingRecord(AssessmentRecord):
    """One service, one line of `scan --jsonl`, one stored finding."""

    ip: str
    port: int
    protocol: str
    software: SoftwareRecord | None
    auth: Auth
    exposed: bool
    dataset: DatasetRecord
    collections: list[CollectionRecord]
    rows_estimated: bool
    """The dataset's `rows` are not an exact count: some collection's count is estimated or unknown, or
    collections past a cap were not counted (a lower bound)."""
    time: str
    """When the scan ran (UTC, ISO 8601)."""
    scan_id: str
    errors: NotRequired[list[ProblemRecord]]
    """What went wrong while inspecting: a kind and a sentence (records stored before kinds are read with
    kind "unknown")."""
    details: NotRequired[dict[str, Any]]
    """Protocol-specific facts worth keeping (never raw data)."""
    banner: NotRequired[str]
    geo: NotRequired[GeoRecord]
    network: NotRequired[NetworkRecord]
    hostname: NotRequired[str | None]
    """The name the service was scanned by (sent as TLS SNI and HTTP Host); null for an address (and
    absent from records written before names)."""
    tls: NotRequired[TlsRecord | None]
    """null for plaintext (absent from records written before TLS)."""

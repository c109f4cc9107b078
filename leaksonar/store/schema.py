"""The one schema (SQLAlchemy Core), for SQLite by default and PostgreSQL for shared use."""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
    UniqueConstraint,
    func,
)

from leaksonar.model import current_record
from leaksonar.store.addresses import KEY_LENGTH


class RecordJSON(TypeDecorator[dict]):
    """A finding record, stored as JSON and read in today's shape (`model.current_record`)."""

    impl = JSON
    cache_ok = True

    def process_result_value(self, value: Any, dialect: Any) -> Any:
        return None if value is None else current_record(value)


Int64 = BigInteger().with_variant(Integer(), "sqlite")
"""Ids and counts that can pass 2**31 at internet scale: BIGINT on PostgreSQL; INTEGER on SQLite, which is
64-bit already and the only type that makes an INTEGER PRIMARY KEY the rowid (migration 0003)."""
Key = String(253).with_variant(String(253, collation="C"), "postgresql")
"""A name or fingerprint matched by prefix as a range of code points (leaksonar.store.query): PostgreSQL's
"C" collation orders it so (a language's collation ignores punctuation); SQLite's own order already does."""
IP = String(39)
"""An IPv4 or IPv6 address as Python writes it (IPv6 compressed): leaksonar.store.addresses."""
IpKey = String(KEY_LENGTH).with_variant(String(KEY_LENGTH, collation="C"), "postgresql")
"""An address's order key (leaksonar.store.addresses.address_key), compared byte by byte as Key is."""

metadata = MetaData()

scans = Table(
    "scans",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("started_at", String(20), nullable=False),
    Column("finished_at", String(20)),
    Column("status", String(16), nullable=False),  # running | done | failed | interrupted
    Column("targets", Text, nullable=False),
    Column("ports", Text, nullable=False),
    Column("size", BigInteger, nullable=False),  # address x port pairs
    Column("probes", BigInteger, nullable=False, default=0),
    Column("open_ports", Int64, nullable=False, default=0),
    Column("services", Int64, nullable=False, default=0),
    Column("exposed", Int64, nullable=False, default=0),
    Column("options", JSON, nullable=False),
    Column("coverage", JSON),  # {"intervals": [[first, last], ...], "ports": [...]}: what "not seen" means
    # {"shards": [{"position": p, "open": [[ip, port, position], ...]}, ...], "probes": n, "open": n,
    #  "pid": n, "host": name}: below p all is probed and stored but the open ports listed (ShardMark)
    Column("checkpoint", JSON),  # what `scan --resume` starts from
)

hosts = Table(
    "hosts",
    metadata,
    Column("ip", IP, primary_key=True),
    Column("ip_key", IpKey, nullable=False, index=True),
    Column("first_seen", String(20), nullable=False),
    Column("last_seen", String(20), nullable=False),
    Column("last_scan_id", String(40), nullable=False),
)

services = Table(
    "services",
    metadata,
    Column("id", Int64, primary_key=True, autoincrement=True),
    Column("ip", IP, nullable=False),
    Column("ip_key", IpKey, nullable=False),
    Column("port", Integer, nullable=False),
    Column("protocol", String(32), nullable=False),
    Column("software", String(64)),
    Column("version", String(64)),
    Column("auth", String(8), nullable=False),
    Column("exposed", Boolean, nullable=False),
    Column("rows", BigInteger),
    Column("size_bytes", BigInteger),
    Column("severity", String(8)),
    Column("first_seen", String(20), nullable=False),
    Column("last_seen", String(20), nullable=False),
    Column("last_scan_id", String(40), nullable=False),
    Column("record", RecordJSON, nullable=False),
    # search columns, derived from the record (leaksonar.store.search; NULL rank: not derived yet)
    Column("rank", Integer),  # severity rank: -1 none, 0 info ... 4 critical
    Column("infected", Boolean),
    Column("collections", Integer),
    Column("country", String(2)),
    Column("asn", BigInteger),
    Column("org", String(200)),
    Column("summary", Text),
    # TLS and the certificate presented (migration 0007)
    Column("tls", Boolean),
    Column("hostname", String(253)),
    Column("cert_sha256", Key),
    Column("cert_issuer", String(200)),
    Column("cert_expired", Boolean),
    Column("cert_self_signed", Boolean),
    UniqueConstraint("ip", "port", name="uq_services_ip_port"),
    Index("ix_services_ip_key", "ip_key"),
    Index("ix_services_asn", "asn"),
    Index("ix_services_rows", "rows"),
    Index("ix_services_first_seen", "first_seen"),
)
# the search order: severity (critical first), rows (most first, unknown last), address, port; SQLite's
# indexes cannot say NULLS LAST, its own order for DESC (migration 0002 leaves it out there). A page is
# read from the index alone (the id included on PostgreSQL, SQLite's rowid): a public page skips the
# critical services at its start without reading their rows (migration 0005)
Index(
    "ix_services_order",
    services.c.rank.desc(),
    services.c.rows.desc().nulls_last(),
    services.c.ip_key,
    services.c.port,
    postgresql_include=["id"],
)
# the facet fields, each with the rank last: a facet counts the visible set (rank below critical) from its
# index alone, and `severity:critical` finds nothing public without reading a row (migration 0005)
# the protocol and exposure, then the search order: a broad query on them (protocol:redis AND exposed:true
# AND rows:>1000) is counted from the index alone and its page read in order from it (migration 0009)
Index(
    "ix_services_protocol",
    services.c.protocol,
    services.c.exposed,
    services.c.rank.desc(),
    services.c.rows.desc().nulls_last(),
    services.c.ip_key,
    services.c.port,
    postgresql_include=["id"],
)
Index("ix_services_severity", services.c.severity, services.c.rank)
Index("ix_services_country", services.c.country, services.c.rank)
Index("ix_services_software", func.lower(services.c.software), services.c.rank)  # matched in any case
Index("ix_services_org", func.lower(services.c.org))
Index("ix_services_port", services.c.port)
Index("ix_services_cert_issuer", services.c.cert_issuer, services.c.rank)  # a facet field, as above
Index("ix_services_hostname", services.c.hostname)
Index("ix_services_cert_sha256", services.c.cert_sha256)
# attacked services are few: a partial index finds them (by first seen) without touching the rest
Index(
    "ix_services_infected",
    services.c.first_seen,
    sqlite_where=services.c.infected.is_(True),
    postgresql_where=services.c.infected.is_(True),
)

service_pii = Table(
    "service_pii",
    metadata,
    Column("service_id", Int64, nullable=False),
    Column("category", String(16), nullable=False),
    Column("rank", Integer),  # the service's rank, written with it (the pii facet's visible set, 0005)
    Index("ix_service_pii_category", "category", "service_id", "rank"),
    Index("ix_service_pii_service", "service_id"),
)

service_btc = Table(
    "service_btc",
    metadata,
    Column("service_id", Int64, nullable=False),
    Column("address", String(100), nullable=False),
    Index("ix_service_btc_address", "address", "service_id"),
    Index("ix_service_btc_service", "service_id"),
)

service_cert_names = Table(
    "service_cert_names",
    metadata,
    Column("service_id", Int64, nullable=False),
    Column("name", Key, nullable=False),  # in lower case
    # the name backwards: a suffix (`*.example.cn`) becomes a prefix, an index range (migration 0007)
    Column("name_reversed", Key, nullable=False),
    Index("ix_service_cert_names_name", "name", "service_id"),
    Index("ix_service_cert_names_reversed", "name_reversed", "service_id"),
    Index("ix_service_cert_names_service", "service_id"),
)

# Free text over summaries, collection names and field names (rowid = services.id): an FTS5 table on
# SQLite, a table with a tsvector on PostgreSQL (leaksonar.store.fulltext); outside `metadata` because it
# differs by database (migration 0002 makes it).
services_fts = Table(
    "services_fts",
    MetaData(),
    Column("rowid", Int64, primary_key=True),
    Column("summary", Text),
    Column("collections", Text),
    Column("fields", Text),
    Column("services_fts", Text),  # SQLite: FTS5's hidden column named after the table, the MATCH target
    Column("document", Text),  # PostgreSQL: the tsvector (generated from the three text columns)
)

# Per facet field, value and visibility (rank below critical), the services that have it (a service once
# per PII category): what facets of everything and the count of everything read, summing n per value.
# SQLite: one counter per key, kept exact in every write's transaction by the writer, one upsert of the
# batch's changes (search.write_search; migration 0009 made it, 0011 dropped its per-row triggers,
# 0012 refuses a batch whose writer does not count: search.counting).
# PostgreSQL: no key, insert-only deltas written by statement triggers and folded by
# search.fold_summary, so concurrent writers never wait for one another (migration 0010).
# Outside `metadata` because the two databases keep it differently
facet_counts = Table(
    "facet_counts",
    MetaData(),
    Column("field", String(16), primary_key=True),
    Column("value", String(200), primary_key=True),
    Column("visible", Boolean, primary_key=True),
    Column("n", Integer, nullable=False),  # 0 once the last service with the value is gone
)

findings = Table(
    "findings",
    metadata,
    Column("id", Int64, primary_key=True, autoincrement=True),
    Column("scan_id", String(40), nullable=False),
    Column("ip", IP, nullable=False),
    Column("port", Integer, nullable=False),
    Column("time", String(20), nullable=False),
    Column("record", RecordJSON, nullable=False),
    UniqueConstraint("scan_id", "ip", "port", name="uq_findings_scan_ip_port"),
    Index("ix_findings_ip_port", "ip", "port"),
)

deliveries = Table(
    "deliveries",
    metadata,
    Column("id", Int64, primary_key=True, autoincrement=True),
    Column("event_key", String(120), nullable=False),  # scan_id/ip:port/type: stable before and after storing
    Column("event_id", Int64),
    Column("rule", String(120), nullable=False),
    Column("channel", String(120), nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("status", String(8), nullable=False),  # sending | sent | failed
    Column("last_error", Text),
    Column("time", String(32), nullable=False),
    UniqueConstraint("event_key", "rule", "channel", name="uq_deliveries_event_rule_channel"),
)

events = Table(
    "events",
    metadata,
    Column("id", Int64, primary_key=True, autoincrement=True),
    Column("ip", IP, nullable=False),
    Column("port", Integer, nullable=False),
    Column("type", String(24), nullable=False),
    Column("time", String(20), nullable=False),
    Column("scan_id", String(40), nullable=False),
    Column("protocol", String(32), nullable=False),
    Column("severity", String(8)),
    Column("summary", Text, nullable=False),
    Column("before", JSON, nullable=False),
    Column("after", JSON, nullable=False),
    UniqueConstraint("scan_id", "ip", "port", "type", name="uq_events_scan_ip_port_type"),
    Index("ix_events_time", "time"),
    Index("ix_events_type", "type"),
    Index("ix_events_ip_port", "ip", "port"),
)

api_keys = Table(
    "api_keys",
    metadata,
    Column("id", Int64, primary_key=True, autoincrement=True),
    Column("name", String(64), nullable=False, unique=True),
    Column("level", String(8), nullable=False),  # public | analyst
    Column("key_sha256", String(64), nullable=False, unique=True),  # never the key itself
    Column("created", String(20), nullable=False),
    Column("revoked", String(20)),  # when it was revoked; NULL while it is valid
)

sessions = Table(
    "sessions",
    metadata,
    Column("id", Int64, primary_key=True, autoincrement=True),
    Column("token_sha256", String(64), nullable=False, unique=True),  # never the token itself
    Column("key_id", Int64, nullable=False, index=True),  # api_keys.id: the key signed in with
    Column("created", String(20), nullable=False),
    Column("expires", String(20), nullable=False, index=True),
)
"""Web sign-ins (leaksonar.web.keys): a session ends when it expires, at sign-out, or when its key is
revoked."""

index_secrets = Table(
    "index_secrets",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("value", String(128), nullable=False),  # hex
)
"""The index's own secrets (leaksonar.store.keyring), such as the key of the web's public ids."""

report_history = Table(
    "report_history",
    metadata,
    Column("id", Int64, primary_key=True, autoincrement=True),
    Column("owner", String(200), nullable=False),
    Column("service", String(48), nullable=False),  # ip:port, [ip]:port for IPv6
    Column("severity", String(8), nullable=False),
    Column("sent_at", String(20), nullable=False),
    Column("scan_id", String(40), nullable=False),
    Index("ix_report_history_owner_service", "owner", "service"),
)
"""One row per service per disclosure report sent (leaksonar.report)."""

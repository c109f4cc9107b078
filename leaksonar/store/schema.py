"""The one schema (SQLAlchemy Core), for SQLite by default and PostgreSQL for shared use."""

from __future__ import annotations

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
    UniqueConstraint,
)

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
    Column("open_ports", Integer, nullable=False, default=0),
    Column("services", Integer, nullable=False, default=0),
    Column("exposed", Integer, nullable=False, default=0),
    Column("options", JSON, nullable=False),
    Column("coverage", JSON),  # {"intervals": [[first, last], ...], "ports": [...]}: what "not seen" means
)

hosts = Table(
    "hosts",
    metadata,
    Column("ip", String(15), primary_key=True),
    Column("ip_num", BigInteger, nullable=False, index=True),
    Column("first_seen", String(20), nullable=False),
    Column("last_seen", String(20), nullable=False),
    Column("last_scan_id", String(40), nullable=False),
)

services = Table(
    "services",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("ip", String(15), nullable=False),
    Column("ip_num", BigInteger, nullable=False),
    Column("port", Integer, nullable=False),
    Column("protocol", String(32), nullable=False, index=True),
    Column("software", String(64)),
    Column("version", String(64)),
    Column("auth", String(8), nullable=False),
    Column("exposed", Boolean, nullable=False),
    Column("rows", BigInteger),
    Column("size_bytes", BigInteger),
    Column("severity", String(8), index=True),
    Column("first_seen", String(20), nullable=False),
    Column("last_seen", String(20), nullable=False),
    Column("last_scan_id", String(40), nullable=False),
    Column("record", JSON, nullable=False),
    UniqueConstraint("ip", "port", name="uq_services_ip_port"),
    Index("ix_services_ip_num", "ip_num"),
)

findings = Table(
    "findings",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("scan_id", String(40), nullable=False),
    Column("ip", String(15), nullable=False),
    Column("port", Integer, nullable=False),
    Column("time", String(20), nullable=False),
    Column("record", JSON, nullable=False),
    UniqueConstraint("scan_id", "ip", "port", name="uq_findings_scan_ip_port"),
    Index("ix_findings_ip_port", "ip", "port"),
)

deliveries = Table(
    "deliveries",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("event_key", String(120), nullable=False),  # scan_id/ip:port/type: stable before and after storing
    Column("event_id", Integer),
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
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("ip", String(15), nullable=False),
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

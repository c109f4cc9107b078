"""The index of the previous release (before search, API keys and scan checkpoints).

Made table by table where missing, so that an index that release wrote (which has no alembic_version, and
may lack report_history: that release made it on first use) is brought here without losing a row.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def _tables() -> list[tuple[str, list[sa.SchemaItem], list[tuple[str, list[str]]]]]:
    """(name, columns and constraints, indexes) of each table."""
    return [
        (
            "scans",
            [
                sa.Column("id", sa.String(40), primary_key=True),
                sa.Column("started_at", sa.String(20), nullable=False),
                sa.Column("finished_at", sa.String(20)),
                sa.Column("status", sa.String(16), nullable=False),
                sa.Column("targets", sa.Text, nullable=False),
                sa.Column("ports", sa.Text, nullable=False),
                sa.Column("size", sa.BigInteger, nullable=False),
                sa.Column("probes", sa.BigInteger, nullable=False),
                sa.Column("open_ports", sa.Integer, nullable=False),
                sa.Column("services", sa.Integer, nullable=False),
                sa.Column("exposed", sa.Integer, nullable=False),
                sa.Column("options", sa.JSON, nullable=False),
                sa.Column("coverage", sa.JSON),
            ],
            [],
        ),
        (
            "hosts",
            [
                sa.Column("ip", sa.String(15), primary_key=True),
                sa.Column("ip_num", sa.BigInteger, nullable=False),
                sa.Column("first_seen", sa.String(20), nullable=False),
                sa.Column("last_seen", sa.String(20), nullable=False),
                sa.Column("last_scan_id", sa.String(40), nullable=False),
            ],
            [("ix_hosts_ip_num", ["ip_num"])],
        ),
        (
            "services",
            [
                sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
                sa.Column("ip", sa.String(15), nullable=False),
                sa.Column("ip_num", sa.BigInteger, nullable=False),
                sa.Column("port", sa.Integer, nullable=False),
                sa.Column("protocol", sa.String(32), nullable=False),
                sa.Column("software", sa.String(64)),
                sa.Column("version", sa.String(64)),
                sa.Column("auth", sa.String(8), nullable=False),
                sa.Column("exposed", sa.Boolean, nullable=False),
                sa.Column("rows", sa.BigInteger),
                sa.Column("size_bytes", sa.BigInteger),
                sa.Column("severity", sa.String(8)),
                sa.Column("first_seen", sa.String(20), nullable=False),
                sa.Column("last_seen", sa.String(20), nullable=False),
                sa.Column("last_scan_id", sa.String(40), nullable=False),
                sa.Column("record", sa.JSON, nullable=False),
                sa.UniqueConstraint("ip", "port", name="uq_services_ip_port"),
            ],
            [
                ("ix_services_protocol", ["protocol"]),
                ("ix_services_severity", ["severity"]),
                ("ix_services_ip_num", ["ip_num"]),
            ],
        ),
        (
            "findings",
            [
                sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
                sa.Column("scan_id", sa.String(40), nullable=False),
                sa.Column("ip", sa.String(15), nullable=False),
                sa.Column("port", sa.Integer, nullable=False),
                sa.Column("time", sa.String(20), nullable=False),
                sa.Column("record", sa.JSON, nullable=False),
                sa.UniqueConstraint("scan_id", "ip", "port", name="uq_findings_scan_ip_port"),
            ],
            [("ix_findings_ip_port", ["ip", "port"])],
        ),
        (
            "deliveries",
            [
                sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
                sa.Column("event_key", sa.String(120), nullable=False),
                sa.Column("event_id", sa.Integer),
                sa.Column("rule", sa.String(120), nullable=False),
                sa.Column("channel", sa.String(120), nullable=False),
                sa.Column("attempts", sa.Integer, nullable=False),
                sa.Column("status", sa.String(8), nullable=False),
                sa.Column("last_error", sa.Text),
                sa.Column("time", sa.String(32), nullable=False),
                sa.UniqueConstraint("event_key", "rule", "channel", name="uq_deliveries_event_rule_channel"),
            ],
            [],
        ),
        (
            "events",
            [
                sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
                sa.Column("ip", sa.String(15), nullable=False),
                sa.Column("port", sa.Integer, nullable=False),
                sa.Column("type", sa.String(24), nullable=False),
                sa.Column("time", sa.String(20), nullable=False),
                sa.Column("scan_id", sa.String(40), nullable=False),
                sa.Column("protocol", sa.String(32), nullable=False),
                sa.Column("severity", sa.String(8)),
                sa.Column("summary", sa.Text, nullable=False),
                sa.Column("before", sa.JSON, nullable=False),
                sa.Column("after", sa.JSON, nullable=False),
                sa.UniqueConstraint("scan_id", "ip", "port", "type", name="uq_events_scan_ip_port_type"),
            ],
            [
                ("ix_events_time", ["time"]),
                ("ix_events_type", ["type"]),
                ("ix_events_ip_port", ["ip", "port"]),
            ],
        ),
        (
            "report_history",
            [
                sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
                sa.Column("owner", sa.String(200), nullable=False),
                sa.Column("service", sa.String(24), nullable=False),
                sa.Column("severity", sa.String(8), nullable=False),
                sa.Column("sent_at", sa.String(20), nullable=False),
                sa.Column("scan_id", sa.String(40), nullable=False),
            ],
            [("ix_report_history_owner_service", ["owner", "service"])],
        ),
    ]


def upgrade() -> None:
    inspector = sa.inspect(op.get_bind())
    have = set(inspector.get_table_names())
    for name, items, indexes in _tables():
        if name in have:
            _add_missing_columns(name, items, {c["name"] for c in inspector.get_columns(name)})
            continue
        op.create_table(name, *items)
        for index, columns in indexes:
            op.create_index(index, name, columns)


def _add_missing_columns(table: str, items: list[sa.SchemaItem], have: set[str]) -> None:
    """An index from before that release lacks columns the release added (all nullable, such as
    scans.coverage); that release added them when it opened such an index, and so does this step."""
    for column in items:
        if isinstance(column, sa.Column) and column.name not in have:
            op.add_column(table, sa.Column(column.name, column.type))

"""64-bit ids and counters before internet scale: every id (services, findings, events, deliveries,
api_keys, sessions, report_history, the free-text rowid and the columns naming a service or an event) and the
scans' open_ports, services and exposed become BIGINT on PostgreSQL, with the sequences behind the
autoincrement ids (a serial's sequence is `AS integer` and would stop at 2**31 - 1 however wide its
column).

SQLite: nothing to do. Its INTEGER is 64-bit already, and an `INTEGER PRIMARY KEY` must stay INTEGER to
remain the rowid.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

COLUMNS = {
    "services": ("id",),
    "findings": ("id",),
    "events": ("id",),
    "deliveries": ("id", "event_id"),
    "api_keys": ("id",),
    "sessions": ("id", "key_id"),
    "report_history": ("id",),
    "service_pii": ("service_id",),
    "service_btc": ("service_id",),
    "services_fts": ("rowid",),
    "scans": ("open_ports", "services", "exposed"),
}
SERIAL_IDS = ("services", "findings", "events", "deliveries", "api_keys", "sessions", "report_history")
"""Tables whose id is a serial (the others' ids are set by leaksonar)."""


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return
    for table, columns in COLUMNS.items():  # one rewrite per table
        changes = ", ".join(f'ALTER COLUMN "{column}" TYPE BIGINT' for column in columns)
        op.execute(f'ALTER TABLE "{table}" {changes}')
    for table in SERIAL_IDS:
        sequence = bind.exec_driver_sql(f"SELECT pg_get_serial_sequence('{table}', 'id')").scalar()
        op.execute(f"ALTER SEQUENCE {sequence} AS BIGINT")  # its bounds follow: they were the defaults

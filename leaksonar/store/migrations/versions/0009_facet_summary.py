"""Broad queries and facets at a million services.

- `ix_services_protocol` becomes (protocol, exposed, then the search order: rank, rows, address, port;
  PostgreSQL: with the id): a query on the protocol, exposure and row count
  (`protocol:redis AND exposed:true AND rows:>1000`) is counted from the index alone, and its first page
  read in order from it, for the public too (the rank is in it), instead of reading and sorting every
  matching service.
- SQLite: `facet_counts` holds, per facet field, value and visibility (rank below critical), how many
  services (a service once per PII category for `pii`) have it, kept exact by triggers on `services`
  and `service_pii` in the same transaction as every write. Facets of everything read it (a few hundred
  rows) instead of counting every service. PostgreSQL counts facets from the indexes as before: counters
  that every writer updates would serialise concurrent workers (docs/scaling.md). 0011 drops the
  triggers: the writer counts each batch itself.

Revision ID: 0009
Revises: 0008
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

SERVICE_FIELDS = {  # facet field: its value in a row of services (as leaksonar.store.search counts it)
    "protocol": "{row}protocol",
    "country": "{row}country",
    "severity": "{row}severity",
    "software": "lower({row}software)",
    "cert.issuer": "{row}cert_issuer",
}
PII = {"pii": "{row}category"}
VISIBLE = "coalesce({row}rank < 4, 0)"
"""Whether a row is in the visible set (query.public_only: a rank below critical; none: not visible)."""


def _counts(row: str, fields: dict[str, str], delta: int) -> str:
    """Statements adding `delta` to the count of each field's value (when it has one) of `row` (NEW. or
    OLD. in a trigger)."""
    visible = VISIBLE.format(row=row)
    return " ".join(
        f"INSERT INTO facet_counts (field, value, visible, n) SELECT '{field}', {value}, {visible}, {delta}"
        f" WHERE {value} IS NOT NULL ON CONFLICT (field, value, visible) DO UPDATE SET n = n + {delta};"
        for field, template in fields.items()
        for value in [template.format(row=row)]
    )


def _changed(fields: dict[str, str]) -> str:
    """A trigger's WHEN: a counted value or the visibility of the row changed."""
    templates = [*fields.values(), VISIBLE]
    return " OR ".join(f"{t.format(row='OLD.')} IS NOT {t.format(row='NEW.')}" for t in templates)


def _triggers(table: str, fields: dict[str, str]) -> list[str]:
    name = f"tr_{table}_facets"
    moved = _counts("OLD.", fields, -1) + " " + _counts("NEW.", fields, 1)
    return [
        f"CREATE TRIGGER {name}_insert AFTER INSERT ON {table} BEGIN {_counts('NEW.', fields, 1)} END",
        f"CREATE TRIGGER {name}_delete AFTER DELETE ON {table} BEGIN {_counts('OLD.', fields, -1)} END",
        f"CREATE TRIGGER {name}_update AFTER UPDATE ON {table} WHEN {_changed(fields)} BEGIN {moved} END",
    ]


def upgrade() -> None:
    sqlite = op.get_bind().dialect.name == "sqlite"
    op.drop_index("ix_services_protocol", table_name="services")
    rows = '"rows" DESC' if sqlite else '"rows" DESC NULLS LAST'  # SQLite: its own order for DESC
    order = ["protocol", "exposed", sa.text('"rank" DESC'), sa.text(rows), "ip_key", "port"]
    op.create_index("ix_services_protocol", "services", order, postgresql_include=["id"])
    if not sqlite:
        return
    if op.get_bind().exec_driver_sql("SELECT 1 FROM sqlite_master WHERE name = 'sqlite_stat1'").first():
        op.execute("ANALYZE services")  # the planner's figures for the new index (search.refresh_statistics)
    op.execute(
        "CREATE TABLE facet_counts (field VARCHAR(16) NOT NULL, value VARCHAR(200) NOT NULL,"
        " visible BOOLEAN NOT NULL, n INTEGER NOT NULL, PRIMARY KEY (field, value, visible))"
    )
    for table, fields in (("services", SERVICE_FIELDS), ("service_pii", PII)):
        for field, template in fields.items():
            value = template.format(row="")
            op.execute(
                f"INSERT INTO facet_counts (field, value, visible, n) SELECT '{field}', {value},"
                f" {VISIBLE.format(row='')}, count(*) FROM {table} WHERE {value} IS NOT NULL GROUP BY 2, 3"
            )
        for trigger in _triggers(table, fields):
            op.execute(trigger)

"""SQLite: the facet summary's counters kept by the writer, per batch, instead of by row triggers.

`facet_counts` stays as 0009 made it (one counter per facet field, value and visibility); the triggers on
`services` and `service_pii` that updated it for every row (five statements per service stored, about a
third of a finding's cost) are dropped. `leaksonar.store.search.write_search` adds, in the transaction
of every write of those tables, the batch's net changes in one statement: the same counters as the
triggers left. PostgreSQL keeps its statement-level deltas (0010).

Revision ID: 0011
Revises: 0010
"""

from __future__ import annotations

from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    for table in ("services", "service_pii"):
        for change in ("insert", "delete", "update"):
            op.execute(f"DROP TRIGGER IF EXISTS tr_{table}_facets_{change}")

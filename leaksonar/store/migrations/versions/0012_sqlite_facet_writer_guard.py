"""SQLite: a write of `services` or `service_pii` that does not count facets is refused.

Since 0011 no trigger counts what is written: the writer adds each batch's changes to `facet_counts`
itself. A program that does not (an older leaksonar that opened the index before a newer one upgraded
it, a scan still running; a hand-made INSERT) would leave the summary wrong for good. `leaksonar.store.
search.facet_state` puts a row in `facet_counts_writer` in the transaction of a write that counts, and
`write_search` takes it out before that transaction ends, so no other connection ever sees it; a write of
those tables in a transaction without it fails. The check, per row, reads that table of at most one row.

Revision ID: 0012
Revises: 0011
"""

from __future__ import annotations

from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

REFUSED = (
    "facet_counts: this write does not count facets (an older leaksonar? upgrade it, or stop it and open"
    " the index again)"
)


def upgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    op.execute("CREATE TABLE facet_counts_writer (counting INTEGER NOT NULL)")
    guarded = {"services": ("insert", "update", "delete"), "service_pii": ("insert", "delete")}
    for table, changes in guarded.items():
        for change in changes:
            op.execute(
                f"CREATE TRIGGER tr_{table}_counted_{change} BEFORE {change.upper()} ON {table}"
                " WHEN NOT EXISTS (SELECT 1 FROM facet_counts_writer)"
                f" BEGIN SELECT RAISE(ABORT, '{REFUSED}'); END"
            )

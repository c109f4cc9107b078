"""SQLite: a write of findings that does not count facets is refused.

Since 0011 no trigger counts what is written to `services` and `service_pii`: the writer adds each
batch's changes to `facet_counts` itself. An older leaksonar that opened the index before a newer one
upgraded it (a scan still running) does not, and would leave the summary wrong for good. Every writer
stores each service's finding with it, in one transaction: `leaksonar.store.search.counting` puts a row
in `facet_counts_writer` for the transaction of a write that counts and takes it out before the
transaction ends (no other connection ever sees it), and a finding stored in a transaction without it is
refused, its whole batch with it. The check is on `findings`, not `services`: any row trigger on
`services` costs about 40 µs a stored service (its wide upsert), one on `findings` a few.

Revision ID: 0012
Revises: 0011
"""

from __future__ import annotations

from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

REFUSED = "facet_counts: this write does not count facets (an older leaksonar? stop it, upgrade it)"


def upgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    op.execute("CREATE TABLE facet_counts_writer (counting INTEGER NOT NULL)")
    op.execute(
        "CREATE TRIGGER tr_findings_counted BEFORE INSERT ON findings"
        " WHEN NOT EXISTS (SELECT 1 FROM facet_counts_writer)"
        f" BEGIN SELECT RAISE(ABORT, '{REFUSED}'); END"
    )

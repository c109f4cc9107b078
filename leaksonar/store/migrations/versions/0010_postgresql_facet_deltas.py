"""PostgreSQL: facets and the count of everything from a summary that does not serialise writers.

- `facet_counts` on PostgreSQL holds deltas, not one counter per value: per statement that writes
  `services` or `service_pii`, a statement-level trigger inserts, per facet field, value and visibility
  (rank below critical), how many services its rows added or took away (from the statement's transition
  tables; nothing when they cancel out). No key, no update: concurrent workers only ever insert rows, so
  none waits for another's lock (counters updated by every writer would, and could deadlock). Facets of
  everything sum it (leaksonar.store.search); `search.fold_summary` folds it now and then into one row
  per value. Seeded here with the counts of the services already there; SQLite keeps its counters
  (0009).
- `services` and `service_pii` are analysed and vacuumed after 2% of their rows changed, not 10-20%: the
  planner's figures and the visibility map (index-only counts) stay current during a large ingest.

Revision ID: 0010
Revises: 0009
"""

from __future__ import annotations

from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

VISIBLE = "coalesce(c.rank < 4, false)"
SOURCES = {  # table: the facet (field, value) pairs of its row `c`, as leaksonar.store.search counts them
    "services": "('protocol', c.protocol::text), ('country', c.country::text),"
    " ('severity', c.severity::text), ('software', lower(c.software)), ('cert.issuer', c.cert_issuer::text)",
    "service_pii": "('pii', c.category::text)",
}
CHANGES = {  # event: the changed rows, each with +1 (added) or -1 (taken away)
    "INSERT": "SELECT *, 1 AS d FROM new_rows",
    "DELETE": "SELECT *, -1 AS d FROM old_rows",
    "UPDATE": "SELECT *, 1 AS d FROM new_rows UNION ALL SELECT *, -1 AS d FROM old_rows",
}
TUNED = "autovacuum_analyze_scale_factor = 0.02, autovacuum_vacuum_insert_scale_factor = 0.02"


def _deltas(table: str, changes: str) -> str:
    """An INSERT into facet_counts of the net change per field, value and visibility of `changes`."""
    return (
        "INSERT INTO facet_counts (field, value, visible, n)"
        f" SELECT f.field, f.value, {VISIBLE}, sum(c.d) FROM ({changes}) AS c"
        f" CROSS JOIN LATERAL (VALUES {SOURCES[table]}) AS f (field, value)"
        " WHERE f.value IS NOT NULL GROUP BY 1, 2, 3 HAVING sum(c.d) <> 0"
    )


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(
        "CREATE TABLE facet_counts (field VARCHAR(16) NOT NULL, value VARCHAR(200) NOT NULL,"
        " visible BOOLEAN NOT NULL, n INTEGER NOT NULL)"
    )
    for table in SOURCES:
        op.execute(_deltas(table, f"SELECT *, 1 AS d FROM {table}"))
        for event, changes in CHANGES.items():
            name = f"facet_deltas_{table}_{event.lower()}"
            op.execute(
                f"CREATE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS"
                f" $$ BEGIN {_deltas(table, changes)}; RETURN NULL; END $$"
            )
            tables = {"INSERT": "NEW TABLE AS new_rows", "DELETE": "OLD TABLE AS old_rows"}.get(
                event, "OLD TABLE AS old_rows NEW TABLE AS new_rows"
            )
            op.execute(
                f"CREATE TRIGGER {name} AFTER {event} ON {table} REFERENCING {tables}"
                f" FOR EACH STATEMENT EXECUTE FUNCTION {name}()"
            )
        op.execute(f"ALTER TABLE {table} SET ({TUNED})")

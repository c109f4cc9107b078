"""What this release adds: the search columns and indexes of services, service_pii, service_btc, the
free-text table (SQLite FTS5, PostgreSQL tsvector + GIN), api_keys and scans.checkpoint.

The new columns start empty: Store derives them from each service's record when it opens the index
(leaksonar.store.search.prepare).

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

SQLITE_FULLTEXT = (
    "CREATE VIRTUAL TABLE services_fts USING fts5("
    "summary, collections, fields, tokenize = 'unicode61 remove_diacritics 2')"
)
POSTGRESQL_FULLTEXT = (
    "CREATE TABLE services_fts (rowid INTEGER PRIMARY KEY, summary TEXT, collections TEXT, fields TEXT,"
    " document TSVECTOR GENERATED ALWAYS AS ("
    "setweight(to_tsvector('simple', coalesce(summary, '')), 'A')"
    " || setweight(to_tsvector('simple', coalesce(collections, '')), 'B')"
    " || setweight(to_tsvector('simple', coalesce(fields, '')), 'C')) STORED)",
    "CREATE INDEX ix_services_fts_document ON services_fts USING gin (document)",
)


def upgrade() -> None:
    op.add_column("scans", sa.Column("checkpoint", sa.JSON))
    for column in (
        sa.Column("rank", sa.Integer),
        sa.Column("infected", sa.Boolean),
        sa.Column("collections", sa.Integer),
        sa.Column("country", sa.String(2)),
        sa.Column("asn", sa.BigInteger),
        sa.Column("org", sa.String(200)),
        sa.Column("summary", sa.Text),
    ):
        op.add_column("services", column)
    for name, columns in (
        ("ix_services_country", ["country"]),
        ("ix_services_asn", ["asn"]),
        ("ix_services_rows", ["rows"]),
        ("ix_services_first_seen", ["first_seen"]),
        ("ix_services_software", [sa.text("lower(software)")]),
        ("ix_services_org", [sa.text("lower(org)")]),
        ("ix_services_port", ["port"]),
    ):
        op.create_index(name, "services", columns)
    # the search order; NULLS LAST is SQLite's own order for DESC (and not allowed in its indexes)
    nulls_last = " NULLS LAST" if op.get_bind().dialect.name == "postgresql" else ""
    order = [sa.text('"rank" DESC'), sa.text(f'"rows" DESC{nulls_last}'), "ip_num", "port"]
    op.create_index("ix_services_order", "services", order)
    op.create_index(
        "ix_services_infected",
        "services",
        ["first_seen"],
        sqlite_where=sa.text("infected IS 1"),
        postgresql_where=sa.text("infected IS true"),
    )
    op.create_table(
        "service_pii",
        sa.Column("service_id", sa.Integer, nullable=False),
        sa.Column("category", sa.String(16), nullable=False),
    )
    op.create_index("ix_service_pii_category", "service_pii", ["category", "service_id"])
    op.create_index("ix_service_pii_service", "service_pii", ["service_id"])
    op.create_table(
        "service_btc",
        sa.Column("service_id", sa.Integer, nullable=False),
        sa.Column("address", sa.String(100), nullable=False),
    )
    op.create_index("ix_service_btc_address", "service_btc", ["address", "service_id"])
    op.create_index("ix_service_btc_service", "service_btc", ["service_id"])
    op.create_table(
        "api_keys",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(64), nullable=False, unique=True),
        sa.Column("level", sa.String(8), nullable=False),
        sa.Column("key_sha256", sa.String(64), nullable=False, unique=True),
        sa.Column("created", sa.String(20), nullable=False),
        sa.Column("revoked", sa.String(20)),
    )
    if op.get_bind().dialect.name == "postgresql":
        for statement in POSTGRESQL_FULLTEXT:
            op.execute(statement)
    else:
        op.execute(SQLITE_FULLTEXT)

"""Public facets from indexes alone: the facet fields' indexes of services (protocol, severity, country,
lower(software)) end with the rank, and service_pii gains the rank of its service (filled here; kept in step
by every ingest), at the end of ix_service_pii_category. A public viewer's facets then count the visible set
(leaksonar.store.query.public_only) by scanning the same indexes as an analyst's, not every critical service.
PostgreSQL: the search order's index includes the id, so that a page (a public one skips the critical
services at its start) is read from the index alone.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

FACET_INDEXES = {
    "ix_services_protocol": ["protocol"],
    "ix_services_severity": ["severity"],
    "ix_services_country": ["country"],
    "ix_services_software": [sa.text("lower(software)")],
}


def upgrade() -> None:
    for name, columns in FACET_INDEXES.items():
        op.drop_index(name, table_name="services")
        op.create_index(name, "services", [*columns, "rank"])
    op.add_column("service_pii", sa.Column("rank", sa.Integer))
    op.execute(
        'UPDATE service_pii SET "rank" = '
        '(SELECT "rank" FROM services WHERE services.id = service_pii.service_id)'
    )
    op.drop_index("ix_service_pii_category", table_name="service_pii")
    op.create_index("ix_service_pii_category", "service_pii", ["category", "service_id", "rank"])
    if op.get_bind().dialect.name == "postgresql":  # SQLite's indexes hold the rowid (the id) already
        op.drop_index("ix_services_order", table_name="services")
        order = [sa.text('"rank" DESC'), sa.text('"rows" DESC NULLS LAST'), "ip_num", "port"]
        op.create_index("ix_services_order", "services", order, postgresql_include=["id"])

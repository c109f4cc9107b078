"""TLS: the search columns of a service's TLS and certificate (tls, hostname, cert_sha256, cert_issuer,
cert_expired, cert_self_signed), their indexes, and service_cert_names (each certificate name, also
backwards, so that `cert.name:*.example.cn` is an index range).

Existing services get them from their records, a chunk at a time (a record written before TLS reads
as plaintext: tls false, no certificate).

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from leaksonar.store.search import cert_names, search_columns

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

COLUMNS = ("tls", "hostname", "cert_sha256", "cert_issuer", "cert_expired", "cert_self_signed")
CHUNK = 2000


def upgrade() -> None:
    key = sa.String(253).with_variant(sa.String(253, collation="C"), "postgresql")
    for column in (
        sa.Column("tls", sa.Boolean),
        sa.Column("hostname", sa.String(253)),
        sa.Column("cert_sha256", key),
        sa.Column("cert_issuer", sa.String(200)),
        sa.Column("cert_expired", sa.Boolean),
        sa.Column("cert_self_signed", sa.Boolean),
    ):
        op.add_column("services", column)
    op.create_index("ix_services_cert_issuer", "services", ["cert_issuer", "rank"])
    op.create_index("ix_services_hostname", "services", ["hostname"])
    op.create_index("ix_services_cert_sha256", "services", ["cert_sha256"])
    id_type = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
    op.create_table(
        "service_cert_names",
        sa.Column("service_id", id_type, nullable=False),
        sa.Column("name", key, nullable=False),
        sa.Column("name_reversed", key, nullable=False),
    )
    op.create_index("ix_service_cert_names_name", "service_cert_names", ["name", "service_id"])
    op.create_index("ix_service_cert_names_reversed", "service_cert_names", ["name_reversed", "service_id"])
    op.create_index("ix_service_cert_names_service", "service_cert_names", ["service_id"])
    _derive(op.get_bind())


def _derive(conn: sa.Connection) -> None:
    """The new columns and names of every stored service, from its record, in chunks by id."""
    services = sa.table("services", sa.column("id"), sa.column("record", sa.JSON), *map(sa.column, COLUMNS))
    names = sa.table("service_cert_names", *map(sa.column, ("service_id", "name", "name_reversed")))
    update = (
        services.update()
        .where(services.c.id == sa.bindparam("b_id"))
        .values({name: sa.bindparam(name) for name in COLUMNS})
    )
    last = None
    while True:
        chunk = sa.select(services.c.id, services.c.record).order_by(services.c.id).limit(CHUNK)
        rows = conn.execute(chunk if last is None else chunk.where(services.c.id > last)).all()
        if not rows:
            return
        derived = [(row.id, row.record or {}) for row in rows]
        conn.execute(
            update,
            [{"b_id": i, **{k: v for k, v in search_columns(r).items() if k in COLUMNS}} for i, r in derived],
        )
        found = [
            {"service_id": i, "name": n, "name_reversed": n[::-1]} for i, r in derived for n in cert_names(r)
        ]
        if found:
            conn.execute(names.insert(), found)
        last = rows[-1].id

"""IPv6: every `ip` column holds an IPv6 address (compressed, up to 39 characters; report_history.service
an `[address]:port`), and the 64-bit `ip_num` of hosts and services becomes `ip_key`, the order key of
leaksonar.store.addresses (the version, then the address in fixed-width hex; PostgreSQL's "C" collation
compares it byte by byte), indexed, and in the search order's index in place of ip_num.

Existing rows get their key here, a chunk of addresses at a time. SQLite cannot change a column's type or
make one NOT NULL: its tables are rebuilt (alembic's batch mode), and the indexes on expressions or with a
WHERE, which a rebuild would not reflect, are made again.

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from leaksonar.store.addresses import address_key

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

IP = sa.String(39)
KEY = sa.String(33).with_variant(sa.String(33, collation="C"), "postgresql")
OLD_IP = sa.String(15)
CHUNK = 2000
ORDER = [sa.text('"rank" DESC'), sa.text('"rows" DESC NULLS LAST'), "ip_key", "port"]
SQLITE_REMADE = ("ix_services_software", "ix_services_org", "ix_services_infected", "ix_services_order")
"""Services indexes a SQLite rebuild would lose (expressions, a WHERE, DESC): dropped first, made again."""


def upgrade() -> None:
    sqlite = op.get_bind().dialect.name == "sqlite"
    for table in ("hosts", "services"):
        op.add_column(table, sa.Column("ip_key", KEY))
        _fill(op.get_bind(), table)
    op.drop_index("ix_hosts_ip_num", table_name="hosts")
    op.drop_index("ix_services_ip_num", table_name="services")
    for name in SQLITE_REMADE if sqlite else ("ix_services_order",):
        op.drop_index(name, table_name="services")
    for table in ("hosts", "services", "findings", "events", "report_history"):
        with op.batch_alter_table(table, recreate="always" if sqlite else "never") as batch:
            if table == "report_history":
                batch.alter_column(
                    "service", type_=sa.String(48), existing_type=sa.String(24), nullable=False
                )
                continue
            batch.alter_column("ip", type_=IP, existing_type=OLD_IP, nullable=False)
            if table in ("hosts", "services"):
                batch.alter_column("ip_key", existing_type=KEY, nullable=False)
                batch.drop_column("ip_num")
    op.create_index("ix_hosts_ip_key", "hosts", ["ip_key"])
    op.create_index("ix_services_ip_key", "services", ["ip_key"])
    if sqlite:
        op.create_index("ix_services_software", "services", [sa.text("lower(software)"), "rank"])
        op.create_index("ix_services_org", "services", [sa.text("lower(org)")])
        op.create_index(
            "ix_services_infected", "services", ["first_seen"], sqlite_where=sa.text("infected IS 1")
        )
        op.create_index(
            "ix_services_order", "services", [sa.text('"rank" DESC'), sa.text('"rows" DESC'), *ORDER[2:]]
        )
    else:
        op.create_index("ix_services_order", "services", ORDER, postgresql_include=["id"])


def _fill(conn: sa.Connection, name: str) -> None:
    """`ip_key` of every row of `name` (hosts or services), from its address, a chunk of addresses at a
    time."""
    table = sa.table(name, sa.column("ip"), sa.column("ip_key"))
    update = table.update().where(table.c.ip == sa.bindparam("b_ip")).values(ip_key=sa.bindparam("b_key"))
    last = None
    while True:
        chunk = sa.select(table.c.ip).distinct().order_by(table.c.ip).limit(CHUNK)
        addresses = conn.execute(chunk if last is None else chunk.where(table.c.ip > last)).scalars().all()
        if not addresses:
            return
        conn.execute(update, [{"b_ip": ip, "b_key": address_key(ip)} for ip in addresses])
        last = addresses[-1]

"""Web sessions: the UI's sign-in keeps a random token's SHA-256 here (never the API key in a cookie).

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "sessions",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("token_sha256", sa.String(64), nullable=False, unique=True),
        sa.Column("key_id", sa.Integer, nullable=False),
        sa.Column("created", sa.String(20), nullable=False),
        sa.Column("expires", sa.String(20), nullable=False),
    )
    op.create_index("ix_sessions_key_id", "sessions", ["key_id"])
    op.create_index("ix_sessions_expires", "sessions", ["expires"])

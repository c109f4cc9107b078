"""Alembic environment: migrations run on the connection `leaksonar.store.migrations.upgrade` passes."""

from __future__ import annotations

from alembic import context

context.configure(connection=context.config.attributes["connection"])
with context.begin_transaction():
    context.run_migrations()

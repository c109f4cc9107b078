"""`leaksonar db current|upgrade`: the index's schema."""

from __future__ import annotations

import typer

from leaksonar.cli.common import DbOption, fail, open_store

db_app = typer.Typer(no_args_is_help=True, help="The index's schema (migrations).")


@db_app.command("current")
def db_current(db: DbOption = None) -> None:
    """Print the index's schema revision and whether it is this version's, without changing it."""
    from leaksonar.store.db import StoreError, schema_revision
    from leaksonar.store.migrations import HEAD, REVISIONS

    try:
        revision = schema_revision(db)
    except StoreError as exc:
        fail(str(exc))
    if revision == HEAD:
        typer.echo(f"{revision} (current)")
    elif revision is None or revision in REVISIONS:
        typer.echo(f"{revision or 'none'} (opening it, or `leaksonar db upgrade`, migrates it to {HEAD})")
    else:
        typer.echo(f"{revision} (from a newer leaksonar; this one has {HEAD})")


@db_app.command("upgrade")
def db_upgrade(db: DbOption = None) -> None:
    """Migrate the index to this version's schema, keeping its rows (any command opening it does too)."""
    from leaksonar.store.migrations import HEAD

    open_store(db, create=True).close()
    typer.echo(f"{HEAD} (current)")

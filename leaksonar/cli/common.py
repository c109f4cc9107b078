"""What every command group shares: the one-line error, the index option and opening the index."""

from __future__ import annotations

import gc
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NoReturn

import typer

from leaksonar.store import DB_ENV

if TYPE_CHECKING:
    from leaksonar.notify.rules import AlertConfig
    from leaksonar.store.db import Store

DbOption = Annotated[
    str | None,
    typer.Option("--db", help=f"Index: SQLite path or database URL [env {DB_ENV}; default: user data dir]."),
]
JsonFlag = Annotated[bool, typer.Option("--json", help="Machine-readable JSON on stdout.")]


def fail(message: str, code: int = 2) -> NoReturn:
    """One-line error on stderr, then exit (2: bad input)."""
    typer.echo(f"leaksonar: error: {message}", err=True)
    raise typer.Exit(code)


def open_store(db: str | None) -> Store:
    from leaksonar.store.db import Store, StoreError  # SQLAlchemy: loaded once a command needs the index

    gc.freeze()  # as at start-up: its modules live until exit, and the collector need not walk them
    try:
        return Store(db)
    except StoreError as exc:
        fail(str(exc))


def split_address(address: str) -> tuple[str, int | None]:
    """`IP` or `IP:PORT`; bad input fails."""
    host, _, port_text = address.partition(":")
    try:
        return host, int(port_text) if port_text else None
    except ValueError:
        fail(f"{address!r} is not IP or IP:PORT")


def alert_config(path: Path) -> AlertConfig:
    """The alert rules and channels in `path`; a bad file fails."""
    from leaksonar.notify.rules import ConfigError, load_config

    try:
        return load_config(path)
    except ConfigError as exc:
        fail(str(exc))

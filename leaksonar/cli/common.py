"""What every command group shares: the one-line error, the index option, opening the index and stopping."""

from __future__ import annotations

import math
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer

from leaksonar.sanitize import for_json, for_terminal
from leaksonar.store import DB_ENV
from leaksonar.targets import parse_address
from leaksonar.terminal import echo

if TYPE_CHECKING:
    from leaksonar.notify.rules import AlertConfig
    from leaksonar.store.db import Store

DbOption = Annotated[
    str | None,
    typer.Option("--db", help=f"Index: SQLite path or database URL [env {DB_ENV}; default: user data dir]."),
]
JsonFlag = Annotated[bool, typer.Option("--json", help="Machine-readable JSON on stdout.")]

EXTRAS = {
    "lab": {"faker", "mmdb_writer", "osmem_server", "pymemcache", "redis"},
    "distributed": {"celery", "kombu", "redis"},
    "misp": {"pymisp"},
}
"""The optional extras of the package (pyproject.toml) -> the top-level modules of theirs leaksonar
imports (the lab's stand-in servers run as programs)."""


MAX_WHOLE = 2**63 - 1
"""Largest whole number an option takes unless it says less: what a 64-bit column or SQL LIMIT holds."""
MAX_SECONDS = 86_400 * 36_500
"""Largest number of seconds an option takes (about 100 years, as `formats.MAX_DAYS`)."""


def whole(help: str, *decls: str, least: int = 0, most: int = MAX_WHOLE, **more: Any) -> Any:
    """The one definition of a whole-number option: from `least` to `most` (a number past either is
    refused, exit 2, before it reaches the index, a timer or a sum)."""
    return typer.Option(*decls, min=least, max=most, help=help, **more)


def _plain(value: float) -> str:
    """3,153,600,000 or 0.05: no exponent."""
    return f"{value:,.0f}" if float(value).is_integer() else f"{value:g}"


def number(
    help: str, *decls: str, least: float, most: float = MAX_SECONDS, above: bool = False, **more: Any
) -> Any:
    """The one definition of a decimal-number option: a finite number from `least` (`above`: more than
    `least`) to `most`; NaN, infinities and numbers out of range are refused (exit 2)."""
    lowest = f"more than {_plain(least)}" if above else f"at least {_plain(least)}"

    def parse(text: str | float) -> float:
        try:
            value = float(text)
        except ValueError:
            raise typer.BadParameter(f"{str(text)[:40]!r} is not a number") from None
        if not (math.isfinite(value) and (value > least if above else value >= least) and value <= most):
            raise typer.BadParameter(
                f"{str(text)[:40]!r} is not a number {lowest} and at most {_plain(most)}"
            )
        return value

    return typer.Option(*decls, parser=parse, metavar="NUMBER", help=help, **more)


def fail(message: str, code: int = 2) -> NoReturn:
    """One-line error on stderr, then exit (2: bad input); what the message quotes (a server's or a file's
    text) cannot act on the terminal or start another line."""
    echo(f"leaksonar: error: {for_terminal(message)}", err=True)
    raise typer.Exit(code)


def echo_json(value: Any, indent: int | None = 2) -> None:
    """`value` as JSON on stdout, exact and inert (`for_json`)."""
    echo(for_json(value, indent=indent))


@contextmanager
def needs_extra(extra: str, command: str) -> Iterator[None]:
    """Fail in one line (exit 2) when an import in the block misses a module of `extra`, which `command`
    needs."""
    try:
        yield
    except ModuleNotFoundError as exc:
        if (exc.name or "").partition(".")[0] not in EXTRAS[extra]:
            raise
        fail(f"{command!r} needs the {extra} extra: pip install 'leaksonar[{extra}]'")


def open_store(db: str | None, *, create: bool = False) -> Store:
    """The index `db` (see `open_index`); one that cannot be opened fails, and so does a missing one unless
    `create` (only commands that write findings or keys make an index: a reading one creates nothing)."""
    from leaksonar.run.job import open_index
    from leaksonar.store import StoreError

    try:
        return open_index(db, create=create)
    except StoreError as exc:
        fail(str(exc))


def _as_ctrl_c(_signal: int, frame: FrameType | None) -> None:
    on_ctrl_c = signal.getsignal(signal.SIGINT)
    if on_ctrl_c == signal.SIG_DFL:
        signal.raise_signal(signal.SIGINT)  # a forked discovery worker: it ends as Ctrl-C ends it
    elif callable(on_ctrl_c):
        on_ctrl_c(signal.SIGINT, frame)  # KeyboardInterrupt, or asyncio's: the running scan is cancelled
    else:
        raise KeyboardInterrupt  # Ctrl-C is ignored (started in the background); SIGTERM still stops


def stop_on_sigterm() -> None:
    """Handle SIGTERM (a service manager's stop, `kill`) as Ctrl-C: a long-running command stops the same way,
    with what it did so far stored. Processes forked later (discovery workers) inherit it."""
    signal.signal(signal.SIGTERM, _as_ctrl_c)


def split_address(address: str) -> tuple[str, int | None]:
    """`IP` or `IP:PORT` (a port from 0 to 65535; an IPv6 address alone or as `[IP]:PORT`), the address
    as the index writes it; bad input fails."""
    bad = f"{address[:80]!r} is not IP or IP:PORT (a port from 0 to 65535)"
    if address.startswith("[") and "]" in address:
        host, rest = address[1:].split("]", 1)
        if rest and not rest.startswith(":"):
            fail(bad)
        port_text = rest[1:]
    elif address.count(":") > 1:  # an IPv6 address without a port
        host, port_text = address, ""
    else:
        host, _, port_text = address.partition(":")
    if port_text and not (
        port_text.isascii() and port_text.isdigit() and len(port_text) <= 5 and int(port_text) <= 65535
    ):
        fail(bad)
    try:
        ip = str(parse_address(host))
    except ValueError:
        fail(f"{host[:80]!r} is not an IP address")
    return ip, int(port_text) if port_text else None


def alert_config(path: Path) -> AlertConfig:
    """The alert rules and channels in `path`; a bad file fails."""
    from leaksonar.notify.rules import ConfigError, load_config

    try:
        return load_config(path)
    except ConfigError as exc:
        fail(str(exc))


def parse_every(every: str) -> timedelta:
    """`--every`: 90s, 15m, 1h, 1h30m, 1d; bad input fails."""
    from leaksonar.formats import parse_duration

    try:
        return parse_duration(every)
    except ValueError as exc:
        fail(f"--every: {exc}")

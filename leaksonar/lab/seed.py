"""What the kinds' seeders share: where a started server listens, and what a seeder returns.

Each kind loads its own data (see `leaksonar.lab.kinds`) and returns what it loaded, in the manifest's
naming: the server's version and the databases with their collections and row counts.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from leaksonar.lab.data import Table


@dataclass(frozen=True, slots=True)
class Target:
    """Where a freshly started server listens, and how the loader gets in."""

    ip: str
    port: int
    password: str | None = None
    socket: Path | None = None
    """MariaDB: the unix socket (inside the lab dir) used as the initial passwordless root."""
    tls: bool = False
    """The server speaks TLS (the loader connects over it, without verifying the certificate)."""


@dataclass(frozen=True, slots=True)
class Seeded:
    version: str
    databases: list[dict[str, Any]]
    keys: list[str] | None = None
    attack: dict[str, Any] | None = None
    """Attacked services: what the attacker left, in the manifest's form (see `attack`)."""


def database(name: str, collections: dict[str, int]) -> dict[str, Any]:
    """A manifest database: its name and its collections with their row counts."""
    return {"name": name, "collections": [{"name": c, "rows": n} for c, n in collections.items()]}


def files_per_top(paths: Iterable[str], empty: Iterable[str] = ()) -> dict[str, int]:
    """A file store's manifest collections: files per top directory, as the file-store kit makes them
    (the files at the root under `filestore.ROOT`), sorted; each of `empty` counts 0."""
    from leaksonar.protocols.filestore import ROOT  # the protocols: only for the kinds that need them

    tops = dict.fromkeys(empty, 0)
    for path in paths:
        top = path.split("/", 1)[0] if "/" in path else ROOT
        tops[top] = tops.get(top, 0) + 1
    return dict(sorted(tops.items()))


def attack(
    kind: str,
    places: Iterable[dict[str, str]],
    *,
    wiped: bool,
    btc_addresses: Iterable[str] = (),
    emails: Iterable[str] = (),
    onion: Iterable[str] = (),
    amount_btc: float | None = None,
) -> dict[str, Any]:
    """The manifest's `attack`: the kind of attack, whether every collection was replaced by a note
    (`wiped`), where the attacker's notes or planted keys are, and what the notes ask and name."""
    return {
        "infected": True,
        "kind": kind,
        "wiped": wiped,
        "places": list(places),
        "btc_addresses": list(btc_addresses),
        "emails": list(emails),
        "onion": list(onion),
        "amount_btc": amount_btc,
    }


def ddl(name: str, table: Table) -> str:
    """CREATE TABLE for a synthetic table (SQL kinds)."""
    return f"CREATE TABLE {name} ({', '.join(f'{c} {t}' for c, t in table.columns)})"

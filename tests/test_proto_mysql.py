"""MySQL/MariaDB: `match` on real greetings, inspection of the lab servers, and hostile servers."""

from __future__ import annotations

import asyncio
import random
import socket
import struct
from typing import Any

import hostile
import pytest

from leaksonar.lab import lab_digest
from leaksonar.model import ErrorKind, Identity, Inspection, Limits, Software
from leaksonar.protocols.base import Endpoint
from leaksonar.protocols.mysql import PROTOCOL, quote_ident, software

# What MariaDB 10.11.19 (Debian) sends first, captured on loopback.
MARIADB_GREETING = (
    b"d\x00\x00\x00\n5.5.5-10.11.19-MariaDB-0+deb12u1\x00\x05\x00\x00\x00x'V]PXJK\x00\xfe\xf7\x08\x02\x00"
    b"\xff\x81\x15\x00\x00\x00\x00\x00\x00\x1d\x00\x00\x00x;]@jt(fM-8p\x00mysql_native_password\x00"
)
HOST_NOT_ALLOWED = b"E\x00\x00\x00\xffj\x04Host '127.66.1.9' is not allowed to connect to this MariaDB server"

SYSTEM_SCHEMAS = ("mysql", "information_schema", "performance_schema", "sys")


def _packet(payload: bytes, seq: int = 0) -> bytes:
    return len(payload).to_bytes(3, "little") + bytes([seq]) + payload


def _greeting(version: bytes, plugin: bytes = b"caching_sha2_password") -> bytes:
    """A protocol 10 handshake laid out as the MySQL protocol documentation describes it (no MySQL
    server is packaged here to capture one from)."""
    return _packet(
        b"\x0a"
        + version
        + b"\x00"
        + struct.pack("<I", 8)
        + b"abcdefgh\x00"
        + b"\xff\xff\xff\x02\x00\xff\xdf\x15"
        + b"\x00" * 10
        + b"ijklmnopqrst\x00"
        + plugin
        + b"\x00"
    )


@pytest.mark.parametrize(
    ("reply", "name", "version", "banner"),
    [
        (MARIADB_GREETING, "mariadb", "10.11.19", "5.5.5-10.11.19-MariaDB-0+deb12u1"),
        (_greeting(b"8.0.36"), "mysql", "8.0.36", "8.0.36"),
        (_greeting(b"5.7.44-log", b"mysql_native_password"), "mysql", "5.7.44", "5.7.44-log"),
        (_greeting(b"11.4.2-MariaDB-ubu2404"), "mariadb", "11.4.2", "11.4.2-MariaDB-ubu2404"),
        (HOST_NOT_ALLOWED, "mariadb", None, "1130 Host '127.66.1.9' is not allowed"),
        (_packet(b"\xff\x10\x04#08004Too many connections"), None, None, "1040 Too many connections"),
    ],
)
def test_match_recognises_greetings_and_refusals(
    reply: bytes, name: str | None, version: str | None, banner: str
) -> None:
    identity = PROTOCOL.match(reply)
    assert identity is not None
    assert (identity.protocol, identity.auth) == ("mysql", "unknown")
    assert identity.software == (Software(name, version) if name else None)
    assert identity.banner.startswith(banner)


@pytest.mark.parametrize(
    "reply",
    [
        b"",
        b"\x00\x00\x00\x00",
        b"\x00\x00\x00\x00\x0a",  # an empty packet
        MARIADB_GREETING[:30],
        MARIADB_GREETING[:3] + b"\x01" + MARIADB_GREETING[4:],  # a greeting must have sequence 0
        _greeting(b"not a version"),
        _packet(b"\x0a" + b"8.0.36"),  # version never terminated
        _packet(b"\xff\x05\x00oops"),  # error code below 1000
        _packet(b"\xff\x6a\x04"),  # error without a message
        _packet(b"\xff\x6a\x04bad\x00bytes"),
    ],
)
def test_match_rejects_other_replies(reply: bytes) -> None:
    assert PROTOCOL.match(reply) is None


def test_match_rejects_random_bytes() -> None:
    rng = random.Random(3306)
    replies = [rng.randbytes(rng.randrange(1, 200)) for _ in range(5000)]
    assert [r for r in replies if PROTOCOL.match(r)] == []


@pytest.mark.parametrize(
    ("version", "expected"),
    [
        ("5.5.5-10.11.19-MariaDB-0+deb12u1", Software("mariadb", "10.11.19")),
        ("10.6.18-MariaDB", Software("mariadb", "10.6.18")),
        ("8.0.36-0ubuntu0.22.04.1", Software("mysql", "8.0.36")),
        ("8.4.0", Software("mysql", "8.4.0")),
    ],
)
def test_software_from_server_version(version: str, expected: Software) -> None:
    assert software(version) == expected


def test_server_speaks_first() -> None:
    assert PROTOCOL.probe is None and PROTOCOL.default_ports == (3306,)


def test_quote_ident_doubles_backquotes() -> None:
    assert quote_ident("a`; DROP TABLE x; --") == "`a``; DROP TABLE x; --`"


# --- the lab -------------------------------------------------------------------------------------


def _services(lab: dict[str, Any], auth: str) -> list[dict[str, Any]]:
    found = [s for s in lab["services"] if s["protocol"] == "mysql" and s["auth"] == auth]
    assert found, f"the lab has no mysql service with auth {auth}"
    return found


def _greeting_of(service: dict[str, Any]) -> bytes:
    with socket.create_connection((service["ip"], service["port"]), timeout=3) as conn:
        return conn.recv(4096)


def _inspect(service: dict[str, Any], limits: Limits) -> Inspection:
    identity = PROTOCOL.match(_greeting_of(service))
    assert identity is not None
    return asyncio.run(PROTOCOL.inspect(Endpoint(service["ip"], service["port"]), identity, limits))


def test_live_greetings_match(lab: dict[str, Any]) -> None:
    for service in [*_services(lab, "none"), *_services(lab, "required")]:
        identity = PROTOCOL.match(_greeting_of(service))
        assert identity is not None and identity.software is not None
        assert identity.software.name == service["software"]["name"]
        assert identity.software.version == service["software"]["version"]


def test_open_server_is_inspected_as_the_manifest_says(lab: dict[str, Any]) -> None:
    for service in _services(lab, "none"):
        before = lab_digest(service)
        found = _inspect(service, Limits(value_chars=8))
        assert lab_digest(service) == before
        assert found.protocol == "mysql"
        assert found.software == Software(service["software"]["name"], service["software"]["version"])
        assert (found.auth, found.exposed, found.errors) == ("none", True, ())
        rows = {(c.database, c.name): c.rows for c in found.collections}
        expected = {
            (db["name"], c["name"]): c["rows"] for db in service["databases"] for c in db["collections"]
        }
        assert {key: rows.get(key) for key in expected} == expected
        assert not [c for c in found.collections if c.database in SYSTEM_SCHEMAS]
        assert found.databases is not None and found.databases >= len(service["databases"])
        assert found.rows == sum(rows.values())
        assert not found.rows_estimated and not [c for c in found.collections if c.rows_estimated]
        assert found.size_bytes and found.size_bytes > 0
        assert all(c.fields for c in found.collections)
        values = [v for s in found.samples for d in s.documents for v in d.values() if v is not None]
        assert values and max(len(v) for v in values) == 8


def test_caps_are_applied_and_reported(lab: dict[str, Any]) -> None:
    service = _services(lab, "none")[0]
    found = _inspect(service, Limits(max_collections=1, sample_rows=2))
    assert len(found.collections) == 1
    assert ErrorKind.OVER_LIMIT in {e.kind for e in found.errors}
    assert all(len(s.documents) <= 2 for s in found.samples)
    assert not found.collections[0].rows_estimated and found.rows_estimated  # the other tables: uncounted
    found = _inspect(service, Limits(max_databases=1))
    assert len({c.database for c in found.collections}) == 1
    assert ErrorKind.OVER_LIMIT in {e.kind for e in found.errors}
    assert found.rows_estimated


def test_large_tables_take_the_server_estimate(lab: dict[str, Any]) -> None:
    """information_schema.TABLES.TABLE_ROWS: InnoDB's estimate, marked as one."""
    service = _services(lab, "none")[0]
    found = _inspect(service, Limits(exact_count_below=0, sample_rows=0))
    seeded = [(db["name"], c["name"]) for db in service["databases"] for c in db["collections"]]
    estimated = {(c.database, c.name): c.rows_estimated for c in found.collections if c.rows is not None}
    assert {key: estimated.get(key) for key in seeded} == dict.fromkeys(seeded, True)
    assert found.rows_estimated and found.samples == ()


def test_protected_server_is_not_exposed(lab: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    for service in _services(lab, "required"):
        monkeypatch.setenv("MYSQL_PWD", service["credentials"]["password"])  # never used
        found = _inspect(service, Limits())
        assert (found.protocol, found.auth, found.exposed) == ("mysql", "required", False)
        assert found.software is not None and found.software.name == service["software"]["name"]
        assert found.collections == () and found.samples == () and found.rows is None


# --- hostile servers -----------------------------------------------------------------------------


_greets_then_silent = hostile.sends(MARIADB_GREETING)
"""A real greeting, then no answer to the login."""
_huge_greeting = hostile.sends(b"\xff\xff\xff\x00\x0a8.0.36\x00")
"""Announce a 16 MB greeting and send only its first bytes."""


@pytest.mark.parametrize("handler", [hostile.silent, _greets_then_silent, _huge_greeting])
def test_hostile_server_cannot_hang_or_crash_the_inspection(handler: hostile.Handler) -> None:
    limits = Limits(timeout=0.5, service_budget=5.0)
    found, elapsed = hostile.run(PROTOCOL, handler, Identity("mysql"), limits)
    assert elapsed < limits.timeout + 2
    assert found.auth == "unknown" and not found.exposed
    assert found.errors and found.collections == ()

"""PostgreSQL: `match` on real reply bytes, inspection of the lab servers, and hostile servers."""

from __future__ import annotations

import asyncio
import random
import socket
import struct
import time
from pathlib import Path
from typing import Any

import hostile
import pytest

from leaksonar.lab import lab_digest
from leaksonar.model import ErrorKind, Identity, Inspection, Limits
from leaksonar.protocols.base import Endpoint
from leaksonar.protocols.postgres import PROTOCOL, quote_ident
from leaksonar.protocols.sql import Table, counts_exactly, document

# Replies of PostgreSQL 15.18 (Debian 15.18-0+deb12u1) to PROTOCOL.probe, captured on loopback.
TRUST = (
    b"R\x00\x00\x00\x08\x00\x00\x00\x00S\x00\x00\x00\x1fapplication_name\x00leaksonar\x00S\x00\x00\x00"
    b"\x19client_encoding\x00UTF8\x00S\x00\x00\x00\x17DateStyle\x00ISO, MDY\x00S\x00\x00\x00&"
    b"default_transaction_read_only\x00off\x00S\x00\x00\x00\x17in_hot_standby\x00off\x00S\x00\x00\x00"
    b"\x19integer_datetimes\x00on\x00S\x00\x00\x00\x1bIntervalStyle\x00postgres\x00S\x00\x00\x00\x14"
    b"is_superuser\x00on\x00S\x00\x00\x00\x19server_encoding\x00UTF8\x00S\x00\x00\x002server_version"
    b"\x0015.18 (Debian 15.18-0+deb12u1)\x00S\x00\x00\x00#session_authorization\x00postgres\x00S\x00"
    b"\x00\x00#standard_conforming_strings\x00on\x00S\x00\x00\x00\x15TimeZone\x00Etc/UTC\x00K\x00\x00"
    b"\x00\x0c\x00\x00\x13\xec\x9a\x12\xdfXZ\x00\x00\x00\x05I"
)
SCRAM = b"R\x00\x00\x00\x17\x00\x00\x00\nSCRAM-SHA-256\x00\x00"
MD5 = b"R\x00\x00\x00\x0c\x00\x00\x00\x05$3\xe7j"
CLEARTEXT = b"R\x00\x00\x00\x08\x00\x00\x00\x03"
NO_HBA_ENTRY = (
    b'E\x00\x00\x00\x9eSFATAL\x00VFATAL\x00C28000\x00Mno pg_hba.conf entry for host "127.66.1.9", user '
    b'"postgres", database "postgres", no encryption\x00Fauth.c\x00L544\x00RClientAuthentication\x00\x00'
)
HBA_REJECT = (
    b'E\x00\x00\x00\xa8SFATAL\x00VFATAL\x00C28000\x00Mpg_hba.conf rejects connection for host "127.66.1.6", '
    b'user "postgres", database "postgres", no encryption\x00Fauth.c\x00L476\x00RClientAuthentication'
    b"\x00\x00"
)
NO_SUCH_DATABASE = (
    b'R\x00\x00\x00\x08\x00\x00\x00\x00E\x00\x00\x00]SFATAL\x00VFATAL\x00C3D000\x00Mdatabase "nosuchdb" '
    b"does not exist\x00Fpostinit.c\x00L948\x00RInitPostgres\x00\x00"
)
NOT_ACCEPTING = (
    b'E\x00\x00\x00wSFATAL\x00VFATAL\x00C55000\x00Mdatabase "nologin" is not currently accepting '
    b"connections\x00Fpostinit.c\x00L350\x00RCheckMyDatabase\x00\x00"
)

SYSTEM_SCHEMAS = ("pg_catalog.", "information_schema.", "pg_toast")


@pytest.mark.parametrize(
    ("reply", "auth", "version", "banner"),
    [
        (TRUST, "none", "15.18", "AuthenticationOk"),
        (TRUST[:9], "none", None, "AuthenticationOk"),
        (NO_SUCH_DATABASE, "none", None, "AuthenticationOk"),
        (SCRAM, "required", None, "AuthenticationSASL SCRAM-SHA-256"),
        (MD5, "required", None, "AuthenticationMD5Password"),
        (CLEARTEXT, "required", None, "AuthenticationCleartextPassword"),
        (NO_HBA_ENTRY, "required", None, '28000 no pg_hba.conf entry for host "127.66.1.9"'),
        (HBA_REJECT, "required", None, "28000 pg_hba.conf rejects connection"),
        (NOT_ACCEPTING, "unknown", None, '55000 database "nologin" is not currently accepting'),
    ],
)
def test_match_recognises_real_replies(reply: bytes, auth: str, version: str | None, banner: str) -> None:
    identity = PROTOCOL.match(reply)
    assert identity is not None
    assert identity.protocol == "postgresql"
    assert identity.auth == auth
    assert identity.software is not None
    assert (identity.software.name, identity.software.version) == ("postgresql", version)
    assert identity.banner.startswith(banner)


@pytest.mark.parametrize(
    "reply",
    [
        b"",
        b"R",
        TRUST[:8],
        SCRAM[:-1],
        b"R\x00\x00\x00\x08\x00\x00\x00\x04",  # an authentication code that does not exist
        b"R\x00\x00\x00\x0c\x00\x00\x00\x00\x00\x00\x00\x00",  # AuthenticationOk with a trailing body
        b"E\x00\x00\x00\x0cSFATAL\x00\x00",  # no SQLSTATE
        b"E\x00\x00\x00\x14SFATAL\x00C2800\x00Mx\x00\x00",  # malformed SQLSTATE
    ],
)
def test_match_rejects_other_replies(reply: bytes) -> None:
    assert PROTOCOL.match(reply) is None


def test_match_rejects_random_bytes() -> None:
    rng = random.Random(5432)
    replies = [rng.randbytes(rng.randrange(1, 200)) for _ in range(5000)]
    assert [r for r in replies if PROTOCOL.match(r)] == []


def test_probe_is_a_protocol_3_startup_message() -> None:
    probe = PROTOCOL.probe
    length, version = struct.unpack("!II", probe[:8])
    assert length == len(probe) and version == 3 << 16
    assert probe[8:] == b"user\0postgres\0database\0postgres\0application_name\0leaksonar\0\0"
    assert PROTOCOL.default_ports == (5432,)


def test_quote_ident_doubles_quotes() -> None:
    assert quote_ident('a"; DROP TABLE x; --') == '"a""; DROP TABLE x; --"'


# --- shared SQL helpers --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("estimate", "size_bytes", "exact"),
    [
        (999, None, True),
        (1000, None, False),
        (None, 999 * 32, True),
        (None, 1000 * 32, False),
        (None, None, False),
    ],
)
def test_rows_are_counted_exactly_only_when_few(
    estimate: int | None, size_bytes: int | None, exact: bool
) -> None:
    table = Table("db", "t", '"t"', estimate, size_bytes, ("a",))
    assert counts_exactly(table, Limits(exact_count_below=1000)) is exact


def test_sampled_values_become_short_text() -> None:
    row = document(("a", "b", "c", "d"), ("abcdef", b"\xffxyz", None, 12345), 3)
    assert row == {"a": "abc", "b": "\ufffdxy", "c": None, "d": "123"}


# --- the lab -------------------------------------------------------------------------------------


def _services(lab: dict[str, Any], auth: str) -> list[dict[str, Any]]:
    found = [s for s in lab["services"] if s["protocol"] == "postgresql" and s["auth"] == auth]
    assert found, f"the lab has no postgresql service with auth {auth}"
    return found


def _live_reply(service: dict[str, Any]) -> bytes:
    with socket.create_connection((service["ip"], service["port"]), timeout=3) as conn:
        conn.sendall(PROTOCOL.probe)
        time.sleep(0.2)
        return conn.recv(4096)


def _inspect(service: dict[str, Any], limits: Limits) -> Inspection:
    endpoint = Endpoint(service["ip"], service["port"], starttls=bool(service.get("tls")))
    return asyncio.run(PROTOCOL.inspect(endpoint, Identity("postgresql"), limits))


def test_live_replies_match_with_the_lab_auth(lab: dict[str, Any]) -> None:
    """In plaintext; a server that insists on TLS refuses it as it would a password-less login."""
    for service in [*_services(lab, "none"), *_services(lab, "required")]:
        identity = PROTOCOL.match(_live_reply(service))
        insists = (service.get("tls") or {}).get("required", False)
        assert identity is not None and identity.auth == ("required" if insists else service["auth"])
        assert ("no encryption" in identity.banner) is insists


def test_open_server_is_inspected_as_the_manifest_says(lab: dict[str, Any]) -> None:
    for service in _services(lab, "none"):
        before = lab_digest(service)
        found = _inspect(service, Limits(value_chars=8))
        assert lab_digest(service) == before
        assert found.protocol == "postgresql"
        assert found.software is not None
        assert (found.software.name, found.software.version) == (
            service["software"]["name"],
            service["software"]["version"],
        )
        assert (found.auth, found.exposed, found.errors) == ("none", True, ())
        rows = {(c.database, c.name): c.rows for c in found.collections}
        expected = {
            (db["name"], c["name"]): c["rows"] for db in service["databases"] for c in db["collections"]
        }
        assert {key: rows.get(key) for key in expected} == expected
        assert not [c for c in found.collections if c.name.startswith(SYSTEM_SCHEMAS)]
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
    [table] = found.collections
    assert not table.rows_estimated and found.rows_estimated  # counted, but the other tables were not


def test_large_tables_take_the_server_estimate(lab: dict[str, Any]) -> None:
    service = _services(lab, "none")[0]
    found = _inspect(service, Limits(exact_count_below=0, sample_rows=0))
    rows = {(c.database, c.name): c.rows for c in found.collections}
    for db in service["databases"]:
        for c in db["collections"]:
            assert abs(rows[db["name"], c["name"]] - c["rows"]) <= c["rows"] * 0.1
    assert all(c.rows_estimated for c in found.collections) and found.rows_estimated
    assert found.samples == ()


def test_protected_server_is_not_exposed(
    lab: dict[str, Any], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    for service in _services(lab, "required"):
        password = service["credentials"]["password"]
        passfile = tmp_path / "pgpass"
        passfile.write_text(f"*:*:*:*:{password}\n")
        passfile.chmod(0o600)
        monkeypatch.setenv("PGPASSWORD", password)  # a password lying around is never used
        monkeypatch.setenv("PGPASSFILE", str(passfile))
        found = _inspect(service, Limits())
        assert (found.protocol, found.auth, found.exposed) == ("postgresql", "required", False)
        assert found.collections == () and found.samples == () and found.rows is None


# --- hostile servers -----------------------------------------------------------------------------


async def _ok_then_silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """AuthenticationOk to any StartupMessage, then nothing more (never ReadyForQuery)."""
    length = int.from_bytes(await reader.readexactly(4), "big")
    await reader.readexactly(length - 4)
    writer.write(TRUST[:9])
    await reader.read()
    writer.close()


_huge = hostile.sends(b"R\x7f\xff\xff\xff")
"""Announce a 2 GB first message."""


@pytest.mark.parametrize("handler", [hostile.silent, _ok_then_silent, _huge])
def test_hostile_server_cannot_hang_or_crash_the_inspection(handler: hostile.Handler) -> None:
    limits = Limits(timeout=0.5, service_budget=5.0)
    found, elapsed = hostile.run(PROTOCOL, handler, Identity("postgresql"), limits)
    assert elapsed < limits.timeout + 2
    assert found.auth == "unknown" and not found.exposed
    assert found.errors and found.collections == ()

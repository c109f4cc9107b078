"""The lab's TLS services, scanned with the rest of the lab: each is found with the same facts as its
plaintext twin (same server, same data) plus the certificate it presents."""

from __future__ import annotations

import json
from typing import Any

import pytest

from leaksonar.lab import service as lab_entry
from tests.conftest import leaksonar

SAME_FACTS = ("protocol", "software", "auth", "exposed", "rows_estimated", "severity")
"""Compared whole; of the dataset everything but the size on disk (two servers store the same rows in
slightly different sizes), of the personal data the categories (not for Redis: it samples random keys)."""


def tls_services(lab: dict[str, Any]) -> list[dict[str, Any]]:
    return [s for s in lab["services"] if s.get("tls")]


def record_of(scanned: dict[str, Any], service: dict[str, Any]) -> dict[str, Any]:
    return scanned["records"][(service["ip"], service["port"])]


def test_the_lab_has_tls_services_of_every_kind(lab: dict[str, Any]) -> None:
    protocols = {s["protocol"] for s in tls_services(lab)}
    assert {"elasticsearch", "kibana", "postgresql", "redis", "mysql"} <= protocols


def test_every_tls_service_is_found_as_its_plaintext_twin(
    lab: dict[str, Any], scanned: dict[str, Any]
) -> None:
    for service in tls_services(lab):
        record = record_of(scanned, service)
        twin = record_of(scanned, lab_entry(lab, service["tls"]["twin"]))
        name = service["name"]
        for key in SAME_FACTS:
            assert record.get(key) == twin.get(key), (name, key)
        sizeless = [{**r["dataset"], "size_bytes": None} for r in (record, twin)]
        assert sizeless[0] == sizeless[1], name
        sampled = service["protocol"] == "redis"  # its fields and their PII come from random keys
        assert sampled or set(record.get("pii", {})) == set(twin.get("pii", {})), name
        found, seeded = (sorted(_collection(c, sampled) for c in r["collections"]) for r in (record, twin))
        assert found == seeded, name
        assert twin["tls"] is None, service["tls"]["twin"]


def _collection(entry: dict[str, Any], sampled: bool) -> tuple[Any, ...]:
    """What two servers with the same data show of one collection (the names of fields and their personal
    data only where they are the schema's, not a random sample's)."""
    counted = entry["database"], entry["name"], entry["rows"]
    return counted if sampled else (*counted, tuple(entry["fields"]), tuple(entry.get("pii", ())))


def test_every_tls_service_shows_the_certificate_it_presents(
    lab: dict[str, Any], scanned: dict[str, Any]
) -> None:
    for service in tls_services(lab):
        expected, tls = service["tls"], record_of(scanned, service)["tls"]
        cert = tls["cert"]
        assert tls["version"].startswith("TLSv1"), service["name"]
        assert tls["cipher"], service["name"]
        assert cert["sha256"] == expected["sha256"], service["name"]
        assert cert["names"] == expected["names"], service["name"]
        assert cert["self_signed"] is expected["self_signed"], service["name"]
        assert cert["expired"] is expected["expired"], service["name"]
        issuer = cert["subject"] if expected["self_signed"] else "CN=leaksonar lab CA"
        assert cert["issuer"] == issuer or issuer in cert["issuer"], service["name"]
        assert cert["key"].split()[0] in ("RSA", "EC"), service["name"]


@pytest.mark.parametrize("kind", ["self_signed", "expired"])
def test_the_lab_presents_a_certificate_that_is(
    lab: dict[str, Any], scanned: dict[str, Any], kind: str
) -> None:
    flagged = [s for s in tls_services(lab) if s["tls"][kind]]
    assert flagged, f"the lab has no {kind} certificate to test with"
    for service in flagged:
        assert record_of(scanned, service)["tls"]["cert"][kind] is True


def test_postgresql_that_insists_on_tls_says_so(lab: dict[str, Any], scanned: dict[str, Any]) -> None:
    for service in tls_services(lab):
        if service["protocol"] == "postgresql":
            details = record_of(scanned, service)["details"]
            assert details["tls_required"] is service["tls"]["required"]


@pytest.mark.parametrize(
    ("query", "chosen"),
    [
        ("tls:true", lambda s: bool(s.get("tls"))),
        ("cert.name:*.example.lab", lambda s: bool(s.get("tls"))),
        ("cert.expired:true", lambda s: bool(s.get("tls")) and s["tls"]["expired"]),
        ("cert.self_signed:true", lambda s: bool(s.get("tls")) and s["tls"]["self_signed"]),
        ("tls:true AND protocol:postgresql", lambda s: bool(s.get("tls")) and s["protocol"] == "postgresql"),
    ],
)
def test_the_scanned_tls_services_are_found_by_search(
    lab: dict[str, Any], scanned: dict[str, Any], query: str, chosen: Any
) -> None:
    found = json.loads(leaksonar("search", query, "--db", str(scanned["db"]), "--json").stdout)
    expected = {(s["ip"], s["port"]) for s in lab["services"] if chosen(s)}
    assert expected and {(h["ip"], h["port"]) for h in found["hits"]} == expected


def test_a_certificate_name_finds_its_one_service(lab: dict[str, Any], scanned: dict[str, Any]) -> None:
    for service in tls_services(lab):
        query = f'cert.name:"{service["hostname"]}"'
        found = json.loads(leaksonar("search", query, "--db", str(scanned["db"]), "--json").stdout)
        assert [(h["ip"], h["port"]) for h in found["hits"]] == [(service["ip"], service["port"])], query

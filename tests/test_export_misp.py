"""`leaksonar export --format misp`: an index of three services (one behind a TLS certificate, one whose
every string is hostile) exported by the real CLI as one MISP event, loaded back with PyMISP and each
object checked against its misp-objects template (strict)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import leaksonar_here
from pymisp import MISPEvent, MISPObject
from test_hostile_outputs import HOSTILE, LONG, NOW, hostile_finding, no_raw_controls
from test_tls_views import synthetic_finding

from leaksonar.model import Certificate, Tls
from leaksonar.store.db import Store

ES, REDIS, EVIL = "127.20.0.5", "127.20.0.6", "127.20.0.7"
SHA = "ab" * 32
CERT = Certificate(
    "CN=es.example.cn",
    ("es.example.cn", "*.example.cn", ES, "fd00::1", "fe80::1%eth0"),  # a zone: no address MISP takes
    "CN=R11,O=Let's Encrypt,C=US",
    "2026-10-01T00:00:00Z",
    "2026-12-30T00:00:00Z",
    False,
    False,
    SHA,
    "EC secp256r1",
)
LEAD = '=HYPERLINK("http://evil","x") '


@pytest.fixture(scope="module")
def index(tmp_path_factory: pytest.TempPathFactory) -> Path:
    db = tmp_path_factory.mktemp("misp") / "index.db"
    store = Store(str(db))
    store.scans.begin("misp", NOW, targets="127.20.0.0/24", ports="9200,6379", size=256, options={})
    store.findings.add(
        [
            synthetic_finding(
                ES,
                9200,
                "elasticsearch",
                "high",
                "misp",
                hostname="es.example.cn",
                tls=Tls("TLSv1.3", "", CERT),
            ),
            synthetic_finding(REDIS, 6379, "redis", "medium", "misp"),
            hostile_finding(EVIL, 9200, LEAD),
        ]
    )
    store.scans.finish("misp", NOW, "done")
    return db


def export(index: Path, *args: str) -> tuple[str, MISPEvent]:
    """The raw JSON `export --format misp ARGS` writes, and the event PyMISP loads from it."""
    raw = leaksonar_here("export", "--db", str(index), "--format", "misp", *args).stdout
    event = MISPEvent()
    event.load(raw)
    return raw, event


def services(event: MISPEvent) -> dict[str, MISPObject]:
    """The event's `ip-port` objects by address."""
    objects = [o for o in event.objects if o.name == "ip-port"]
    return {o.get_attributes_by_relation("ip")[0].value: o for o in objects}


def values(misp_object: MISPObject, relation: str) -> list[str]:
    return [a.value for a in misp_object.get_attributes_by_relation(relation)]


def referenced(event: MISPEvent, service: MISPObject) -> list[MISPObject]:
    by_uuid = {o.uuid: o for o in event.objects}
    return [by_uuid[r.referenced_uuid] for r in service.references]


def test_the_event_loads_back_with_a_service_object_per_finding(index: Path) -> None:
    raw, event = export(index)
    assert json.loads(raw).keys() == {"Event"}
    assert event.info.startswith("leaksonar: 3 database service(s) matching everything at 20")
    assert [t.name for t in event.tags] == ["tlp:amber"]
    assert (event.distribution, event.threat_level_id, event.analysis) == (0, 1, 2)
    found = services(event)
    assert list(found) == [EVIL, ES, REDIS]  # most severe first
    es = found[ES]
    assert (values(es, "dst-port"), values(es, "protocol"), values(es, "hostname")) == (
        ["9200"], ["elasticsearch"], ["es.example.cn"]
    )  # fmt: skip
    assert values(es, "text") == ["elasticsearch: synthetic"]
    assert es.comment == (
        "leaksonar: elasticsearch (elasticsearch 1.0), severity high, auth none, 5,000 rows, "
        "personal data: phone"
    )
    assert [t.name for t in es.get_attributes_by_relation("ip")[0].tags] == [
        'leaksonar:severity="high"',
        'leaksonar:pii="phone"',
    ]
    assert [t.name for t in found[REDIS].get_attributes_by_relation("ip")[0].tags] == [
        'leaksonar:severity="medium"'
    ]
    assert referenced(event, found[REDIS]) == []  # plaintext: no certificate
    assert not any(a.to_ids for o in event.objects for a in o.attributes)  # victims, not indicators


def test_a_tls_service_carries_its_certificate(index: Path) -> None:
    _, event = export(index, "ip:" + ES)
    [es] = services(event).values()
    [x509] = referenced(event, es)
    assert x509.name == "x509"
    assert values(x509, "x509-fingerprint-sha256") == [SHA]
    assert values(x509, "dns_names") == ["es.example.cn"]
    assert values(x509, "ip") == [ES, "fd00::1"]
    assert values(x509, "text") == ["names: *.example.cn fe80::1%eth0"]  # MISP refuses both
    assert values(x509, "issuer") == ["CN=R11,O=Let's Encrypt,C=US"]
    assert event.info.startswith(f"leaksonar: 1 database service(s) matching 'ip:{ES}' at ")


def test_every_object_passes_its_template(index: Path) -> None:
    _, event = export(index)
    assert sorted(o.name for o in event.objects) == ["ip-port", "ip-port", "ip-port", "x509", "x509"]
    for loaded in event.objects:
        rebuilt = MISPObject(loaded.name, strict=True)
        for attribute in loaded.attributes:
            rebuilt.add_attribute(attribute.object_relation, attribute.value)
        rebuilt.to_json()  # strict: raises on a relation not in the template or a required one missing


def test_server_text_is_data_and_the_json_is_inert(index: Path) -> None:
    raw, event = export(index)
    no_raw_controls(raw.replace("\n", ""))
    evil = services(event)[EVIL]
    assert evil.comment.startswith(f"leaksonar: elasticsearch ({LEAD}{HOSTILE} {LONG}), severity critical")
    assert values(evil, "text") == [f"{LEAD}{HOSTILE}"]
    assert values(evil, "hostname") == []  # not a name MISP accepts
    assert values(evil, "AS") == ["AS64500"]
    assert evil.get_attributes_by_relation("AS")[0].comment == HOSTILE
    [x509] = referenced(event, evil)
    assert values(x509, "x509-fingerprint-sha256") == []  # not a SHA-256
    assert values(x509, "dns_names") == []
    assert values(x509, "text") == [f"names: cert{LEAD}{HOSTILE} *.{LEAD}{HOSTILE}; self-signed; expired"]
    assert values(x509, "subject") == [f"subject{LEAD}{HOSTILE}"]


def test_tlp_is_chosen_and_validated(index: Path) -> None:
    _, event = export(index, "--tlp", "amber+strict")
    assert [t.name for t in event.tags] == ["tlp:amber+strict"]
    for args, problem in [
        (
            ("--format", "misp", "--tlp", "blue"),
            "--tlp 'blue': choose from clear, green, amber, amber+strict, red",
        ),
        (("--format", "csv", "--tlp", "red"), "--tlp applies to --format misp only"),
    ]:
        bad = leaksonar_here("export", "--db", str(index), *args, check=False)
        assert bad.returncode == 2 and bad.stderr == f"leaksonar: error: {problem}\n", bad.stderr


def test_more_services_than_an_event_holds_is_refused_before_writing(index: Path, tmp_path: Path) -> None:
    out = tmp_path / "event.json"
    code = "import leaksonar.cli.export_misp as m; m.MAX_SERVICES = 2; from leaksonar.cli import main; main()"
    args = ("export", "--db", str(index), "--format", "misp", "--out", str(out))
    run = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=60)
    assert run.returncode == 2 and not out.exists()
    assert run.stderr == (
        "leaksonar: error: 3 services match: a MISP event holds at most 2; "
        "narrow the QUERY (e.g. add severity:>=high or ip:NETWORK)\n"
    )

"""`leaksonar export --format misp`: the services a query matches as one MISP event (PyMISP, the `misp`
extra) that a MISP instance imports as it is: per service an `ip-port` object, per certificate an `x509`
object, severity and personal-data categories as tags, the event marked with a TLP tag.

Every attribute is data for the people who notify owners, never an indicator to block (`to_ids` false):
the addresses are the victims'. Server text (software, summary, certificate names) goes in as values
and comments, written by `for_json`; a certificate name goes in as a `hostname` only when MISP's own
validation accepts it (others stay in the object's text)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from ipaddress import ip_address
from typing import IO, TYPE_CHECKING, Any

from leaksonar.cli.common import fail
from leaksonar.model import SEVERITY_RANK
from leaksonar.sanitize import for_json

if TYPE_CHECKING:
    from pymisp import MISPObject

    from leaksonar.store.rows import Hit

MAX_SERVICES = 10_000
"""Services in one event at most (it is one JSON document, built in memory): past that, narrow the QUERY."""

TLP = ("clear", "green", "amber", "amber+strict", "red")
"""The TLP 2.0 levels `--tlp` takes; the event gets the tag `tlp:LEVEL`."""

THREAT_LEVEL = {"critical": 1, "high": 1, "medium": 2, "low": 3, "info": 4}
"""MISP threat level (1 high, 2 medium, 3 low, 4 undefined) of the event from its most severe service."""

_HOSTNAME = re.compile(r"^[A-Z0-9.\-_]+\.[A-Z0-9\-]{2,}$", re.IGNORECASE)
"""MISP's validation of `hostname` and `domain` values: a name it refuses stays in the object's text."""
_SHA256 = re.compile(r"^[0-9a-f]{64}$", re.IGNORECASE)


def too_many(matched: int) -> str:
    """The one-line refusal of a query matching more services than one event holds."""
    return (
        f"{matched:,} services match: a MISP event holds at most {MAX_SERVICES:,}; "
        "narrow the QUERY (e.g. add severity:>=high or ip:NETWORK)"
    )


def _is_ip(name: str) -> bool:
    """Whether `name` is an IP address MISP takes (not a scoped IPv6 one: `fe80::1%eth0`)."""
    try:
        ip_address(name)
    except ValueError:
        return False
    return "%" not in name


def _comment(record: dict[str, Any]) -> str:
    """What leaksonar found, in one line: protocol, software, severity, rows, personal data, ransom."""
    software = record.get("software") or {}
    parts = [
        f"{record['protocol']} ({' '.join(filter(None, (software.get('name'), software.get('version'))))})",
        f"severity {record.get('severity') or 'not assessed'}",
        f"auth {record['auth']}",
    ]
    rows = (record.get("dataset") or {}).get("rows")
    if rows is not None:
        parts.append(f"{rows:,} rows")
    if record.get("pii"):
        parts.append("personal data: " + " ".join(record["pii"]))
    if (record.get("ransom") or {}).get("infected"):
        parts.append("ransom note found")
    return "leaksonar: " + ", ".join(parts)


def _service(record: dict[str, Any]) -> MISPObject:
    """The `ip-port` object of one service; its `ip` attribute carries the severity and PII tags."""
    from pymisp import MISPObject

    service = MISPObject("ip-port", strict=True)
    service.comment = _comment(record)
    service.first_seen = record["first_seen"]
    service.last_seen = record["last_seen"]
    address = service.add_attribute("ip", record["ip"])
    if record.get("severity"):
        address.add_tag(f'leaksonar:severity="{record["severity"]}"')
    for category in record.get("pii") or {}:
        address.add_tag(f'leaksonar:pii="{category}"')
    service.add_attribute("dst-port", record["port"])
    service.add_attribute("protocol", record["protocol"])
    if record.get("hostname") and _HOSTNAME.match(record["hostname"]):
        service.add_attribute("hostname", record["hostname"])
    if record.get("network"):
        service.add_attribute("AS", f"AS{record['network']['asn']}", comment=record["network"]["org"])
    if record.get("geo"):
        service.add_attribute("country-code", record["geo"]["country"])
    if record.get("summary"):
        service.add_attribute("text", record["summary"])
    return service


def _certificate(cert: dict[str, Any]) -> MISPObject | None:
    """The `x509` object of the certificate a TLS service presented (None when it has neither a SHA-256
    nor an issuer, one of which the template requires)."""
    from pymisp import MISPObject

    sha256 = cert.get("sha256") or ""
    if not (_SHA256.match(sha256) or cert.get("issuer")):
        return None
    x509 = MISPObject("x509", strict=True)
    if _SHA256.match(sha256):
        x509.add_attribute("x509-fingerprint-sha256", sha256.lower())
    for relation, key in (("subject", "subject"), ("issuer", "issuer")):
        if cert.get(key):
            x509.add_attribute(relation, cert[key])
    for relation, key in (("validity-not-before", "not_before"), ("validity-not-after", "not_after")):
        if cert.get(key):
            x509.add_attribute(relation, cert[key])
    others = []
    for name in cert.get("names", ()):
        if _is_ip(name):
            x509.add_attribute("ip", name)
        elif _HOSTNAME.match(name):
            x509.add_attribute("dns_names", name)
        else:
            others.append(name)
    notes = [f"names: {' '.join(others)}"] if others else []
    notes += [flag.replace("_", "-") for flag in ("self_signed", "expired") if cert.get(flag)]
    if notes:
        x509.add_attribute("text", "; ".join(notes))
    return x509


def _data_only(misp_object: MISPObject) -> MISPObject:
    """`misp_object` with no attribute flagged for detection (the templates flag addresses and names)."""
    for attribute in misp_object.attributes:
        attribute.to_ids = False
    return misp_object


def write_event(hits: Iterator[Hit], stream: IO[str], query: str, tlp: str) -> int:
    """Every hit as one MISP event on `stream` (`{"Event": ...}`, MISP's import format); returns how many."""
    from pymisp import MISPEvent

    now = datetime.now(UTC).replace(microsecond=0)
    event = MISPEvent()
    event.distribution = 0  # this organisation only: the analyst decides whom to share it with
    event.analysis = 2  # completed: each service was inspected and assessed
    event.set_date(now.date())
    event.add_tag(f"tlp:{tlp}")
    worst = "info"
    count = 0
    for hit in hits:
        count += 1
        if count > MAX_SERVICES:
            fail(too_many(count))
        record = hit.to_record()
        if SEVERITY_RANK.get(record.get("severity") or "info", 0) > SEVERITY_RANK[worst]:
            worst = record["severity"]
        service = event.add_object(_data_only(_service(record)))
        cert = (record.get("tls") or {}).get("cert")
        x509 = _certificate(cert) if cert else None
        if x509 is not None:
            service.add_reference(event.add_object(_data_only(x509)).uuid, "uses")
    event.threat_level_id = THREAT_LEVEL[worst]
    scope = repr(query) if query else "everything"
    event.info = f"leaksonar: {count:,} database service(s) matching {scope} at {now:%Y-%m-%dT%H:%M:%SZ}"
    # PyMISP's JSON, written as `--json` writes (nothing in it acts on a terminal or an editor)
    stream.write(for_json({"Event": json.loads(event.to_json())}, indent=1) + "\n")
    return count

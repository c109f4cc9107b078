"""Disclosure reports: per owner, a letter (Markdown and HTML) on what is exposed, since when, what it
holds (categories and counts, never raw data), attack signs, and how to close it."""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import jinja2
from markupsafe import Markup, escape

from leaksonar.formats import address_port, human_bytes, human_count, human_rows
from leaksonar.model import SEVERITY_RANK
from leaksonar.report.history import REMINDER_DAYS, History
from leaksonar.report.owners import Owner, Owners
from leaksonar.sanitize import for_markdown, for_terminal
from leaksonar.store.addresses import Network, address_key
from leaksonar.store.db import Store
from leaksonar.store.rows import ServiceRow
from leaksonar.targets import parse_address

FORMATS = ("md", "html")
MAX_COLLECTIONS = 25
"""Collections listed per service (largest first); the rest are counted."""
RECENT_EVENTS = 10
MAX_CERT_NAMES = 20
"""Certificate names listed per service; the rest are counted."""


class ReportError(Exception):
    """The report cannot be made as asked; the message is one line."""


@dataclass(frozen=True, slots=True)
class Selection:
    """Which services to report on: one of a network, an ASN, an organisation name or a domain (in lower
    case) that the services' certificates name, or name a name under."""

    network: Network | None = None
    asn: int | None = None
    org: str | None = None
    domain: str | None = None

    def holds(self, record: dict[str, Any], owner: Owner) -> bool:
        if self.domain is not None:
            names = (((record.get("tls") or {}).get("cert") or {}).get("names")) or ()
            return any(n.lower() == self.domain or n.lower().endswith(f".{self.domain}") for n in names)
        if self.network is not None:
            return parse_address(record["ip"]) in self.network
        net = record.get("network") or {}
        if self.asn is not None:
            return net.get("asn") == self.asn
        wanted = (self.org or "").casefold()
        return wanted in (net.get("org") or "").casefold() or wanted in owner.org.casefold()


@dataclass(slots=True)
class OwnerReport:
    owner: Owner
    due: list[tuple[ServiceRow, str]] = field(default_factory=list)
    """(service, why it is sent)."""
    skipped: list[tuple[ServiceRow, str]] = field(default_factory=list)
    """(service, why it is not sent again yet)."""
    files: list[Path] = field(default_factory=list)


def owner_of(record: dict[str, Any], owners: Owners) -> Owner:
    """The owners file's entry for the address, else the organisation of its ASN, else unknown."""
    found = owners.lookup(record["ip"])
    if found is not None:
        return found
    net = record.get("network")
    if net:
        return Owner(
            f"{net.get('org') or 'unknown organisation'} (AS{net['asn']})", network=f"AS{net['asn']}"
        )
    return Owner("Unknown owner")


def plan(store: Store, selection: Selection, owners: Owners, now: str, force: bool) -> list[OwnerReport]:
    """Group the exposed services of `selection` by owner (for a domain: the domain) and decide which are
    due to be reported."""
    history = History(store)
    reports: dict[str, OwnerReport] = {}
    for row in store.services.exposed(selection.network, selection.domain):
        domain = selection.domain
        owner = Owner(domain, domain=domain) if domain else owner_of(row.record, owners)
        if not selection.holds(row.record, owner):
            continue
        report = reports.setdefault(owner.org, OwnerReport(owner))
        severity = row.severity or "low"
        decision = history.decide(owner.org, address_port(row.ip, row.port), severity, now, force)
        (report.due if decision.due else report.skipped).append((row, decision.reason))
    return list(reports.values())


@cache
def remediation() -> dict[str, Any]:
    text = resources.files("leaksonar.report").joinpath("data/remediation.toml").read_text(encoding="utf-8")
    return tomllib.loads(text)


def _protocol_help(protocols: Iterable[str]) -> list[dict[str, Any]]:
    table = remediation()
    chosen = {p if p in table else "default" for p in protocols}
    if "kibana" in chosen:
        chosen.add("elasticsearch")
    return [{"protocol": p, **table[p]} for p in table if p in chosen and p != "common"]


def _days(first: str, last: str) -> int:
    fmt = "%Y-%m-%dT%H:%M:%SZ"
    return (datetime.strptime(last, fmt) - datetime.strptime(first, fmt)).days


def _certificate(record: dict[str, Any]) -> dict[str, Any] | None:
    """What a letter says of the certificate the service presented: its names (the first
    MAX_CERT_NAMES), issuer, expiry; None for a plaintext service or one that sent no certificate."""
    cert = (record.get("tls") or {}).get("cert")
    if not cert:
        return None
    names = cert["names"] or [cert["subject"]]
    return {
        "names": names[:MAX_CERT_NAMES],
        "more_names": max(0, len(names) - MAX_CERT_NAMES),
        "issuer": cert["issuer"],
        "not_after": cert["not_after"][:10],
        "expired": cert["expired"],
        "self_signed": cert["self_signed"],
    }


def _service(store: Store, row: ServiceRow, reason: str, public: bool) -> dict[str, Any]:
    record = row.record
    software = record.get("software") or {}
    collections = sorted(record.get("collections", ()), key=lambda c: -(c.get("rows") or 0))
    ransom = record.get("ransom") or {}
    return {
        "address": address_port(row.ip, row.port),
        "protocol": record["protocol"],
        "software": " ".join(filter(None, (software.get("name"), software.get("version")))) or "unknown",
        "severity": row.severity or "low",
        "summary": record.get("summary", ""),
        "first_seen": row.first_seen,
        "last_seen": row.last_seen,
        "days": _days(row.first_seen, row.last_seen),
        "databases": human_count(record["dataset"].get("databases")),
        "collection_count": len(collections),
        "rows": human_rows(record["dataset"].get("rows"), record["rows_estimated"]),
        "size": human_bytes(record["dataset"].get("size_bytes")),
        "collections": [
            {
                "name": ".".join(filter(None, (c["database"], c["name"]))),
                "rows": human_rows(c.get("rows"), c["rows_estimated"]),
                "size": human_bytes(c.get("size_bytes")),
                "pii": ", ".join(c.get("pii", ())) or "-",
            }
            for c in collections[:MAX_COLLECTIONS]
        ],
        "more_collections": max(0, len(collections) - MAX_COLLECTIONS),
        "pii": [
            {"category": category, **hit, "fields": ", ".join(hit["fields"])}
            for category, hit in (record.get("pii") or {}).items()
        ],
        "categories": ", ".join(record.get("pii") or {}) or "none found",
        "infected": bool(ransom.get("infected")),
        "notes": ransom.get("notes", ()),
        "hostname": record.get("hostname"),
        "tls": (record.get("tls") or {}).get("version"),
        "cert": _certificate(record),
        "geo": {"country": None, **(record.get("geo") or {})},
        "network": {"asn": None, "org": None, **(record.get("network") or {})},
        "events": store.events.find(ip=row.ip, port=row.port, limit=RECENT_EVENTS, public=public),
        "reason": reason,
    }


def _code(text: str) -> Markup:
    """HTML: escape, then show `backticked` text as code."""
    return Markup(re.sub(r"`([^`]+)`", r"<code>\1</code>", str(escape(text))))


class Markdown(str):
    """Markdown written by leaksonar itself (remediation steps, documentation links): the letter shows it
    as Markdown. Every other value in a Markdown template is text and goes through `for_markdown`."""


def _markdown_output(value: object) -> str:
    """What `{{ value }}` writes into a Markdown letter: our own Markdown as it is, anything else as text."""
    return value if isinstance(value, Markdown) else for_markdown(str(value))


def _html_output(value: object) -> object:
    """What `{{ value }}` hands to HTML autoescaping: control and bidi characters made visible first
    (escaping alone would keep them), Markup as it is."""
    return value if isinstance(value, Markup) else for_terminal(str(value))


@cache
def _environment(fmt: str) -> jinja2.Environment:
    """Templates for `fmt`: every `{{ value }}` passes through the format's one escape (HTML autoescape,
    Markdown's `for_markdown`), so a new field in a template cannot go out raw."""
    html = fmt == "html"
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("leaksonar.report", "templates"),
        autoescape=html,
        finalize=_html_output if html else _markdown_output,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        undefined=jinja2.StrictUndefined,
    )
    env.filters["code"] = _code
    env.filters["markdown"] = Markdown
    return env


def context(store: Store, report: OwnerReport, now: str, *, public: bool = False) -> dict[str, Any]:
    """What a letter shows; `public`: a public viewer's preview, whose events are those of the visible set
    (`store.query.public_only`: a visible service's own critical past left out)."""
    due = sorted(report.due, key=lambda d: (-SEVERITY_RANK[d[0].severity or "low"], address_key(d[0].ip)))
    items = [_service(store, row, reason, public) for row, reason in due]
    worst = items[0]["severity"]
    count = len(items)
    domain = report.owner.domain
    where = f"with TLS certificates for {domain}" if domain else "on your network"
    subject = (
        f"[{worst.upper()}] {count} database service{'s' if count > 1 else ''} {where} "
        f"answer{'s' if count == 1 else ''} without a password" + ("" if domain else f" ({report.owner.org})")
    )
    return {
        "subject": subject,
        "owner": report.owner,
        "date": now[:10],
        "now": now,
        "services": items,
        "worst": worst,
        "attacked": [s for s in items if s["infected"]],
        "remediation": _protocol_help(s["protocol"] for s in items),
        "common_steps": remediation()["common"]["steps"],
        "reminders": REMINDER_DAYS,
    }


def render_letter(store: Store, report: OwnerReport, now: str, fmt: str, *, public: bool = False) -> str:
    """One owner's letter in `fmt` (md or html); `public`: as a public viewer may see it (`context`)."""
    return (
        _environment(fmt).get_template(f"report.{fmt}.j2").render(context(store, report, now, public=public))
    )


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.casefold()).strip("-")[:60] or "owner"


def write_reports(
    store: Store,
    reports: list[OwnerReport],
    out: Path,
    formats: Iterable[str],
    now: str,
    record: bool = True,
) -> None:
    """Render each owner's letter into `out` (one file per format) and note the services as reported."""
    formats = list(formats)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ReportError(f"cannot create {out}: {exc.strerror}") from None
    for report in reports:
        if not report.due:
            continue
        for fmt in formats:
            path = out / f"{_slug(report.owner.org)}-{now[:10]}.{fmt}"
            path.write_text(render_letter(store, report, now, fmt), encoding="utf-8")
            report.files.append(path)
        if record:
            store.reports.record(
                report.owner.org,
                [
                    (address_port(row.ip, row.port), row.severity or "low", row.last_scan_id)
                    for row, _ in report.due
                ],
                now,
            )


def parse_formats(text: str) -> list[str]:
    formats = [f.strip().lower() for f in text.split(",") if f.strip()]
    unknown = sorted(set(formats) - set(FORMATS))
    if unknown or not formats:
        raise ReportError(f"--format {text!r}: choose from {', '.join(FORMATS)} (comma-separated)")
    return list(dict.fromkeys(formats))

"""What the command line shows people: Rich tables of findings, hosts, services and events, the scan's
progress bar, on the consoles of stdout and stderr.

Every cell and line is built with `plain` (leaksonar.terminal): what a server wrote is shown literally,
control characters as escapes, never read as markup; styles are `Text` styles. The consoles are
`PlainConsole`s, which read no string as markup either."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from leaksonar.formats import address_port, human_bytes, human_count, human_rows
from leaksonar.model import Event, Finding
from leaksonar.terminal import Part, PlainConsole, add_row, plain

if TYPE_CHECKING:
    from leaksonar.notify.alerts import Delivery
    from leaksonar.scan.engine import ScanProgress
    from leaksonar.store.rows import Hit, HostRow

PIPE_WIDTH = 200
"""Width of tables written to a pipe or file, where there is no terminal to fit."""
out = PlainConsole(width=None if sys.stdout.isatty() else PIPE_WIDTH)
err = PlainConsole(stderr=True, width=None if sys.stderr.isatty() else PIPE_WIDTH)


def _software_text(record: dict[str, Any]) -> str:
    software = record.get("software") or {}
    return " ".join(filter(None, (software.get("name"), software.get("version")))) or "-"


def _protocol_text(record: dict[str, Any]) -> str:
    """`redis`, or `redis+tls` for a service that spoke TLS."""
    return f"{record['protocol']}+tls" if record.get("tls") else record["protocol"]


def _address_text(record: dict[str, Any]) -> str:
    """`127.0.0.1:9200`, and the name it was scanned by: `127.0.0.1:9200 (es.example.lab)`."""
    address = address_port(record["ip"], record["port"])
    return f"{address} ({record['hostname']})" if record.get("hostname") else address


def auth_text(record: dict[str, Any]) -> Text:
    if record["exposed"]:
        return plain("none: exposed", style="bold red")
    return plain(record["auth"], style="green" if record["auth"] == "required" else "")


def _title(title: str) -> Text:
    return plain(title, style="table.title")


def findings_table(findings: Iterable[Finding], title: str | None = None) -> Table:
    """One row per finding; a country column when any finding has one (scan --geo-db)."""
    findings = list(findings)
    with_geo = any(f.geo for f in findings)
    table = Table(title=_title(title) if title else None, title_justify="left")
    if with_geo:
        table.add_column("cc")
    for column, justify in (
        ("address", "left"),
        ("protocol", "left"),
        ("software", "left"),
        ("auth", "left"),
        ("dbs", "right"),
        ("collections", "right"),
        ("rows", "right"),
        ("size", "right"),
        ("severity", "left"),
        ("personal data / notes", "left"),
    ):
        table.add_column(column, justify=justify)  # type: ignore[arg-type]
    for finding in findings:
        record = finding.to_record()
        dataset = record["dataset"]
        notes = (
            ", ".join(record.get("pii", {}))
            or "; ".join(e.message for e in finding.errors)[:80]
            or finding.banner[:40]
        )
        attacked = record.get("ransom", {}).get("infected")
        add_row(
            table,
            *([(finding.geo or {}).get("country", "-")] if with_geo else []),
            _address_text(record),
            _protocol_text(record),
            _software_text(record),
            auth_text(record),
            human_count(dataset["databases"]),
            human_count(dataset["collections"]) if finding.exposed else "-",
            human_rows(dataset["rows"], record["rows_estimated"]),
            human_bytes(dataset["size_bytes"]),
            severity_text(record.get("severity")),
            plain(("ATTACKED ", "bold red"), notes) if attacked else notes,
        )
    return table


def search_table(total: int, hits: Iterable[Hit]) -> Table:
    """A page of search hits, under the number found."""
    table = Table(title=_title(f"{total:,} found"), title_justify="left")
    for column in ("address", "protocol", "software", "severity", "rows", "size", "pii", "summary"):
        table.add_column(column, justify="right" if column in ("rows", "size") else "left")
    for hit in hits:
        record = hit.record
        dataset = record["dataset"]
        add_row(
            table,
            _address_text(record),
            _protocol_text(record),
            _software_text(record),
            severity_text(hit.severity),
            human_rows(dataset["rows"], record["rows_estimated"]),
            human_bytes(dataset["size_bytes"]),
            ", ".join(record.get("pii") or {}),
            record.get("summary", ""),
        )
    return table


def facets_lines(counts: dict[str, list[tuple[str, int]]]) -> list[Text]:
    """`protocol: redis 3, elasticsearch 1`: one line per facet, its top values with their counts."""
    return [
        plain(f"{field}: " + ", ".join(f"{value} {n:,}" for value, n in top)) for field, top in counts.items()
    ]


def delivery_line(delivery: Delivery) -> Text:
    """`failed slack (rule wiped) wiped after 3 attempts: HTTP 500`."""
    d = delivery
    tries = f"{d.attempts} attempt{'s' if d.attempts != 1 else ''}"
    why = f": {d.error}" if d.error else ""
    return plain(f"{d.status:6} {d.channel} (rule {d.rule}) {d.event} after {tries}{why}")


SEVERITY_STYLE = {"critical": "bold white on red", "high": "bold red", "medium": "yellow", "low": "cyan"}


def severity_text(severity: str | None) -> Text:
    if severity is None:
        return plain("-")
    return plain(severity, style=SEVERITY_STYLE.get(severity, ""))


def hosts_table(rows: Iterable[HostRow]) -> Table:
    table = Table()
    for column in ("address", "services", "exposed", "protocols", "first seen", "last seen"):
        table.add_column(column)
    for row in rows:
        protocols = ", ".join(sorted(set((row.protocols or "").split(","))))
        exposed = plain(row.exposed, style="bold red" if row.exposed else "")
        add_row(table, row.ip, row.services, exposed, protocols, row.first_seen, row.last_seen)
    return table


def collections_table(record: dict[str, Any]) -> Table:
    table = Table(
        title=_title(f"{address_port(record['ip'], record['port'])} collections"), title_justify="left"
    )
    for column, justify in (
        ("database", "left"),
        ("collection", "left"),
        ("rows", "right"),
        ("size", "right"),
    ):
        table.add_column(column, justify=justify)  # type: ignore[arg-type]
    table.add_column("fields", overflow="fold")
    table.add_column("personal data", overflow="fold")
    for c in record["collections"]:
        add_row(
            table,
            c["database"],
            c["name"],
            human_rows(c["rows"], c["rows_estimated"]),
            human_bytes(c["size_bytes"]),
            ", ".join(c["fields"][:12]) + (" ..." if len(c["fields"]) > 12 else ""),
            ", ".join(c.get("pii", ())),
        )
    return table


def service_line(record: dict[str, Any], first_seen: str, last_seen: str, days: float) -> Text:
    """`127.0.0.1:9200 (es.example.cn) first seen ..., last seen ..., exposed 3 days` (`show`): the name in
    brackets is the one the service was scanned by."""
    address = address_port(record["ip"], record["port"])
    name = f" ({record['hostname']})" if record.get("hostname") else ""
    return plain(f"{address}{name} first seen {first_seen}, last seen {last_seen}, exposed {days:g} days")


def tls_line(record: dict[str, Any]) -> Text | None:
    """`tls TLSv1.3 TLS_AES_256_GCM_SHA384, cert es.example.cn (+2 names), issuer CN=R11,O=Let's Encrypt,
    expires 2026-12-30 [expired] [self-signed]` (`show`); None for a plaintext service."""
    tls = record.get("tls")
    if not tls:
        return None
    cert = tls["cert"]
    parts: list[Part] = [f"tls {tls['version']} {tls['cipher']}, "]
    if cert is None:
        return plain(*parts, "no certificate")
    names = cert["names"]
    more = f" (+{len(names) - 1} name{'s' if len(names) > 2 else ''})" if len(names) > 1 else ""
    parts.append(f"cert {names[0] if names else cert['subject']}{more}, issuer {cert['issuer']}, ")
    parts.append(f"expires {cert['not_after'][:10]}")
    if cert["expired"]:
        parts.append((" [expired]", "bold red"))
    if cert["self_signed"]:
        parts.append((" [self-signed]", "yellow"))
    return plain(*parts)


def event_line(event: Event) -> Text:
    """`2026-11-28T05:00:00Z 127.0.0.1:6379 wiped: rows 1,221 -> 12 (-99.0%): wiped`."""
    return plain(f"{event.time} {address_port(event.ip, event.port)} {event.type}: {event.summary}")


def events_table(events: Iterable[Event], title: str | None = None) -> Table:
    table = Table(title=_title(title) if title else None, title_justify="left")
    for column in ("time", "address", "protocol", "event", "severity", "summary"):
        table.add_column(column)
    for event in events:
        add_row(
            table,
            event.time,
            address_port(event.ip, event.port),
            event.protocol,
            event.type,
            event.severity or "-",
            event.summary,
        )
    return table


def scan_line(
    scan_id: str, probes: int, elapsed: float, open_ports: int, services: int, exposed: int
) -> Text:
    """The scan's counters under its table: `scan ID: N address/port pairs in T s (R/s): ...`."""
    rate = probes / max(elapsed, 1e-9)
    return plain(
        f"scan {scan_id}: {probes:,} address/port pairs in {elapsed:.2f} s ({rate:,.0f}/s): "
        f"{open_ports} open, {services} services, ",
        (f"{exposed} exposed", "bold"),
    )


class ScanBar:
    """Rich progress on stderr: pairs probed, open ports, services, exposed."""

    def __init__(self, total: int | None, enabled: bool) -> None:
        """`total`: pairs to probe (None: unknown, open ports read as they come)."""
        self.progress = Progress(
            TextColumn("[bold]scanning"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[rate]:>8.0f}/s"),
            TimeElapsedColumn(),
            TextColumn(
                "open {task.fields[open]}  services {task.fields[services]}  exposed {task.fields[exposed]}"
            ),
            console=err,
            transient=True,
            disable=not enabled,
        )
        self.task = self.progress.add_task("scan", total=total, rate=0.0, open=0, services=0, exposed=0)
        self.shown = 0.0

    def update(self, state: ScanProgress, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self.shown < 0.1:
            return
        self.shown = now
        stats = state.discovery
        self.progress.update(
            self.task,
            completed=stats.probes,
            rate=stats.rate(),
            open=stats.open,
            services=state.services,
            exposed=state.exposed,
        )

"""What the index's reads return: one frozen record per kind of row (events are `model.Event`).

Plain dataclasses, without SQLAlchemy, so that every layer above the store can name them. A row that
carries a finding record keeps it as the JSON the scan wrote (`record`); `to_record()` is the JSON the
CLI and the API print.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

SCAN_SETTINGS = ("rate", "concurrency", "per_host", "timeout", "retries", "inspect_concurrency", "workers")
"""The options of a scan shown with it (`ScanRow.settings`)."""


@dataclass(frozen=True, slots=True)
class ScanRow:
    """A scan: what it covered, how far it got, its counters."""

    id: str
    started_at: str
    finished_at: str | None
    status: str
    """running | done | failed | interrupted"""
    targets: str
    ports: str
    size: int
    """Address x port pairs."""
    probes: int
    open_ports: int
    services: int
    exposed: int
    options: dict[str, Any]
    coverage: dict[str, Any] | None
    """{"intervals": [[first, last], ...], "ports": [...]}: the space a finished scan looked at entirely."""
    checkpoint: dict[str, Any] | None
    """What `scan --resume` starts from."""

    @property
    def version(self) -> str | None:
        """The leaksonar version that started the scan (None: an older one)."""
        return self.options.get("version")

    @property
    def source(self) -> dict[str, Any] | None:
        """Where its open ports came from (None: an older leaksonar): {"kind": "discovery"}, or {"kind":
        "open-from", "format": the detected format (None: not detected yet), "file": the path or "-"
        (standard input), "default_port", "skip_bad_lines", "exclude_files", "stamp": {"size", "mtime_ns",
        "head_sha256"} (a regular file)}."""
        return self.options.get("source")

    @property
    def settings(self) -> dict[str, Any]:
        """The options that shaped what it found and how fast: SCAN_SETTINGS, and `read_timeout`."""
        settings = {name: self.options[name] for name in SCAN_SETTINGS if name in self.options}
        limits = self.options.get("limits")
        if isinstance(limits, dict) and "timeout" in limits:
            settings["read_timeout"] = limits["timeout"]
        return settings

    def header(self, resumed: bool) -> dict[str, Any]:
        """The record `scan --jsonl` starts with: {"scan": how the scan was made}."""
        made = {"id": self.id, "started_at": self.started_at, "resumed": resumed, "version": self.version}
        where = {"source": self.source, "targets": self.targets, "ports": self.ports}
        return {"scan": {**made, **where, "settings": self.settings}}


@dataclass(frozen=True, slots=True)
class LastScan:
    id: str
    started_at: str
    finished_at: str | None
    status: str


@dataclass(frozen=True, slots=True)
class HostRow:
    """A host in the list of hosts: its service counts and protocols."""

    ip: str
    first_seen: str
    last_seen: str
    services: int
    exposed: int
    protocols: str | None
    """Comma-separated, one per service."""


@dataclass(frozen=True, slots=True)
class ServiceRow:
    """The latest state of one service."""

    id: int
    ip: str
    port: int
    protocol: str
    software: str | None
    version: str | None
    auth: str
    exposed: bool
    rows: int | None
    size_bytes: int | None
    severity: str | None
    first_seen: str
    last_seen: str
    last_scan_id: str
    record: dict[str, Any]
    """Its latest finding record."""


@dataclass(frozen=True, slots=True)
class Hit:
    """A service as search and the host view show it: its latest finding record, the id of that stored
    finding (None: not stored under the service's last scan), when it was first and last seen."""

    id: int | None
    first_seen: str
    last_seen: str
    record: dict[str, Any]

    @property
    def severity(self) -> str | None:
        return self.record.get("severity")

    def to_record(self) -> dict[str, Any]:
        return {**self.record, "id": self.id, "first_seen": self.first_seen, "last_seen": self.last_seen}


@dataclass(frozen=True, slots=True)
class SearchPage:
    """One page of search hits."""

    total: int
    hits: list[Hit]
    offset: int
    limit: int


@dataclass(frozen=True, slots=True)
class HostView:
    """A host and its services (by port)."""

    ip: str
    first_seen: str
    last_seen: str
    services: list[Hit]


@dataclass(frozen=True, slots=True)
class HistoryPoint:
    """One stored finding of a service, as a point of its timeline."""

    id: int
    port: int
    protocol: str
    time: str
    scan_id: str
    rows: int | None
    size_bytes: int | None
    severity: str | None
    exposed: bool
    infected: bool


@dataclass(frozen=True, slots=True)
class FindingRow:
    """One stored finding (of any scan)."""

    id: int
    scan_id: str
    ip: str
    port: int
    time: str
    record: dict[str, Any]

    @property
    def severity(self) -> str | None:
        return self.record.get("severity")

    def to_record(self) -> dict[str, Any]:
        return {**self.record, "id": self.id}


@dataclass(frozen=True, slots=True)
class Stats:
    """Totals for the dashboard."""

    hosts: int
    services: int
    exposed: int
    infected: int
    findings: int
    scans: int
    by_severity: dict[str, int]
    """Most severe first."""
    by_protocol: dict[str, int]
    by_country: dict[str, int]
    events_by_type: dict[str, int]
    last_scan: LastScan | None


@dataclass(frozen=True, slots=True)
class DeliveryRow:
    """One event's delivery to one channel for one rule."""

    id: int
    event_key: str
    event_id: int | None
    rule: str
    channel: str
    attempts: int
    status: str
    """sending | sent | failed"""
    last_error: str | None
    time: str


@dataclass(frozen=True, slots=True)
class KeyRow:
    """An API key as listed: never the key or its hash."""

    name: str
    level: str
    created: str
    revoked: str | None
    """When it was revoked; None while it is valid."""


@dataclass(frozen=True, slots=True)
class ReportRow:
    """A service (ip:port) reported to an owner."""

    id: int
    owner: str
    service: str
    severity: str
    sent_at: str
    scan_id: str

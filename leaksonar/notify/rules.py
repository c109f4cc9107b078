"""Alert configuration: channels (webhook, e-mail, Slack) and rules, read from a TOML file.

A rule selects events by network (CIDRs) or ASN, a `field:value` query, a minimum severity and event
types, and names the channels its events go to. Every problem in the file is reported as one line that
names the file, the table and the key (or the line, for TOML syntax errors).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import httpx

from leaksonar.inputs import InputError, load_toml
from leaksonar.model import EVENT_TYPES, SEVERITIES, SEVERITY_RANK, Event, Severity
from leaksonar.store.addresses import Network, parse_network

QUERY_FIELDS = ("protocol", "type", "severity", "ip")
"""Event fields a rule's query may name (the full query language comes later)."""

T = TypeVar("T")


class ConfigError(ValueError):
    """The alert configuration is unusable; the message is one line naming the key or line."""


@dataclass(frozen=True, slots=True)
class Retry:
    """Bounded retries with exponential back-off: `attempts` in all, waits of backoff * 2^n capped at
    `max_delay`, and no new attempt once `deadline` seconds have passed since the first."""

    attempts: int = 4
    backoff: float = 1.0
    max_delay: float = 30.0
    deadline: float = 120.0

    def delay(self, failures: int) -> float:
        """Seconds to wait after the `failures`-th failed attempt."""
        return min(self.backoff * 2 ** (failures - 1), self.max_delay)


@dataclass(frozen=True, slots=True)
class Webhook:
    """JSON POST of each event, signed with HMAC-SHA256 of the body under `secret`."""

    name: str
    url: str
    secret: str
    timeout: float = 10.0
    retry: Retry = Retry()


@dataclass(frozen=True, slots=True)
class Email:
    """A plain-text e-mail per event over SMTP."""

    name: str
    smtp_host: str
    sender: str
    to: tuple[str, ...]
    smtp_port: int = 25
    starttls: bool = False
    username: str | None = None
    password: str | None = None
    link: str | None = None
    """URL template for the event's details, with {ip} and {port}, e.g. https://index.example/{ip}:{port}."""
    timeout: float = 10.0
    retry: Retry = Retry()


@dataclass(frozen=True, slots=True)
class Slack:
    """A Slack-compatible message ({"text", "blocks"}) POSTed to an incoming-webhook URL."""

    name: str
    url: str
    timeout: float = 10.0
    retry: Retry = Retry()


Channel = Webhook | Email | Slack


@dataclass(frozen=True, slots=True)
class Term:
    """One `field:value[,value...]` query term; it matches when the field equals any of the values (for
    `ip`, lies in any of the networks)."""

    field: str
    values: tuple[str, ...]

    def matches(self, event: Event) -> bool:
        if self.field == "ip":
            address = ipaddress.ip_address(event.ip)
            return any(address in parse_network(v) for v in self.values)
        value = getattr(event, self.field)
        return value is not None and value.lower() in self.values


@dataclass(frozen=True, slots=True)
class Rule:
    """Which events go to which channels. Every condition given must hold; an event matches `networks`
    or `asns` when it lies in any of the networks or any of the ASNs."""

    name: str
    channels: tuple[str, ...]
    networks: tuple[Network, ...] = ()
    asns: tuple[int, ...] = ()
    query: tuple[Term, ...] = ()
    min_severity: Severity | None = None
    events: tuple[str, ...] = ()

    def matches(self, event: Event, asn: int | None = None) -> bool:
        """Whether `event` (on a service whose ASN is `asn`, if known) is one of this rule's."""
        if self.events and event.type not in self.events:
            return False
        if self.networks or self.asns:
            address = ipaddress.ip_address(event.ip)
            in_network = any(address in network for network in self.networks)
            if not in_network and (asn is None or asn not in self.asns):
                return False
        if self.min_severity is not None:
            rank = severity_rank(event)
            if rank is None or rank < SEVERITY_RANK[self.min_severity]:
                return False
        return all(term.matches(event) for term in self.query)


def severity_rank(event: Event) -> int | None:
    """The higher of the event's severity and the one the service had before the change (so a critical
    service that closes still counts as critical), as a SEVERITY_RANK."""
    ranks = [SEVERITY_RANK[s] for s in (event.severity, event.before.get("severity")) if s in SEVERITY_RANK]
    return max(ranks, default=None)


@dataclass(frozen=True, slots=True)
class AlertConfig:
    rules: tuple[Rule, ...]
    channels: dict[str, Channel]


class _Table:
    """One TOML table being read: typed access to its keys, errors that name `where.key`."""

    def __init__(self, source: str, where: str, data: Any) -> None:
        self.source, self.where = source, where
        if not isinstance(data, Mapping):
            self.error(None, "must be a table")
        self.data: Mapping[str, Any] = data
        self.used: set[str] = set()

    def error(self, key: str | None, problem: str) -> NoReturn:
        place = f"{self.where}.{key}" if key else self.where
        raise ConfigError(f"{self.source}: {place}: {problem}")

    def get(
        self, key: str, kind: type | tuple[type, ...], default: Any = None, required: bool = False
    ) -> Any:
        self.used.add(key)
        if key not in self.data:
            if required:
                self.error(key, "missing")
            return default
        value = self.data[key]
        kinds = kind if isinstance(kind, tuple) else (kind,)
        if (isinstance(value, bool) and bool not in kinds) or not isinstance(value, kinds):
            names = " or ".join(dict.fromkeys(_KIND_NAMES[k] for k in kinds))
            self.error(key, f"must be {names}, not {_KIND_NAMES.get(type(value), type(value).__name__)}")
        return value

    def text(self, key: str, required: bool = True, default: str | None = None) -> Any:
        value = self.get(key, str, default=default, required=required)
        if required and not value.strip():
            self.error(key, "must not be empty")
        return value

    def number(self, key: str, default: float, low: float, high: float) -> float:
        value = float(self.get(key, (int, float), default=default))
        if not low <= value <= high:
            self.error(key, f"must be between {low:g} and {high:g}, not {value:g}")
        return value

    def strings(self, key: str) -> tuple[str, ...]:
        value = self.get(key, (list, str), default=[])
        items = [value] if isinstance(value, str) else value
        if not all(isinstance(item, str) and item.strip() for item in items):
            self.error(key, "must be a list of non-empty strings")
        return tuple(items)

    def parsed(self, key: str, items: tuple[str, ...], parse: Callable[[str], T]) -> tuple[T, ...]:
        out: list[T] = []
        for item in items:
            try:
                out.append(parse(item))
            except ValueError as exc:
                self.error(key, f"{item!r}: {exc}")
        return tuple(out)

    def done(self) -> None:
        unknown = sorted(set(self.data) - self.used)
        if unknown:
            self.error(unknown[0], "unknown key")


_KIND_NAMES = {str: "a string", int: "a number", float: "a number", bool: "true or false", list: "a list"}


def _url(table: _Table, key: str = "url") -> str:
    url = table.text(key)
    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL as exc:
        table.error(key, f"{url!r} is not a URL: {exc}")
    if parsed.scheme not in ("http", "https") or not parsed.host:
        table.error(key, f"{url!r} is not an http(s) URL")
    return url


def _retry(table: _Table) -> Retry:
    return Retry(
        attempts=1 + int(table.number("retries", 3, 0, 10)),
        backoff=table.number("backoff", 1.0, 0, 60),
        deadline=table.number("deadline", 120.0, 0, 3600),
    )


def _webhook(table: _Table) -> Webhook:
    return Webhook(
        name=table.text("name"),
        url=_url(table),
        secret=table.text("secret"),
        timeout=table.number("timeout", 10.0, 0.1, 300),
        retry=_retry(table),
    )


def _address(value: str) -> str:
    if "@" not in value.strip("@") or any(c.isspace() for c in value):
        raise ValueError("is not an e-mail address")
    return value


def _email(table: _Table) -> Email:
    sender = table.text("from")
    table.parsed("from", (sender,), _address)
    to = table.parsed("to", table.strings("to"), _address)
    if not to:
        table.error("to", "missing")
    return Email(
        name=table.text("name"),
        smtp_host=table.text("smtp_host"),
        smtp_port=int(table.number("smtp_port", 25, 1, 65535)),
        sender=sender,
        to=to,
        starttls=table.get("starttls", bool, default=False),
        username=table.text("username", required=False),
        password=table.text("password", required=False),
        link=table.text("link", required=False),
        timeout=table.number("timeout", 10.0, 0.1, 300),
        retry=_retry(table),
    )


def _slack(table: _Table) -> Slack:
    return Slack(
        name=table.text("name"),
        url=_url(table),
        timeout=table.number("timeout", 10.0, 0.1, 300),
        retry=_retry(table),
    )


def parse_query(query: str) -> tuple[Term, ...]:
    """`protocol:redis severity:high,critical ip:10.0.0.0/8`: every term must hold."""
    terms = []
    for word in query.split():
        field, sep, value = word.partition(":")
        field = field.lower()
        if not sep or not value:
            raise ValueError(f"{word!r} is not field:value")
        if field not in QUERY_FIELDS:
            raise ValueError(f"unknown field {field!r} (one of {', '.join(QUERY_FIELDS)})")
        values = tuple(v.lower() for v in value.split(",") if v)
        allowed = {"type": EVENT_TYPES, "severity": SEVERITIES}.get(field)
        for v in values:
            if allowed is not None and v not in allowed:
                raise ValueError(f"{field} {v!r} is not one of {', '.join(allowed)}")
            if field == "ip":
                parse_network(v)
        terms.append(Term(field, values))
    return tuple(terms)


def _rule(table: _Table, channels: Mapping[str, Channel]) -> Rule:
    name = table.text("name")
    query = table.text("query", required=False, default="")
    try:
        terms = parse_query(query)
    except ValueError as exc:
        table.error("query", str(exc))
    severity = table.text("min_severity", required=False)
    if severity is not None and severity not in SEVERITIES:
        table.error("min_severity", f"{severity!r} is not one of {', '.join(SEVERITIES)}")
    events = table.strings("events")
    for kind in events:
        if kind not in EVENT_TYPES:
            table.error("events", f"{kind!r} is not an event type ({', '.join(EVENT_TYPES)})")
    names = table.strings("channels")
    if not names:
        table.error("channels", "missing: name at least one channel")
    for channel in names:
        if channel not in channels:
            table.error("channels", f"no channel named {channel!r}")
    asns = tuple(table.get("asns", list, default=[]))
    for asn in asns:
        if isinstance(asn, bool) or not isinstance(asn, int) or not 0 < asn < 2**32:
            table.error("asns", f"{asn!r} is not an AS number")
    return Rule(
        name=name,
        channels=names,
        networks=table.parsed("networks", table.strings("networks"), parse_network),
        asns=asns,
        query=terms,
        min_severity=severity,
        events=events,
    )


_CHANNEL_KINDS: dict[str, Callable[[_Table], Channel]] = {
    "webhook": _webhook,
    "email": _email,
    "slack": _slack,
}


def parse_config(data: Mapping[str, Any], source: str) -> AlertConfig:
    """Build the configuration from a parsed TOML document; `source` names it in errors."""
    top = _Table(source, "top level", data)
    channels: dict[str, Channel] = {}
    for kind, build in _CHANNEL_KINDS.items():
        for n, item in enumerate(top.get(kind, list, default=[]), 1):
            table = _Table(source, f"{kind}[{n}]", item)
            channel = build(table)
            table.done()
            if channel.name in channels:
                table.error("name", f"channel name {channel.name!r} is used twice")
            channels[channel.name] = channel
    rules: list[Rule] = []
    for n, item in enumerate(top.get("rule", list, default=[]), 1):
        table = _Table(source, f"rule[{n}]", item)
        rule = _rule(table, channels)
        table.done()
        if any(r.name == rule.name for r in rules):
            table.error("name", f"rule name {rule.name!r} is used twice")
        rules.append(rule)
    top.done()
    if not rules:
        top.error(None, "no [[rule]] tables: nothing would be delivered")
    return AlertConfig(rules=tuple(rules), channels=channels)


def load_config(path: str | Path) -> AlertConfig:
    """Read and check an alert configuration file."""
    try:
        data = load_toml(path)
    except InputError as exc:
        raise ConfigError(str(exc)) from None
    return parse_config(data, str(path))

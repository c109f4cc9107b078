"""Alerts: route change events through the rules to their channels, each event once per rule and channel.

`deliver_events(events, config, store)` is the entry point for the scan/watch path (after the events are
stored) and for `leaksonar alerts send`; `send_sample(config)` sends a sample event everywhere.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import httpx

from leaksonar.model import Event
from leaksonar.notify.deliver import attempt, event_key, http_client, with_retries
from leaksonar.notify.rules import AlertConfig, Channel
from leaksonar.store.db import Store

CONCURRENCY = 8
"""Deliveries in flight at once."""
STALE_CLAIM = timedelta(minutes=30)
"""A delivery claimed this long ago without an outcome (the sender died) may be taken over."""


@dataclass(frozen=True, slots=True)
class Delivery:
    """The outcome of sending one event to one channel for one rule."""

    event: str
    rule: str
    channel: str
    status: str
    """sent | failed"""
    attempts: int
    error: str | None = None


@dataclass(slots=True)
class DeliveryReport:
    deliveries: list[Delivery] = field(default_factory=list)
    already: int = 0
    """Matching deliveries skipped because they were made before (or are being made by another run)."""

    @property
    def sent(self) -> int:
        return sum(d.status == "sent" for d in self.deliveries)

    @property
    def failed(self) -> int:
        return sum(d.status == "failed" for d in self.deliveries)


def _now() -> datetime:
    return datetime.now(UTC)


def _stamp(moment: datetime) -> str:
    return moment.isoformat(timespec="seconds").replace("+00:00", "Z")


async def _send(
    channel: Channel, event: Event, rule: str, client: httpx.AsyncClient, limit: asyncio.Semaphore
) -> tuple[bool, int, str | None]:
    async with limit:
        outcome = await with_retries(lambda: attempt(channel, event, rule, client), channel.retry)
    return outcome.sent, outcome.attempts, outcome.error


def _asn(store: Store, event: Event, cache: dict[tuple[str, int], int | None]) -> int | None:
    """The ASN recorded for the event's service (enrichment), if any."""
    where = (event.ip, event.port)
    if where not in cache:
        service = store.services.get(event.ip, event.port)
        network = (service.record.get("network") or {}) if service else {}
        cache[where] = network.get("asn")
    return cache[where]


async def deliver_events_async(events: Sequence[Event], config: AlertConfig, store: Store) -> DeliveryReport:
    """Send every event to the channels of every rule it matches, skipping those already delivered; each
    outcome goes to the store's delivery log (a failed one is tried again by the next call)."""
    report = DeliveryReport()
    asns: dict[tuple[str, int], int | None] = {}
    jobs: list[tuple[str, str, str, asyncio.Task[tuple[bool, int, str | None]]]] = []
    limit = asyncio.Semaphore(CONCURRENCY)
    async with http_client() as client:
        for event in events:
            key = event_key(event)
            for rule in config.rules:
                if not rule.matches(event, _asn(store, event, asns) if rule.asns else None):
                    continue
                for name in rule.channels:
                    now = _now()
                    if not store.deliveries.claim(
                        key, event.id, rule.name, name, _stamp(now), _stamp(now - STALE_CLAIM)
                    ):
                        report.already += 1
                        continue
                    task = asyncio.create_task(_send(config.channels[name], event, rule.name, client, limit))
                    jobs.append((key, rule.name, name, task))
        for key, rule_name, name, task in jobs:
            sent, attempts, error = await task
            status = "sent" if sent else "failed"
            store.deliveries.finish(key, rule_name, name, status, attempts, error, _stamp(_now()))
            report.deliveries.append(Delivery(key, rule_name, name, status, attempts, error))
    return report


def deliver_events(events: Sequence[Event], config: AlertConfig, store: Store) -> DeliveryReport:
    """`deliver_events_async` for callers without an event loop."""
    return asyncio.run(deliver_events_async(events, config, store))


def sample_event() -> Event:
    """A made-up event on a documentation address (TEST-NET-3) for `alerts test`."""
    return Event(
        ip="203.0.113.7",
        port=9200,
        type="ransom_note_appeared",
        time=_stamp(_now()),
        scan_id="alerts-test",
        protocol="elasticsearch",
        severity="critical",
        summary="TEST from leaksonar: a ransom note appeared; 3 indices with 970,000 rows replaced by 1",
        before={"rows": 970000, "collections": 3, "notes": 0},
        after={"rows": 1, "collections": 1, "notes": 1},
    )


async def send_sample_async(config: AlertConfig) -> list[Delivery]:
    """Send the sample event to every channel (no rules, no delivery log)."""
    event, limit = sample_event(), asyncio.Semaphore(CONCURRENCY)
    async with http_client() as client:
        outcomes = await asyncio.gather(
            *(_send(channel, event, "alerts-test", client, limit) for channel in config.channels.values())
        )
    return [
        Delivery(event_key(event), "alerts-test", name, "sent" if sent else "failed", attempts, error)
        for name, (sent, attempts, error) in zip(config.channels, outcomes, strict=True)
    ]


def send_sample(config: AlertConfig) -> list[Delivery]:
    return asyncio.run(send_sample_async(config))

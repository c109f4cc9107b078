"""Protocol-neutral helpers for the hand-written key-value probes (Redis, Memcached): what an inspection
has learned so far, running it within the service budget, failures as plain sentences, and bounded
decoding of sampled values."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from itertools import islice
from typing import Any

import httpx

from leaksonar.model import Auth, Collection, Inspection, Limits, Sample, Software
from leaksonar.protocols.base import CommandRefused, ProtocolError, ReplyTooLarge

MAX_DEPTH = 4
"""Deepest nesting accepted in a reply or kept from a JSON value."""
MAX_ITEMS = 50
"""Most elements kept from one sampled container (hash, set, JSON object ...)."""


SAMPLING_ERRORS = (OSError, TimeoutError, EOFError, ReplyTooLarge, ProtocolError, CommandRefused)
"""What a misbehaving server makes a sampling exchange raise: reported, and the inspection goes on."""


@dataclass(slots=True)
class Learned:
    """What an inspection has found so far; survives a timeout or a broken connection."""

    software: Software | None
    auth: Auth
    databases: int | None = None
    rows: int | None = None
    size_bytes: int | None = None
    collections: list[Collection] = field(default_factory=list)
    samples: list[Sample] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)

    def inspection(self, protocol: str) -> Inspection:
        return Inspection(
            protocol=protocol,
            software=self.software,
            auth=self.auth,
            databases=self.databases,
            collections=tuple(self.collections),
            rows=self.rows,
            size_bytes=self.size_bytes,
            samples=tuple(self.samples),
            errors=tuple(self.errors),
            details=self.details,
        )

    async def add_sampled(
        self,
        database: str,
        name: str,
        rows: int | None,
        size_bytes: int | None,
        sampling: Awaitable[tuple[dict[str, Any], ...]],
        limits: Limits,
    ) -> None:
        """Collection `name` with its counts, and the documents of `sampling` unless the server
        misbehaves while they are read (then an error line says why)."""
        documents: tuple[dict[str, Any], ...] = ()
        try:
            documents = await sampling
        except SAMPLING_ERRORS as exc:
            self.errors.append(f"Sampling {name} failed: {describe(exc, limits)}.")
        self.collections.append(Collection(database, name, rows, size_bytes, field_names(documents)))
        if documents:
            self.samples.append(Sample(database, name, documents))


def describe(exc: BaseException, limits: Limits) -> str:
    """A short plain sentence for a failed network exchange."""
    if isinstance(exc, TimeoutError | httpx.TimeoutException):
        return f"no answer within {limits.timeout:g} s"
    if isinstance(exc, httpx.ReadError | httpx.WriteError):
        return "the server closed or reset the connection"
    if isinstance(exc, httpx.RemoteProtocolError):
        return f"the server broke the HTTP protocol: {str(exc)[:200]}"
    if isinstance(exc, httpx.ConnectError):
        return "could not connect"
    if isinstance(exc, ReplyTooLarge):
        return f"reply too large: {exc}"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, asyncio.IncompleteReadError):
        return "the server closed the connection mid-reply"
    if isinstance(exc, ConnectionError):
        return "the server closed or reset the connection"
    if isinstance(exc, OSError):
        return f"network error: {exc.strerror or exc}"
    return str(exc) or type(exc).__name__


async def run_within_budget(
    protocol: str, steps: Callable[[Learned], Awaitable[None]], learned: Learned, limits: Limits
) -> Inspection:
    """Run `steps` within the service budget; whatever goes wrong becomes an error line."""
    budget = asyncio.timeout(limits.service_budget)
    try:
        async with budget:
            await steps(learned)
    except Exception as exc:  # a hostile server's failure is a fact to report, never a crash
        reason = (
            f"the {limits.service_budget:g} s budget ran out" if budget.expired() else describe(exc, limits)
        )
        learned.errors.append(f"Inspection stopped: {reason}.")
    return learned.inspection(protocol)


def value_window(limits: Limits) -> int:
    """Bytes read from one stored value: enough to decode a small JSON document."""
    return max(1, min(limits.value_chars * 16, limits.max_bytes))


def text(raw: bytes, limits: Limits) -> str:
    """`raw` as text cut to `limits.value_chars` characters."""
    return raw[: limits.value_chars * 4].decode("utf-8", "replace")[: limits.value_chars]


def decode_value(raw: bytes, limits: Limits) -> Any:
    """A stored value for a sample document: a bounded JSON object/array if it is one, else text."""
    if raw.lstrip()[:1] in (b"{", b"["):
        try:
            return bounded(json.loads(raw), limits)
        except (ValueError, RecursionError):
            pass
    return text(raw, limits)


def bounded(value: Any, limits: Limits, depth: int = 0) -> Any:
    """A decoded JSON value with strings, containers and nesting cut to the sampling limits."""
    if isinstance(value, str):
        return value[: limits.value_chars]
    if isinstance(value, dict | list) and depth >= MAX_DEPTH:
        return None
    if isinstance(value, dict):
        return {
            str(k)[: limits.value_chars]: bounded(v, limits, depth + 1)
            for k, v in islice(value.items(), MAX_ITEMS)
        }
    if isinstance(value, list):
        return [bounded(v, limits, depth + 1) for v in value[:MAX_ITEMS]]
    return value


def field_names(documents: Sequence[dict[str, Any]]) -> tuple[str, ...]:
    """Sorted names of the object fields seen in the documents' values."""
    names: set[str] = set()
    for doc in documents:
        value = doc.get("value")
        for obj in value if isinstance(value, list) else [value]:
            if isinstance(obj, dict):
                names.update(obj)
    return tuple(sorted(names))

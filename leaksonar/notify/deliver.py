"""Sending one event to one channel: signed webhook POSTs, Slack-compatible messages, plain-text e-mail.

Payloads carry the event record only: figures, categories, the one-line summary; never raw data.
Transient failures (network errors, timeouts, HTTP 408/429/5xx, SMTP 4xx) are retried with exponential
back-off within the channel's bounds; others fail at once.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import shlex
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from email import policy
from email.message import EmailMessage
from typing import Any

import aiosmtplib
import httpx

from leaksonar import __version__
from leaksonar.formats import address_port
from leaksonar.model import Event
from leaksonar.notify.rules import Channel, Email, Retry, Slack, Webhook
from leaksonar.protocols.useragent import USER_AGENT
from leaksonar.sanitize import for_email, for_slack, for_terminal

SIGNATURE_HEADER = "X-Leaksonar-Signature"
EVENT_ID_HEADER = "X-Leaksonar-Event-Id"
RETRY_STATUS = frozenset({408, 425, 429, 500, 502, 503, 504})


class SendError(Exception):
    """One attempt failed; `transient` says whether another attempt may succeed."""

    def __init__(self, message: str, transient: bool) -> None:
        super().__init__(message)
        self.transient = transient


@dataclass(frozen=True, slots=True)
class Outcome:
    sent: bool
    attempts: int
    error: str | None = None


def event_key(event: Event) -> str:
    """A stable identity for an event, the same before and after it is stored."""
    return f"{event.scan_id}/{event.ip}:{event.port}/{event.type}"


def sign(body: bytes, secret: str) -> str:
    """The signature header's value: sha256=<hex HMAC-SHA256 of the body under the secret>."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def webhook_body(event: Event, rule: str) -> bytes:
    record = {**event.to_record(), "rule": rule, "leaksonar_version": __version__}
    return json.dumps(record, ensure_ascii=False, sort_keys=True).encode()


def _title(event: Event) -> str:
    return f"{event.type.replace('_', ' ')} on {address_port(event.ip, event.port)} ({event.protocol})"


def _mrkdwn(text: str) -> dict[str, Any]:
    """A verbatim mrkdwn text object: Slack links no URL, channel name or mention found in the text."""
    return {"type": "mrkdwn", "text": text, "verbatim": True}


def slack_payload(event: Event, rule: str) -> dict[str, Any]:
    """An incoming-webhook message: `text` for notifications (leaksonar's own words only: Slack parses it
    for links), `blocks` for the layout, no link previews. Every value goes through `for_slack` (mrkdwn,
    always verbatim) or `for_terminal` (plain_text); the formatting is leaksonar's own."""
    severity, kind = for_slack(event.severity or "-"), for_slack(event.type)
    title, summary = for_slack(_title(event)), for_slack(event.summary or _title(event))
    service = for_slack(f"{address_port(event.ip, event.port)} {event.protocol}")
    return {
        "text": f"leaksonar [{severity}] {title}",
        "unfurl_links": False,
        "unfurl_media": False,
        "blocks": [
            {
                "type": "header",
                "text": {"type": "plain_text", "text": for_terminal(f"leaksonar: {_title(event)}")[:150]},
            },
            {"type": "section", "text": _mrkdwn(summary)},
            {
                "type": "section",
                "fields": [
                    _mrkdwn(f"*Severity*\n{severity}"),
                    _mrkdwn(f"*Event*\n{kind}"),
                    _mrkdwn(f"*Service*\n{service}"),
                    _mrkdwn(f"*Rule*\n{for_slack(rule)}"),
                ],
            },
            {
                "type": "context",
                "elements": [
                    _mrkdwn(for_slack(f"scan {event.scan_id} at {event.time} · leaksonar {__version__}"))
                ],
            },
        ],
    }


def _figure(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, list | tuple):
        return ", ".join(_figure(v) for v in value) or "none"
    if isinstance(value, dict):
        return json.dumps(value, ensure_ascii=False, sort_keys=True)
    return str(value)


def email_message(event: Event, rule: str, channel: Email) -> EmailMessage:
    """A plain-text e-mail: summary, before/after figures, where to look; no raw data. The subject and
    every line of the body go through `for_email`: one line each, control characters made visible."""
    link = channel.link.format(ip=event.ip, port=event.port) if channel.link else None
    show = f"leaksonar show {shlex.quote(address_port(event.ip, event.port))}"  # [v6]:port: a glob unquoted
    lines = [
        event.summary or _title(event),
        "",
        f"Event:    {event.type}",
        f"Service:  {address_port(event.ip, event.port)} ({event.protocol})",
        f"Severity: {event.severity or '-'}",
        f"Seen:     {event.time} (scan {event.scan_id})",
        f"Rule:     {rule}",
    ]
    changed = sorted(set(event.before) | set(event.after))
    if changed:
        lines += ["", "What changed (before -> after):"]
        lines += [f"  {k}: {_figure(event.before.get(k))} -> {_figure(event.after.get(k))}" for k in changed]
    lines += [
        "",
        f"Details: {link or show}",
        "",
        f"-- leaksonar {__version__}. Only categories, counts and masked examples are sent, never raw data.",
    ]
    message = EmailMessage(policy=policy.SMTP)
    message["Subject"] = for_email(f"[leaksonar] {event.severity or '-'}: {_title(event)}")
    message["From"] = channel.sender
    message["To"] = ", ".join(channel.to)
    message["X-Leaksonar-Event-Id"] = for_email(str(event.id) if event.id is not None else event_key(event))
    message.set_content("".join(for_email(line) + "\n" for line in lines))
    return message


async def _post(
    client: httpx.AsyncClient, url: str, body: bytes, headers: dict[str, str], timeout: float
) -> None:
    try:
        response = await client.post(
            url, content=body, headers={"Content-Type": "application/json", **headers}, timeout=timeout
        )
    except httpx.HTTPError as exc:
        raise SendError(f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__, True) from None
    if response.is_success:
        return
    raise SendError(f"HTTP {response.status_code}", response.status_code in RETRY_STATUS)


async def _send_email(message: EmailMessage, channel: Email) -> None:
    try:
        await aiosmtplib.send(
            message,
            hostname=channel.smtp_host,
            port=channel.smtp_port,
            start_tls=channel.starttls,
            use_tls=False,
            username=channel.username,
            password=channel.password,
            timeout=channel.timeout,
        )
    except aiosmtplib.SMTPResponseException as exc:
        raise SendError(f"SMTP {exc.code}: {exc.message}", 400 <= exc.code < 500) from None
    except (aiosmtplib.SMTPException, OSError) as exc:
        raise SendError(f"{type(exc).__name__}: {exc}", True) from None


def attempt(channel: Channel, event: Event, rule: str, client: httpx.AsyncClient) -> Awaitable[None]:
    """One try at sending `event` (selected by `rule`) to `channel`."""
    key = str(event.id) if event.id is not None else event_key(event)
    if isinstance(channel, Webhook):
        body = webhook_body(event, rule)
        headers = {SIGNATURE_HEADER: sign(body, channel.secret), EVENT_ID_HEADER: key}
        return _post(client, channel.url, body, headers, channel.timeout)
    if isinstance(channel, Slack):
        return _post(
            client, channel.url, json.dumps(slack_payload(event, rule)).encode(), {}, channel.timeout
        )
    return _send_email(email_message(event, rule, channel), channel)


async def with_retries(
    send: Callable[[], Awaitable[None]],
    retry: Retry,
    sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
) -> Outcome:
    """Call `send` until it succeeds, fails for good, or the retry bounds (count, deadline) are spent."""
    started = time.monotonic()
    n = 0
    while True:
        n += 1
        try:
            await send()
            return Outcome(True, n)
        except SendError as exc:
            wait = retry.delay(n)
            spent = time.monotonic() - started
            if not exc.transient or n >= retry.attempts or spent + wait > retry.deadline:
                return Outcome(False, n, " ".join(str(exc).split())[:500])
        await sleep(wait)


def http_client() -> httpx.AsyncClient:
    """HTTP client for deliveries: no proxies from the environment, no redirects, our User-Agent."""
    return httpx.AsyncClient(trust_env=False, follow_redirects=False, headers={"User-Agent": USER_AGENT})

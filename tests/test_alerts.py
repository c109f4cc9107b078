"""Alerts: rules from TOML, signed webhooks with retries, e-mail to a real SMTP server, Slack payloads,
once-only delivery. Every receiver runs on 127.0.0.1 inside the test."""

from __future__ import annotations

import hashlib
import hmac
import json
import socket
import threading
from collections.abc import Iterator
from email import message_from_bytes, policy
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from conftest import leaksonar

from leaksonar.model import Event, Finding
from leaksonar.notify.alerts import deliver_events
from leaksonar.notify.deliver import email_message
from leaksonar.notify.rules import AlertConfig, ConfigError, Email, load_config
from leaksonar.store.db import Store

SECRET = "s3cret-for-tests"


class Receiver:
    """An HTTP endpoint on loopback that records each POST; the first `fail` requests get `status`."""

    def __init__(self) -> None:
        self.requests: list[tuple[dict[str, str], bytes]] = []
        self.fail, self.status = 0, 503
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                owner.requests.append(({k.lower(): v for k, v in self.headers.items()}, body))
                failing = owner.fail > 0
                owner.fail -= failing
                self.send_response(owner.status if failing else 200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hook"
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()

    def bodies(self) -> list[dict[str, Any]]:
        return [json.loads(body) for _, body in self.requests]


class Inbox:
    """aiosmtpd handler keeping every message received."""

    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(message_from_bytes(envelope.content, policy=policy.default))  # type: ignore[arg-type]
        return "250 OK"


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    hook = Receiver()
    yield hook
    hook.server.shutdown()


@pytest.fixture
def smtp() -> Iterator[tuple[int, Inbox]]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    yield port, inbox
    controller.stop()


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return Store(str(tmp_path / "index.db"))


def event(ip: str = "127.20.0.5", type: str = "wiped", severity: str | None = "critical", **kw: Any) -> Event:
    values: dict[str, Any] = {
        "port": 9200,
        "time": "2026-11-28T05:00:00Z",
        "scan_id": "scan-2",
        "protocol": "elasticsearch",
        "summary": "3 indices with 970,000 rows replaced by 1 (ransom note)",
        "before": {"rows": 970000, "size_bytes": 23_000_000_000},
        "after": {"rows": 1, "size_bytes": 4096},
    }
    return Event(ip=ip, type=type, severity=severity, **{**values, **kw})  # type: ignore[arg-type]


def config(tmp_path: Path, text: str) -> AlertConfig:
    path = tmp_path / "alerts.toml"
    path.write_text(text)
    return load_config(path)


def webhook(url: str, extra: str = "") -> str:
    return f'[[webhook]]\nname = "soc"\nurl = "{url}"\nsecret = "{SECRET}"\nbackoff = 0.01\n{extra}\n'


def test_webhook_is_signed_and_each_event_goes_once(tmp_path: Path, receiver: Receiver, store: Store) -> None:
    settings = config(tmp_path, webhook(receiver.url) + '[[rule]]\nname = "all"\nchannels = ["soc"]\n')
    events = [event(id=7), event(ip="127.20.0.6", type="new_exposure", id=8)]

    first = deliver_events(events, settings, store)
    assert (first.sent, first.failed, first.already) == (2, 0, 0)
    assert len(receiver.requests) == 2
    for headers, body in receiver.requests:
        expected = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
        assert hmac.compare_digest(headers["x-leaksonar-signature"], expected)
        assert headers["content-type"] == "application/json"
        assert headers["user-agent"].startswith("leaksonar/")
    assert sorted(h["x-leaksonar-event-id"] for h, _ in receiver.requests) == ["7", "8"]
    posted = {b["ip"]: b for b in receiver.bodies()}
    assert posted["127.20.0.5"]["type"] == "wiped"
    assert posted["127.20.0.5"]["before"]["rows"] == 970000
    assert posted["127.20.0.5"]["rule"] == "all"
    assert posted["127.20.0.5"]["leaksonar_version"]

    again = deliver_events(events, settings, store)
    assert (again.sent, again.already) == (0, 2)
    assert len(receiver.requests) == 2
    log = store.deliveries.all()
    assert [(d.event_id, d.rule, d.channel, d.status, d.attempts) for d in log] == [
        (7, "all", "soc", "sent", 1),
        (8, "all", "soc", "sent", 1),
    ]


def test_webhook_retries_with_back_off(tmp_path: Path, receiver: Receiver, store: Store) -> None:
    receiver.fail = 2
    settings = config(tmp_path, webhook(receiver.url) + '[[rule]]\nname = "all"\nchannels = ["soc"]\n')

    report = deliver_events([event()], settings, store)

    assert (report.sent, report.deliveries[0].attempts) == (1, 3)
    assert len(receiver.requests) == 3
    assert len({h["x-leaksonar-event-id"] for h, _ in receiver.requests}) == 1
    assert store.deliveries.all()[0].attempts == 3


def test_failed_delivery_is_bounded_logged_and_retried_next_run(
    tmp_path: Path, receiver: Receiver, store: Store
) -> None:
    receiver.fail, receiver.status = 100, 500
    settings = config(
        tmp_path, webhook(receiver.url, "retries = 1") + '[[rule]]\nname = "all"\nchannels = ["soc"]\n'
    )

    failed = deliver_events([event()], settings, store)
    assert (failed.sent, failed.failed) == (0, 1)
    assert len(receiver.requests) == 2
    assert store.deliveries.all()[0].status == "failed"
    assert store.deliveries.all()[0].last_error == "HTTP 500"

    receiver.fail = 0
    later = deliver_events([event()], settings, store)
    assert later.sent == 1
    assert [(d.status, d.attempts, d.last_error) for d in store.deliveries.all()] == [("sent", 3, None)]


def test_client_errors_are_not_retried(tmp_path: Path, receiver: Receiver, store: Store) -> None:
    receiver.fail, receiver.status = 100, 404
    settings = config(tmp_path, webhook(receiver.url) + '[[rule]]\nname = "all"\nchannels = ["soc"]\n')

    report = deliver_events([event()], settings, store)

    assert (report.failed, report.deliveries[0].attempts, report.deliveries[0].error) == (1, 1, "HTTP 404")


def test_email_reaches_a_real_smtp_server(tmp_path: Path, smtp: tuple[int, Inbox], store: Store) -> None:
    port, inbox = smtp
    settings = config(
        tmp_path,
        f"""
[[email]]
name = "owners"
smtp_host = "127.0.0.1"
smtp_port = {port}
from = "leaksonar@example.org"
to = ["soc@example.org", "abuse@example.net"]
link = "https://index.example.org/services/{{ip}}:{{port}}"

[[rule]]
name = "attacks"
events = ["wiped", "ransom_note_appeared"]
channels = ["owners"]
""",
    )
    report = deliver_events([event(), event(type="grew", severity="high")], settings, store)

    assert report.sent == 1
    [mail] = inbox.messages
    assert mail["From"] == "leaksonar@example.org"
    assert mail["To"] == "soc@example.org, abuse@example.net"
    assert mail["Subject"] == "[leaksonar] critical: wiped on 127.20.0.5:9200 (elasticsearch)"
    assert mail.get_content_type() == "text/plain"
    body = mail.get_content()
    assert "3 indices with 970,000 rows replaced by 1" in body
    assert "rows: 970,000 -> 1" in body
    assert "size_bytes: 23,000,000,000 -> 4,096" in body
    assert "Details: https://index.example.org/services/127.20.0.5:9200" in body

    assert deliver_events([event()], settings, store).sent == 0
    assert len(inbox.messages) == 1


@pytest.mark.parametrize(
    ("ip", "command"),
    [("127.20.0.5", "leaksonar show 127.20.0.5:9200"), ("fd00::5", "leaksonar show '[fd00::5]:9200'")],
)
def test_an_email_without_a_link_names_a_command_a_shell_runs_as_written(ip: str, command: str) -> None:
    """Unquoted, `[fd00::5]:9200` is a glob pattern: zsh stops with "no matches found"."""
    mail = email_message(event(ip=ip), "r", Email("mail", "127.0.0.1", "a@example.org", ("b@example.org",)))
    assert f"Details: {command}\n" in mail.get_content()


def test_slack_payload(tmp_path: Path, receiver: Receiver, store: Store) -> None:
    settings = config(
        tmp_path,
        f'[[slack]]\nname = "chat"\nurl = "{receiver.url}"\n[[rule]]\nname = "all"\nchannels = ["chat"]\n',
    )

    assert deliver_events([event(summary="index <!channel> & co: 970,000 rows")], settings, store).sent == 1

    [payload] = receiver.bodies()
    assert set(payload) == {"text", "blocks", "unfurl_links", "unfurl_media"}
    assert "wiped on 127.20.0.5:9200" in payload["text"]
    assert "critical" in payload["text"]
    assert [b["type"] for b in payload["blocks"]] == ["header", "section", "section", "context"]
    header = payload["blocks"][0]["text"]
    assert header["type"] == "plain_text" and len(header["text"]) <= 150
    fields = [f["text"] for f in payload["blocks"][2]["fields"]]
    assert "*Severity*\ncritical" in fields and "*Rule*\nall" in fields
    assert payload["blocks"][1]["text"]["text"] == "index &lt;!channel&gt; &amp; co: 970,000 rows"
    assert "<!channel>" not in json.dumps(payload)


def _text_objects(node: Any) -> list[dict[str, Any]]:
    """Every Block Kit text object (a dict with "type" and "text") in a payload."""
    if isinstance(node, list):
        return [found for item in node for found in _text_objects(item)]
    if not isinstance(node, dict):
        return []
    own = [node] if isinstance(node.get("text"), str) and "type" in node else []
    return own + [found for value in node.values() for found in _text_objects(value)]


def test_slack_links_no_url_or_channel_a_server_wrote(
    tmp_path: Path, receiver: Receiver, store: Store
) -> None:
    settings = config(
        tmp_path,
        f'[[slack]]\nname = "chat"\nurl = "{receiver.url}"\n[[rule]]\nname = "all"\nchannels = ["chat"]\n',
    )
    lure = "restore at https://evil.example/pay or www.evil.example, ask in #general"
    assert deliver_events([event(summary=lure)], settings, store).sent == 1

    [payload] = receiver.bodies()
    assert payload["unfurl_links"] is False and payload["unfurl_media"] is False
    assert "evil" not in payload["text"]  # the notification text is not parsed verbatim: no server text
    mrkdwn = [obj for obj in _text_objects(payload["blocks"]) if obj["type"] == "mrkdwn"]
    assert mrkdwn and all(obj.get("verbatim") is True for obj in mrkdwn)
    assert any(obj["text"] == lure for obj in mrkdwn)


RULES = """
[[rule]]
name = "lab-high"
networks = ["127.20.0.0/24"]
min_severity = "high"
channels = ["soc"]

[[rule]]
name = "closures"
events = ["closed", "auth_enabled"]
query = "protocol:elasticsearch,kibana"
channels = ["soc"]

[[rule]]
name = "by-asn"
asns = [64500]
query = "ip:127.30.0.0/16 severity:medium"
channels = ["soc"]
"""


def test_rules_filter_by_network_severity_type_query_and_asn(
    tmp_path: Path, receiver: Receiver, store: Store
) -> None:
    settings = config(tmp_path, webhook(receiver.url) + RULES)
    lab_high, closures, by_asn = settings.rules

    assert lab_high.matches(event(severity="high"))
    assert not lab_high.matches(event(severity="medium"))
    assert not lab_high.matches(event(ip="127.21.0.5"))
    assert not lab_high.matches(event(severity=None))
    closed = event(type="closed", severity=None, before={"severity": "critical"})
    assert lab_high.matches(closed), "a critical service that closes is judged by its severity before"

    assert closures.matches(closed)
    assert not closures.matches(event(type="closed", protocol="redis"))
    assert not closures.matches(event(type="wiped"))

    medium = event(ip="127.30.1.1", severity="medium")
    assert by_asn.matches(medium, asn=64500)
    assert not by_asn.matches(medium, asn=64501)
    assert not by_asn.matches(medium)
    assert not by_asn.matches(event(ip="127.20.0.5", severity="medium"), asn=64500)

    report = deliver_events([event(severity="medium"), closed, event(id=3)], settings, store)
    assert sorted((d.rule, d.event.split("/")[-1]) for d in report.deliveries) == [
        ("closures", "closed"),
        ("lab-high", "closed"),
        ("lab-high", "wiped"),
    ]
    assert len(receiver.requests) == 3


V6_RULES = """
[[rule]]
name = "networks"
networks = ["fd00::/64", "::ffff:127.40.0.0/112"]
channels = ["soc"]

[[rule]]
name = "query"
query = "ip:fd00::/64,::ffff:127.40.0.0/112"
channels = ["soc"]
"""


def test_rules_take_ipv6_networks_and_an_ipv4_mapped_one_as_its_ipv4_block(
    tmp_path: Path, receiver: Receiver
) -> None:
    """`::ffff:127.40.0.0/112` is 127.40.0.0/16, as a scan and a search read it: events are on the IPv4
    address."""
    for rule in config(tmp_path, webhook(receiver.url) + V6_RULES).rules:
        assert rule.matches(event(ip="fd00::5")) and rule.matches(event(ip="127.40.3.4")), rule.name
        assert not rule.matches(event(ip="fd01::5")) and not rule.matches(event(ip="127.41.0.1")), rule.name


BAD = [
    ("[[rule]\nname = 'x'\n", "invalid TOML", "line 5"),
    ("[[rule]]\nname = 'x'\nchannels = ['nowhere']\n", "rule[1].channels", "no channel named 'nowhere'"),
    ("[[rule]]\nname = 'x'\n", "rule[1].channels", "missing"),
    (
        "[[rule]]\nname = 'x'\nchannels = ['h']\nnetworks = ['10.0.0.300/8']\n",
        "rule[1].networks",
        "10.0.0.300",
    ),
    ("[[rule]]\nname = 'x'\nchannels = ['h']\nmin_severity = 'hgh'\n", "rule[1].min_severity", "'hgh'"),
    ("[[rule]]\nname = 'x'\nchannels = ['h']\nevents = ['deleted']\n", "rule[1].events", "'deleted'"),
    ("[[rule]]\nname = 'x'\nchannels = ['h']\nasns = ['AS1']\n", "rule[1].asns", "not an AS number"),
    ("[[rule]]\nname = 'x'\nchannels = ['h']\nquery = 'owner:x'\n", "rule[1].query", "unknown field 'owner'"),
    ("[[rule]]\nname = 'x'\nchannels = ['h']\nchanels = ['h']\n", "rule[1].chanels", "unknown key"),
    ("", "top level", "no [[rule]]"),
]
HOOK = "[[webhook]]\nname = 'h'\nurl = 'http://127.0.0.1:9/x'\nsecret = 'k'\n"


@pytest.mark.parametrize(("text", "where", "problem"), BAD)
def test_bad_config_is_one_clear_line(tmp_path: Path, text: str, where: str, problem: str) -> None:
    with pytest.raises(ConfigError) as caught:
        config(tmp_path, HOOK + text if "name = 'x'" in text else text)
    message = str(caught.value)
    assert "\n" not in message
    assert where in message and problem in message


@pytest.mark.parametrize(
    ("channel", "where", "problem"),
    [
        ("[[webhook]]\nname = 'h'\nurl = 'ftp://x/'\nsecret = 'k'\n", "webhook[1].url", "not an http(s) URL"),
        ("[[webhook]]\nname = 'h'\nurl = 'http://127.0.0.1/'\n", "webhook[1].secret", "missing"),
        (
            "[[webhook]]\nname = 'h'\nurl = 'http://127.0.0.1/'\nsecret = 'k'\ntimeout = 'x'\n",
            "timeout",
            "number",
        ),
        ("[[email]]\nname = 'h'\nsmtp_host = 'a'\nfrom = 'a@b'\nto = 'nobody'\n", "email[1].to", "e-mail"),
        (
            "[[email]]\nname = 'h'\nsmtp_host = 'a'\nfrom = 'a@b'\nto = 'c@d'\nstarttls = 1\n",
            "starttls",
            "true or false",
        ),
        ("[[slack]]\nname = 'h'\nurl = 'http://127.0.0.1/'\n" * 2, "slack[2].name", "used twice"),
    ],
)
def test_bad_channel_is_one_clear_line(tmp_path: Path, channel: str, where: str, problem: str) -> None:
    with pytest.raises(ConfigError) as caught:
        config(tmp_path, channel + "[[rule]]\nname = 'x'\nchannels = ['h']\n")
    assert where in str(caught.value) and problem in str(caught.value)


def test_cli_bad_config_exits_2_with_one_line(tmp_path: Path) -> None:
    path = tmp_path / "alerts.toml"
    path.write_text(HOOK + "[[rule]]\nname = 'x'\nchannels = ['h']\nmin_severity = 'urgent'\n")

    result = leaksonar("alerts", "test", "--config", str(path), check=False)

    assert result.returncode == 2
    assert result.stderr.count("\n") == 1
    assert "rule[1].min_severity" in result.stderr and "'urgent'" in result.stderr


def test_cli_alerts_test_reaches_every_channel(
    tmp_path: Path, receiver: Receiver, smtp: tuple[int, Inbox]
) -> None:
    port, inbox = smtp
    slack = Receiver()
    path = tmp_path / "alerts.toml"
    path.write_text(
        webhook(receiver.url)
        + f'[[slack]]\nname = "chat"\nurl = "{slack.url}"\n'
        + f'[[email]]\nname = "mail"\nsmtp_host = "127.0.0.1"\nsmtp_port = {port}\nfrom = "a@example.org"\n'
        + 'to = "b@example.org"\n[[rule]]\nname = "r"\nchannels = ["soc"]\n'
    )
    try:
        result = leaksonar("alerts", "test", "--config", str(path))
    finally:
        slack.server.shutdown()

    assert [line.split()[:2] for line in result.stdout.splitlines()] == [
        ["sent", "soc"],
        ["sent", "mail"],
        ["sent", "chat"],
    ]
    assert len(receiver.requests) == len(slack.requests) == len(inbox.messages) == 1
    assert receiver.bodies()[0]["ip"] == "203.0.113.7"
    assert "TEST" in inbox.messages[0].get_content()


def test_cli_alerts_send_delivers_stored_events_once(tmp_path: Path, receiver: Receiver) -> None:
    db = str(tmp_path / "index.db")
    store = Store(db)
    store.scans.begin("s1", "2026-11-28T05:00:00Z", targets="127.20.0.5", ports="9200", size=1, options={})
    store.findings.add([
        Finding("127.20.0.5", 9200, "elasticsearch", None, "none", True, "2026-11-28T05:00:00Z", "s1", rows=9)
    ])  # fmt: skip
    store.scans.finish("s1", "2026-11-28T05:00:01Z", "done")
    [stored] = store.events.record("s1")
    path = tmp_path / "alerts.toml"
    path.write_text(webhook(receiver.url) + '[[rule]]\nname = "all"\nchannels = ["soc"]\n')
    send = ("alerts", "send", "--config", str(path), "--db", db)

    bad = leaksonar(*send, "--since", "yesterday", check=False)
    assert bad.returncode == 2 and "--since" in bad.stderr and bad.stderr.count("\n") == 1
    later = leaksonar(*send, "--since", "2026-11-29")
    assert (later.stdout, receiver.requests) == ("", [])
    first = leaksonar(*send)
    assert first.stdout.split()[:2] == ["sent", "soc"]
    assert receiver.requests[0][0]["x-leaksonar-event-id"] == str(stored.id)
    assert receiver.bodies()[0]["type"] == "new_exposure"
    again = leaksonar(*send)
    assert again.stdout == "" and "0 sent, 0 failed, 1 delivered before" in again.stderr
    assert len(receiver.requests) == 1

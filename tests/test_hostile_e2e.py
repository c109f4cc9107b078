"""Server text at every output but the terminal, end to end: the hostile-text kit (tests/hostile_text.py) is
scanned twice with the CLI, and what it stored goes out as users get it: `leaksonar report` letters
(Markdown rendered by markdown-it, HTML), `leaksonar export` (CSV parsed back, JSONL), `leaksonar alerts
send` to a webhook, a Slack hook and an SMTP server on 127.0.0.1, every JSON endpoint of the API, every
UI page (parsed as a browser would), and the live event stream. Nothing a server wrote may act there: no
markup, no link, no formula, no raw control or bidi character, no broken framing; JSON keeps the exact
text."""

from __future__ import annotations

import csv
import io
import json
import re
import shutil
import time
from collections.abc import Iterator
from dataclasses import replace
from email.message import EmailMessage
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import httpx
import pytest
import test_alerts
from conftest import leaksonar
from fastapi.testclient import TestClient
from hostile_text import MARKDOWN_RENDERERS, MIX, PAYLOADS, VERSIONS, HostileIndex, index_names
from markdown_it import MarkdownIt
from test_alerts import SECRET, Inbox, Receiver
from test_api import serving_app
from test_hostile_outputs import FORMULA, assert_no_markup, visible

from leaksonar.sanitize import for_slack, for_terminal
from leaksonar.store.db import Store
from leaksonar.web.access import public_ids, shown_id
from leaksonar.web.app import create_app
from leaksonar.web.keys import create_key

receiver, smtp = test_alerts.receiver, test_alerts.smtp
RAW_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\u2028\u2029]")
"""What escaping for HTML, Markdown or JSON (ensure_ascii off) alone keeps: C0 but tab and line breaks,
DEL, C1, bidi embeddings and isolates, line and paragraph separators."""
DOCS = (
    "https://www.elastic.co/",
    "https://opensearch.org/",
    "https://redis.io/",
)
"""The documentation links leaksonar's own remediation text gives (the only links in a letter)."""
HOSTILE_VERSIONS = (VERSIONS["elasticsearch"][1], VERSIONS["redis"][1])
"""The kit's versions in the second scan: the stored services' software."""


def assert_no_raw_controls(text: str) -> None:
    found = sorted({f"U+{ord(c):04X}" for c in RAW_CONTROL.findall(text)})
    assert not found, found


@pytest.fixture(scope="module")
def index(hostile_index: HostileIndex, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the kit's index (alerts, keys and letters write to it; the session's stays as scanned)."""
    copy = tmp_path_factory.mktemp("hostile-e2e") / "index.db"
    shutil.copy(hostile_index.db, copy)
    return copy


@pytest.fixture(scope="module")
def stored(index: Path) -> dict[str, Any]:
    """What the index holds: the services' latest records and the change events; `web_records` and
    `web_events`: the same with the ids the web shows (public ids)."""
    store = Store(str(index))
    hits = store.search("", limit=100).hits
    events = store.events.find(limit=1000)
    findings, shown_events = public_ids(store, "finding"), public_ids(store, "event")
    return {
        "records": [hit.to_record() for hit in hits],
        "events": events,
        "web_records": [replace(hit, id=shown_id(findings, hit.id)).to_record() for hit in hits],
        "web_events": [replace(e, id=shown_id(shown_events, e.id)) for e in events],
    }


def test_the_kit_stored_hostile_services_and_events(stored: dict[str, Any]) -> None:
    assert sorted(r["software"]["version"] for r in stored["records"]) == sorted(HOSTILE_VERSIONS)
    types = {e.type for e in stored["events"]}
    assert {"ransom_note_appeared", "software_changed", "wiped"} <= types
    assert any(MIX in (e.summary or "") for e in stored["events"])


# --- letters: `leaksonar report` ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def letters(index: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    out = tmp_path_factory.mktemp("letters")
    run = leaksonar("report", "--network", "127.0.0.1/32", "--out", str(out), "--db", str(index))
    assert "2 service(s) to report" in run.stdout, run.stdout
    files = {p.suffix: p.read_text(encoding="utf-8") for p in out.iterdir()}
    assert set(files) == {".md", ".html"}
    return files


@pytest.mark.parametrize("renderer", MARKDOWN_RENDERERS.values(), ids=MARKDOWN_RENDERERS.keys())
def test_markdown_letter_of_the_kit(letters: dict[str, str], renderer: MarkdownIt) -> None:
    md = letters[".md"]
    assert_no_raw_controls(md)
    rendered = renderer.render(md)
    assert_no_markup(rendered, allowed_links=DOCS)
    shown = visible(rendered)
    for text in (*PAYLOADS, *HOSTILE_VERSIONS):
        assert for_terminal(text).replace("@", "＠") in shown, text[:40]  # no e-mail autolink, no mention


def test_html_letter_of_the_kit(letters: dict[str, str]) -> None:
    page = letters[".html"]
    assert_no_raw_controls(page)
    assert_no_markup(page, allowed_links=("#s", "#close", *DOCS))
    shown = visible(page)
    for text in (*PAYLOADS, *HOSTILE_VERSIONS):
        assert for_terminal(text) in shown, text[:40]


# --- `leaksonar export` ------------------------------------------------------------------------------


def test_csv_export_of_the_kit(index: Path, tmp_path: Path) -> None:
    path = tmp_path / "kit.csv"
    run = leaksonar("export", "--db", str(index), "--format", "csv", "--out", str(path))
    assert "exported 2 service(s)" in run.stderr, run.stderr
    raw = path.read_text(encoding="utf-8")
    assert_no_raw_controls(raw)
    assert "\r" not in raw.replace("\r\n", "")
    rows = list(csv.DictReader(io.StringIO(raw, newline="")))
    assert len(rows) == 2
    for row in rows:
        for cell in row.values():
            assert not cell.startswith(FORMULA), cell
            assert "\n" not in cell and "\r" not in cell
    assert sorted(row["version"] for row in rows) == sorted(for_terminal(v) for v in HOSTILE_VERSIONS)


def test_jsonl_export_of_the_kit_is_the_stored_records(index: Path, stored: dict[str, Any]) -> None:
    run = leaksonar("export", "--db", str(index))
    assert run.returncode == 0, run.stderr
    assert_no_raw_controls(run.stdout)  # JSON escapes, so the file is inert wherever it is shown
    exported = [json.loads(line) for line in run.stdout.splitlines()]
    assert exported == stored["records"]
    assert sorted(r["software"]["version"] for r in exported) == sorted(HOSTILE_VERSIONS)


# --- `leaksonar alerts send` -------------------------------------------------------------------------


def test_alerts_of_the_kit_on_every_channel(
    index: Path, stored: dict[str, Any], tmp_path: Path, receiver: Receiver, smtp: tuple[int, Inbox]
) -> None:
    slack = Receiver()
    port, inbox = smtp
    config = tmp_path / "alerts.toml"
    config.write_text(
        f'[[webhook]]\nname = "soc"\nurl = "{receiver.url}"\nsecret = "{SECRET}"\n'
        f'[[slack]]\nname = "chat"\nurl = "{slack.url}"\n'
        f'[[email]]\nname = "mail"\nsmtp_host = "127.0.0.1"\nsmtp_port = {port}\n'
        'from = "leaksonar@example.org"\nto = ["soc@example.org"]\n'
        '[[rule]]\nname = "all"\nchannels = ["soc", "chat", "mail"]\n'
    )
    try:
        run = leaksonar("alerts", "send", "--config", str(config), "--db", str(index))
    finally:
        slack.server.shutdown()
    events = {e.id: e for e in stored["events"]}
    assert run.returncode == 0, run.stderr
    assert_no_raw_controls(run.stdout + run.stderr)

    # webhook: the exact event record as JSON
    posted = receiver.bodies()
    assert sorted(b["id"] for b in posted) == sorted(events)
    for body in posted:
        assert {k: v for k, v in body.items() if k not in ("rule", "leaksonar_version")} == events[
            body["id"]
        ].to_record()
    assert any(MIX in (b["summary"] or "") for b in posted)

    # Slack: mrkdwn that shows the literal text
    messages = slack.bodies()
    assert len(messages) == len(events)
    summaries = []
    for message in messages:
        texts = [message["text"], message["blocks"][0]["text"]["text"], message["blocks"][1]["text"]["text"]]
        texts += [f["text"] for f in message["blocks"][2]["fields"]]
        texts += [e["text"] for e in message["blocks"][3]["elements"]]
        for text in texts:
            assert_no_raw_controls(text)
            assert "<" not in text and ">" not in text  # no <!channel>, no <url|label>
        summaries.append(message["blocks"][1]["text"]["text"])
    assert sorted(summaries) == sorted(for_slack(e.summary or "") for e in events.values())

    # e-mail: headers on one line, every body line inert
    assert len(inbox.messages) == len(events)
    for mail in inbox.messages:
        assert isinstance(mail, EmailMessage)
        assert mail.get_all("To") == ["soc@example.org"] and mail["Bcc"] is None
        subject = str(mail["Subject"])
        assert "\n" not in subject and "\r" not in subject
        assert_no_raw_controls(subject)
        body = mail.get_content()
        assert_no_raw_controls(body)
    bodies = "\n".join(mail.get_content() for mail in inbox.messages).splitlines()
    for event in events.values():
        assert for_terminal(event.summary or "") in bodies


# --- the web: API, pages, live stream ----------------------------------------------------------------


@pytest.fixture(scope="module")
def analyst(index: Path) -> TestClient:
    store = Store(str(index))
    test = TestClient(create_app(store, allowed_hosts=["testserver"], rate_limit="1000000/minute"))
    test.headers["X-API-Key"] = create_key(store, "ana", "analyst")
    return test


def answer(test: TestClient, url: str) -> Any:
    """The JSON of a 200 answer whose bytes hold no raw control or bidi character."""
    response = test.get(url)
    assert response.status_code == 200, (url, response.text[:500])
    assert response.headers["content-type"].startswith("application/json")
    assert_no_raw_controls(response.text)
    return response.json()


def test_api_gives_the_exact_text(analyst: TestClient, stored: dict[str, Any]) -> None:
    records = {r["id"]: r for r in stored["web_records"]}
    found = answer(analyst, "/api/search?q=ip:127.0.0.1&facets=1")
    assert {h["id"]: h for h in found["hits"]} == records
    host = answer(analyst, "/api/hosts/127.0.0.1")
    assert sorted(s["software"]["version"] for s in host["services"]) == sorted(HOSTILE_VERSIONS)
    for finding_id, record in records.items():
        assert answer(analyst, f"/api/findings/{finding_id}") == {
            k: v for k, v in record.items() if k not in ("first_seen", "last_seen")
        }
    page = answer(analyst, "/api/events?limit=1000")
    assert page["events"] == [e.to_record() for e in stored["web_events"]]
    assert answer(analyst, "/api/scans") and answer(analyst, "/api/stats")["services"] == 2


def test_api_error_echoing_a_hostile_query_is_inert(analyst: TestClient) -> None:
    response = analyst.get("/api/search", params={"q": f"version:({MIX}"})
    assert response.status_code == 400
    assert_no_raw_controls(response.text)
    assert response.json()["error"]


class Page(HTMLParser):
    """Every element and attribute of a page, and its text (entities decoded)."""

    def __init__(self, text: str) -> None:
        super().__init__(convert_charrefs=True)
        self.elements: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []
        self.feed(text)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.elements.append((tag, dict(attrs)))

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def assert_inert_page(text: str) -> Page:
    """No live markup from server strings: scripts only our own static files, no image or frame, no event
    handler, no javascript: link; no raw control character anywhere (text or attribute)."""
    assert_no_raw_controls(text)
    page = Page(text)
    for tag, attrs in page.elements:
        assert tag not in ("img", "iframe", "object", "embed", "base"), (tag, attrs)
        if tag == "script":
            assert (attrs.get("src") or "").startswith("/static/"), attrs
        for name, value in attrs.items():
            assert not name.startswith("on"), (tag, name, value)
            if name in ("href", "src", "xlink:href", "action", "formaction"):
                assert not (value or "").strip().lower().startswith(("javascript:", "data:")), (tag, value)
    return page


def test_every_page_over_the_kit(analyst: TestClient, stored: dict[str, Any]) -> None:
    urls = ["/", "/search?q=ip:127.0.0.1", "/host/127.0.0.1", "/host/127.0.0.1/report"]
    urls += [f"/event/{e.id}" for e in stored["web_events"]]
    shown = {}
    for url in urls:
        response = analyst.get(url)
        assert response.status_code == 200, (url, response.status_code)
        shown[url] = " ".join(assert_inert_page(response.text).text)
    for version in HOSTILE_VERSIONS:
        assert for_terminal(version) in shown["/host/127.0.0.1"]
    assert for_terminal(VERSIONS["redis"][1]) in shown["/search?q=ip:127.0.0.1"]
    for name in index_names(2)[:3]:
        assert for_terminal(name) in shown["/host/127.0.0.1"], name[:40]
    for payload in PAYLOADS:
        assert for_terminal(payload) in shown["/host/127.0.0.1/report"], payload[:40]


def test_a_hostile_search_is_shown_as_text(analyst: TestClient) -> None:
    for query in (MIX, f"version:({MIX}", f'version:"{MIX}"'):
        response = analyst.get("/search", params={"q": query})
        assert response.status_code in (200, 400), response.status_code
        assert_inert_page(response.text)


@pytest.fixture(scope="module")
def served(index: Path) -> Iterator[tuple[str, dict[str, str]]]:
    """The app on a free loopback port (the stream needs a real server): its URL and an analyst's key."""
    store = Store(str(index))
    key = create_key(store, "stream", "analyst")
    app = create_app(store, allowed_hosts=["127.0.0.1"], rate_limit="1000000/minute", poll_seconds=0.05)
    with serving_app(app) as base:
        yield base, {"X-API-Key": key}


SSE_LINE = re.compile(r"\r\n|\r|\n")
"""What ends a line of an event stream (any of the three)."""


def test_the_stream_carries_hostile_events_in_its_framing(
    served: tuple[str, dict[str, str]], stored: dict[str, Any]
) -> None:
    url, key = served
    events = stored["web_events"]
    raw = ""
    stop = time.monotonic() + 20
    with httpx.stream("GET", f"{url}/api/events/stream?after=0", headers=key, timeout=10) as live:
        assert live.status_code == 200
        for chunk in live.iter_text():
            raw += chunk
            assert time.monotonic() < stop, raw[-500:]
            if raw.count("data:") >= len(events) and re.search(r"(\r\n|\r|\n){2}$", raw):
                break
    assert_no_raw_controls(raw)
    received = []
    current: dict[str, str] = {}
    for line in SSE_LINE.split(raw):
        if not line:
            if current:
                received.append(current)
            current = {}
            continue
        field, _, value = line.partition(":")
        assert field in ("", "id", "data"), line[:200]  # a comment, an id or one line of JSON
        if field:
            assert field not in current, f"{field} twice in one event: a value broke its line"
            current[field] = value.strip()
    assert [int(e["id"]) for e in received] == [e.id for e in events]
    assert [json.loads(e["data"]) for e in received] == [e.to_record() for e in events]

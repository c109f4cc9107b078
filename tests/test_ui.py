"""The web UI, through its HTTP interface (TestClient): pages render, search works as a plain GET form,
facet links refine the query, bad queries are shown with their column, public viewers never see a
critical service, the host page draws its timeline as inline SVG with event markers, the report link
works. Over a synthetic history (four scans of a host that is found, grows, is wiped with a ransom note
and loses the note) and over the real lab scan."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from dataclasses import replace
from datetime import timedelta
from html import unescape
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from markupsafe import escape

from leaksonar.model import Assessment, Collection, Finding, PiiHit, RansomNote, Software
from leaksonar.store.db import Store
from leaksonar.web.access import public_ids
from leaksonar.web.app import create_app
from leaksonar.web.keys import create_key, digest, revoke_key
from tests.conftest import index_contents

STORY = "127.20.0.5"
"""Elasticsearch, high: found, grows, is wiped with a ransom note, the note goes."""
CRITICAL = "127.20.0.9"
"""PostgreSQL with national IDs: critical, withheld from public viewers."""
CACHE = "127.20.0.7"
"""Redis, medium, in another country."""
BTC = "1BoatSLRHtKNngkdXEeobR76b53LETtpyT"
SCANS = ("2026-11-01T08:00:00Z", "2026-11-03T08:00:00Z", "2026-11-05T08:00:00Z", "2026-11-07T08:00:00Z")
NOTE = RansomNote(
    "index read_me",
    f"All your data is backed up. You must pay 10 BTC to {BTC} to get it back.",
    (BTC,),
    ("recover@example.invalid",),
    10.0,
)


def _assessment(
    severity: str, pii: dict[str, tuple[str, ...]], notes: tuple[RansomNote, ...] = ()
) -> Assessment:
    """`pii`: collection -> categories found in it."""
    categories = sorted({c for found in pii.values() for c in found})
    return Assessment(
        pii={c: PiiHit(5, 5, (c,), "***") for c in categories},
        collection_pii={("", name): found for name, found in pii.items()},
        infected=bool(notes),
        notes=notes,
        severity=severity,  # type: ignore[arg-type]
        summary=f"{severity}: synthetic finding",
    )


def _story(step: int, time: str, scan_id: str) -> Finding:
    """The story host at scan `step` (0-3)."""
    base = Finding(
        STORY, 9200, "elasticsearch", Software("elasticsearch", "7.10.2"), "none", True, time, scan_id,
        databases=1, geo={"country": "CN"}, network={"asn": 64500, "org": "Lab Police Bureau"},
    )  # fmt: skip
    people = {"person": ("name", "phone"), "address": ("address",)}
    if step < 2:
        rows = (970_000, 1_200_000)[step]
        collections = (
            Collection("", "person", rows - 370_000, rows * 20_000, ("xm", "sjhm")),
            Collection("", "address", 370_000, 370_000 * 20_000, ("dz",)),
        )
        return replace(
            base, rows=rows, size_bytes=rows * 20_000, collections=collections,
            assessment=_assessment("high", people),
        )  # fmt: skip
    if step == 2:
        return replace(
            base, rows=1, size_bytes=4_000,
            collections=(Collection("", "person", 0, 0), Collection("", "read_me", 1, 4_000, ("note",))),
            assessment=_assessment("high", {}, (NOTE,)),
        )  # fmt: skip
    return replace(
        base, rows=7_000, size_bytes=7_000_000_000,
        collections=(Collection("", "person", 7_000, 7_000_000_000, ("xm", "sjhm")),),
        assessment=_assessment("high", {"person": people["person"]}),
    )  # fmt: skip


def build_history(db: str | Path) -> Store:
    """Four scans of three hosts through the store, with the change events between them."""
    store = Store(str(db))
    for step, time in enumerate(SCANS):
        scan_id = f"scan-{step + 1}"
        store.scans.begin(
            scan_id, time, targets="127.20.0.0/24", ports="9200,5432,6379", size=768, options={}
        )
        critical = Finding(
            CRITICAL, 5432, "postgresql", Software("postgresql", "15.18"), "none", True, time, scan_id,
            rows=3_000, size_bytes=700_000, databases=1,
            collections=(Collection("police", "citizen", 3_000, 700_000, ("name", "national_id")),),
            assessment=_assessment("critical", {"citizen": ("name", "national_id")}),
            geo={"country": "CN"},
        )  # fmt: skip
        cache = Finding(
            CACHE, 6379, "redis", Software("redis", "7.0.15"), "none", True, time, scan_id,
            rows=120 + step, size_bytes=9_000, databases=1,
            collections=(Collection("db0", "keys", 120 + step),),
            assessment=_assessment("medium", {}), geo={"country": "US"},
        )  # fmt: skip
        store.findings.add([_story(step, time, scan_id), critical, cache])
        store.scans.finish(scan_id, time.replace("08:00:00", "08:00:05"), "done")
        store.events.record(scan_id)
    return store


@pytest.fixture(scope="module")
def history(new_index: Callable[[], str]) -> Store:
    """The story's index, on SQLite and on PostgreSQL."""
    return build_history(new_index())


@pytest.fixture(scope="module")
def public(history: Store) -> TestClient:
    return TestClient(create_app(history, allowed_hosts=["testserver"], anonymous="public"))


@pytest.fixture(scope="module")
def analyst(history: Store) -> TestClient:
    return TestClient(create_app(history, allowed_hosts=["testserver"], anonymous="analyst"))


def text(html: str) -> str:
    """The page as a reader sees it: tags dropped, entities decoded, spaces collapsed."""
    html = re.sub(r"<(script|style)\b.*?</\1>", " ", html, flags=re.S)
    return " ".join(unescape(re.sub(r"<[^>]+>", " ", html)).split())


def links(html: str, pattern: str) -> list[str]:
    return [unescape(href) for href in re.findall(r'href="([^"]+)"', html) if re.search(pattern, href)]


def test_dashboard_counts_bars_and_latest_events(analyst: TestClient) -> None:
    page = analyst.get("/")
    assert page.status_code == 200
    shown = text(page.text)
    assert re.search(r"3 hosts 3 services 3 exposed 1 critical 0 infected", shown)
    for label in ("By severity", "By protocol", "By country", "elasticsearch", "postgresql", "redis", "CN"):
        assert label in shown
    assert "ransom note removed" in shown and "wiped" in shown
    assert links(page.text, r"^/event/\d+$")
    assert '<script src="/static/live.js"' in page.text
    assert analyst.get("/static/live.js").status_code == analyst.get("/static/style.css").status_code == 200


def test_search_is_a_plain_get_form_with_results_badges_and_chips(analyst: TestClient) -> None:
    home = analyst.get("/search")
    assert re.search(r'<form method="get" action="/search"', home.text)
    assert 'name="q"' in home.text and "Query help" in home.text and "first_seen" in home.text
    page = analyst.get("/search", params={"q": "protocol:elasticsearch"})
    assert page.status_code == 200
    shown = text(page.text)
    assert "1 result" in shown and f"{STORY}:9200" in shown and CRITICAL not in shown
    assert 'class="sev sev-high"' in page.text and '<span class="chip">phone</span>' in page.text
    assert 'value="protocol:elasticsearch"' in page.text
    everything = text(analyst.get("/search", params={"q": ""}).text)
    assert "3 results" in everything
    assert everything.index(CRITICAL) < everything.index(STORY) < everything.index(CACHE)


def test_a_facet_link_adds_its_field_to_the_query(analyst: TestClient) -> None:
    page = analyst.get("/search", params={"q": "exposed:true"})
    [country] = [url for url in links(page.text, r"^/search\?") if "country" in url and "US" in url]
    assert parse_qs(urlsplit(country).query)["q"] == ["exposed:true country:US"]
    refined = text(analyst.get(country).text)
    assert "1 result" in refined and f"{CACHE}:6379" in refined and STORY not in refined


def test_pages_of_results(history: Store, analyst: TestClient) -> None:
    from leaksonar.web import ui

    original = ui.PER_PAGE
    ui.PER_PAGE = 2
    try:
        first = analyst.get("/search", params={"q": ""})
        second = analyst.get("/search", params={"q": "", "page": "2"})
    finally:
        ui.PER_PAGE = original
    assert "page 1 of 2" in text(first.text) and links(first.text, r"page=2")
    assert f"{CACHE}:6379" in text(second.text) and f"{STORY}:9200" not in text(second.text)


@pytest.mark.parametrize(
    ("query", "column"),
    [
        ("protocol:(redis", None),
        ("rows:>many", None),
        ("nosuchfield:1", 1),
        ('pii:"name', None),
        ("age_days:>99999999999", 11),
        ("first_seen:>9999-12-31 rows:>1e400", 30),
    ],
)
def test_a_bad_query_is_shown_next_to_the_box_with_its_column(
    analyst: TestClient, query: str, column: int | None
) -> None:
    page = analyst.get("/search", params={"q": query})
    assert page.status_code == 400
    match = re.search(
        r'<div id="q-error" class="error" role="alert">\s*<p>query error at column (\d+): ', page.text
    )
    assert match, page.text
    if column is not None:
        assert int(match[1]) == column
    assert f'value="{escape(query)}"' in page.text
    caret = re.search(r'<pre class="caret"[^>]*>(.*)\n( *)\^</pre>', page.text)
    assert caret and len(caret[2]) == int(match[1]) - 1


@pytest.mark.parametrize("number", ["-1", "0", "x", "²", "9" * 40])
def test_a_bad_page_number_is_an_error_not_a_crash(analyst: TestClient, number: str) -> None:
    page = analyst.get("/search", params={"q": "", "page": number})
    assert page.status_code == 400 and f"page {number!r}: use a whole number from 1 to" in text(page.text)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(query=st.text(max_size=40), number=st.text(max_size=6))
@example(query="", number="0/")  # a trailing slash once answered 307 (Starlette's slash redirect)
def test_any_query_gives_a_page_or_a_clean_error(public: TestClient, query: str, number: str) -> None:
    page = public.get("/search", params={"q": query, "page": number or "1"})
    assert page.status_code in (200, 400) and page.headers["content-type"].startswith("text/html")
    moved = public.get("/event/" + quote(number or "0", safe=""), follow_redirects=False)
    assert moved.status_code in (303, 404)


def test_public_viewers_never_see_a_critical_service(public: TestClient, analyst: TestClient) -> None:
    everything = public.get("/search", params={"q": ""})
    assert everything.status_code == 200
    shown = text(everything.text)
    assert CRITICAL not in everything.text and "5432" not in everything.text
    assert "critical findings are shown to analysts only" in shown.lower() and f"{STORY}:9200" in shown
    assert "severity critical" not in shown  # its facets and counts run over the visible set
    targeted = public.get("/search", params={"q": f"ip:{CRITICAL}"})
    assert f"/host/{CRITICAL}" not in targeted.text and "5432" not in targeted.text
    assert "0 results" in text(targeted.text) and "Nothing matches." in targeted.text
    host = public.get(f"/host/{CRITICAL}")  # its only service is critical: no page tells it from unknown
    assert host.status_code == 404 and "national_id" not in host.text and "<svg" not in host.text
    assert text(host.text) == text(public.get("/host/127.20.0.200").text).replace("127.20.0.200", CRITICAL)
    dashboard = public.get("/")
    assert CRITICAL not in dashboard.text and "1 critical" in text(dashboard.text)  # global totals
    [critical_event] = [e for e in public.app.state.store.events.find() if e.ip == CRITICAL]
    shown_id = public_ids(public.app.state.store, "event").encode(critical_event.id)
    assert public.get(f"/event/{shown_id}", follow_redirects=False).status_code == 404
    assert public.get(f"/host/{CRITICAL}/report").status_code == 404
    assert CRITICAL in analyst.get(f"/host/{CRITICAL}").text


def test_host_page_draws_the_timeline_with_event_markers(analyst: TestClient) -> None:
    page = analyst.get(f"/host/{STORY}")
    assert page.status_code == 200
    [svg] = re.findall(r"<svg\b.*?</svg>", page.text, flags=re.S)
    assert "pygal-chart" in svg and "<script" not in svg.split("</defs>", 1)[1]
    assert not re.search(r'(?:src|href)="(?:https?:)?//', page.text), "nothing may be fetched from outside"
    anchors = set(re.findall(r'id="(event-\d+)"', page.text))
    markers = set(re.findall(r'xlink:href="#(event-\d+)"', svg))
    events = analyst.app.state.store.events.find(ip=STORY)
    types = {e.type for e in events}
    assert {"new_exposure", "grew", "wiped", "ransom_note_appeared", "ransom_note_removed"} <= types
    assert len(anchors) == len(events) and markers <= anchors
    assert len(markers) == len({e.scan_id for e in events}) == len(SCANS)  # one per scan that saw a change
    assert len(re.findall(r'class="dot', svg)) >= 2 * len(SCANS) + len(markers)
    shown = text(page.text)
    assert "elasticsearch 7.10.2" in shown and "Attack evidence" not in shown  # the note has gone
    assert re.search(
        r"<td>person</td>.*?<span class=\"chip\">phone</span>", page.text, re.S
    )  # PII per collection


def test_ransom_notes_are_shown_as_evidence(new_index: Callable[[], str]) -> None:
    store = Store(new_index())
    store.scans.begin("w", SCANS[2], targets=STORY, ports="9200", size=1, options={})
    store.findings.add([_story(2, SCANS[2], "w")])
    store.scans.finish("w", SCANS[2], "done")
    page = TestClient(create_app(store, allowed_hosts=["testserver"], anonymous="public")).get(
        f"/host/{STORY}"
    )
    shown = text(page.text)
    assert "Attack evidence" in shown and "Found in index read_me; asks 10.0 BTC" in shown
    assert BTC in shown and "recover@example.invalid" in shown and "You must pay 10 BTC" in shown


def test_event_links_lead_to_their_anchor_on_the_host_page(analyst: TestClient) -> None:
    [wipe] = [e for e in analyst.app.state.store.events.find(ip=STORY) if e.type == "wiped"]
    shown_id = public_ids(analyst.app.state.store, "event").encode(wipe.id)
    moved = analyst.get(f"/event/{shown_id}", follow_redirects=False)
    assert moved.status_code == 303 and moved.headers["location"] == f"/host/{STORY}#event-{shown_id}"
    assert f'id="event-{shown_id}"' in analyst.get(moved.headers["location"]).text
    assert analyst.get(f"/event/{wipe.id}").status_code == 404  # a row id is no public id
    for missing in ("999999", "abc", str(2**52), "0"):
        assert analyst.get(f"/event/{missing}").status_code == 404


def test_unknown_and_bad_hosts(analyst: TestClient) -> None:
    assert analyst.get("/host/127.20.0.200").status_code == 404
    bad = analyst.get("/host/not-an-ip")
    assert bad.status_code == 400 and "not an IP address" in text(bad.text)
    assert analyst.get("/host/not-an-ip/report").status_code == 400
    unknown = analyst.get("/no/such/page")
    assert unknown.status_code == 404 and "text/html" in unknown.headers["content-type"]
    assert "Not found" in text(unknown.text)


def test_the_report_link_renders_the_disclosure_letter_without_recording_it(
    history: Store, analyst: TestClient
) -> None:
    host = analyst.get(f"/host/{STORY}")
    [report] = links(host.text, r"/report$")
    letter = analyst.get(report)
    assert letter.status_code == 200
    shown = text(letter.text)
    assert f"{STORY}:9200" in shown and "without a password" in shown and "How to close it" in shown
    assert "Lab Police Bureau" in shown
    assert not _report_history(history)


def _report_history(store: Store) -> list[Any]:
    from sqlalchemy import select

    from leaksonar.store.schema import report_history

    with store.engine.connect() as conn:
        return list(conn.execute(select(report_history)))


def _sign_in(client: TestClient, key: str) -> Any:
    return client.post("/login", data={"key": key}, follow_redirects=False)


def test_login_opens_a_session_that_unlocks_critical_findings(history: Store) -> None:
    client = TestClient(create_app(history, allowed_hosts=["testserver"], anonymous="public"))
    form = client.get("/login")
    assert form.status_code == 200 and 'name="key"' in form.text and 'for="key"' in form.text
    wrong = client.post("/login", data={"key": "lsk_wrong"})
    assert wrong.status_code == 401 and "unknown or revoked key" in text(wrong.text)
    key = create_key(history, "ui-analyst", "analyst")
    done = _sign_in(client, key)
    assert done.status_code == 303
    cookie = done.headers["set-cookie"]
    flags = {part.strip().split("=")[0].lower() for part in cookie.split(";")[1:]}
    assert cookie.startswith("leaksonar_session=") and flags >= {"httponly", "max-age", "samesite"}
    assert "Max-Age=43200" in cookie and "SameSite=strict" in cookie and "secure" not in flags  # plain http
    token = client.cookies["leaksonar_session"]
    assert key not in cookie and token not in repr(index_contents(history.engine))  # the index: its hash only
    assert CRITICAL in client.get("/search").text
    assert "ui-analyst (analyst)" in text(client.get("/").text)
    assert client.get("/logout").status_code == 405  # signing out changes state: POST only
    assert 'form method="post" action="/logout"' in client.get("/").text
    out = client.post("/logout", follow_redirects=False)
    assert out.status_code == 303 and "Max-Age=0" in out.headers["set-cookie"]
    assert CRITICAL not in client.get("/search").text
    client.cookies.set("leaksonar_session", token)  # a session ended by signing out stays ended
    stale = client.get("/")
    assert stale.status_code == 200 and "has expired or its key has been revoked" in text(stale.text)
    assert CRITICAL not in client.get("/search").text


def test_the_session_cookie_is_secure_over_https(history: Store) -> None:
    client = TestClient(
        create_app(history, allowed_hosts=["leaksonar.test"]), base_url="https://leaksonar.test"
    )
    done = _sign_in(client, create_key(history, "ui-https", "analyst"))
    assert done.status_code == 303 and "; Secure" in done.headers["set-cookie"]


def test_an_expired_session_is_refused_and_purged(history: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    client = TestClient(create_app(history, allowed_hosts=["testserver"]))
    key = create_key(history, "ui-expiring", "analyst")
    monkeypatch.setattr("leaksonar.web.keys.SESSION_LIFETIME", timedelta(seconds=-1))
    _sign_in(client, key)
    expired = client.cookies["leaksonar_session"]
    assert "has expired" in text(client.get("/").text) and CRITICAL not in client.get("/search").text
    api = client.get("/api/stats")
    assert api.status_code == 401 and api.json() == {"error": "unknown or expired session; sign in again"}
    monkeypatch.undo()
    # a new sign-in forgets the expired sessions
    _sign_in(TestClient(create_app(history, allowed_hosts=["testserver"])), key)
    sessions = dict(index_contents(history.engine))["sessions"]
    assert sessions and not any(digest(expired) in row for row in sessions)


def test_revoking_a_key_ends_its_sessions(history: Store) -> None:
    client = TestClient(create_app(history, allowed_hosts=["testserver"]))
    key = create_key(history, "ui-revoked", "analyst")
    _sign_in(client, key)
    assert CRITICAL in client.get("/search").text
    revoke_key(history, "ui-revoked")
    assert "has been revoked" in text(client.get("/").text) and CRITICAL not in client.get("/search").text


@pytest.mark.parametrize(
    "headers",
    [{"Origin": "http://evil.example"}, {"Origin": "null"}, {"Referer": "http://evil.example/page"},
     {"Origin": "https://testserver"}, {"Origin": "http://testserver:8080"}],
)  # fmt: skip
def test_a_cross_origin_post_is_refused(history: Store, headers: dict[str, str]) -> None:
    client = TestClient(create_app(history, allowed_hosts=["testserver"]))
    key = create_key(history, f"ui-csrf-{len(headers)}-{abs(hash(str(headers)))}", "analyst")
    for path, data in (("/login", {"key": key}), ("/logout", {})):
        refused = client.post(path, data=data, headers=headers, follow_redirects=False)
        assert refused.status_code == 403 and "set-cookie" not in refused.headers
        assert "cross-origin request refused" in text(refused.text)
    same = {"Origin": "http://testserver"} if "Origin" in headers else {"Referer": "http://testserver/login"}
    assert client.post("/login", data={"key": key}, headers=same, follow_redirects=False).status_code == 303
    assert client.post("/logout", headers=same, follow_redirects=False).status_code == 303
    assert (
        client.post("/logout", follow_redirects=False).status_code == 303
    )  # no browser page: neither header


def test_a_host_name_the_server_was_not_given_is_refused(history: Store) -> None:
    client = TestClient(create_app(history, allowed_hosts=["testserver", "Leaksonar.Example", "[::1]"]))
    rebound = {"Host": "evil.example:8181", "Origin": "http://evil.example:8181"}  # DNS rebinding
    for answer in (
        client.post("/login", data={"key": "x"}, headers=rebound),
        client.get("/", headers=rebound),
    ):
        assert answer.status_code == 400 and answer.json()["error"].count("\n") == 0
        assert "evil" not in answer.text and answer.headers["x-content-type-options"] == "nosniff"
    for host in ("testserver", "testserver:8080", "leaksonar.example", "[::1]:8181"):
        assert client.get("/", headers={"Host": host}).status_code == 200, host
    for host in ("", "::1", "testserver.evil.example", "user@testserver", "testserver:x"):
        assert client.get("/", headers={"Host": host}).status_code == 400, host


def test_a_large_body_is_refused_without_being_read(history: Store) -> None:
    app = create_app(history, allowed_hosts=["testserver"])
    client = TestClient(app)
    refused = client.post("/login", content=b"key=" + b"k" * 1_000_000)
    assert refused.status_code == 413 and "4096 bytes" in refused.json()["error"]
    for declared in ("9" * 5000, "00005000"):
        assert (
            client.post("/login", content=b"key=x", headers={"Content-Length": declared}).status_code == 413
        )
    assert client.post("/login", data={"key": "x" * 4000}).status_code == 401  # a form of a few KB is read

    # sent in pieces without a Content-Length: the server stops at the first piece over the limit
    pieces = [b"k" * 1024] * 1024
    taken: list[bytes] = []
    sent: list[Any] = []

    async def receive() -> dict[str, Any]:
        taken.append(pieces[len(taken)])
        return {"type": "http.request", "body": taken[-1], "more_body": len(taken) < len(pieces)}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST", "scheme": "http",
        "path": "/login", "raw_path": b"/login", "root_path": "", "query_string": b"",
        "headers": [(b"host", b"testserver"), (b"content-type", b"application/x-www-form-urlencoded")],
        "client": ("127.0.0.1", 50000), "server": ("testserver", 80),
    }  # fmt: skip
    asyncio.run(app(scope, receive, send))
    assert sent[0]["status"] == 413 and len(taken) == 5


def test_every_page_has_a_strict_policy_and_no_inline_script(analyst: TestClient) -> None:
    pages = ["/", "/search?q=infected:true", "/login", f"/host/{STORY}", f"/host/{STORY}/report", "/nowhere"]
    for path in pages:
        page = analyst.get(path)
        assert page.headers["content-type"].startswith("text/html"), path
        policy = page.headers["content-security-policy"]
        scripts = re.search(r"script-src ([^;]*)", policy)
        assert scripts and scripts[1] == "'self'" and "frame-ancestors 'none'" in policy, path
        assert page.headers["x-content-type-options"] == "nosniff"
        assert page.headers["referrer-policy"] == "same-origin"  # none to other sites; Origin kept on POSTs
        for tag, body in re.findall(r"<script\b([^>]*)>(.*?)</script>", page.text, re.S | re.I):
            assert "src=" in tag and not body.strip(), (path, tag, body)
        assert not re.search(r"<[^>]+\son[a-z]+\s*=", page.text, re.I), path  # no event-handler attributes
    assert "live.js" in analyst.get("/").text
    docs = analyst.get("/docs")
    assert (
        docs.status_code == 200
        and "'unsafe-inline'"
        not in re.search(r"script-src ([^;]*)", docs.headers["content-security-policy"])[1]
    )  # type: ignore[index]


def test_pages_are_readable_on_a_phone(analyst: TestClient) -> None:
    page = analyst.get(f"/host/{STORY}")
    assert '<meta name="viewport" content="width=device-width, initial-scale=1">' in page.text
    assert page.text.count('<div class="scroll">') >= 2  # wide tables scroll inside their box
    css = analyst.get("/static/style.css").text
    assert "@media (max-width:" in css and "overflow-x: auto" in css


@pytest.mark.slow
def test_every_page_of_the_lab_scan_renders(scanned: dict[str, Any]) -> None:
    store = Store(str(scanned["db"]))
    analyst = TestClient(create_app(store, allowed_hosts=["testserver"], anonymous="analyst"))
    public = TestClient(create_app(store, allowed_hosts=["testserver"], anonymous="public"))
    critical = {place for place, r in scanned["records"].items() if r.get("severity") == "critical"}
    assert critical and len(critical) < len(scanned["records"])
    for ip in sorted({ip for ip, _ in scanned["records"]}):
        assert analyst.get(f"/host/{ip}").status_code == 200
    for client in (analyst, public):
        assert client.get("/").status_code == 200
    shown = text(public.get("/search", params={"q": ""}).text)
    assert "critical findings are shown to analysts only" in shown.lower()
    for (ip, port), record in scanned["records"].items():
        assert (f"{ip}:{port}" in shown) is (record.get("severity") != "critical")
    infected = analyst.get("/search", params={"q": "infected:true"})
    assert infected.status_code == 200 and "attacked" in infected.text

"""The web UI: server-rendered pages (Jinja2) over the index. Dashboard `/`, search `/search`, host
`/host/{ip}` (timeline chart, collections, ransom notes, events), the host's disclosure letter
`/host/{ip}/report`, `/event/{id}` (to its host page), and sign-in `/login`, sign-out (POST) `/logout`.

Every page applies the access rule of `leaksonar.web.access`: a public viewer's pages run over the
visible set only (no critical service, nor its findings and events); the dashboard's totals are global."""

from __future__ import annotations

import ipaddress
import math
import re
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlencode

import jinja2
import pygal
from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from markupsafe import Markup
from pygal.style import Style
from starlette.concurrency import run_in_threadpool
from starlette.templating import Jinja2Templates

from leaksonar.formats import address_port, human_bytes, human_count, human_rows
from leaksonar.model import SEVERITIES, Event
from leaksonar.report import Owners, Selection, plan
from leaksonar.report.report import render_letter
from leaksonar.sanitize import for_terminal
from leaksonar.store.addresses import Address
from leaksonar.store.db import Store
from leaksonar.store.query import FIELDS, QueryError
from leaksonar.store.rows import HistoryPoint
from leaksonar.targets import parse_address
from leaksonar.web.access import (
    SESSION_COOKIE,
    Level,
    Viewer,
    host_view,
    presented_session,
    search_facets,
    search_page,
    viewer,
    visible,
    visible_event,
    visible_events,
)
from leaksonar.web.keys import SESSION_LIFETIME, close_session, open_session

PER_PAGE = 25
MAX_PAGE = 100_000
MAX_ID = 2**63 - 1
"""Largest id the index can hold (SQLite integers are 64-bit)."""
LATEST_EVENTS = 20
TIME_FORMAT = "%Y-%m-%dT%H:%M:%SZ"
EXAMPLES = (
    "severity:critical",
    "protocol:(redis OR mongodb) exposed:true",
    "pii:national_id rows:>1000",
    "infected:true",
    "ip:127.0.0.0/8 -auth:required",
)
"""Example queries offered under the search box."""

CHART_STYLE = Style(
    background="#ffffff",
    plot_background="#ffffff",
    foreground="#1d1d1f",
    foreground_strong="#1d1d1f",
    foreground_subtle="#d0d0d6",
    font_family="system-ui, -apple-system, 'Segoe UI', sans-serif",
    label_font_size=13,
    major_label_font_size=13,
    legend_font_size=13,
    value_font_size=12,
    tooltip_font_size=13,
    colors=("#1f5fa8", "#0a7d6b", "#7a4fb5", "#a36100", "#5b6770", "#2b7a0b"),
    opacity="0.9",
    opacity_hover="1",
    transition="0ms",
)
"""Dark on light, system fonts only (nothing fetched). A service's rows and size share its colour."""
MARKER_COLOUR = "#b00020"
VIEWPORT = '<meta name="viewport" content="width=device-width, initial-scale=1">'
"""Added to the disclosure letter's head, so that it reads on a phone too."""
MAX_TIME_LABELS = 8
"""Up to this many observations, each gets its own time label."""
ONE_POINT_SPAN = timedelta(hours=12)
"""A single observation is drawn in the middle of this much time either side."""
PYGAL_CONFIG = re.compile(r"<script\b[^>]*>.*?</script>", re.S)

router = APIRouter(include_in_schema=False)


def _term(field: str, value: str) -> str:
    """`field:value`, the value quoted when it is not a plain word."""
    plain = value and all(c.isalnum() or c in "._-/" for c in value)
    if plain:
        return f"{field}:{value}"
    quoted = value.replace("\\", "\\\\").replace('"', '\\"')  # as the query reads a phrase back
    return f'{field}:"{quoted}"'


def _whole(text: str, maximum: int) -> int | None:
    """A whole number written in ASCII digits, at most `maximum`, else None."""
    if not (text.isascii() and text.isdigit()) or len(text) > len(str(maximum)):
        return None
    return int(text) if int(text) <= maximum else None


def _search_url(query: str, page: int = 1) -> str:
    params = {"q": query} | ({"page": str(page)} if page > 1 else {})
    return "/search?" + urlencode(params)


def _shown_time(text: str | None) -> str:
    """2026-11-01T08:00:00Z -> 2026-11-01 08:00 UTC."""
    return f"{text[:10]} {text[11:16]} UTC" if text and len(text) >= 16 else text or "-"


def _shown(value: object) -> object:
    """What `{{ value }}` hands to HTML autoescaping on every page: text with control, bidi and invisible
    characters made visible first (escaping alone would keep them), Markup and numbers as they are."""
    return for_terminal(value) if isinstance(value, str) and not isinstance(value, Markup) else value


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        finalize=_shown,
        loader=jinja2.PackageLoader("leaksonar.web", "templates"),
        autoescape=True,
        trim_blocks=True,
        lstrip_blocks=True,
        undefined=jinja2.ChainableUndefined,
    )
    env.filters["bytes"] = human_bytes
    env.filters["count"] = human_count
    env.filters["rows"] = human_rows
    env.filters["when"] = _shown_time
    env.globals["address_port"] = address_port
    env.globals["search_url"] = _search_url
    env.globals["term"] = _term
    return env


templates = Jinja2Templates(env=_environment())


def _store(request: Request) -> Store:
    return request.app.state.store  # type: ignore[no-any-return]


def _viewer(request: Request) -> Viewer:
    """The viewer; an unknown or revoked cookie key reads as anonymous, and the page says so."""
    try:
        return viewer(request)
    except HTTPException:
        request.state.bad_key = True
        return Viewer("anonymous", Level(request.app.state.anonymous))


def _page(request: Request, name: str, who: Viewer, code: int = 200, **values: Any) -> HTMLResponse:
    values |= {"viewer": who, "bad_key": getattr(request.state, "bad_key", False)}
    return templates.TemplateResponse(request, name, values, status_code=code)


def _error(request: Request, who: Viewer, status: int, message: str) -> HTMLResponse:
    return _page(request, "error.html", who, status, status=status, message=message)


def error_page(request: Request, status: int, message: str) -> HTMLResponse:
    """The HTML error page, for errors outside the API (e.g. an unknown path)."""
    return _error(request, _viewer(request), status, message)


def _bars(counts: dict[str, int], order: tuple[str, ...] = ()) -> list[dict[str, Any]]:
    """Rows of a bar chart in HTML: label, count, width in percent of the largest."""
    items = sorted(
        counts.items(), key=lambda kv: (order.index(kv[0]) if kv[0] in order else len(order), -kv[1])
    )
    top = max(counts.values(), default=0) or 1
    return [{"label": k, "count": n, "width": round(100 * n / top, 1)} for k, n in items]


@router.get("/", response_class=HTMLResponse)
def dashboard(request: Request) -> Response:
    who = _viewer(request)
    store = _store(request)
    stats = store.stats()
    latest = visible_events(store, who, limit=LATEST_EVENTS)
    return _page(
        request,
        "dashboard.html",
        who,
        stats=stats,
        by_severity=_bars({s: stats.by_severity.get(s, 0) for s in SEVERITIES[::-1]}, SEVERITIES[::-1]),
        by_protocol=_bars(stats.by_protocol),
        by_country=_bars(stats.by_country),
        events=latest[::-1],
        after_id=latest[-1].id if latest else 0,
    )


@router.get("/search", response_class=HTMLResponse)
def search(request: Request, q: str = "", page: str = "1") -> Response:
    """Search with facets. A public viewer's results, counts and facets leave critical services out
    (access.search_page, access.search_facets)."""
    who = _viewer(request)
    store = _store(request)
    values: dict[str, Any] = {"q": q, "fields": FIELDS, "examples": EXAMPLES}
    number = _whole(page, MAX_PAGE)
    if number is None or number < 1:
        error = f"page {page!r}: use a whole number from 1 to {MAX_PAGE}"
        return _page(request, "search.html", who, 400, error=error, **values)
    try:
        facets = search_facets(store, q, who)
        found = search_page(store, q, who, limit=PER_PAGE, offset=(number - 1) * PER_PAGE)
    except QueryError as exc:
        return _page(request, "search.html", who, 400, error=str(exc), position=exc.position, **values)
    return _page(
        request,
        "search.html",
        who,
        found=found,
        hits=found.hits,
        page=number,
        pages=max(1, math.ceil(found.total / PER_PAGE)),
        facets={
            field: [(value, n, _search_url(f"{q} {_term(field, value)}".strip())) for value, n in counts]
            for field, counts in facets.items()
        },
        **values,
    )


def _when(text: str) -> datetime:
    return datetime.strptime(text, TIME_FORMAT)


def _compact(value: float) -> str:
    """1234567 -> 1.2M: axis labels that suit both row counts and bytes."""
    for unit, size in (("T", 1e12), ("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(value) >= size:
            return f"{value / size:.1f}{unit}"
    return f"{value:g}"


def timeline(history: list[HistoryPoint], events: list[Event]) -> Markup | None:
    """The host's rows and size per service over time, with a marker where a scan saw events, linking to
    their entry on the page: an inline SVG drawn server-side by pygal (no script, nothing fetched)."""
    if not history:
        return None
    series: dict[tuple[int, str], list[HistoryPoint]] = defaultdict(list)
    for point in history:
        series[(point.port, point.protocol)].append(point)
    rows_at = {(p.port, p.scan_id): p.rows or 0 for p in history}
    seen: dict[tuple[int, str], list[Event]] = defaultdict(list)
    for e in events:
        seen[(e.port, e.scan_id)].append(e)
    markers = [  # one per service and scan, linking to the first of its events (they are listed together)
        {
            "value": (_when(group[0].time), rows_at.get(place, 0)),
            "label": for_terminal("; ".join(f"{e.type} on :{e.port}: {e.summary}" for e in group)),
            "xlink": {"href": f"#event-{group[0].id}", "target": "_self"},
        }
        for place, group in seen.items()
    ]
    palette = CHART_STYLE.colors
    own = [palette[i % len(palette)] for i in range(len(series))]
    # pygal colours the primary series (rows, then the markers) before the secondary ones (size)
    colours = (*own, *([MARKER_COLOUR] if markers else []), *own)
    times = sorted({_when(p.time) for p in history})
    chart = pygal.DateTimeLine(
        js=(),
        disable_xml_declaration=True,
        style=Style(**{**CHART_STYLE.to_dict(), "colors": colours}),
        width=760,
        height=320,
        legend_at_bottom=True,
        legend_at_bottom_columns=3,
        truncate_legend=-1,
        x_labels=times if len(times) <= MAX_TIME_LABELS else None,
        xrange=(times[0] - ONE_POINT_SPAN, times[0] + ONE_POINT_SPAN) if len(times) == 1 else None,
        x_value_formatter=lambda d: d.strftime("%m-%d %H:%M"),
        value_formatter=_compact,
        range=(0, max(5, *(p.rows or 0 for p in history))),  # at least 0-5: whole-number ticks
        secondary_range=(0, max(1, *(p.size_bytes or 0 for p in history))),
        dots_size=4,
        max_scale=6,
    )
    for (port, protocol), points in series.items():
        label = for_terminal(f"{protocol}:{port}")
        chart.add(
            f"rows {label}",
            [(_when(p.time), p.rows or 0) for p in points],
            formatter=lambda v: f"{human_count(int(v[1]))} rows",
        )
        chart.add(
            f"size {label}",
            [(_when(p.time), p.size_bytes or 0) for p in points],
            secondary=True,
            stroke_style={"dasharray": "6, 4"},
            formatter=lambda v: human_bytes(int(v[1])),
        )
    if markers:
        chart.add("events", markers, stroke=False, dots_size=7, formatter=lambda v: "")
    # pygal writes its config as an inline <script> even without its scripts (js=()): the page's policy
    # refuses inline scripts, and nothing reads that config; its text is XML-escaped, so the first
    # </script> ends it
    return Markup(PYGAL_CONFIG.sub("", chart.render(is_unicode=True), count=1))


def _address(ip: str) -> Address | None:
    """The address of a page's path in any spelling (IPv4 or IPv6), or None."""
    try:
        return parse_address(ip)
    except ValueError:
        return None


@router.get("/host/{ip}", response_class=HTMLResponse)
def host(request: Request, ip: str) -> Response:
    who = _viewer(request)
    store = _store(request)
    address = _address(ip)
    if address is None:
        return _error(request, who, 400, f"{ip!r} is not an IP address")
    ip = str(address)
    found = host_view(store, ip, who)
    if found is None:
        return _error(request, who, 404, f"{ip} is not in the index")
    events = visible_events(store, who, ip=ip)
    return _page(
        request,
        "host.html",
        who,
        host=found,
        services=found.services,
        events=events,
        chart=timeline(found.history, events),
        points=len(found.history),
    )


@router.get("/host/{ip}/report", response_class=HTMLResponse)
def report(request: Request, ip: str) -> Response:
    """The disclosure letter for the host's exposed services, as `leaksonar report` would write it:
    a read-only preview (nothing goes into the report history)."""
    who = _viewer(request)
    store = _store(request)
    address = _address(ip)
    if address is None:
        return _error(request, who, 400, f"{ip!r} is not an IP address")
    ip = str(address)
    now = datetime.now(UTC).strftime(TIME_FORMAT)
    network = ipaddress.ip_network(address)
    selection = Selection(network=network)
    letters = plan(store, selection, Owners(), now, force=True)
    for letter in letters:
        letter.due = [(row, why) for row, why in letter.due if visible(row.severity, who)]
    shown = [letter for letter in letters if letter.due]
    if not shown:
        return _error(request, who, 404, f"no exposed service on {ip} to report")
    # Services of one address can belong to several owners (their ASNs differ): the letter of the lowest
    # port the viewer may see, so that no hidden service decides which owner's letter is shown.
    letter = min(shown, key=lambda found: found.due[0][0].port)
    banner = templates.get_template("report_banner.html").render(ip=ip, network=network)
    html = render_letter(store, letter, now, "html", public=not who.analyst)
    html = html.replace("<body>", banner, 1)
    return HTMLResponse(html.replace("<head>", f"<head>\n{VIEWPORT}", 1))


@router.get("/event/{event_id}")
def event(request: Request, event_id: str) -> Response:
    who = _viewer(request)
    store = _store(request)
    number = _whole(event_id, MAX_ID)
    found = visible_event(store, number, who) if number is not None else None
    if found is None:
        return _error(request, who, 404, f"no event {event_id}")
    return RedirectResponse(f"/host/{found.ip}#event-{found.id}", status_code=303)


@router.get("/login", response_class=HTMLResponse)
def login_form(request: Request) -> Response:
    return _page(request, "login.html", _viewer(request))


@router.post("/login", response_class=HTMLResponse)
async def login(request: Request) -> Response:
    """Form field `key`: a valid key opens a session, whose random token (never the key) is kept in the
    cookie `leaksonar_session` for SESSION_LIFETIME: HttpOnly, SameSite=Strict, Secure over https."""
    form = parse_qs((await request.body()).decode("utf-8", "replace"))
    key = (form.get("key") or [""])[0].strip()
    token = await run_in_threadpool(open_session, _store(request), key) if key else None
    if token is None:
        return _page(request, "login.html", _viewer(request), 401, error="unknown or revoked key")
    done = RedirectResponse("/", status_code=303)
    done.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=int(SESSION_LIFETIME.total_seconds()),
        path="/",
        secure=request.url.scheme == "https",
        httponly=True,
        samesite="strict",
    )
    return done


@router.post("/logout")
def logout(request: Request) -> Response:
    """End the session and forget its cookie."""
    if token := presented_session(request):
        close_session(_store(request), token)
    done = RedirectResponse("/", status_code=303)
    done.delete_cookie(
        SESSION_COOKIE, path="/", secure=request.url.scheme == "https", httponly=True, samesite="strict"
    )
    return done

"""The web UI in a real browser: headless Chromium (Debian's, driven by Playwright) against `leaksonar
serve` on loopback, over the lab scan plus a synthetic history (four scans of a host that grows, is
wiped with a ransom note and loses it). Search, open a host, see its timeline drawn, follow an event,
watch the dashboard take a live event, read it all on a phone. Screenshots: test-artifacts/browser/."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from test_ui import CACHE, CRITICAL, SCANS, STORY, build_history

from leaksonar.model import Collection, Finding, Software
from leaksonar.store.db import Store
from leaksonar.web.access import public_ids
from leaksonar.web.keys import create_key

CHROMIUM = "/usr/bin/chromium"
SHOTS = Path(__file__).resolve().parent.parent / "test-artifacts" / "browser"

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not os.path.exists(CHROMIUM), reason=f"{CHROMIUM} is missing (apt-get install chromium)"
    ),
]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="module")
def index(scanned: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The lab scan, and the synthetic history on top of it."""
    db = tmp_path_factory.mktemp("browser") / "index.db"
    shutil.copy(scanned["db"], db)
    build_history(db)
    return db


@pytest.fixture(scope="module")
def server(index: Path) -> Iterator[str]:
    """`leaksonar serve` on a free loopback port (anonymous viewers are analysts here)."""
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    command = [sys.executable, "-m", "leaksonar", "serve", "--db", str(index), "--port", str(port)]
    process = subprocess.Popen(
        [*command, "--anonymous", "analyst"], stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(url + "/", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"leaksonar serve did not start: {process.communicate()[1]!r}")
            time.sleep(0.2)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    SHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    yield context.new_page()
    context.close()


def shot(page: Any, name: str) -> None:
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def in_view(page: Any, selector: str) -> bool:
    box = page.locator(selector).bounding_box()
    height = page.viewport_size["height"]
    return box is not None and 0 <= box["y"] < height


def test_search_open_a_host_and_see_the_timeline_drawn(page: Any, server: str) -> None:
    page.goto(server + "/search")
    page.get_by_label("Query").fill("protocol:elasticsearch")
    page.get_by_role("button", name="Search").click()
    page.wait_for_url("**/search?q=protocol%3Aelasticsearch")
    assert page.get_by_role("link", name=f"{STORY}:9200").is_visible()
    shot(page, "search")
    page.get_by_role("link", name=f"{STORY}:9200").click()
    page.wait_for_url(f"**/host/{STORY}")
    chart = page.locator("figure.chart svg")
    box = chart.bounding_box()
    assert box is not None and box["width"] > 300 and box["height"] > 100
    dots = page.locator("figure.chart svg circle.dot")
    assert dots.count() >= 2 * len(SCANS)
    drawn = [dots.nth(i).bounding_box() for i in range(dots.count())]
    assert all(d is not None and d["width"] > 0 for d in drawn)
    assert len({round(d["x"]) for d in drawn if d}) >= len(SCANS)  # spread over time, not piled up
    assert page.locator("figure.chart svg path.line").count() >= 2  # rows and size drawn as lines
    shot(page, "host")


def test_a_facet_refines_the_search(page: Any, server: str) -> None:
    page.goto(server + "/search?q=exposed%3Atrue")
    page.locator(".facets a", has_text="redis").first.click()
    page.wait_for_url("**q=exposed%3Atrue+protocol%3Aredis")
    assert page.get_by_label("Query").input_value() == "exposed:true protocol:redis"
    assert page.get_by_role("link", name=f"{CACHE}:6379").is_visible()


def test_follow_an_event_marker_to_its_entry(page: Any, server: str, index: Path) -> None:
    store = Store(str(index))
    [wipe] = [e for e in store.events.find(ip=STORY) if e.type == "wiped"]
    anchor = f"event-{public_ids(store, 'event').encode(wipe.id or 0)}"  # the id the web shows
    page.goto(f"{server}/host/{STORY}")
    marker = page.locator(f'figure.chart svg a[*|href="#{anchor}"] circle')
    marker.click()
    page.wait_for_function(f"location.hash === '#{anchor}'")
    assert in_view(page, f"#{anchor}")
    assert "wiped" in page.locator(f"#{anchor}").inner_text()
    page.screenshot(path=str(SHOTS / "event-anchor.png"))


def test_an_event_link_on_the_dashboard_lands_on_its_anchor(page: Any, server: str) -> None:
    page.goto(server + "/")
    link = page.locator("#events a", has_text=f"{STORY}:9200").first
    target = link.get_attribute("href")
    link.click()
    page.wait_for_url(f"**/host/{STORY}#event-*")
    anchor = page.evaluate("location.hash")
    assert target.rsplit("/", 1)[1] == anchor.removeprefix("#event-")
    assert in_view(page, anchor)


def test_the_dashboard_adds_new_events_live(page: Any, server: str, index: Path) -> None:
    page.goto(server + "/")
    page.locator("#live").wait_for(state="visible", timeout=10_000)
    shot(page, "dashboard")
    store = Store(str(index))
    time_ = "2026-11-09T08:00:00Z"
    store.scans.begin("live", time_, targets=CACHE, ports="6379", size=1, options={})
    store.findings.add([
        Finding(
            CACHE, 6379, "redis", Software("redis", "7.0.15"), "none", True, time_, "live",
            databases=1, rows=90_000, size_bytes=900_000, collections=(Collection("db0", "keys", 90_000),),
        )
    ])  # fmt: skip
    store.scans.finish("live", time_, "done")
    [grew] = store.events.record("live")
    assert grew.type == "grew"
    fresh = page.locator("#events li.fresh")
    fresh.first.wait_for(timeout=10_000)
    assert "grew" in fresh.first.inner_text() and f"{CACHE}:6379" in fresh.first.inner_text()
    link = (
        f"/event/{public_ids(store, 'event').encode(grew.id or 0)}"  # the stream gives the id the web shows
    )
    assert fresh.first.locator("a").get_attribute("href") == link


def test_sign_in_and_out_under_the_content_security_policy(page: Any, server: str, index: Path) -> None:
    """The forms post from the app's own origin (the Origin check lets them through) and nothing on the
    pages is blocked by the policy (the live script runs)."""
    refused: list[str] = []
    page.on("console", lambda m: refused.append(m.text) if "Content Security Policy" in m.text else None)
    key = create_key(Store(str(index)), "browser-analyst", "analyst")
    page.goto(server + "/login")
    page.get_by_label("API key").fill(key)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(server + "/")
    assert "browser-analyst (analyst)" in page.locator("header").inner_text()
    page.locator("#live").wait_for(state="visible", timeout=10_000)
    page.goto(f"{server}/host/{STORY}")
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url(server + "/")
    assert "Sign in" in page.locator("header").inner_text() and not refused


def test_search_works_without_javascript(browser: Any, server: str) -> None:
    context = browser.new_context(java_script_enabled=False)
    page = context.new_page()
    page.goto(server + "/search")
    page.get_by_label("Query").fill("infected:true")
    page.get_by_label("Query").press("Enter")
    page.wait_for_url("**/search?q=infected%3Atrue")
    assert page.locator("table.hits tbody tr").count() >= 2  # the lab's attacked services
    assert page.locator(".attacked").first.is_visible()
    context.close()


def test_readable_on_a_phone(browser: Any, server: str) -> None:
    context = browser.new_context(
        viewport={"width": 390, "height": 844}, device_scale_factor=2, is_mobile=True, has_touch=True
    )
    page = context.new_page()
    for name, path in (
        ("phone-host", f"/host/{STORY}"),
        ("phone-search", "/search?q="),
        ("phone-dashboard", "/"),
    ):
        page.goto(server + path)
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= 390, f"{path} scrolls sideways ({width}px)"
        shot(page, name)
    page.goto(f"{server}/host/{STORY}")
    frame = page.locator("figure.chart").bounding_box()
    chart = page.locator("figure.chart svg").bounding_box()
    assert frame is not None and frame["width"] <= 390  # the frame fits the screen ...
    assert chart is not None and chart["width"] >= 600  # ... and the chart, legible, scrolls inside it
    context.close()


def test_lab_host_with_a_ransom_note(page: Any, server: str, scanned: dict[str, Any]) -> None:
    attacked = sorted(ip for (ip, _), r in scanned["records"].items() if (r.get("ransom") or {}).get("notes"))
    assert attacked and CRITICAL not in attacked
    page.goto(f"{server}/host/{attacked[0]}")
    evidence = page.get_by_label("Attack evidence").first
    assert evidence.is_visible() and "Found in" in evidence.inner_text()
    shot(page, "lab-ransom")

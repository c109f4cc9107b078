"""Change events: the diff of consecutive snapshots (pure), and the story of two lab services changed with
their own clients, scanned after each step, read back with `leaksonar events --json`."""

from __future__ import annotations

import asyncio
import ipaddress
import json
import shutil
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import asyncpg
import pytest
import redis
from conftest import leaksonar, leaksonar_here

from leaksonar.changes.diff import days_exposed, diff
from leaksonar.changes.snapshot import Note, Snapshot
from leaksonar.model import Auth, Event, Finding, Software
from leaksonar.store.db import Store

BTC = "1BoatSLRHtKNngkdXEeobR76b53LETtpyT"

OPEN = Snapshot(
    protocol="elasticsearch",
    auth="none",
    exposed=True,
    software=Software("elasticsearch", "7.10.2"),
    rows=1000,
    size_bytes=50_000,
    collections={"person": (600, 30_000), "address": (400, 20_000)},
    pii=("name",),
    severity="high",
)


def changes(
    before: Snapshot | None, after: Snapshot | None, ever_exposed: bool = True
) -> list[tuple[str, str]]:
    found = diff(before, after, ever_exposed=ever_exposed, ip="127.0.0.1", port=9200, scan_id="s", time="t")
    return [(e.type, e.summary) for e in found]


def types(before: Snapshot | None, after: Snapshot | None, ever_exposed: bool = True) -> list[str]:
    return [kind for kind, _ in changes(before, after, ever_exposed)]


def sized(rows: int | None, size: int | None = 50_000, **extra: Any) -> Snapshot:
    return replace(OPEN, rows=rows, size_bytes=size, **extra)


def test_first_sight_of_an_exposed_service_is_a_new_exposure() -> None:
    [(kind, summary)] = changes(None, OPEN, ever_exposed=False)
    assert kind == "new_exposure"
    assert summary == "exposed without authentication: 2 collections, 1,000 rows, 50 kB, personal data: name"
    assert types(None, replace(OPEN, auth="required", exposed=False), ever_exposed=False) == []


def test_exposed_again_after_closing_or_locking_is_reopened() -> None:
    assert types(None, OPEN, ever_exposed=True) == ["reopened"]
    locked = replace(OPEN, auth="required", exposed=False, rows=None, collections={})
    assert types(locked, OPEN, ever_exposed=True) == ["reopened"]
    assert types(locked, OPEN, ever_exposed=False) == ["new_exposure"]


def test_a_service_seen_before_and_not_answering_is_closed() -> None:
    [(kind, summary)] = changes(OPEN, None)
    assert kind == "closed"
    assert summary.startswith("no longer answers; was exposed with 2 collections, 1,000 rows")
    assert types(None, None) == []


def test_authentication_on_an_exposed_service_is_auth_enabled() -> None:
    locked = replace(OPEN, auth="required", exposed=False, rows=None, collections={})
    assert types(OPEN, locked) == ["auth_enabled"]
    assert types(locked, locked) == []


@pytest.mark.parametrize(
    ("rows", "expected"),
    [
        (100, ["wiped"]),  # exactly 90% fewer rows: the wipe threshold
        (101, ["shrunk"]),  # just short of it
        (900, ["shrunk"]),  # exactly 10% fewer: the shrink threshold
        (901, []),
        (1099, []),
        (1100, ["grew"]),  # exactly 10% more
        (0, ["wiped"]),
    ],
)
def test_row_thresholds(rows: int, expected: list[str]) -> None:
    assert types(OPEN, sized(rows)) == expected


def test_wipe_summary_has_the_figures() -> None:
    [(kind, summary)] = changes(sized(970_000), sized(12))
    assert (kind, summary) == ("wiped", "rows 970,000 -> 12 (-99.9%): wiped")


def test_size_collapse_is_a_wipe_and_size_is_measured_when_rows_are_unknown() -> None:
    assert types(sized(None, 23_000_000_000_000), sized(None, 7_000_000_000)) == ["wiped"]
    assert types(sized(1000, 50_000), sized(1000, 5_000)) == ["wiped"]  # rows alone would say nothing
    assert types(sized(None, 50_000), sized(None, 45_000)) == ["shrunk"]
    assert types(sized(None, 50_000), sized(None, 44_999)) == ["shrunk"]
    assert types(sized(None, 50_000), sized(None, 45_001)) == []


def test_collections_replaced_is_a_wipe() -> None:
    note = sized(1000, collections={"read_me": (1, 10)})
    [(kind, summary)] = changes(OPEN, note)
    assert kind == "wiped"
    assert summary == "collections replaced: address, person -> read_me: wiped"
    one_left = sized(1000, collections={"person": (1000, 50_000), "read_me": (1, 10)})
    assert types(OPEN, one_left) == []


def test_a_partial_inspection_is_never_a_wipe_or_a_shrink() -> None:
    assert types(OPEN, sized(0, 0, collections={}, partial=True)) == []
    assert types(OPEN, sized(2000, partial=True)) == ["grew"]


def test_ransom_notes_appearing_and_removed() -> None:
    note = Note("index read_me", (BTC,), 10.0)
    attacked = replace(OPEN, notes=(note,))
    assert changes(OPEN, attacked) == [
        ("ransom_note_appeared", f"ransom note appeared in index read_me: 10 BTC to {BTC}")
    ]
    assert changes(attacked, OPEN) == [
        ("ransom_note_removed", f"ransom note removed from index read_me: 10 BTC to {BTC}")
    ]
    two = replace(OPEN, notes=(note, Note("index warning")))
    assert changes(OPEN, two)[0][1].endswith("(+1 more)")


def test_new_personal_data_categories() -> None:
    more = replace(OPEN, pii=("name", "national_id", "phone"))
    assert changes(OPEN, more) == [("pii_added", "personal data added: national_id, phone")]
    assert types(more, OPEN) == []


def test_software_change_unless_the_version_is_just_not_said() -> None:
    newer = replace(OPEN, software=Software("elasticsearch", "7.17.0"))
    assert changes(OPEN, newer) == [
        ("software_changed", "software elasticsearch 7.10.2 -> elasticsearch 7.17.0")
    ]
    assert types(OPEN, replace(OPEN, software=Software("elasticsearch"))) == []


def test_several_changes_at_once_come_in_a_fixed_order_with_the_severity_after() -> None:
    attacked = sized(
        1,
        100,
        collections={"read_me": (1, 100)},
        notes=(Note("index read_me", (BTC,), 10.0),),
        severity="critical",
    )
    found = diff(OPEN, attacked, ever_exposed=True, ip="127.0.0.1", port=9200, scan_id="s", time="t")
    assert [e.type for e in found] == ["wiped", "ransom_note_appeared"]
    assert {e.severity for e in found} == {"critical"}
    assert found[0].before == {"rows": 1000, "size_bytes": 50_000} and found[0].after == {
        "rows": 1,
        "size_bytes": 100,
    }


def test_days_exposed_sums_the_exposed_periods() -> None:
    def event(kind: str, time: str) -> Event:
        return Event("127.0.0.1", 6379, kind, time, "s", "redis", None, "")

    history = [
        event("new_exposure", "2026-01-01T00:00:00Z"),
        event("wiped", "2026-01-05T00:00:00Z"),
        event("closed", "2026-01-11T00:00:00Z"),
        event("reopened", "2026-02-01T00:00:00Z"),
    ]
    assert days_exposed(history, "2026-02-03T12:00:00Z") == 12.5
    assert days_exposed(history[:3], "2026-01-09T00:00:00Z") == 10.0


# --- events of a scan larger than one batch ------------------------------------------------------------

BLOCK = {"intervals": [[int(ipaddress.IPv4Address("127.1.0.0")), int(ipaddress.IPv4Address("127.1.0.255"))]]}


def stored(ip: int, scan_id: str, time: str, rows: int = 1000, auth: Auth = "none") -> Finding:
    software = Software("elasticsearch", "7.10.2")
    address, exposed = f"127.1.0.{ip}", auth == "none"
    return Finding(address, 9200, "elasticsearch", software, auth, exposed, time, scan_id, 1, rows, rows * 50)


def recorded_history(db: str, batch: int) -> list[dict[str, Any]]:
    """Four scans of one /24 (each covering it, ports 9200 and 6379) and their events, recorded `batch`
    services at a time."""
    store = Store(db)
    scans = [  # (scan, addresses seen, {address: (rows, auth)})
        ("s1", range(1, 9), {}),
        ("s2", range(1, 7), {2: (1_000_000, "none"), 3: (1000, "required"), 4: (2, "none")}),
        ("s3", range(1, 10), {2: (1_000_000, "none")}),
        ("s4", range(2, 10), {2: (1_000_000, "none"), 5: (5000, "none")}),
    ]
    everything: list[dict[str, Any]] = []
    for day, (scan_id, seen, changed) in enumerate(scans, start=1):
        time = f"2026-10-0{day}T00:00:00Z"
        store.scans.begin(
            scan_id, time, "127.1.0.0/24", "6379,9200", 512, {}, {**BLOCK, "ports": [6379, 9200]}
        )
        store.findings.add([stored(ip, scan_id, time, *changed.get(ip, (1000, "none"))) for ip in seen])
        store.scans.finish(scan_id, time, "done")
        everything += [e.to_record() for e in store.events.record(scan_id, batch=batch)]
    store.close()
    return everything


def test_a_scan_larger_than_one_batch_has_the_events_of_one_batch(new_index: Callable[[], str]) -> None:
    """Closed, reopened, auth enabled, grew, wiped, across batch boundaries, on both databases: the same
    events, in the same order, with the same ids."""
    one_by_one, all_at_once = recorded_history(new_index(), 2), recorded_history(new_index(), 1000)
    assert one_by_one == all_at_once
    seen = [(e["scan_id"], e["type"], e["ip"].rsplit(".", 1)[1]) for e in all_at_once]
    assert seen == [
        *(("s1", "new_exposure", str(ip)) for ip in range(1, 9)),
        ("s2", "grew", "2"),
        ("s2", "auth_enabled", "3"),
        ("s2", "wiped", "4"),
        ("s2", "closed", "7"),
        ("s2", "closed", "8"),
        ("s3", "reopened", "3"),
        ("s3", "grew", "4"),
        ("s3", "reopened", "7"),
        ("s3", "reopened", "8"),
        ("s3", "new_exposure", "9"),
        ("s4", "closed", "1"),
        ("s4", "grew", "5"),
    ]


# --- the story, on real servers --------------------------------------------------------------------------

STORY_BASES = [str(ipaddress.IPv4Address("127.81.0.0") + k * 16 * 256) for k in range(4)]


@pytest.fixture(scope="module")
def story_lab() -> Iterator[dict[str, Any]]:
    """A lab of its own (Redis and PostgreSQL, both open): this test changes their data."""
    from leaksonar.lab import LabError, lab_down, lab_up

    directory = Path(tempfile.mkdtemp(prefix="leaksonar-events-"))
    directory.chmod(0o755)  # traversable by the postgres user
    try:
        for base in STORY_BASES:
            try:
                manifest = lab_up(directory, base, ["redis-open", "postgres-trust"])
                break
            except LabError as exc:
                if "in use" not in str(exc) or base == STORY_BASES[-1]:
                    raise
        yield {s["name"]: s for s in manifest["services"]}
    finally:
        if (directory / "manifest.json").exists():
            lab_down(directory)
        shutil.rmtree(directory, ignore_errors=True)


def postgres(entry: dict[str, Any], database: str, *statements: str) -> None:
    async def run() -> None:
        conn = await asyncpg.connect(
            host=entry["ip"], port=entry["port"], user="postgres", database=database, timeout=10
        )
        try:
            for statement in statements:
                await conn.execute(statement)
        finally:
            await conn.close()

    asyncio.run(run())


def test_the_story_of_two_services(story_lab: dict[str, Any], tmp_path: Path) -> None:
    from leaksonar.lab import servers

    cache, pg = story_lab["redis-open"], story_lab["postgres-trust"]
    db = str(tmp_path / "index.db")
    block = cache["ip"].rsplit(".", 1)[0] + ".0/24"

    def scan(*targets: str, ports: str = "6379,5432") -> None:
        leaksonar("scan", *targets, "-p", ports, "--db", db, "--quiet")

    def events_since(count: int) -> list[dict[str, Any]]:
        lines = leaksonar_here("events", "--db", db, "--json").stdout.splitlines()
        return [json.loads(line) for line in lines][count:]

    def seen(records: list[dict[str, Any]]) -> list[tuple[str, str]]:
        return [(r["type"], f"{r['ip']}:{r['port']}") for r in records]

    redis_at, pg_at = f"{cache['ip']}:{cache['port']}", f"{pg['ip']}:{pg['port']}"
    scan(block)
    assert seen(events_since(0)) == [("new_exposure", redis_at), ("new_exposure", pg_at)]

    scan(block)  # nothing changed, nothing to say
    assert events_since(2) == []

    postgres(pg, "shop", "CREATE TABLE visits AS SELECT g AS id FROM generate_series(1, 2000) g", "ANALYZE")
    scan(block)
    [grew] = events_since(2)
    assert (grew["type"], grew["summary"]) == ("grew", "rows 7,040 -> 9,040 (+28.4%): grew")
    assert (grew["before"]["rows"], grew["after"]["rows"]) == (7040, 9040)

    client = redis.Redis(host=cache["ip"], port=cache["port"], db=0)
    with client:
        keys = sorted(client.scan_iter(count=500))
        client.delete(*keys[12:])
        left = 12 + 20  # db 3 keeps its 20 cache entries
    scan(block)
    [wiped] = events_since(3)
    assert wiped["type"] == "wiped" and wiped["ip"] == cache["ip"]
    assert wiped["summary"] == f"rows 1,221 -> {left} (-97.4%): wiped"

    postgres(
        pg,
        "police",
        "CREATE TABLE readme (id INTEGER, content TEXT)",
        f"INSERT INTO readme VALUES (1, 'All your data is backed up. You must pay 0.04 BTC to {BTC} "
        "In 48 hours, your data will be publicly disclosed and deleted.')",
    )
    scan(block)
    [appeared] = events_since(4)
    assert appeared["type"] == "ransom_note_appeared" and appeared["ip"] == pg["ip"]
    assert (
        appeared["summary"]
        == f"ransom note appeared in table public.readme in database police: 0.04 BTC to {BTC}"
    )
    assert appeared["severity"] == "critical"

    postgres(pg, "police", "DROP TABLE readme")
    scan(block)
    [removed] = events_since(5)
    assert (removed["type"], removed["ip"]) == ("ransom_note_removed", pg["ip"])

    assert servers.stop(cache["pid"], "redis", cache["ip"])
    scan(pg["ip"], ports="5432")  # did not look at the Redis port: not seen is not closed
    assert events_since(6) == []
    scan(block)
    [closed] = events_since(6)
    assert (closed["type"], closed["ip"], closed["port"]) == ("closed", cache["ip"], cache["port"])
    assert closed["summary"].startswith(f"no longer answers; was exposed with 2 collections, {left} rows")

    store = Store(db)
    assert store.events.record(closed["scan_id"])[-1].id == closed["id"]  # the diff again: nothing new
    assert len(events_since(0)) == 7

    history = json.loads(leaksonar_here("show", redis_at, "--db", db, "--json").stdout)["history"]
    assert [e["type"] for e in history["events"]] == ["new_exposure", "wiped", "closed"]
    assert history["first_seen"] <= history["last_seen"] and history["days_exposed"] >= 0
    text = leaksonar_here("show", redis_at, "--db", db).stdout
    assert "timeline" in text and "wiped" in text and "closed" in text
    only = leaksonar_here(
        "events", "--db", db, "--json", "--type", "wiped,closed", "--ip", cache["ip"]
    ).stdout
    assert [json.loads(line)["type"] for line in only.splitlines()] == ["wiped", "closed"]

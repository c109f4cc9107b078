"""The summary of facets of everything (SQLite's facet_counts, kept by the writer per batch) against
counting every service, after every batch of random findings."""

from __future__ import annotations

import json
import multiprocessing
import random
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import create_engine, text
from sqlalchemy.exc import DatabaseError

from leaksonar.model import SEVERITIES, SEVERITY_RANK, Certificate, Finding, Tls
from leaksonar.store import search
from leaksonar.store.addresses import address_key
from leaksonar.store.db import Store, _url
from leaksonar.store.query import FACET_FIELDS
from leaksonar.store.search import MAX_LIMIT
from tests.test_migrations import _config
from tests.test_search import FIRST, SECOND, finding

PLACES = [("127.1.0.1", 9200), ("127.1.0.1", 6379), ("127.1.0.2", 9200), ("2001:db8::1", 9200), ("::1", 1)]
NAMES = ["Elastic", "ELASTIC", "élastic", "Élastic", "el\x00astic", "el\ud800astic", "redis", "x" * 300]


def _finding(draw: st.DrawFn) -> Finding:
    ip, port = draw(st.sampled_from(PLACES))
    name = draw(st.none() | st.sampled_from(NAMES))
    found = finding(
        ip,
        port,
        draw(st.sampled_from(["elasticsearch", "redis", "mongodb"])),
        draw(st.sampled_from(SEVERITIES)),
        time=draw(st.sampled_from([FIRST, SECOND])),
        software=(name, "1") if name is not None else None,
        auth=draw(st.sampled_from(["none", "required"])),
        pii=tuple(draw(st.sets(st.sampled_from(["email", "phone", "national_id"])))),
        country=draw(st.none() | st.sampled_from(["CN", "US"])),
    )
    if draw(st.booleans()) and draw(st.booleans()):
        found = replace(found, assessment=None)  # not inspected: no severity
    issuer = draw(st.none() | st.sampled_from(["CN=Acme CA", "CN=Évil\x00 CA", ""]))
    if issuer is None:
        return found
    cert = Certificate("CN=x", ("x.example",), issuer, FIRST, SECOND, False, False, "ab" * 32, "RSA 2048")
    return replace(found, tls=Tls("TLSv1.3", "TLS_AES_128_GCM_SHA256", cert))


batches = st.lists(st.lists(st.composite(_finding)(), min_size=1, max_size=6), min_size=1, max_size=6)


def assert_summary_counts_every_service(store: Store) -> None:
    """Facets of everything (the summary) equal facets counted service by service, every value, for
    analysts and the public; so does the count of everything."""
    for public in (False, True):
        summary = store.facets("", FACET_FIELDS, MAX_LIMIT, public=public)
        assert summary == store.facets("port:*", FACET_FIELDS, MAX_LIMIT, public=public)
        assert store.search("", public=public).total == store.search("port:*", public=public).total


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(stored=batches)
def test_the_summary_counts_every_service_after_every_batch(
    new_index: Callable[[], str], stored: list[list[Finding]]
) -> None:
    """Batches of new services, rescans that change every counted value and the visible set, a service
    twice in one batch, IPv6, software names in any case, with NUL or a lone surrogate."""
    store = Store(new_index())
    for batch in stored:
        store.findings.add(batch)
        assert_summary_counts_every_service(store)
    store.close()


def _random_finding(rng: random.Random) -> Finding:
    ip, port = rng.choice(PLACES)
    name = rng.choice([None, *NAMES])
    return finding(
        ip,
        port,
        rng.choice(["elasticsearch", "redis"]),
        rng.choice(SEVERITIES),
        software=(name, "1") if name is not None else None,
        pii=tuple(rng.sample(["email", "phone", "national_id"], rng.randint(0, 2))),
        country=rng.choice([None, "CN", "US"]),
    )


def _store_batches(db: str, seed: int) -> None:
    """A writer process: batches of random findings of the same few services as the other writer's."""
    rng = random.Random(seed)
    store = Store(db)
    for _ in range(40):
        store.findings.add([_random_finding(rng) for _ in range(rng.randint(1, 5))])


def test_two_processes_storing_batches_at_once_leave_the_summary_exact(tmp_path: Path) -> None:
    """Two writers (two scans, or workers) change the same services at once, into one SQLite file."""
    db = str(tmp_path / "index.db")
    Store(db).close()
    spawn = multiprocessing.get_context("spawn")
    writers = [spawn.Process(target=_store_batches, args=(db, seed)) for seed in (1, 2)]
    for writer in writers:
        writer.start()
    for writer in writers:
        writer.join(120)
    assert [writer.exitcode for writer in writers] == [0, 0]
    assert_summary_counts_every_service(Store(db))


def test_a_batch_that_fails_midway_leaves_the_summary_as_it_was(
    new_index: Callable[[], str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A batch whose transaction fails after its services and summary were written is rolled back whole:
    the summary counts the services as they were."""
    store = Store(new_index())
    store.findings.add([finding("127.1.0.1", 9200, "elasticsearch", "high", pii=("email",), country="CN")])
    before = store.facets("", FACET_FIELDS, MAX_LIMIT)

    def failing(_conn: Any) -> None:
        raise RuntimeError("the disk is full")

    monkeypatch.setattr(search, "refresh_statistics", failing)
    changed = finding("127.1.0.1", 9200, "redis", "critical", time=SECOND, software=("Redis", "7"))
    with pytest.raises(RuntimeError):
        store.findings.add([changed, finding("2001:db8::1", 6379, "redis", "low", pii=("phone",))])
    assert store.facets("", FACET_FIELDS, MAX_LIMIT) == before
    assert_summary_counts_every_service(store)


def _insert_service(conn: Any, found: Finding, rank: int | None) -> None:
    """Store `found` as a service without counting its facets, as an older leaksonar did."""
    record = found.to_record()
    conn.execute(
        text(
            "INSERT INTO services (ip, ip_key, port, protocol, software, auth, exposed, severity,"
            " country, first_seen, last_seen, last_scan_id, record, rank) VALUES (:ip, :key, :port,"
            " :protocol, :software, 'none', true, :severity, :country, :t, :t, 's1', :record, :rank)"
        ),
        {
            "ip": found.ip,
            "key": address_key(found.ip),
            "port": found.port,
            "protocol": found.protocol,
            "software": found.software.name if found.software else None,
            "severity": record["severity"],
            "country": (found.geo or {}).get("country"),
            "t": FIRST,
            "record": json.dumps(record),
            "rank": rank,
        },
    )


def _index_at(db: str, revision: str, stored: list[Finding]) -> None:
    """An index at `revision` holding `stored` as services (the first without search columns yet, as an
    older leaksonar left them; the others with their rank) and their PII rows: its summary kept by 0009's
    triggers."""
    engine = create_engine(_url(db))
    with engine.begin() as conn:
        command.upgrade(_config(conn), revision)
        for n, found in enumerate(stored):
            _insert_service(conn, found, SEVERITY_RANK[found.to_record()["severity"] or ""] if n else None)
            for category in found.to_record()["pii"] if n else ():
                conn.execute(
                    text(
                        "INSERT INTO service_pii (service_id, category, rank) SELECT id, :category, rank"
                        " FROM services WHERE ip = :ip AND port = :port"
                    ),
                    {"category": category, "ip": found.ip, "port": found.port},
                )
    engine.dispose()


@pytest.mark.parametrize("revision", ["0009", "0010"])
def test_an_index_at_0009_or_0010_keeps_its_summary_exact_when_upgraded(
    new_index: Callable[[], str], revision: str
) -> None:
    """Upgraded (0011 drops the triggers) and opened (the services without search columns get them),
    the index's summary counts its services, before and after batches that change them."""
    db = new_index()
    old = [
        finding("127.1.0.1", 9200, "elasticsearch", "critical", software=("Elastic", "1"), pii=("email",)),
        finding("127.1.0.2", 9200, "elasticsearch", "high", software=("ELASTIC", "1"), pii=("phone",)),
        finding("2001:db8::1", 6379, "redis", "medium", software=("redis", "7"), country="CN"),
    ]
    _index_at(db, revision, old)
    store = Store(db)
    assert_summary_counts_every_service(store)
    assert store.facets("", ["software"]) == {"software": [("elastic", 2), ("redis", 1)]}
    store.findings.add(
        [
            finding("127.1.0.1", 9200, "elasticsearch", "low", time=SECOND, software=("elastic", "2")),
            finding("127.1.0.2", 9200, "mongodb", "critical", time=SECOND, pii=("phone",), country="US"),
        ]
    )
    store.findings.add([finding("2001:db8::1", 6379, "redis", "critical", time=SECOND, pii=("email",))])
    assert_summary_counts_every_service(store)


def test_an_older_leaksonar_still_writing_after_an_upgrade_is_refused_on_sqlite(tmp_path: Path) -> None:
    """Since 0011 no trigger counts a service stored on SQLite: a scan of an older leaksonar that opened
    the index before a newer one upgraded it stores its next batch (its services and their findings, in
    one transaction) without counting. That batch fails, rather than leaving the summary wrong for good."""
    db = str(tmp_path / "index.db")
    store = Store(db)
    store.findings.add([finding("127.1.0.1", 6379, "redis", "high")])
    engine = create_engine(_url(db))
    with pytest.raises(DatabaseError, match="older leaksonar"), engine.begin() as conn:
        _insert_service(conn, finding("127.1.0.2", 6379, "redis", "high"), 3)
        conn.execute(
            text(
                "INSERT INTO findings (scan_id, ip, port, time, record)"
                " SELECT last_scan_id, ip, port, last_seen, record FROM services WHERE ip = '127.1.0.2'"
            )
        )
    engine.dispose()
    store.findings.add([finding("127.1.0.3", 6379, "redis", "high")])
    assert_summary_counts_every_service(store)
    assert store.search("").total == 2

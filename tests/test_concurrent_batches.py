"""Two processes storing batches of findings into one PostgreSQL index at once (distributed workers, or two
scans): batches that share hosts, in any order, both stored without a deadlock."""

from __future__ import annotations

import threading
import time
from typing import Any

import psycopg

from leaksonar.model import Finding
from leaksonar.store.db import Store
from tests.conftest import new_postgres_database

FIRST, SECOND = "127.1.0.1", "127.1.0.2"
NOW = "2026-12-01T00:00:00Z"


def _found(ip: str, port: int) -> Finding:
    return Finding(
        ip=ip, port=port, protocol="redis", software=None, auth="none", exposed=True, time=NOW, scan_id="s"
    )


def test_batches_sharing_hosts_in_opposite_order_are_both_stored(dist_backends: Any) -> None:
    """Each worker's batch comes in the order its services were found: one has FIRST before SECOND, the
    other SECOND before FIRST. Both are stored, in one transaction each (no deadlock to retry)."""
    db = new_postgres_database(dist_backends.db)
    stores = Store(db), Store(db)
    stores[0].scans.begin("s", NOW, "127.1.0.0/24", "all", 256, {})
    stores[0].findings.add([_found(FIRST, 1), _found(SECOND, 1)])  # the hosts were seen before
    batches = [_found(FIRST, 6379), _found(SECOND, 6379)], [_found(SECOND, 9200), _found(FIRST, 9200)]
    failed: list[BaseException] = []

    def store(k: int) -> None:
        try:
            stores[k].findings.add(batches[k])
        except BaseException as exc:
            failed.append(exc)

    with psycopg.connect(db) as holder:
        # another transaction holds FIRST; the first worker waits for it, the second takes SECOND and
        # waits for FIRST behind the first worker; FIRST is freed: without one lock order, a deadlock
        holder.execute("SELECT 1 FROM hosts WHERE ip = %s FOR UPDATE", (FIRST,))
        workers = [threading.Thread(target=store, args=(k,)) for k in range(2)]
        for worker in workers:
            worker.start()
            time.sleep(0.5)
        holder.commit()
    for worker in workers:
        worker.join(30)
    assert failed == []
    stored = {(f.ip, f.port) for f in stores[0].findings.of_scan("s")}
    assert stored == {(ip, port) for ip in (FIRST, SECOND) for port in (1, 6379, 9200)}


def test_a_writer_waits_for_no_other_and_facets_stay_exact(dist_backends: Any) -> None:
    """PostgreSQL keeps the facet summary as deltas each statement inserts (migration 0010): a batch is
    stored while another transaction that changed a service of the same facet values is still open, the
    summary is folded meanwhile, and once both are done facets and the count of everything equal those
    counted service by service."""
    db = new_postgres_database(dist_backends.db)
    store = Store(db)
    store.findings.add([_found(FIRST, 6379), _found(SECOND, 6379)])
    done = threading.Event()
    with psycopg.connect(db) as holder:
        holder.execute("UPDATE services SET country = 'NG' WHERE ip = %s", (FIRST,))  # not committed yet
        writer = threading.Thread(target=lambda: (store.findings.add([_found(SECOND, 6380)]), done.set()))
        writer.start()
        assert done.wait(10), "the batch waited for another writer's transaction"
        assert store.facets("", ["protocol", "country"]) == {"protocol": [("redis", 3)], "country": []}
        holder.commit()
    writer.join(10)
    store.findings.add([_found("127.1.0.3", 6379)])
    for public in (False, True):
        assert store.facets("", public=public) == store.facets("port:*", public=public)
        assert store.search("", public=public).total == store.search("port:*", public=public).total == 4
    assert store.facets("", ["protocol", "country"]) == {"protocol": [("redis", 4)], "country": [("NG", 1)]}

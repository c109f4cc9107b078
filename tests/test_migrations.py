"""Migrations, on SQLite and PostgreSQL: an index migrated from empty has exactly the schema of the code,
an index made by the previous release is upgraded keeping its rows and becomes searchable, processes
opening an empty index at once do not collide, and an index from a newer leaksonar is refused."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Table, create_engine, text

from leaksonar.store import migrations
from leaksonar.store.db import Store, StoreError, _url
from leaksonar.store.schema import metadata
from tests.conftest import leaksonar
from tests.test_search import POLICE

# SQLite cannot reflect expression indexes (lower(software), ...): they are compared on PostgreSQL only
pytestmark = pytest.mark.filterwarnings("ignore:.*expression-based index")

FIRST = "2026-10-01T00:00:00Z"
OLD = POLICE  # "police person index ...", collection person with fields xm and sfzh, critical


def _config(conn: Any) -> Config:
    config = Config()
    config.set_main_option("script_location", str(Path(migrations.__file__).parent))
    config.attributes["connection"] = conn
    return config


def test_revisions_are_the_script_directory() -> None:
    script = ScriptDirectory.from_config(_config(None))
    assert tuple(r.revision for r in reversed(list(script.walk_revisions()))) == migrations.REVISIONS
    assert script.get_current_head() == migrations.HEAD


def _differences(db: str) -> list[Any]:
    engine = Store(db).engine
    with engine.connect() as conn:
        found = compare_metadata(MigrationContext.configure(conn), metadata)
    engine.dispose()
    # the free-text table and SQLite's facet counts are outside `metadata` on purpose (they differ by
    # database); so is alembic's own
    return [d for d in found if not (d[0] in ("remove_table", "remove_index") and _outside(d[1]))]


def _outside(item: Any) -> bool:
    table = item if isinstance(item, Table) else item.table
    return str(table.name).startswith(("services_fts", "facet_counts", "alembic_version"))


def test_a_migrated_empty_index_is_the_schema_of_the_code(new_index: Callable[[], str]) -> None:
    assert _differences(new_index()) == []


def _previous_release(db: str) -> None:
    """An index as the previous release left it: 0001's tables, no alembic_version, one scan's rows."""
    engine = create_engine(_url(db))
    record = json.dumps(OLD.to_record())
    with engine.begin() as conn:
        command.upgrade(_config(conn), "0001")
        conn.execute(text("DROP TABLE alembic_version"))
        conn.execute(
            text(
                "INSERT INTO scans (id, started_at, finished_at, status, targets, ports, size, probes,"
                " open_ports, services, exposed, options)"
                " VALUES ('s1', :t, :t, 'done', '127.1.0.0/24', 'all', 256, 256, 1, 1, 1, '{}')"
            ),
            {"t": FIRST},
        )
        conn.execute(text("INSERT INTO hosts VALUES ('127.1.0.1', 2130771969, :t, :t, 's1')"), {"t": FIRST})
        conn.execute(
            text(
                "INSERT INTO services (ip, ip_num, port, protocol, software, version, auth, exposed, rows,"
                " size_bytes, severity, first_seen, last_seen, last_scan_id, record) VALUES ('127.1.0.1',"
                " 2130771969, 9200, 'elasticsearch', 'opensearch', '2.11.0', 'none', true, 2000000, NULL,"
                " :severity, :t, :t, 's1', :record)"
            ),
            {"t": FIRST, "record": record, "severity": OLD.to_record()["severity"]},
        )
        conn.execute(
            text(
                "INSERT INTO findings (scan_id, ip, port, time, record)"
                " VALUES ('s1', '127.1.0.1', 9200, :t, :r)"
            ),
            {"t": FIRST, "r": record},
        )
    engine.dispose()


def test_an_index_from_the_previous_release_is_upgraded_and_searchable(new_index: Callable[[], str]) -> None:
    db = new_index()
    _previous_release(db)
    assert leaksonar("db", "current", "--db", db).stdout.startswith("none (opening it")
    assert leaksonar("db", "upgrade", "--db", db).stdout == f"{migrations.HEAD} (current)\n"
    assert leaksonar("db", "current", "--db", db).stdout == f"{migrations.HEAD} (current)\n"
    store = Store(db)
    assert store.scans.get("s1").status == "done"  # type: ignore[union-attr]
    assert [h.record["ip"] for h in store.search("pii:national_id AND sfzh AND collections:person").hits] == [
        "127.1.0.1"
    ]
    assert store.search('"police person"').total == store.search("polic*").total == 1
    assert store.search('"person police"').total == 0
    assert store.search("sfzh xm").total == 1
    assert store.search("collections:xm OR collections:police").total == 0  # a field name, a summary word
    assert _differences(db) == []


def test_an_index_older_than_the_previous_release_gains_the_columns_it_added(
    new_index: Callable[[], str],
) -> None:
    """That release added scans.coverage to older indexes when it opened them; 0001 does the same."""
    db = new_index()
    _previous_release(db)
    engine = create_engine(_url(db))
    with engine.begin() as conn:
        conn.execute(text("ALTER TABLE scans DROP COLUMN coverage"))
    engine.dispose()
    store = Store(db)
    store.scans.begin("s2", FIRST, "127.1.0.0/24", "9200", 256, {}, coverage={"intervals": [], "ports": []})
    assert store.scans.get("s2").coverage == {"intervals": [], "ports": []}  # type: ignore[union-attr]
    assert _differences(db) == []


def test_the_report_history_of_an_index_from_the_previous_release_is_kept(
    new_index: Callable[[], str], tmp_path: Path
) -> None:
    """That release made report_history when it first wrote a report (the same table 0001 makes): an
    index of it may have the table with its rows, or not have it. Both are upgraded; the rows still hold
    back a report until its reminder is due."""
    reported, never = new_index(), new_index()
    sent_at = (datetime.now(UTC) - timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    for db in (reported, never):
        _previous_release(db)
    engine = create_engine(_url(reported))
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO report_history (owner, service, severity, sent_at, scan_id)"
                " VALUES ('Example Net (AS64500)', '127.1.0.1:9200', 'critical', :t, 's1')"
            ),
            {"t": sent_at},
        )
    engine.dispose()
    engine = create_engine(_url(never))
    with engine.begin() as conn:
        conn.execute(text("DROP TABLE report_history"))
    engine.dispose()

    def report(db: str) -> str:
        out = str(tmp_path / "letters")
        return leaksonar("report", "--network", "127.1.0.0/24", "--db", db, "--out", out).stdout

    assert f"skipped 127.1.0.1:9200: reported {sent_at}; next reminder after " in report(reported)
    first = report(never)
    assert "Example Net (AS64500) <no abuse contact known>: 1 service(s) to report" in first
    assert "skipped 127.1.0.1:9200: reported " in report(never)
    assert _differences(reported) == _differences(never) == []


def test_an_index_from_the_previous_release_takes_ids_past_2_31(new_index: Callable[[], str]) -> None:
    """Upgraded, it keeps its rows and goes on numbering findings, services and events past 2**31 - 1
    (PostgreSQL: BIGINT columns and sequences; SQLite: 64-bit rowids already)."""
    db = new_index()
    _previous_release(db)
    past = 2**31 + 7
    store = Store(db)
    store.events.record("s1")
    with store.engine.begin() as conn:  # the ids so far: findings, services and events reach `past`
        for table in ("findings", "services", "events"):
            if conn.dialect.name == "postgresql":
                conn.execute(text(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), {past})"))
            else:  # the next rowid follows the largest
                conn.execute(text(f"UPDATE {table} SET id = {past}"))
        if conn.dialect.name == "sqlite":
            for table, column in (("service_pii", "service_id"), ("services_fts", "rowid")):
                conn.execute(text(f"UPDATE {table} SET {column} = {past}"))
    [old] = store.findings.of_scan("s1")
    assert old.ip == "127.1.0.1"
    later = "2026-10-02T00:00:00Z"
    store.scans.begin("s2", later, targets="127.1.0.0/24", ports="9200", size=256, options={})
    store.findings.add(
        [replace(OLD, scan_id="s2", time=later, rows=3_000_000_000), replace(OLD, scan_id="s2", port=9201)]
    )
    store.scans.finish("s2", later, "done")
    grew, new = store.events.record("s2")
    assert (grew.type, new.type, new.port) == ("grew", "new_exposure", 9201)
    assert grew.id is not None and past < grew.id < new.id  # type: ignore[operator]
    assert store.events.get(grew.id) == grew
    [hit] = store.search("rows:>2999999999").hits
    assert hit.id is not None and hit.id > past
    stored = store.findings.get(hit.id)
    assert stored is not None and stored.record["dataset"]["rows"] == 3_000_000_000
    assert [s.port for s in store.services.on("127.1.0.1")] == [9200, 9201]
    with store.engine.connect() as conn:
        assert conn.execute(text("SELECT min(id) FROM services WHERE port = 9201")).scalar() > past
    assert {h.record["port"] for h in store.search("pii:national_id AND collections:person").hits} == {
        9200,
        9201,
    }
    assert _differences(db) == []


def test_processes_opening_an_empty_index_at_once_do_not_collide(new_index: Callable[[], str]) -> None:
    db, failures = new_index(), []

    def open_it() -> None:
        try:
            Store(db).close()
        except Exception as exc:  # reported below
            failures.append(exc)

    openers = [threading.Thread(target=open_it) for _ in range(4)]
    for opener in openers:
        opener.start()
    for opener in openers:
        opener.join(60)
    assert failures == []
    assert Store(db).search("").total == 0


def test_an_index_from_a_newer_leaksonar_is_refused(new_index: Callable[[], str]) -> None:
    db = new_index()
    Store(db).close()
    engine = create_engine(_url(db))
    with engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '0099'"))
    engine.dispose()
    with pytest.raises(StoreError, match="revision 0099, from a newer leaksonar") as refused:
        Store(db)
    assert "\n" not in str(refused.value)
    assert (
        leaksonar("db", "current", "--db", db).stdout
        == f"0099 (from a newer leaksonar; this one has {migrations.HEAD})\n"
    )
    refused_cli = leaksonar("db", "upgrade", "--db", db, check=False)
    assert refused_cli.returncode == 2 and refused_cli.stderr.count("\n") == 1
    assert "revision 0099, from a newer leaksonar" in refused_cli.stderr


def test_a_database_that_cannot_be_opened_is_one_line_without_its_password() -> None:
    with socket.socket() as probe:  # a loopback port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(StoreError) as refused:
        Store(f"postgresql://leaksonar:SECRETPW@127.0.0.1:{port}/index")
    shown = str(refused.value)
    assert shown.startswith(f"postgresql://leaksonar:***@127.0.0.1:{port}/index is not a leaksonar index: ")
    assert "SECRETPW" not in shown and "\n" not in shown
    with pytest.raises(StoreError, match=r"^mysql:// is not a database leaksonar uses"):
        Store("mysql://leaksonar@127.0.0.1/index")


def test_an_index_at_0004_gets_the_rank_of_its_pii_rows(new_index: Callable[[], str]) -> None:
    """0005 copies each service's rank into its PII rows: a public viewer's PII facet of an upgraded
    index counts the visible services only."""
    db = new_index()
    _previous_release(db)
    engine = create_engine(_url(db))
    with engine.begin() as conn:
        command.upgrade(_config(conn), "0004")
        conn.execute(
            text(
                "INSERT INTO services (ip, ip_num, port, protocol, auth, exposed, first_seen, last_seen,"
                " last_scan_id, record, rank) SELECT ip, ip_num, 6379, 'redis', auth, exposed, first_seen,"
                " last_seen, last_scan_id, record, 3 FROM services"
            )
        )
        conn.execute(text('UPDATE services SET "rank" = 4 WHERE port = 9200'))
        conn.execute(
            text(
                "INSERT INTO service_pii (service_id, category) SELECT id, CASE port WHEN 9200"
                " THEN 'national_id' ELSE 'phone' END FROM services"
            )
        )
    engine.dispose()
    store = Store(db)
    assert store.facets("", ["pii"]) == {"pii": [("national_id", 1), ("phone", 1)]}
    assert store.facets("", ["pii"], public=True) == {"pii": [("phone", 1)]}
    assert _differences(db) == []


def test_an_upgraded_index_counts_facets_of_everything_as_its_services(new_index: Callable[[], str]) -> None:
    """0009 counts the facets of the services already there (SQLite's summary): facets of everything
    equal those counted service by service, before and after the index's next write."""
    db = new_index()
    _previous_release(db)
    store = Store(db)

    def counted(public: bool) -> dict[str, list[tuple[str, int]]]:
        everything = store.facets("", public=public)
        assert everything == store.facets("port:*", public=public)
        return everything

    assert counted(False)["protocol"] == [("elasticsearch", 1)] and counted(True)["protocol"] == []
    store.findings.add([replace(OLD, ip="127.1.0.2", protocol="opensearch")])
    assert counted(False)["protocol"] == [("elasticsearch", 1), ("opensearch", 1)]

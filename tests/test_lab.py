"""The lab: servers listen where the manifest says, protected ones refuse, the data is what it claims."""

from __future__ import annotations

import asyncio
import ipaddress
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path
from typing import Any

import asyncpg
import pymysql
import pytest
import redis
from pymemcache.client.base import Client as Memcache
from redis.backoff import NoBackoff
from redis.retry import Retry
from typer.testing import CliRunner

from leaksonar.assess.ransom import valid_btc_address
from leaksonar.lab import SERVICES, LabError, kinds, lab_digest, lab_down, lab_status, lab_up, servers, spec
from leaksonar.lab.cli import lab_app
from leaksonar.lab.data import Synth, check_digit, national_id
from leaksonar.lab.digest import Hasher
from leaksonar.lab.manifest import write_manifest

ID_RE = re.compile(r"^\d{17}[\dX]$")
MOBILE_RE = re.compile(r"^1[3-9]\d{9}$")


def _pg(entry: dict[str, Any], database: str, sql: str, password: str | None = None) -> list[asyncpg.Record]:
    async def go() -> list[asyncpg.Record]:
        conn = await asyncpg.connect(
            host=entry["ip"],
            port=entry["port"],
            user="postgres",
            password=password,
            database=database,
            timeout=5,
        )
        try:
            return await conn.fetch(sql)
        finally:
            await conn.close()

    return asyncio.run(go())


def _mysql(entry: dict[str, Any], password: str, sql: str) -> Any:
    conn = pymysql.connect(
        host=entry["ip"], port=entry["port"], user="root", password=password, connect_timeout=5
    )
    try:
        with conn.cursor() as cur:
            cur.execute(sql)
            return cur.fetchone()[0]
    finally:
        conn.close()


def _redis(entry: dict[str, Any], db: int = 0, password: str | None = None) -> redis.Redis:
    """A client that fails at once (redis-py retries refused authentication by default)."""
    return redis.Redis(
        host=entry["ip"],
        port=entry["port"],
        db=db,
        password=password,
        socket_timeout=5,
        retry=Retry(NoBackoff(), 0),
    )


def _password(entry: dict[str, Any]) -> str | None:
    return entry["credentials"]["password"] if entry["credentials"] else None


def test_every_service_listens_on_its_loopback_address(lab: dict[str, Any]) -> None:
    assert [s["name"] for s in lab["services"]] == [s.name for s in SERVICES]
    assert all(s["running"] for s in lab_status(Path(lab["dir"])))
    for entry in lab["services"]:
        assert ipaddress.ip_address(entry["ip"]) in ipaddress.ip_network("127.0.0.0/8")
        with socket.create_connection((entry["ip"], entry["port"]), timeout=2):
            pass


CORE_SOFTWARE = {"redis": "redis", "postgresql": "postgresql", "mysql": "mariadb", "memcached": "memcached"}


def test_software_is_reported_as_the_server_reports_it(lab: dict[str, Any]) -> None:
    names = {s["protocol"]: s["software"]["name"] for s in lab["services"]}
    assert {p: n for p, n in names.items() if p in CORE_SOFTWARE} == CORE_SOFTWARE
    for entry in lab["services"]:
        assert entry["software"]["name"] == kinds.kind(entry["protocol"]).software
        version = entry["software"]["version"]
        assert re.match(r"\d+\.\d+", version), entry["software"]
        if entry["protocol"] in CORE_SOFTWARE:
            assert re.fullmatch(r"\d+\.\d+(\.\d+)?", version), entry["software"]


def test_open_services_answer_without_credentials(lab_service: Any) -> None:
    for name in ("redis-open", "redis-attacked"):
        with _redis(lab_service(name)) as client:
            assert client.ping()
    assert _pg(lab_service("postgres-trust"), "police", "SELECT 1")[0][0] == 1
    assert _pg(lab_service("postgres-ransomed"), "webapp", "SELECT 1")[0][0] == 1
    for name in ("mariadb-open", "mariadb-ransomed"):
        assert _mysql(lab_service(name), "", "SELECT 1") == 1
    entry = lab_service("memcached")
    client = Memcache((entry["ip"], entry["port"]), connect_timeout=5, timeout=5)
    assert client.version()
    client.close()


def test_protected_services_refuse_without_credentials(lab_service: Any) -> None:
    entry = lab_service("redis-auth")
    for password in (None, "wrong"):
        with _redis(entry, password=password) as client, pytest.raises(redis.AuthenticationError):
            client.ping()
    with _redis(entry, password=_password(entry)) as client:
        assert client.ping()

    entry = lab_service("postgres-password")
    for password in (None, "", "postgres"):
        with pytest.raises(asyncpg.InvalidPasswordError):
            _pg(entry, "hr", "SELECT 1", password)
    assert _pg(entry, "hr", "SELECT 1", _password(entry))[0][0] == 1

    entry = lab_service("mariadb-password")
    for password in ("", "root"):
        with pytest.raises(pymysql.err.OperationalError) as refused:
            _mysql(entry, password, "SELECT 1")
        assert refused.value.args[0] == 1045
    assert _mysql(entry, _password(entry) or "", "SELECT 1") == 1


def _server_rows(entry: dict[str, Any], database: str, collection: str) -> int:
    """The row count of one manifest collection, asked of the server with its real client."""
    password = _password(entry)
    if entry["protocol"] == "redis":
        with _redis(entry, int(database), password) as client:
            return int(client.dbsize())
    if entry["protocol"] == "postgresql":
        return int(_pg(entry, database, f"SELECT count(*) FROM {collection}", password)[0][0])
    if entry["protocol"] == "mysql":
        return int(_mysql(entry, password or "", f"SELECT COUNT(*) FROM `{database}`.`{collection}`"))
    client = Memcache((entry["ip"], entry["port"]), connect_timeout=5, timeout=5)
    try:
        assert len(client.get_many(entry["keys"])) == len(entry["keys"])
        return int(client.stats()[b"curr_items"])
    finally:
        client.close()


def test_manifest_row_counts_match_the_servers(lab: dict[str, Any]) -> None:
    """The core kinds' counts (each added kind checks its own in its tests; TLS services theirs in
    test_lab_tls.py)."""
    checked = 0
    for entry in (s for s in lab["services"] if s["protocol"] in CORE_SOFTWARE and not s.get("tls")):
        for database in entry["databases"]:
            for collection in database["collections"]:
                assert _server_rows(entry, database["name"], collection["name"]) == collection["rows"], (
                    entry["name"],
                    database["name"],
                    collection["name"],
                )
                checked += 1
    assert checked == 18


def test_digest_is_stable_and_distinguishes_services(lab: dict[str, Any]) -> None:
    first = {s["name"]: lab_digest(s) for s in lab["services"]}
    assert first == {s["name"]: lab_digest(s) for s in lab["services"]}
    assert Hasher().hexdigest() not in first.values()  # every digest covers something
    core = [first[s["name"]] for s in lab["services"] if s["protocol"] in CORE_SOFTWARE and not s.get("tls")]
    assert len(set(core)) == len(core)  # added kinds and TLS twins may hold the same data twice


def test_redis_attacked_holds_the_cron_job_and_ssh_key_plant(lab_service: Any) -> None:
    entry = lab_service("redis-attacked")
    planted = {p["key"] for p in entry["attack"]["places"]}
    assert planted == {"backup1", "backup2", "backup3", "backup4", "crackit"}
    with _redis(entry) as client:
        values = {key: client.get(key).decode() for key in planted}
        assert client.dbsize() > len(planted)  # ordinary keys remain beside the planted ones
    for i in range(1, 5):
        assert re.fullmatch(r"\n\n\n\*/\d \* \* \* \* root [^\n]+ \| sh\n\n", values[f"backup{i}"])
    hosts = {host for value in values.values() for host in re.findall(r"https?://([^/\s]+)", value)}
    assert len(hosts) == 2 and all(host.endswith(".example.invalid") for host in hosts), hosts
    assert re.fullmatch(r"\n\n\nssh-ed25519 AAAA[\w+/]+=* root@crackit\n\n\n\n", values["crackit"])


def test_mariadb_ransomed_holds_only_the_note(lab_service: Any) -> None:
    entry = lab_service("mariadb-ransomed")
    schemas = _mysql(
        entry,
        "",
        "SELECT GROUP_CONCAT(schema_name) FROM information_schema.schemata"
        " WHERE schema_name NOT IN ('information_schema', 'mysql', 'performance_schema', 'sys')",
    )
    assert schemas == "RECOVER_YOUR_DATA"  # the original `webshop` was dropped
    note = _mysql(entry, "", "SELECT warning FROM RECOVER_YOUR_DATA.RECOVER_YOUR_DATA")
    attack = entry["attack"]
    assert attack["wiped"] is True
    assert note.startswith("All your data is backed up. You must pay 0.03 BTC to ")
    for value in (*attack["btc_addresses"], *attack["emails"], *attack["onion"]):
        assert value in note
    assert all(valid_btc_address(a) for a in attack["btc_addresses"])


def test_postgres_ransomed_holds_a_note_among_leftovers(lab_service: Any) -> None:
    entry = lab_service("postgres-ransomed")
    tables = _pg(entry, "webapp", "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1")
    assert [r[0] for r in tables] == ["readme", "schema_migrations"]  # `users` and `orders` were dropped
    (row,) = _pg(entry, "webapp", "SELECT content, btc, email FROM readme")
    attack = entry["attack"]
    assert attack["wiped"] is False
    assert [row["btc"]] == attack["btc_addresses"] and [row["email"]] == attack["emails"]
    assert f"pay {attack['amount_btc']} BTC to {row['btc']}" in row["content"]
    assert all(valid_btc_address(a) for a in attack["btc_addresses"])


def test_personal_data_looks_real_and_validates(lab_service: Any) -> None:
    rows = _pg(
        lab_service("postgres-trust"),
        "police",
        "SELECT national_id, phone, birth_date, gender FROM citizen ORDER BY id LIMIT 300",
    )
    assert len(rows) == 300
    for national, phone, birth, gender in rows:
        assert ID_RE.match(national) and check_digit(national[:17]) == national[17]
        assert national[6:14] == birth.strftime("%Y%m%d")
        assert int(national[16]) % 2 == (1 if gender == "男" else 0)
        assert MOBILE_RE.match(phone), phone


def test_national_ids_carry_a_valid_check_digit() -> None:
    assert check_digit("11010519491231002") == "X"  # the GB 11643-1999 example
    synth = Synth(1)
    for male in (True, False) * 200:
        birth = synth.day(date(1950, 1, 1), 20000)
        value = national_id(synth.rnd, birth, male)
        assert ID_RE.match(value) and value[17] == check_digit(value[:17])
        assert int(value[16]) % 2 == male


def test_data_is_deterministic() -> None:
    assert Synth(7).people(20) == Synth(7).people(20)


def test_second_lab_runs_alongside_and_down_stops_only_its_own(lab: dict[str, Any]) -> None:
    first = ipaddress.IPv4Address(lab["base"]) + 256
    base = str(first)
    directory = Path(tempfile.mkdtemp(prefix="leaksonar-lab2-"))
    try:
        manifest = lab_up(directory, base, services=["redis-open", "memcached"])
        assert [s["ip"] for s in manifest["services"]] == [str(first + 1), str(first + 7)]
        with pytest.raises(LabError, match="already running"):
            lab_up(directory, base, services=["redis-open"])
    finally:
        stopped = lab_down(directory)
    assert stopped == ["redis-open", "memcached"]
    for entry in manifest["services"]:
        assert not Path(f"/proc/{entry['pid']}").exists()
    assert not directory.exists()
    assert all(s["running"] for s in lab_status(Path(lab["dir"])))


def test_down_never_kills_a_process_that_is_not_the_lab_server(tmp_path: Path) -> None:
    other = subprocess.Popen(["sleep", "30"])
    try:
        entry = {
            "name": "redis-open",
            "ip": "127.78.2.1",
            "port": 6379,
            "protocol": "redis",
            "pid": other.pid,
        }
        write_manifest(tmp_path, {"base": "127.78.2.0", "dir": str(tmp_path), "services": [entry]})
        assert lab_down(tmp_path) == []
        assert other.poll() is None
    finally:
        other.kill()
        other.wait()


@pytest.mark.parametrize("base", ["10.0.0.0", "127.255.255.252", "not-an-ip"])
def test_cli_up_rejects_a_base_outside_loopback(base: str, tmp_path: Path) -> None:
    result = CliRunner().invoke(lab_app, ["up", "--base", base, "--dir", str(tmp_path / "lab")])
    assert result.exit_code == 2
    assert "error:" in result.output and len(result.output.strip().splitlines()) == 1
    assert not (tmp_path / "lab").exists()


def test_cli_status_and_missing_lab(lab: dict[str, Any], tmp_path: Path) -> None:
    result = CliRunner().invoke(lab_app, ["status", "--dir", lab["dir"]])
    assert result.exit_code == 0, result.output
    assert all(s.name in result.output for s in SERVICES)
    result = CliRunner().invoke(lab_app, ["down"], env={"LEAKSONAR_LAB_DIR": str(tmp_path)})
    assert result.exit_code == 1 and "no lab" in result.output


def test_failed_up_stops_what_it_started(lab: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(launch: Any, started: Any) -> Any:
        raise RuntimeError("seeding failed")

    monkeypatch.setattr(kinds.kind("memcached"), "seed", broken)
    first = ipaddress.IPv4Address(lab["base"]) + 512
    directory = Path(tempfile.mkdtemp(prefix="leaksonar-lab3-"))
    with pytest.raises(LabError, match="memcached: RuntimeError: seeding failed"):
        lab_up(directory, str(first), services=["redis-open", "memcached"])
    assert not directory.exists()
    for ip in (first + 1, first + 7):
        assert not subprocess.run(["pgrep", "-f", f"{ip}[: ]"], capture_output=True).stdout


@pytest.mark.skipif(os.geteuid() != 0, reason="PostgreSQL runs as another user only when started by root")
def test_refuses_a_lab_dir_postgres_cannot_reach(tmp_path: Path) -> None:
    hidden = tmp_path / "hidden"
    hidden.mkdir(mode=0o700)
    account = servers.system_account("postgres", "PostgreSQL")
    assert account is not None
    with pytest.raises(LabError, match=f"{hidden} is not traversable by user postgres"):
        servers.check_traversable(hidden, account)


def test_every_registered_kind_fits_the_interface() -> None:
    for protocol in kinds.MODULES:
        kind = kinds.kind(protocol)
        assert kind.protocol == protocol
        assert kind.programs and all("/" not in p for p in kind.programs), protocol
        assert kind.software and isinstance(kind.stop_signal, signal.Signals)
        assert all(callable(getattr(kind, m)) for m in ("start", "seed", "digest"))
    with pytest.raises(LabError, match="no lab server kind"):
        kinds.kind("gopher")


def test_service_table_is_consistent() -> None:
    assert [s.offset for s in SERVICES] == sorted({s.offset for s in SERVICES})
    assert len({s.name for s in SERVICES}) == len(SERVICES)
    assert all(1 <= s.offset <= 254 and {s.protocol, s.runner} <= set(kinds.MODULES) for s in SERVICES)
    assert all((41 <= s.offset <= 60) == (s.tls is not None) for s in SERVICES)  # 61+: new kinds
    assert [(s.name, s.offset) for s in spec.CORE_SERVICES][:3] == [
        ("redis-open", 1),
        ("redis-auth", 2),
        ("postgres-trust", 3),
    ]


def test_importing_the_lab_loads_no_driver_and_no_kind() -> None:
    code = (
        "import sys, leaksonar.lab, leaksonar.lab.cli, leaksonar.lab.lifecycle, leaksonar.lab.digest\n"
        "print(' '.join(sorted(sys.modules)))"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    loaded = set(run.stdout.split())
    assert not loaded & {"asyncpg", "pymysql", "redis", "pymemcache"}
    assert not {m for m in loaded if m.startswith("leaksonar.lab.kinds.")} - {"leaksonar.lab.kinds.base"}


def test_matches_a_kind_program_run_by_an_interpreter(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    class Fake:
        programs = ("fake-server",)

    script = tmp_path / "fake-server"
    script.write_text("import time\ntime.sleep(30)\n")
    monkeypatch.setattr(kinds, "kind", lambda protocol: Fake())
    proc = subprocess.Popen([sys.executable, str(script), "--host", "127.78.3.1"])
    try:
        for _ in range(500):  # until the child has exec'd
            if b"fake-server" in Path(f"/proc/{proc.pid}/cmdline").read_bytes():
                break
            time.sleep(0.01)
        assert servers.matches(proc.pid, "fake", "127.78.3.1")
        assert not servers.matches(proc.pid, "fake", "127.78.3.10")
    finally:
        proc.kill()
        proc.wait()

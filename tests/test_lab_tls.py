"""The lab's TLS services: each completes a handshake and presents the certificate its manifest entry
describes, holds its plaintext twin's data, and refuses plaintext where the manifest says so.

Run alone with the kinds they need: LEAKSONAR_LAB_KINDS=postgresql,redis,mysql,elasticsearch,kibana,nginx
"""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
import socket
import struct
import tempfile
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pymysql
import pytest
import redis
from cryptography import x509
from cryptography.hazmat.primitives import hashes

from leaksonar.lab import lab_digest, lab_down, lab_up, servers, total_rows
from leaksonar.lab.tls import CA_NAME, unverified_context

TLS_SERVICES = {"opensearch-tls", "kibana-tls", "postgres-tls", "redis-tls", "mariadb-tls"}
CLIENT_SSL = 0x800
PG_SSL_REQUEST = struct.pack("!II", 8, 80877103)


def _tls_entries(lab: dict[str, Any]) -> list[dict[str, Any]]:
    return [s for s in lab["services"] if s.get("tls")]


def _mysql_greeting(sock: socket.socket) -> tuple[int, bytes]:
    """(capability flags, the greeting's payload) of a MySQL/MariaDB server's first packet."""
    header = sock.recv(4, socket.MSG_WAITALL)
    payload = sock.recv(int.from_bytes(header[:3], "little"), socket.MSG_WAITALL)
    assert payload[0] == 10, payload[:16]  # protocol version 10
    end = payload.index(b"\0", 1)
    low = int.from_bytes(payload[end + 1 + 4 + 8 + 1 :][:2], "little")
    return low, payload


def _server_certificate(entry: dict[str, Any]) -> x509.Certificate:
    """The certificate a TLS service presents (after the protocol's own upgrade step, if it has one)."""
    sock = socket.create_connection((entry["ip"], entry["port"]), timeout=5)
    with sock:
        if entry["protocol"] == "postgresql":
            sock.sendall(PG_SSL_REQUEST)
            assert sock.recv(1) == b"S"
        elif entry["protocol"] == "mysql":
            capabilities, _ = _mysql_greeting(sock)
            assert capabilities & CLIENT_SSL
            flags = struct.pack("<IIB23x", 0x000FA685 | CLIENT_SSL, 1 << 24, 45)
            sock.sendall(len(flags).to_bytes(3, "little") + b"\x01" + flags)
        with unverified_context().wrap_socket(sock, server_hostname=entry["hostname"]) as tls:
            der = tls.getpeercert(binary_form=True)
    assert der
    return x509.load_der_x509_certificate(der)


def test_the_lab_has_every_tls_service_beside_its_twin(lab: dict[str, Any]) -> None:
    entries = {s["name"]: s for s in lab["services"]}
    assert {name for name, s in entries.items() if s.get("tls")} == TLS_SERVICES
    ca = Path(lab["tls_ca"])
    assert ca == Path(lab["dir"]) / "tls" / "ca.pem"
    subject = x509.load_pem_x509_certificate(ca.read_bytes()).subject
    assert subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)[0].value == CA_NAME
    for entry in _tls_entries(lab):
        twin = entries[entry["tls"]["twin"]]
        assert "tls" not in twin
        assert entry["hostname"] == entry["tls"]["names"][0]
        assert entry["hostname"].endswith(".example.lab") and entry["tls"]["names"][-1] == entry["ip"]
        for field in ("protocol", "auth", "software", "databases"):
            assert entry[field] == twin[field], (entry["name"], field)
        assert total_rows(entry) > 0
    flags = {s["name"]: (s["tls"]["self_signed"], s["tls"]["expired"]) for s in _tls_entries(lab)}
    assert sorted(flags.values()).count((False, False)) == 3
    assert flags["kibana-tls"] == (True, False) and flags["redis-tls"] == (False, True)


def test_every_tls_service_presents_the_certificate_its_manifest_describes(lab: dict[str, Any]) -> None:
    ca = x509.load_pem_x509_certificate(Path(lab["tls_ca"]).read_bytes())
    now = datetime.datetime.now(datetime.UTC)
    key_types = set()
    for entry in _tls_entries(lab):
        cert, tls = _server_certificate(entry), entry["tls"]
        assert cert.fingerprint(hashes.SHA256()).hex() == tls["sha256"], entry["name"]
        sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        names = [*sans.get_values_for_type(x509.DNSName), *map(str, sans.get_values_for_type(x509.IPAddress))]
        assert names == tls["names"], entry["name"]
        issuer = cert if tls["self_signed"] else ca
        cert.verify_directly_issued_by(issuer)
        assert (cert.issuer == cert.subject) == tls["self_signed"]
        assert (cert.not_valid_after_utc < now) == tls["expired"], entry["name"]
        key_types.add(type(cert.public_key()).__name__)
    assert len(key_types) == 2  # ECDSA and RSA


def _pg_count(entry: dict[str, Any], ssl_option: Any) -> int:
    async def go() -> int:
        conn = await asyncpg.connect(
            host=entry["ip"],
            port=entry["port"],
            user="postgres",
            database="police",
            ssl=ssl_option,
            timeout=5,
        )
        try:
            return int(await conn.fetchval("SELECT count(*) FROM public.citizen"))
        finally:
            await conn.close()

    return asyncio.run(go())


def test_postgres_tls_refuses_plaintext_and_serves_the_data_over_tls(lab_service: Any) -> None:
    entry = lab_service("postgres-tls")
    assert entry["tls"]["required"]
    with pytest.raises(asyncpg.InvalidAuthorizationSpecificationError, match="no encryption"):
        _pg_count(entry, False)
    rows = {
        c["name"]: c["rows"] for db in entry["databases"] if db["name"] == "police" for c in db["collections"]
    }
    assert _pg_count(entry, unverified_context()) == rows["public.citizen"] > 0


def test_redis_tls_answers_over_tls_only(lab_service: Any) -> None:
    entry = lab_service("redis-tls")
    with redis.Redis(entry["ip"], entry["port"], ssl=True, ssl_cert_reqs="none", socket_timeout=5) as client:
        assert client.ping()
        assert client.dbsize() == entry["databases"][0]["collections"][0]["rows"]
    with (
        redis.Redis(entry["ip"], entry["port"], socket_timeout=2) as plain,
        pytest.raises(redis.ConnectionError),
    ):
        plain.ping()


def test_mariadb_tls_offers_ssl_and_serves_the_data_over_it(lab_service: Any) -> None:
    entry = lab_service("mariadb-tls")
    assert not entry["tls"]["required"]
    with socket.create_connection((entry["ip"], entry["port"]), timeout=5) as sock:
        capabilities, _ = _mysql_greeting(sock)
    assert capabilities & CLIENT_SSL
    plain = lab_service("mariadb-open")
    with socket.create_connection((plain["ip"], plain["port"]), timeout=5) as sock:
        assert not _mysql_greeting(sock)[0] & CLIENT_SSL
    conn = pymysql.connect(
        host=entry["ip"],
        port=entry["port"],
        user="root",
        password="",
        ssl=unverified_context(),
        connect_timeout=5,
    )
    try:
        with conn.cursor() as cur:
            cur.execute("SHOW SESSION STATUS LIKE 'Ssl_cipher'")
            assert cur.fetchone()[1]
            cur.execute("SELECT COUNT(*) FROM hospital.patient")
            rows = {c["name"]: c["rows"] for c in entry["databases"][0]["collections"]}
            assert cur.fetchone()[0] == rows["patient"]
    finally:
        conn.close()


def test_nginx_proxies_answer_opensearch_and_kibana_over_https(lab_service: Any) -> None:
    search, kibana = lab_service("opensearch-tls"), lab_service("kibana-tls")
    with httpx.Client(verify=False, trust_env=False, timeout=10) as http:
        root = http.get(f"https://{search['ip']}/", headers={"Host": search["hostname"]})
        assert root.json()["version"]["number"] == search["software"]["version"]
        assert root.headers["server"].startswith("nginx")
        status = http.get(f"https://{kibana['ip']}/api/status")
        assert status.headers["kbn-name"]
        assert status.json()["version"]["number"] == kibana["software"]["version"]
        refused = http.get(f"http://{search['ip']}:443/")
        assert refused.status_code == 400 and "plain HTTP request was sent to HTTPS port" in refused.text


def test_tls_services_hold_the_same_data_as_their_twins(lab: dict[str, Any]) -> None:
    entries = {s["name"]: s for s in lab["services"]}
    for entry in _tls_entries(lab):
        assert lab_digest(entry) == lab_digest(entries[entry["tls"]["twin"]]), entry["name"]


def test_down_stops_nginx_master_and_workers(lab: dict[str, Any]) -> None:
    base = ipaddress.IPv4Address(lab["base"]) + 4 * 256
    directory = Path(tempfile.mkdtemp(prefix="leaksonar-lab-tls-"))
    try:
        manifest = lab_up(directory, str(base), services=["opensearch-open", "opensearch-tls"])
        master = next(s["pid"] for s in manifest["services"] if s["name"] == "opensearch-tls")
        workers = [int(p) for p in Path(f"/proc/{master}/task/{master}/children").read_text().split()]
        assert workers and all(
            b"nginx: worker process" in Path(f"/proc/{p}/cmdline").read_bytes() for p in workers
        )
        assert servers.matches(master, "nginx", str(base + 41))
    finally:
        stopped = lab_down(directory)
    assert stopped == ["opensearch-open", "opensearch-tls"]
    assert not any(Path(f"/proc/{pid}").exists() for pid in (master, *workers))
    assert not directory.exists()

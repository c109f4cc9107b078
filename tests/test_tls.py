"""TLS as a user sees it: services behind TLS on loopback (scripted ones, and a real redis-server with
--tls-port) are identified as their protocol with the handshake and certificate recorded; the name
scanned goes out as SNI; plaintext services get no TLS result and cost no more round trips; and what a
certificate says is kept, bounded, whatever a hostile one holds."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import socket
import socketserver
import ssl
import subprocess
import threading
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import certs
import hostile
import pytest
from conftest import jsonl_records, leaksonar
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import x25519
from replies import OSMEM_ROOT, POSTGRES_TRUST, http_reply

from leaksonar.model import Certificate, ErrorKind, Identity, Inspection, Limits
from leaksonar.protocols.base import BoundedStream, Endpoint
from leaksonar.protocols.tls import MAX_NAME_CHARS, MAX_NAMES, certificate, wants_tls
from leaksonar.scan.examine import inspect_service
from leaksonar.scan.identify import identify

FAST = hostile.FAST
NGINX_PAGE = http_reply(200, {"Server": "nginx/1.22.1", "Content-Type": "text/html"}, b"<html>hi</html>")


@asynccontextmanager
async def serving(
    handler: hostile.Handler, issued: certs.Issued, seen: list[str | None]
) -> AsyncIterator[int]:
    """`handler` behind TLS on 127.0.0.1 (a free port) with `issued`'s certificate; each handshake's SNI
    (None: none) goes into `seen`. Yields the port."""
    context = issued.server_context()
    context.sni_callback = lambda _ssl, name, _ctx: seen.append(name)  # type: ignore[assignment,misc]
    server = await asyncio.start_server(handler, "127.0.0.1", 0, ssl=context)
    async with server:
        yield server.sockets[0].getsockname()[1]


def identify_behind_tls(
    handler: hostile.Handler, issued: certs.Issued, hostname: str | None = None
) -> tuple[Identity, list[str | None]]:
    """What identify() says of `handler` served over TLS with `issued`, and the SNI each handshake sent."""
    seen: list[str | None] = []

    async def main() -> Identity:
        async with serving(handler, issued, seen) as port:
            return await identify("127.0.0.1", port, None, FAST, hostname)

    return asyncio.run(main()), seen


def http_server(root: bytes) -> hostile.Handler:
    return hostile.http(lambda _: http_reply(404), {"/": root})


CA = certs.make("leaksonar test CA", key="ec", ca=True)


@pytest.mark.parametrize(
    ("root", "protocol"), [(OSMEM_ROOT, "elasticsearch"), (NGINX_PAGE, "http")], ids=["opensearch", "web"]
)
@pytest.mark.parametrize(
    ("issued", "key", "self_signed"),
    [
        (certs.make("es.example.lab", "es.example.lab", "alt.example.lab", "127.0.0.1"), "RSA 2048", True),
        (certs.make("es.example.lab", "127.0.0.1", key="ec"), "EC secp256r1", True),
        (certs.make("es.example.lab", key="ed25519", issuer=CA), "Ed25519", False),
    ],
    ids=["rsa-self-signed", "ec-self-signed", "ed25519-ca-issued"],
)
def test_http_service_behind_tls_is_identified_with_its_certificate(
    root: bytes, protocol: str, issued: certs.Issued, key: str, self_signed: bool
) -> None:
    identity, _ = identify_behind_tls(http_server(root), issued)
    assert identity.protocol == protocol
    assert identity.tls is not None and identity.tls.version == "TLSv1.3" and identity.tls.cipher
    cert = identity.tls.cert
    assert cert is not None
    assert cert.subject == "CN=es.example.lab"
    assert cert.names[0] == "es.example.lab" and len(cert.names) == len(set(cert.names))
    assert cert.issuer == ("CN=leaksonar test CA" if issued.cert.issuer == CA.cert.subject else cert.subject)
    assert (cert.self_signed, cert.expired, cert.key) == (self_signed, False, key)
    assert cert.sha256 == hashlib.sha256(issued.der).hexdigest()
    assert cert.not_after == issued.cert.not_valid_after_utc.strftime("%Y-%m-%dT%H:%M:%SZ")


def test_names_are_cn_then_dns_then_ip_without_repeats() -> None:
    issued = certs.make("a.example.lab", "10.1.2.3", "a.example.lab", "b.example.lab", "::1")
    identity, _ = identify_behind_tls(http_server(NGINX_PAGE), issued)
    assert identity.tls is not None and identity.tls.cert is not None
    assert identity.tls.cert.names == ("a.example.lab", "b.example.lab", "10.1.2.3", "::1")


def test_expired_certificate_is_reached_and_marked_expired() -> None:
    past = datetime.now(UTC) - timedelta(days=30)
    issued = certs.make("old.example.lab", not_before=past - timedelta(days=365), not_after=past)
    identity, _ = identify_behind_tls(http_server(OSMEM_ROOT), issued)
    assert identity.protocol == "elasticsearch"
    assert identity.tls is not None and identity.tls.cert is not None and identity.tls.cert.expired


def test_hostname_goes_out_as_sni_and_no_name_sends_none() -> None:
    issued = certs.make("es.example.lab")
    named, seen_named = identify_behind_tls(http_server(OSMEM_ROOT), issued, hostname="es.example.lab")
    anonymous, seen_anonymous = identify_behind_tls(http_server(OSMEM_ROOT), issued)
    assert named.protocol == anonymous.protocol == "elasticsearch"
    assert seen_named and set(seen_named) == {"es.example.lab"}
    assert seen_anonymous and set(seen_anonymous) == {None}


# --- a real redis-server: TLS only, and plaintext on its default port ---------------------------------


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _wait_listening(ip: str, port: int, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        assert process.poll() is None, "redis-server exited"
        try:
            socket.create_connection((ip, port), 0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise AssertionError(f"redis-server not listening on {ip}:{port}")


@contextmanager
def _redis(tmp: Path, ip: str, port: int, *tls: str) -> Iterator[None]:
    plain = ["--port", "0", "--tls-port", str(port)] if tls else ["--port", str(port)]
    argv = ["redis-server", "--bind", ip, *plain, *tls, "--save", "", "--appendonly", "no", "--dir", str(tmp)]
    process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait_listening(ip, port, process)
        yield
    finally:
        process.terminate()
        process.wait(10)


REDIS_CERT = certs.make("redis.example.lab", "127.0.0.1")


@pytest.fixture(scope="module")
def redis_tls(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    """A real redis-server speaking only TLS on 127.0.0.1 (a free port)."""
    tmp = tmp_path_factory.mktemp("redis-tls")
    cert_file, key_file = REDIS_CERT.files(tmp)
    port = _free_port()
    tls = ("--tls-cert-file", str(cert_file), "--tls-key-file", str(key_file), "--tls-auth-clients", "no")
    with _redis(tmp, "127.0.0.1", port, *tls):
        yield port


def test_real_redis_behind_tls_is_identified_and_inspected(redis_tls: int) -> None:
    identity = asyncio.run(identify("127.0.0.1", redis_tls, None, FAST))
    assert identity.protocol == "redis" and identity.software is not None
    assert identity.tls is not None and identity.tls.cert is not None
    assert identity.tls.cert.names == ("redis.example.lab", "127.0.0.1")
    assert identity.tls.cert.sha256 == hashlib.sha256(REDIS_CERT.der).hexdigest()
    inspection = asyncio.run(inspect_service("127.0.0.1", redis_tls, identity, FAST))
    assert inspection.auth == "none" and not inspection.errors, inspection.errors


def test_scan_of_a_tls_redis_records_its_certificate(redis_tls: int, tmp_path: Path) -> None:
    jsonl = tmp_path / "f.jsonl"
    leaksonar(
        "scan", "127.0.0.1", "-p", str(redis_tls), "--db", str(tmp_path / "i.db"), "--jsonl", str(jsonl), "-q"
    )
    _, (record,) = jsonl_records(jsonl)
    assert (record["protocol"], record["auth"], record["tls"]["version"]) == ("redis", "none", "TLSv1.3")
    assert record["tls"]["cert"]["names"] == ["redis.example.lab", "127.0.0.1"]
    assert record["tls"]["cert"]["self_signed"] is True


def _redis_connections(ip: str, port: int) -> int:
    with socket.create_connection((ip, port), 2) as conn:
        conn.sendall(b"INFO stats\r\n")
        reply = b""
        while b"total_connections_received:" not in reply or not reply.endswith(b"\r\n\r\n"):
            reply += conn.recv(65536)
    line = next(x for x in reply.split(b"\r\n") if x.startswith(b"total_connections_received:"))
    return int(line.split(b":")[1])


def test_plaintext_redis_gets_no_tls_attempt(tmp_path: Path) -> None:
    """On its default port, a plaintext Redis answers the first probe: one connection, no TLS result."""
    ip = f"127.{hostile.random.randrange(100, 250)}.{hostile.random.randrange(256)}.1"
    with _redis(tmp_path, ip, 6379):
        before = _redis_connections(ip, 6379)
        started = time.monotonic()
        identity = asyncio.run(identify(ip, 6379, None, FAST))
        elapsed = time.monotonic() - started
        after = _redis_connections(ip, 6379)
        assert identity.protocol == "redis" and identity.tls is None
        assert after - before == 2  # identification's one connection, and this count's own
        assert elapsed < 0.5


# --- what asks for TLS -----------------------------------------------------------------------------------

NGINX_400 = (
    b"HTTP/1.1 400 Bad Request\r\nServer: nginx/1.22.1\r\nDate: Mon, 07 Dec 2026 18:00:00 GMT\r\n"
    b"Content-Type: text/html\r\nContent-Length: 255\r\nConnection: close\r\n\r\n"
    b"<html>\r\n<head><title>400 The plain HTTP request was sent to HTTPS port</title></head>\r\n<body>\r\n"
    b"<center><h1>400 Bad Request</h1></center>\r\n<center>The plain HTTP request was sent to HTTPS port"
    b"</center>\r\n<hr><center>nginx/1.22.1</center>\r\n</body>\r\n</html>\r\n"
)
"""Captured from Debian nginx 1.22.1 on loopback: its answer to plaintext HTTP on a `listen ... ssl` port.
(A real OpenSSL server such as redis-server --tls-port resets a plaintext probe instead: identification
then tries TLS because nothing matched, as the redis tests above show.)"""
GO_400 = b"HTTP/1.0 400 Bad Request\r\n\r\nClient sent an HTTP request to an HTTPS server.\n"
"""Go net/http's answer to plaintext HTTP on a TLS listener (etcd, InfluxDB 2, many proxies)."""


@pytest.mark.parametrize("reply", [NGINX_400, GO_400], ids=["nginx", "go"])
def test_http_servers_asking_for_https_want_tls(reply: bytes) -> None:
    assert wants_tls(reply)


@pytest.mark.parametrize("reply", [OSMEM_ROOT, NGINX_PAGE, b"-ERR unknown command\r\n", b"\x16\x03", b""])
def test_ordinary_replies_do_not_want_tls(reply: bytes) -> None:
    assert not wants_tls(reply)


# --- what a certificate says, whatever it holds ---------------------------------------------------------

NOW = datetime.now(UTC)


def facts(issued: certs.Issued | bytes) -> Certificate:
    found = certificate(issued if isinstance(issued, bytes) else issued.der, NOW)
    assert found is not None
    return found


def test_certificate_without_common_name() -> None:
    found = facts(certs.make(None, "db.example.lab"))
    assert (found.subject, found.names) == ("", ("db.example.lab",))


def test_certificate_with_only_ip_names() -> None:
    assert facts(certs.make(None, "10.0.0.7", "fd00::7")).names == ("10.0.0.7", "fd00::7")


def test_thousands_of_names_are_kept_to_max_names() -> None:
    found = facts(certs.make("first.example.lab", *(f"n{i}.example.lab" for i in range(5000))))
    assert len(found.names) == MAX_NAMES and found.names[:2] == ("first.example.lab", "n0.example.lab")


def test_huge_names_are_cut() -> None:
    found = facts(certs.make("c" * 10_000, "d" * 10_000))
    assert [len(n) for n in found.names] == [MAX_NAME_CHARS, MAX_NAME_CHARS]
    assert len(found.subject) <= 1024


def test_control_and_bidi_characters_are_kept_as_text() -> None:
    cn = "\u202eevil\x00\x1b[31m\u4e2d\u6587"
    found = facts(certs.make(cn))
    assert found.names == (cn,)
    assert "\u202e" in found.subject and "\u4e2d\u6587" in found.subject


def _rewritten(issued: certs.Issued, old: bytes, new: bytes) -> certs.Issued:
    """`issued` with `old` replaced by `new` (same length) in its DER; its signature no longer holds."""
    assert issued.der.count(old) == 1 and len(old) == len(new)
    return certs.Issued(x509.load_der_x509_certificate(issued.der.replace(old, new)), issued.key)


def _odd_alternative_names() -> Iterator[certs.Issued]:
    """Certificates OpenSSL accepts whose names `cryptography` cannot read: an x400Address among the
    alternative names (RFC 5280 allows it), and the same extension twice."""
    issued = certs.make("odd.example.lab", "db.example.lab")
    yield _rewritten(issued, b"\x82\x0edb.example.lab", b"\xa3\x0e\x04\x0cx400-address")
    yield _rewritten(issued, b"\x06\x03\x55\x1d\x13", b"\x06\x03\x55\x1d\x11")  # BasicConstraints as a SAN


@pytest.mark.parametrize("issued", list(_odd_alternative_names()), ids=["x400-address", "duplicate-san"])
def test_names_cryptography_cannot_read_leave_the_rest_of_the_certificate(issued: certs.Issued) -> None:
    found = facts(issued.der)
    assert (found.subject, found.names, found.key) == ("CN=odd.example.lab", ("odd.example.lab",), "RSA 2048")


def test_service_behind_a_certificate_with_an_x400_name_is_identified() -> None:
    issued = next(_odd_alternative_names())
    identity, _ = identify_behind_tls(http_server(OSMEM_ROOT), issued)
    assert identity.protocol == "elasticsearch"
    assert identity.tls is not None and identity.tls.cert is not None
    assert identity.tls.cert.names == ("odd.example.lab",)


@pytest.mark.parametrize("der", [b"", b"garbage", b"\x30\x03\x02\x01\x00", REDIS_CERT.der[:200]])
def test_unparseable_certificate_gives_none(der: bytes) -> None:
    assert certificate(der, NOW) is None


def test_unknown_and_unusual_key_types_are_named() -> None:
    x25519_key = x25519.X25519PrivateKey.generate().public_key()
    assert facts(certs.make("x", public_key=x25519_key)).key == "X25519PublicKey"
    rsa_oid = bytes.fromhex("06092a864886f70d010101")  # rsaEncryption in the key info
    der = certs.make("y").der
    assert der.count(rsa_oid) == 1
    found = facts(der.replace(rsa_oid, rsa_oid[:-1] + b"\x63"))  # an algorithm nobody knows
    assert (found.key, found.self_signed) == ("unknown", False)


def test_far_future_and_pre_1970_dates() -> None:
    far = facts(certs.make("z", not_after=datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC)))
    assert (far.not_after, far.expired) == ("9999-12-31T23:59:59Z", False)
    # cryptography builds nothing before 1950: a GeneralizedTime of 2050 rewritten in the DER
    der = certs.make(
        "z", not_before=datetime(2050, 1, 1, tzinfo=UTC), not_after=datetime(2051, 1, 1, tzinfo=UTC)
    ).der
    for year, written in ((b"1969", "1969"), (b"1900", "1900"), (b"0001", "0001")):
        found = facts(der.replace(b"20500101000000Z", year + b"0101000000Z"))
        assert found.not_before == f"{written}-01-01T00:00:00Z" and not found.self_signed
    old = facts(
        der.replace(b"20500101000000Z", b"19000101000000Z").replace(b"20510101000000Z", b"19010101000000Z")
    )
    assert old.expired and old.not_after == "1901-01-01T00:00:00Z"


# --- hostile TLS (tests/hostile.py TLS_NETWORK) ---------------------------------------------------------

HOSTILE = Limits(timeout=1.5, service_budget=5.0)
HOSTILE_BOUND = 3 * HOSTILE.timeout + 2.0
"""Identification's two rounds of timeouts, one spare, and slack for a loaded 2-core machine."""


@pytest.fixture(scope="module")
def tls_network() -> Iterator[dict[str, Endpoint]]:
    with hostile.network(hostile.TLS_NETWORK) as endpoints:
        yield endpoints


@pytest.mark.parametrize("server", hostile.TLS_NETWORK, ids=lambda s: s.name)
def test_hostile_tls_ends_in_time_with_a_finding_that_says_so(
    server: hostile.HostileServer, tls_network: dict[str, Endpoint]
) -> None:
    endpoint = tls_network[server.name]
    started = time.monotonic()
    identity = asyncio.run(identify(endpoint.ip, endpoint.port, None, HOSTILE))
    inspection = asyncio.run(inspect_service(endpoint.ip, endpoint.port, identity, HOSTILE))
    assert time.monotonic() - started < HOSTILE_BOUND
    assert identity.protocol == server.protocol
    assert (identity.tls is not None) == (server.name == "tls-endless")  # the only finished handshake
    assert server.expect in {e.kind for e in inspection.errors}, inspection.errors
    if server.name in BROKEN_HANDSHAKES:
        assert identity.banner == f"TLS handshake failed: {BROKEN_HANDSHAKES[server.name]}"


def test_tls_handshake_finished_just_in_time_then_silence_costs_no_extra_rounds() -> None:
    """A server that finishes each handshake just before the timeout and then says nothing: the
    handshake and the reply share one timeout, or every round of probes over TLS costs two."""

    async def main() -> float:
        quiet = hostile._stoppable(hostile.silent)
        inner = await asyncio.start_server(quiet, "127.0.0.1", 0, ssl=hostile.tls_context())
        late = hostile._stoppable(
            hostile.relay_to("127.0.0.1", inner.sockets[0].getsockname()[1], 0.9 * HOSTILE.timeout)
        )
        async with inner, await asyncio.start_server(late, "127.0.0.1", 0) as outer:
            started = time.monotonic()
            identity = await identify("127.0.0.1", outer.sockets[0].getsockname()[1], None, HOSTILE)
            assert identity.protocol == "unknown" and identity.tls is not None
            return time.monotonic() - started

    assert asyncio.run(main()) < 3 * HOSTILE.timeout + 1.0  # three rounds (plaintext, TLS, TLS again)


async def _deaf(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """After the handshake, reads nothing more: a close_notify is never answered."""
    writer.transport.pause_reading()
    await asyncio.sleep(60)


def _open_connections_to(port: int) -> int:
    """This machine's established TCP connections to 127.0.0.1:`port` (the client ends)."""
    lines = Path("/proc/net/tcp").read_text().splitlines()[1:]
    return sum(1 for line in lines if line.split()[2] == f"0100007F:{port:04X}" and line.split()[3] == "01")


def test_connections_to_a_tls_server_that_never_answers_close_notify_are_closed_at_once() -> None:
    """asyncio waits 30 s for the server's close_notify before it lets a TLS socket go: a network of such
    servers would hold every probe's connection that long, past any bound on open files."""

    async def main() -> tuple[int, int]:
        server = await asyncio.start_server(
            hostile._stoppable(_deaf), "127.0.0.1", 0, ssl=hostile.tls_context()
        )
        async with server:
            port = server.sockets[0].getsockname()[1]
            identity = await identify("127.0.0.1", port, None, FAST)
            assert identity.tls is not None
            await asyncio.sleep(0.5)
            after_identify = _open_connections_to(port)
            async with await BoundedStream.open(Endpoint("127.0.0.1", port, tls=True), FAST):
                pass
            await asyncio.sleep(0.5)
            return after_identify, _open_connections_to(port)

    assert asyncio.run(main()) == (0, 0)


BROKEN_HANDSHAKES = {
    "tls-garbage-after-hello": "WRONG_VERSION_NUMBER",
    "tls-alert-storm": "TOO_MANY_WARN_ALERTS",
    "tls-16mb-certificate": "EXCESSIVE_MESSAGE_SIZE",
    "tls-5mb-chain": "EXCESSIVE_MESSAGE_SIZE",
}
"""What OpenSSL (3.0, Debian 12) says of each broken handshake: a chain over its 100 KiB cap
(max_cert_list) is refused as soon as the Certificate message's length is read."""


# --- PostgreSQL and MySQL negotiate TLS inside their plaintext connection --------------------------------


def _negotiating(name: str, protocol: str, port: int, handler: hostile.Handler) -> hostile.HostileServer:
    return hostile.HostileServer(name, protocol, port, handler, ErrorKind.UNKNOWN)


NEGOTIATING = (
    _negotiating("pg-tls", "postgresql", 5432, hostile.postgres_tls(hostile.tls_context)),
    _negotiating("pg-tls-elsewhere", "postgresql", 5433, hostile.postgres_tls(hostile.tls_context)),
    _negotiating("pg-plain", "postgresql", 5432, hostile.postgres_tls(None)),
    _negotiating("pg-yes-then-silence", "postgresql", 5432, hostile.postgres_tls(None, hostile.silent)),
    _negotiating(
        "pg-yes-then-garbage", "postgresql", 5432, hostile.postgres_tls(None, hostile.sends(b"\xff" * 5000))
    ),
    _negotiating("mysql-tls", "mysql", 3306, hostile.mysql_tls(hostile.tls_context)),
    _negotiating("mysql-offer-then-silence", "mysql", 3306, hostile.mysql_tls(None)),
)
SPEAKS_TLS = {"pg-tls", "pg-tls-elsewhere", "mysql-tls"}


@pytest.fixture(scope="module")
def negotiating() -> Iterator[dict[str, Endpoint]]:
    with hostile.network(NEGOTIATING) as endpoints:
        yield endpoints


@pytest.mark.parametrize("server", NEGOTIATING, ids=lambda s: s.name)
def test_sql_servers_negotiate_tls_and_a_broken_negotiation_leaves_plaintext(
    server: hostile.HostileServer, negotiating: dict[str, Endpoint]
) -> None:
    endpoint = negotiating[server.name]
    started = time.monotonic()
    identity = asyncio.run(identify(endpoint.ip, endpoint.port, None, HOSTILE))
    assert time.monotonic() - started < HOSTILE_BOUND
    assert identity.protocol == server.protocol and identity.software is not None
    if server.name in SPEAKS_TLS:
        assert identity.tls is not None and identity.tls.cert is not None
        assert identity.tls.cert.names == ("endless.example.lab",)
    else:
        assert identity.tls is None


class _Negotiating(socketserver.BaseRequestHandler):
    """PostgreSQL (trust) or MariaDB that negotiate TLS, on blocking sockets: a driver's ClientHello right
    behind its request for TLS stays in the socket for the handshake. Each handshake's SNI goes into
    `server.seen`."""

    server: _NegotiatingServer

    def handle(self) -> None:
        connection: socket.socket = self.request
        with contextlib.suppress(OSError):
            if self.server.protocol == "mysql":
                connection.sendall(hostile.MARIADB_GREETING_TLS)
                header = connection.recv(4, socket.MSG_WAITALL)
                connection.recv(int.from_bytes(header[:3], "little"), socket.MSG_WAITALL)
            elif (first := connection.recv(8, socket.MSG_WAITALL)) == hostile._PG_SSL_REQUEST:
                connection.sendall(b"S")
            else:
                connection.recv(int.from_bytes(first[:4], "big") - 8, socket.MSG_WAITALL)
                connection.sendall(POSTGRES_TRUST)
                connection.recv(1)
                return
            with self.server.context.wrap_socket(connection, server_side=True) as secure:
                secure.recv(1)


class _NegotiatingServer(socketserver.ThreadingTCPServer):
    daemon_threads = True

    def __init__(self, protocol: str) -> None:
        super().__init__(("127.0.0.1", 0), _Negotiating)
        self.protocol, self.seen = protocol, list[str | None]()
        self.context = hostile.tls_context()
        self.context.sni_callback = lambda _ssl, name, _ctx: self.seen.append(name)  # type: ignore[assignment,misc]


@pytest.mark.parametrize("protocol", ["postgresql", "mysql"])
def test_the_name_scanned_goes_out_as_sni_from_the_sql_drivers_too(protocol: str) -> None:
    """The drivers (asyncpg, aiomysql) connect to the capped relay by its address: they must still name
    the service in their TLS handshake, as identification did (a router by SNI sends them elsewhere)."""
    with _NegotiatingServer(protocol) as server:
        threading.Thread(target=server.serve_forever, daemon=True).start()
        port = server.server_address[1]
        identity = asyncio.run(identify("127.0.0.1", port, None, HOSTILE, "db.example.lab"))
        assert identity.protocol == protocol and identity.tls is not None
        asyncio.run(inspect_service("127.0.0.1", port, identity, HOSTILE, "db.example.lab"))
        server.shutdown()
    assert len(server.seen) >= 2 and set(server.seen) == {"db.example.lab"}, server.seen


def test_postgresql_behind_a_tls_terminator_is_inspected() -> None:
    """A PostgreSQL that lets anyone in, behind a proxy that speaks TLS from the first byte (stunnel,
    haproxy): found over TLS, and inspected the same way (not with an SSLRequest the proxy cuts off)."""

    async def main() -> tuple[Identity, Inspection]:
        trust = hostile._stoppable(hostile.postgres(huge_row=False))
        async with await asyncio.start_server(trust, "127.0.0.1", 0, ssl=hostile.tls_context()) as server:
            port = server.sockets[0].getsockname()[1]
            identity = await identify("127.0.0.1", port, None, HOSTILE)
            return identity, await inspect_service("127.0.0.1", port, identity, HOSTILE)

    identity, inspection = asyncio.run(main())
    assert (identity.protocol, identity.auth) == ("postgresql", "none") and identity.tls is not None
    assert inspection.software is not None and inspection.software.version == "15.18"
    assert inspection.auth == "none"  # then its endless rows, read through the relay, meet the cap
    assert hostile.kinds(inspection) == [ErrorKind.OVER_LIMIT], inspection.errors


def _pg_hba(refuses_tls: bool) -> hostile.Handler:
    """A PostgreSQL with TLS whose pg_hba.conf has an entry for this address only over TLS (`hostssl`,
    trust), or none at all (`refuses_tls`): each refusal worded as PostgreSQL 15 words it."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError, asyncio.IncompleteReadError, ssl.SSLError):
            first, encryption = await reader.readexactly(8), "no encryption"
            if first == hostile._PG_SSL_REQUEST:
                writer.write(b"S")
                await writer.start_tls(hostile.tls_context())
                first, encryption = await reader.readexactly(8), "SSL encryption"
            await reader.readexactly(int.from_bytes(first[:4], "big") - 8)
            if encryption == "SSL encryption" and not refuses_tls:
                writer.write(POSTGRES_TRUST)
            else:
                who = 'host "127.0.0.1", user "postgres", database "postgres"'
                text = f"no pg_hba.conf entry for {who}, {encryption}"
                fields = b"SFATAL\0VFATAL\0C28000\0M" + text.encode() + b"\0\0"
                writer.write(b"E" + (len(fields) + 4).to_bytes(4, "big") + fields)
            await writer.drain()
            await reader.read()
        writer.close()

    return handle


@pytest.mark.parametrize(
    ("refuses_tls", "required"), [(False, True), (True, False)], ids=["hostssl", "no-entry"]
)
def test_postgresql_insists_on_tls_only_when_tls_gets_past_pg_hba(refuses_tls: bool, required: bool) -> None:
    """An address with no pg_hba.conf entry at all is refused with "..., no encryption" in plaintext too:
    that server refuses everyone from here, it does not insist on TLS."""

    async def main() -> tuple[Identity, dict[str, object]]:
        server = await asyncio.start_server(hostile._stoppable(_pg_hba(refuses_tls)), "127.0.0.1", 0)
        async with server:
            port = server.sockets[0].getsockname()[1]
            identity = await identify("127.0.0.1", port, None, HOSTILE)
            return identity, (await inspect_service("127.0.0.1", port, identity, HOSTILE)).details

    identity, details = asyncio.run(main())
    assert identity.protocol == "postgresql" and identity.tls is not None
    assert details["tls_required"] is required

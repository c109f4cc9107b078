"""Redis: identification from real reply bytes, read-only inspection of the lab, hostile servers."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import threading
import warnings
from collections.abc import Callable
from typing import Any

import hostile
import pytest

from leaksonar.lab import lab_digest
from leaksonar.model import ErrorKind, Identity, Inspection, Limits, Software
from leaksonar.protocols.base import Endpoint
from leaksonar.protocols.http import PROTOCOL as HTTP
from leaksonar.protocols.redis import PROTOCOL
from leaksonar.scan.examine import Examination

# Bytes captured from redis-server 7.0.15; for contrast, memcached 1.6.18, MariaDB 10.11 and an HTTP server.
PONG = b"+PONG\r\n"
NOAUTH = b"-NOAUTH Authentication required.\r\n"
HTTP_PROBE_REPLY = (
    b"-ERR wrong number of arguments for 'get' command\r\n"
    b"-ERR unknown command 'User-Agent:', with args beginning with: 'leaksonar/0.1' "
    b"'(+https://github.com/leaksonar/leaksonar#responsible-use)' \r\n"
    b"-ERR unknown command 'Accept:', with args beginning with: '*/*' \r\n"
)
MEMCACHED_PROBE_REPLY = b"-ERR unknown command 'version', with args beginning with: \r\n"
NOT_REDIS = {
    "empty": b"",
    "http": b"HTTP/1.1 400 Bad Request\r\nServer: nginx/1.22.1\r\nContent-Type: text/html\r\n\r\n",
    "mysql": (
        b"d\x00\x00\x00\n5.5.5-10.11.19-MariaDB-0+deb12u1\x00\x03\x00\x00\x00\\.lVKVNc\x00\xfe\xf7-\x02\x00"
        b"\xff\x81\x15\x00\x00\x00\x00\x00\x00\x1d\x00\x00\x00*DU`dRQ}Bp.3\x00mysql_native_password\x00"
    ),
    "memcached": b"VERSION 1.6.18\r\n",
    "memcached-errors": b"ERROR\r\nERROR\r\nERROR\r\n",
    "other-resp-error": b"-ERR something else\r\n",
}
READ_COMMANDS = {b"INFO", b"DBSIZE", b"SELECT", b"SCAN", b"TYPE", b"GETRANGE", b"HSCAN", b"LRANGE", b"SSCAN"}
READ_COMMANDS |= {b"ZRANGE", b"XRANGE"}
FAST = Limits(timeout=1.0, service_budget=5.0)
LabService = Callable[[str], dict[str, Any]]


def identified(reply: bytes) -> Identity:
    identity = PROTOCOL.match(reply)
    assert identity is not None, reply
    return identity


def inspect(ip: str, port: int, identity: Identity, limits: Limits) -> Inspection:
    return asyncio.run(PROTOCOL.inspect(Endpoint(ip, port), identity, limits))


# --- match ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("reply", "auth"),
    [
        (PONG, "unknown"),
        (NOAUTH, "required"),
        (HTTP_PROBE_REPLY, "unknown"),
        (MEMCACHED_PROBE_REPLY, "unknown"),
    ],
)
def test_match_claims_real_redis_replies(reply: bytes, auth: str) -> None:
    identity = identified(reply)
    assert (identity.protocol, identity.software, identity.auth) == ("redis", Software("redis"), auth)
    assert identity.banner == reply.split(b"\r\n")[0].decode()


@pytest.mark.parametrize("name", NOT_REDIS)
def test_match_rejects_other_protocols(name: str) -> None:
    assert PROTOCOL.match(NOT_REDIS[name]) is None


def test_probe_is_a_resp_ping() -> None:
    assert PROTOCOL.probe == b"*1\r\n$4\r\nPING\r\n"


@pytest.mark.parametrize(("name", "ping_auth"), [("redis-open", "unknown"), ("redis-auth", "required")])
def test_match_on_live_replies_to_both_probes(lab_service: LabService, name: str, ping_auth: str) -> None:
    entry = lab_service(name)

    async def first_reply(probe: bytes) -> bytes:
        reader, writer = await asyncio.open_connection(entry["ip"], entry["port"])
        writer.write(probe)
        reply = await asyncio.wait_for(reader.read(4096), 3)
        writer.close()
        return reply

    assert identified(asyncio.run(first_reply(PROTOCOL.probe))).auth == ping_auth
    assert identified(asyncio.run(first_reply(HTTP.probe))).auth == "unknown"  # arity is checked before auth


# --- the lab --------------------------------------------------------------------------------------


def test_open_redis_is_exposed_with_every_database_counted(lab_service: LabService) -> None:
    entry = lab_service("redis-open")
    limits = Limits(value_chars=16)
    before = lab_digest(entry)
    found = inspect(entry["ip"], entry["port"], identified(PONG), limits)
    assert lab_digest(entry) == before

    assert (found.protocol, found.auth, found.exposed, found.errors) == ("redis", "none", True, ())
    assert found.software is not None
    assert {"name": found.software.name, "version": found.software.version} == entry["software"]
    expected = {(db["name"], c["name"]): c["rows"] for db in entry["databases"] for c in db["collections"]}
    assert {(c.database, c.name): c.rows for c in found.collections} == expected
    assert found.rows == sum(expected.values())
    assert found.databases == len(entry["databases"])
    assert found.size_bytes and found.size_bytes > 0
    assert {s.collection for s in found.samples} == {name for _, name in expected}

    documents = [doc for sample in found.samples for doc in sample.documents]
    assert 0 < len(documents) <= limits.sample_rows * 4 * len(expected)
    assert all(doc["type"] in ("string", "hash", "list") for doc in documents)
    lengths = [len(s) for doc in documents for s in hostile.strings(doc["value"])]
    assert max(lengths) == limits.value_chars  # long values were cut, none is longer
    hashes = [doc["value"] for doc in documents if doc["type"] == "hash"]
    db0 = next(c for c in found.collections if c.name == "db0")
    assert hashes and set(db0.fields) >= set(hashes[0])


def test_protected_redis_is_not_exposed_and_shows_nothing(lab_service: LabService) -> None:
    entry = lab_service("redis-auth")
    before = lab_digest(entry)
    found = inspect(entry["ip"], entry["port"], identified(NOAUTH), Limits())
    assert lab_digest(entry) == before
    assert (found.auth, found.exposed, found.collections, found.samples, found.rows) == (
        "required",
        False,
        (),
        (),
        None,
    )


# --- scripted and hostile servers -----------------------------------------------------------------


async def read_command(reader: asyncio.StreamReader) -> list[bytes] | None:
    """One RESP command array from the client; None at EOF."""
    header = await reader.readline()
    if not header:
        return None
    args = []
    for _ in range(int(header[1:])):
        size = int((await reader.readline())[1:])
        args.append((await reader.readexactly(size + 2))[:-2])
    return args


def bulk(data: bytes) -> bytes:
    return b"$%d\r\n%s\r\n" % (len(data), data)


def array(*items: bytes) -> bytes:
    return b"*%d\r\n" % len(items) + b"".join(items)


KEYSPACE = {
    b"person": (
        b"string",
        bulk(b'{"name": "Li Lei", "phone": "13800000000", "note": "' + b"n" * 400 + b'"}'),
    ),
    b"card": (b"hash", array(bulk(b"0"), array(bulk(b"email"), bulk(b"li@example.com")))),
    b"queue": (b"list", array(bulk(b"q" * 500), bulk(b'{"to": "13800000000"}'))),
    b"tags": (b"set", array(bulk(b"0"), array(bulk(b"vip")))),
    b"rank": (b"zset", array(bulk(b"li"), bulk(b"1.5"))),
    b"log": (b"stream", array(array(bulk(b"1-0"), array(bulk(b"event"), bulk(b"login"))))),
}
INFO = (
    b"# Server\r\nredis_version:7.0.15\r\nredis_mode:standalone\r\n# Memory\r\nused_memory:900000\r\n"
    b"used_memory_dataset:12345\r\n# Keyspace\r\ndb0:keys=6,expires=0,avg_ttl=0\r\n"
)


def fake_redis(command: list[bytes]) -> bytes:
    """A well-behaved server holding `KEYSPACE` in db 0."""
    name = command[0].upper()
    if name == b"INFO":
        return bulk(INFO)
    if name == b"SELECT":
        return b"+OK\r\n"
    if name == b"SCAN":
        return array(bulk(b"0"), array(*(bulk(k) for k in KEYSPACE)))
    kind, value = KEYSPACE[command[1]]
    return b"+%s\r\n" % kind if name == b"TYPE" else value


def scripted(
    replies: Callable[[list[bytes]], bytes], seen: list[bytes] | None = None, delay: float = 0.0
) -> hostile.Handler:
    """A connection handler answering each RESP command with `replies(command)` (b"": hang up)."""
    return hostile.scripted(read_command, replies, lambda command: command[0].upper(), seen, delay)


def run(handler: hostile.Handler, limits: Limits = FAST) -> tuple[Inspection, float]:
    return hostile.run(PROTOCOL, handler, Identity("redis"), limits)


def databases(held: dict[int, dict[bytes, bytes]]) -> Callable[[list[bytes]], bytes]:
    """A server holding string keys in several databases, answering on one connection."""
    selected = [0]
    keyspace = "".join(f"db{db}:keys={len(keys)},expires=0\r\n" for db, keys in held.items() if keys)

    def reply(command: list[bytes]) -> bytes:
        name = command[0].upper()
        if name == b"INFO":
            return bulk(b"# Server\r\nredis_version:7.0.15\r\n# Keyspace\r\n" + keyspace.encode())
        if name == b"SELECT":
            selected[0] = int(command[1])
            return b"+OK\r\n"
        keys = held.get(selected[0], {})
        if name == b"SCAN":
            return array(bulk(b"0"), array(*map(bulk, keys)))
        return b"+string\r\n" if name == b"TYPE" else bulk(keys[command[1]])

    return reply


@pytest.mark.parametrize(
    "held",
    [{0: {b"zero": b"a"}, 2: {b"two": b"b"}}, {0: {}, 2: {b"two": b"b"}}],
    ids=["db0-and-db2", "db2-only"],
)
def test_each_database_is_sampled_from_its_own_keys(held: dict[int, dict[bytes, bytes]]) -> None:
    """Database 0's first SCAN page goes out with INFO; another database's keys are never taken for it."""
    seen: list[bytes] = []
    found, _ = run(scripted(databases(held), seen))
    sampled = {s.collection: [doc["key"] for doc in s.documents] for s in found.samples}
    assert sampled == {f"db{db}": [k.decode() for k in keys] for db, keys in held.items() if keys}
    assert seen[:3] == [b"INFO", b"SELECT", b"SCAN"] and found.errors == ()


def test_every_type_is_sampled_with_read_commands_only() -> None:
    seen: list[bytes] = []
    found, _ = run(scripted(fake_redis, seen), Limits(value_chars=32))
    assert set(seen) <= READ_COMMANDS
    assert (found.auth, found.rows, found.databases, found.size_bytes, found.errors) == (
        "none",
        6,
        1,
        12345,
        (),
    )
    assert found.collections[0].fields == ("email", "event", "name", "note", "phone", "to")
    values = {doc["key"]: doc["value"] for doc in found.samples[0].documents}
    assert values == {
        "person": {"name": "Li Lei", "phone": "13800000000", "note": "n" * 32},
        "card": {"email": "li@example.com"},
        "queue": ["q" * 32, {"to": "13800000000"}],
        "tags": ["vip"],
        "rank": [["li", "1.5"]],
        "log": [{"event": "login"}],
    }


@pytest.mark.parametrize("locked", [False, True], ids=["open", "password"])
def test_scan_inspects_over_the_connection_ping_identified(locked: bool) -> None:
    """On Redis's own port the first probe is PING, and its connection carries the inspection too: one
    connection per service."""
    seen: list[bytes] = []

    def reply(command: list[bytes]) -> bytes:
        return NOAUTH if locked else PONG if command[0].upper() == b"PING" else fake_redis(command)

    serve = scripted(reply, seen)
    connections: list[None] = []

    async def counted(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connections.append(None)
        await serve(reader, writer)

    server = hostile.HostileServer("redis", "redis", 6379, counted, ErrorKind.UNKNOWN)
    with hostile.network([server]) as addresses:
        examiner = Examination("test", FAST, 1).open({})
        finding = asyncio.run(examiner.examine(addresses["redis"].ip, 6379, None))
    assert (finding.protocol, finding.auth, finding.errors) == ("redis", "required" if locked else "none", ())
    fields = ("email", "event", "name", "note", "phone", "to")
    assert [c.fields for c in finding.collections] == ([] if locked else [fields])
    assert (len(connections), seen[:2]) == (1, [b"PING", b"INFO"])


def examined(handler: hostile.Handler) -> Any:
    """The finding a scan makes of the server `handler` runs on Redis's own port (PING probes first)."""
    server = hostile.HostileServer("redis", "redis", 6379, handler, ErrorKind.UNKNOWN)
    with hostile.network([server]) as addresses:
        return asyncio.run(Examination("test", FAST, 1).open({}).examine(addresses["redis"].ip, 6379, None))


def answering_ping(ping: Callable[[asyncio.StreamWriter], Any]) -> hostile.Handler:
    """A server holding `KEYSPACE` that answers PING with `ping(writer)` (False: then hangs up) and every
    other command as `fake_redis` does, or with NOAUTH where PING got one."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError, asyncio.IncompleteReadError):
            while (command := await read_command(reader)) is not None:
                if command[0].upper() == b"PING":
                    if await ping(writer) is False:
                        break
                    continue
                writer.write(fake_redis(command))
                await writer.drain()
        writer.close()

    return handle


FIELDS = ("email", "event", "name", "note", "phone", "to")


def test_noauth_split_across_segments_is_not_read_as_the_reply_to_info() -> None:
    """PING's `-NOAUTH ` is recognised before its line is whole: the rest of the line must not be taken
    for INFO's reply on a kept connection."""

    async def slow_noauth(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError, asyncio.IncompleteReadError):
            while await read_command(reader) is not None:
                writer.write(NOAUTH[:8])
                await writer.drain()
                await asyncio.sleep(0.05)
                writer.write(NOAUTH[8:])
        writer.close()

    finding = examined(slow_noauth)
    assert (finding.protocol, finding.auth, finding.errors) == ("redis", "required", ())


def test_bytes_after_pong_are_not_read_as_the_reply_to_info() -> None:
    """A PING answered with more than its one line (past what identification reads): those bytes are
    no reply to INFO, and the inspection still sees the server as it is."""

    async def chatty(writer: asyncio.StreamWriter) -> None:
        writer.write(PONG * 1_000)
        await writer.drain()

    finding = examined(answering_ping(chatty))
    assert (finding.protocol, finding.auth, finding.errors) == ("redis", "none", ())
    assert [c.fields for c in finding.collections] == [FIELDS]


@pytest.mark.parametrize("hang_up", ["fin", "reset"])
def test_server_that_hangs_up_after_ping_is_inspected_on_a_new_connection(hang_up: str) -> None:
    """The kept connection is only a shortcut: a server that closes it after PING is inspected as it
    was before the hand-over, over a connection of its own."""

    async def pong_and_close(writer: asyncio.StreamWriter) -> bool:
        if hang_up == "reset":
            await hostile.send(writer, hostile.Reset(PONG))
        else:
            writer.write(PONG)
            await writer.drain()
        return False

    finding = examined(answering_ping(pong_and_close))
    assert (finding.protocol, finding.auth, finding.errors) == ("redis", "none", ())
    assert [c.fields for c in finding.collections] == [FIELDS]


PROTECTED = (
    b"-DENIED Redis is running in protected mode because protected mode is enabled and no password is set "
    b"for the default user. In this mode connections are only accepted from the loopback interface.\r\n"
)
"""The head of what redis-server writes, unasked, to a client from elsewhere before it hangs up."""


def test_protected_mode_that_hangs_up_after_its_answer_is_auth_required() -> None:
    """Redis in protected mode answers every connection with DENIED and closes it: the PING connection
    is gone, and the inspection still learns that the server wants a password."""

    async def protected(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(PROTECTED)
        await writer.drain()
        writer.close()

    finding = examined(protected)
    assert (finding.protocol, finding.auth, finding.errors) == ("redis", "required", ())


@pytest.mark.parametrize("end", ["cancelled", "budget", "hostile-info"])
def test_kept_connection_is_closed_whatever_ends_the_inspection(end: str) -> None:
    """The connection identification hands over is closed when the scan cancels the inspection at its
    deadline, when the service budget runs out and when the reply to INFO is hostile."""
    open_connections: list[int] = [0]
    info_asked = threading.Event()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        open_connections[0] += 1
        with contextlib.suppress(ConnectionError, asyncio.IncompleteReadError):
            while (command := await read_command(reader)) is not None:
                if command[0].upper() == b"PING":
                    writer.write(PONG)
                elif end == "hostile-info":
                    writer.write(b"$9999999999\r\n")
                else:
                    info_asked.set()  # and no answer: the client must hang up
        open_connections[0] -= 1
        writer.close()

    limits = Limits(timeout=5.0, service_budget=0.5 if end == "budget" else 5.0)
    server = hostile.HostileServer("redis", "redis", 6379, handle, ErrorKind.UNKNOWN)

    async def examine(ip: str) -> None:
        task = asyncio.create_task(Examination("test", limits, 1).open({}).examine(ip, 6379, None))
        if end == "cancelled":
            await asyncio.to_thread(info_asked.wait, 5)
            task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        for _ in range(100):  # the server sees the hang-up a moment later
            if not open_connections[0]:
                break
            await asyncio.sleep(0.01)

    with hostile.network([server]) as addresses, warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ResourceWarning)  # a connection left open, closed when collected
        asyncio.run(examine(addresses["redis"].ip))
        gc.collect()
        assert open_connections == [0]
    assert [str(w.message) for w in caught if w.category is ResourceWarning] == []


HOSTILE = {
    "huge bulk": (b"$9999999999\r\n", ErrorKind.OVER_LIMIT),
    "huge array": (b"*999999999\r\n", ErrorKind.OVER_LIMIT),
    "many small elements": (b"*9000\r\n" + b"*1\r\n:1\r\n" * 9000, ErrorKind.OVER_LIMIT),
    "endless line": (b"+" + b"a" * 200_000, ErrorKind.OVER_LIMIT),
    "garbage": (b"?what\r\n", ErrorKind.PROTOCOL_ERROR),
    "hang-up": (b"", ErrorKind.REFUSED),
}


@pytest.mark.parametrize("name", HOSTILE)
def test_hostile_reply_to_info_is_an_error_not_a_crash(name: str) -> None:
    reply, kind = HOSTILE[name]
    found, elapsed = run(scripted(lambda _: reply))
    assert elapsed < 2.5
    assert (found.auth, found.collections, found.samples) == ("unknown", (), ())
    assert hostile.kinds(found) == [kind]


def test_announced_huge_value_names_the_cap() -> None:
    found, elapsed = run(scripted(lambda _: b"$9999999999\r\n"))
    assert elapsed < 1.0
    assert hostile.kinds(found) == [ErrorKind.OVER_LIMIT]
    assert (
        "9999999999" in found.errors[0].message
        and f"{Limits().max_bytes}-byte cap" in found.errors[0].message
    )


def test_huge_value_while_sampling_keeps_what_was_learned() -> None:
    def replies(command: list[bytes]) -> bytes:
        return b"$9999999999\r\n" if command[0].upper() == b"GETRANGE" else fake_redis(command)

    found, elapsed = run(scripted(replies))
    assert elapsed < 1.0
    assert [(c.name, c.rows) for c in found.collections] == [("db0", 6)]
    assert (found.auth, found.rows, found.samples) == ("none", 6, ())
    assert hostile.kinds(found) == [ErrorKind.OVER_LIMIT]


def test_pipelined_replies_that_stop_midway_wait_one_read_timeout() -> None:
    """The value replies come in one burst that ends inside the last one (XRANGE) and then nothing: the
    replies already received are read, the missing rest waits one read timeout, the counts stay."""

    def replies(command: list[bytes]) -> bytes:
        return b"*1\r\n*2\r\n$3\r\n1-0\r\n" if command[0].upper() == b"XRANGE" else fake_redis(command)

    found, elapsed = run(scripted(replies))
    assert FAST.timeout <= elapsed < FAST.timeout + 1.0
    assert [(c.name, c.rows) for c in found.collections] == [("db0", 6)]
    assert (found.auth, found.rows, found.samples) == ("none", 6, ())
    assert [e.message for e in found.errors] == ["Sampling db0 failed: no answer within 1 s."]


def test_trickled_reply_is_stopped_by_the_service_budget() -> None:
    """An endless array whose elements each arrive well within the read timeout: only the service budget
    can end it, and it does."""
    limits = Limits(timeout=1.0, service_budget=2.0)

    async def trickle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_command(reader)
        writer.write(b"*9000\r\n")
        with contextlib.suppress(ConnectionError):
            for _ in range(200):
                writer.write(b":1\r\n")
                await writer.drain()
                await asyncio.sleep(0.1)
        writer.close()

    found, elapsed = run(trickle, limits)
    assert limits.service_budget <= elapsed < limits.service_budget + 1.0
    assert (found.auth, found.collections) == ("unknown", ())
    assert [e.message for e in found.errors] == ["Inspection stopped: the 2 s budget ran out."]


def test_hostile_info_fields_are_read_within_bounds() -> None:
    """INFO in odd order, with a field given twice, a lone CR inside a value, values of 100 KB and key
    counts that are no count: the last of a field wins, and what reaches the finding stays short."""
    hostile_info = (
        b"db0:keys=3,expires=0\r\n# Server\r\nredis_version:1.0\r\nredis_version:7.2.4\r\n"
        b"role:master\rslave\r\nredis_mode:" + b"m" * 100_000 + b"\r\nserver_name:redis\r\n"
        b"used_memory:" + b"9" * 50 + b"\r\ndb1:keys=99999999999999999999999,expires=0\r\ndb2:keys=-5\r\n"
        b"valkey_version:" + b"8" * 100_000 + b"\r\n"
    )

    def replies(command: list[bytes]) -> bytes:
        name = command[0].upper()
        if name == b"INFO":
            return bulk(hostile_info)
        return b"+OK\r\n" if name == b"SELECT" else array(bulk(b"0"), array())

    found, _ = run(scripted(replies))
    assert (found.auth, found.errors, found.size_bytes) == ("none", (), None)
    assert found.software == Software("redis", "7.2.4")
    assert found.details == {"redis_mode": "m" * FAST.value_chars, "role": "master"}
    assert [(c.name, c.rows) for c in found.collections] == [("db0", 3), ("db1", None), ("db2", None)]


def test_huge_version_of_a_fork_is_cut() -> None:
    info = b"server_name:valkey\r\nvalkey_version:" + b"8" * 100_000 + b"\r\nredis_version:7.2.4\r\n"

    def replies(command: list[bytes]) -> bytes:
        return bulk(info) if command[0].upper() == b"INFO" else fake_redis(command)

    found, _ = run(scripted(replies))
    assert found.software == Software("valkey", "8" * FAST.value_chars)


@pytest.mark.parametrize("found_on", [2, 4, None], ids=["second-page", "last-page", "never"])
def test_empty_scan_pages_with_a_cursor_are_followed_a_few_pages(found_on: int | None) -> None:
    """A sparse keyspace (or a hostile server) answers the first SCAN pages with no keys and a cursor
    that is not 0: sampling follows a few more pages, and no more, whatever the cursor says."""
    scans: list[list[bytes]] = []

    def replies(command: list[bytes]) -> bytes:
        if command[0].upper() != b"SCAN":
            return fake_redis(command)
        scans.append(command[1:])
        keys = [bulk(k) for k in KEYSPACE] if len(scans) == found_on else []
        return array(bulk(b"17"), array(*keys))

    found, elapsed = run(scripted(replies))
    assert elapsed < 1.0
    assert [c[:1] + c[2:] for c in scans] == [[b"0", b"20"], *[[b"17", b"100"]] * 3]
    assert [(c.name, c.rows) for c in found.collections] == [("db0", 6)]
    assert (found.auth, found.errors) == ("none", ())
    assert len([d for s in found.samples for d in s.documents]) == (0 if found_on is None else len(KEYSPACE))


def test_renamed_info_falls_back_to_dbsize() -> None:
    def replies(command: list[bytes]) -> bytes:
        if command[0].upper() == b"INFO":
            return b"-ERR unknown command 'INFO', with args beginning with: \r\n"
        return b":6\r\n" if command[0].upper() == b"DBSIZE" else fake_redis(command)

    found, _ = run(scripted(replies))
    assert (found.auth, found.rows, found.databases) == ("none", 6, 1)
    assert [(c.name, c.rows) for c in found.collections] == [("db0", 6)]
    assert hostile.kinds(found) == [ErrorKind.COMMAND_REFUSED]


def test_acl_without_permission_counts_as_auth_required() -> None:
    found, _ = run(
        scripted(lambda _: b"-NOPERM User default has no permissions to run the 'info' command\r\n")
    )
    assert (found.auth, found.collections, found.errors) == ("required", (), ())


def test_fork_is_named_by_its_server_name() -> None:
    info = b"# Server\r\nredis_version:7.2.4\r\nserver_name:valkey\r\nvalkey_version:8.0.1\r\n"
    found, _ = run(scripted(lambda c: bulk(info) if c[0].upper() == b"INFO" else fake_redis(c)))
    assert found.software is not None and (found.software.name, found.software.version) == ("valkey", "8.0.1")


def test_closed_port_is_reported() -> None:
    async def closed_port() -> Inspection:
        server = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        server.close()
        await server.wait_closed()
        return await PROTOCOL.inspect(Endpoint("127.0.0.1", port), Identity("redis"), FAST)

    assert hostile.kinds(asyncio.run(closed_port())) == [ErrorKind.REFUSED]

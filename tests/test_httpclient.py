"""The inspection's HTTP/1.1 client (protocols/httpclient.py) against scripted servers on loopback: what a
hostile server could exploit ends in the right error kind within the limits, and keep-alive, requests and
replies behave as the protocol modules rely on."""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from collections.abc import Awaitable, Callable

import hostile
import pytest
from replies import http_reply

from leaksonar.model import ErrorKind, Identity, Limits
from leaksonar.protocols import BY_NAME
from leaksonar.protocols.base import Endpoint, ProtocolError
from leaksonar.protocols.httpclient import Response, bounded_client
from leaksonar.protocols.httpwire import MAX_INTERIM
from leaksonar.protocols.kit import kind_of

LIMITS = Limits(timeout=1.0, service_budget=3.0, max_bytes=64 * 1024)
SLACK = 1.0
OK = http_reply(200, {"Content-Type": "text/html"}, b"<title>fine</title>")


def answering(reply: Callable[[], hostile.Reply], *, early: bool = False) -> hostile.Handler:
    """A server answering each request with `reply()`; `early`: the first answer goes out on connect,
    before the request is read."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if early and not await hostile.send(writer, reply()):
            return
        await hostile.scripted(hostile.read_http, lambda _: reply(), lambda r: r[1].encode())(reader, writer)

    return handle


def answers_once(data: bytes) -> hostile.Handler:
    """A server that reads one request, sends `data` and hangs up."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await hostile.read_http(reader)
        await hostile.send(writer, data)
        writer.close()

    return handle


CHUNKED = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
HOSTILE: dict[str, tuple[hostile.Handler, ErrorKind]] = {
    "endless headers": (
        answering(
            lambda: itertools.chain([b"HTTP/1.1 200 OK\r\n"], hostile.repeat(b"X: " + b"a" * 999 + b"\r\n"))
        ),
        ErrorKind.OVER_LIMIT,
    ),
    "one endless header line": (
        answering(lambda: itertools.chain([b"HTTP/1.1 200 OK\r\nX: "], hostile.repeat(b"a" * 4096))),
        ErrorKind.OVER_LIMIT,
    ),
    "chunked body past the cap": (
        answering(lambda: itertools.chain([CHUNKED], hostile.repeat(b"400\r\n" + b"a" * 1024 + b"\r\n"))),
        ErrorKind.OVER_LIMIT,
    ),
    "endless chunk size line": (
        answering(lambda: itertools.chain([CHUNKED + b"1;x="], hostile.repeat(b"a" * 4096))),
        ErrorKind.OVER_LIMIT,
    ),
    "bad chunk size": (answering(lambda: CHUNKED + b"zz\r\nabc\r\n0\r\n\r\n"), ErrorKind.PROTOCOL_ERROR),
    "chunk longer than its size": (
        answering(lambda: CHUNKED + b"2\r\nabc\r\n0\r\n\r\n"),
        ErrorKind.PROTOCOL_ERROR,
    ),
    "endless trailer fields": (
        answering(
            lambda: itertools.chain([CHUNKED + b"0\r\n"], hostile.repeat(b"X: " + b"a" * 999 + b"\r\n"))
        ),
        ErrorKind.OVER_LIMIT,
    ),
    "conflicting lengths": (
        answering(lambda: b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd"),
        ErrorKind.PROTOCOL_ERROR,
    ),
    "a transfer coding other than chunked": (
        answering(lambda: b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n"),
        ErrorKind.PROTOCOL_ERROR,
    ),
    "a header field without a colon": (
        answering(lambda: b"HTTP/1.1 200 OK\r\nContent-Length 3\r\n\r\nabc"),
        ErrorKind.PROTOCOL_ERROR,
    ),
    "not HTTP": (answering(lambda: b"SSH-2.0-OpenSSH_9.6\r\n\r\n"), ErrorKind.PROTOCOL_ERROR),
    "a status under 100": (answering(lambda: b"HTTP/1.1 099 X\r\n\r\n" + OK), ErrorKind.PROTOCOL_ERROR),
    "NUL in a header value": (
        answering(lambda: b"HTTP/1.1 200 OK\r\nX-A: a\0b\r\nContent-Length: 2\r\n\r\nok"),
        ErrorKind.PROTOCOL_ERROR,
    ),
    "a length padded with a vertical tab": (
        answering(lambda: b"HTTP/1.1 200 OK\r\nContent-Length: \x0b2\r\n\r\nok"),
        ErrorKind.PROTOCOL_ERROR,
    ),
    "100-continue flood": (  # in writes of 100 replies: one write each kept a loaded machine's server
        # busy in its own syscalls for the whole timeout before the client read a byte
        answering(lambda: hostile.repeat(b"HTTP/1.1 100 Continue\r\n\r\n" * 100)),
        ErrorKind.OVER_LIMIT,
    ),
    "announced body over the cap": (
        answering(lambda: b"HTTP/1.1 200 OK\r\nContent-Length: 99999999999\r\n\r\nabc"),
        ErrorKind.OVER_LIMIT,
    ),
    "close-delimited body past the cap": (
        answering(lambda: itertools.chain([b"HTTP/1.0 200 OK\r\n\r\n"], hostile.repeat(b"a" * 4096))),
        ErrorKind.OVER_LIMIT,
    ),
    "hang-up mid-body": (
        answers_once(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nabc"),
        ErrorKind.PROTOCOL_ERROR,
    ),
    "hang-up mid-chunk": (answers_once(CHUNKED + b"10\r\nabc"), ErrorKind.PROTOCOL_ERROR),
    "unasked protocol switch": (
        answering(lambda: b"HTTP/1.1 101 Switching\r\nUpgrade: h2c\r\n\r\n"),
        ErrorKind.PROTOCOL_ERROR,
    ),
    "a stall mid-body": (
        answering(lambda: b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nabc"),
        ErrorKind.TIMEOUT,
    ),
    "no answer, a hang-up": (answers_once(b""), ErrorKind.PROTOCOL_ERROR),
    "a reset": (answering(lambda: hostile.Reset(b"")), ErrorKind.REFUSED),
}


@pytest.mark.parametrize("name", HOSTILE)
def test_hostile_reply_ends_in_its_error_kind_in_time(name: str) -> None:
    handler, kind = HOSTILE[name]
    found, elapsed = hostile.run(BY_NAME["http"], handler, Identity("http"), LIMITS)
    assert hostile.kinds(found) == [kind], found.errors
    assert elapsed < LIMITS.timeout + SLACK


def test_interim_replies_before_the_answer_are_skipped() -> None:
    interim = b"HTTP/1.1 100 Continue\r\n\r\n" * MAX_INTERIM
    found, _ = hostile.run(BY_NAME["http"], answering(lambda: interim + OK), Identity("http"), LIMITS)
    assert (found.errors, found.details["title"]) == ((), "fine")


def test_chunked_answer_with_trailers_is_joined() -> None:
    chunked = CHUNKED + b"6\r\n<title\r\nd;ext=1\r\n>fine</title>\r\n0\r\nX-Trailer: t\r\n\r\n"
    found, _ = hostile.run(BY_NAME["http"], answering(lambda: chunked), Identity("http"), LIMITS)
    assert (found.errors, found.details["title"]) == ((), "fine")


def test_folded_and_repeated_header_fields_are_read() -> None:
    reply = b"HTTP/1.1 200 OK\r\nX-A: a\r\n\t b\r\nX-B: 1\r\nx-b: 2\r\nContent-Length: 2\r\n\r\nok"
    (response,) = asyncio.run(served(answering(lambda: reply), sends("GET")))
    assert (response.headers.get("x-a"), response.headers.get("X-B"), response.body) == ("a b", "1, 2", b"ok")


def test_answer_sent_before_the_request_is_taken_within_the_limits() -> None:
    found, elapsed = hostile.run(BY_NAME["http"], answering(lambda: OK, early=True), Identity("http"), LIMITS)
    assert (found.errors, found.details["title"]) == ((), "fine")
    assert elapsed < LIMITS.timeout + SLACK


Exchange = Callable[[Endpoint], Awaitable[list[Response]]]


async def served(handler: hostile.Handler, exchange: Exchange) -> list[Response]:
    server = await asyncio.start_server(handler, "127.0.0.1", 0)
    async with server:
        return await exchange(Endpoint("127.0.0.1", server.sockets[0].getsockname()[1]))


class Recorder:
    """A server that notes each connection and request and answers OK; `answers`: how many requests of a
    connection it answers before it hangs up on the next one, unanswered (None: all)."""

    def __init__(self, answers: int | None = None) -> None:
        self.answers = answers
        self.connections = 0
        self.requests: list[bytes] = []

    async def __call__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        for answered in itertools.count():
            try:
                head = await reader.readuntil(b"\r\n\r\n")
            except asyncio.IncompleteReadError:
                break
            fields = (line.partition(b":") for line in head.split(b"\r\n"))
            length = next((int(value) for name, _, value in fields if name.lower() == b"content-length"), 0)
            self.requests.append(head + await reader.readexactly(length))
            if answered == self.answers:
                break
            writer.write(OK)
            await writer.drain()
        writer.close()


def sends(*methods: str) -> Exchange:
    """Requests `methods` in turn on one client, to paths /0, /1 ..."""

    async def exchange(endpoint: Endpoint) -> list[Response]:
        async with bounded_client(endpoint, LIMITS) as client:
            return [
                await client.request(method, f"{endpoint.url}/{n}", LIMITS)
                for n, method in enumerate(methods)
            ]

    return exchange


def test_one_connection_serves_the_inspection() -> None:
    server = Recorder()
    responses = asyncio.run(served(server, sends("GET", "GET", "POST")))
    assert [r.status for r in responses] == [200, 200, 200]
    assert server.connections == 1 and len(server.requests) == 3


def test_get_is_sent_again_when_the_kept_connection_was_closed() -> None:
    """The server hangs up on the second request of each connection: a GET goes out again on a new one."""
    server = Recorder(answers=1)
    responses = asyncio.run(served(server, sends("GET", "GET", "GET")))
    assert [r.body for r in responses] == [b"<title>fine</title>"] * 3
    assert server.connections == 3
    assert [r.split(b" ")[1] for r in server.requests] == [b"/0", b"/1", b"/1", b"/2", b"/2"]


def test_kept_connection_reset_by_the_server_is_not_used() -> None:
    """The server answers, then resets the idle connection: the next request, a POST, goes on a new one."""
    server = Recorder()

    async def answer_then_reset(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if server.connections:
            await server(reader, writer)
            return
        server.connections += 1
        server.requests.append(await reader.readuntil(b"\r\n\r\n"))
        await hostile.send(writer, OK)
        await asyncio.sleep(0.05)
        await hostile.send(writer, hostile.Reset(b""))

    async def exchange(endpoint: Endpoint) -> list[Response]:
        async with bounded_client(endpoint, LIMITS) as client:
            first = await client.request("GET", endpoint.url + "/", LIMITS)
            await asyncio.sleep(0.3)
            return [first, await client.request("POST", endpoint.url + "/q", LIMITS)]

    assert [r.status for r in asyncio.run(served(answer_then_reset, exchange))] == [200, 200]
    assert server.connections == 2 and [r.split(b" ")[0] for r in server.requests] == [b"GET", b"POST"]


def test_post_is_never_sent_twice() -> None:
    server = Recorder(answers=1)
    with pytest.raises(ProtocolError) as failed:
        asyncio.run(served(server, sends("GET", "POST")))
    assert kind_of(failed.value) == ErrorKind.PROTOCOL_ERROR
    assert [r.split(b" ")[0] for r in server.requests] == [b"GET", b"POST"]


def test_request_carries_host_params_and_json_body() -> None:
    server = Recorder()

    async def exchange(endpoint: Endpoint) -> list[Response]:
        named = Endpoint(endpoint.ip, endpoint.port, hostname="db.example")
        async with bounded_client(named, LIMITS) as client:
            params = {"path": "/a b/_search?x=1", "method": "GET"}
            url = named.url + "/api/console/proxy"
            return [await client.request("POST", url, LIMITS, params=params, payload={"k": "é"})]

    started = time.monotonic()
    (response,) = asyncio.run(served(server, exchange))
    assert response.status == 200 and response.headers.get("CONTENT-TYPE") == "text/html"
    head, _, body = server.requests[0].partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    assert lines[0] == "POST /api/console/proxy?path=%2Fa+b%2F_search%3Fx%3D1&method=GET HTTP/1.1"
    fields = {name.lower(): value for name, _, value in (line.partition(": ") for line in lines[1:])}
    assert fields["host"].startswith("db.example:") and fields["accept-encoding"] == "identity"
    assert fields["user-agent"].startswith("leaksonar") and fields["content-type"] == "application/json"
    assert json.loads(body) == {"k": "é"} and int(fields["content-length"]) == len(body)
    assert "cookie" not in fields and time.monotonic() - started < SLACK


def test_header_value_with_a_long_run_of_spaces_is_parsed_in_linear_time() -> None:
    """An inner run of spaces must not make the parse quadratic: CPU that the timeout cannot stop."""
    reply = b"HTTP/1.1 200 OK\r\nX-A: a" + b" " * 60_000 + b"b\r\nContent-Length: 2\r\n\r\nok"
    started = time.monotonic()
    (response,) = asyncio.run(served(answering(lambda: reply), sends("GET")))
    assert response.body == b"ok" and response.headers.get("x-a") == "a" + " " * 60_000 + "b"
    assert time.monotonic() - started < SLACK


def by_target(extra: bytes, *, later: float = 0.0) -> hostile.Handler:
    """A server answering each request with its own target as the body, then sending `extra` on the same
    connection (`later` seconds after the answer)."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while (request := await hostile.read_http(reader)) is not None:
            target = request[1].encode()
            await hostile.send(
                writer, b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(target), target)
            )
            await asyncio.sleep(later)
            await hostile.send(writer, extra)
        writer.close()

    return handle


FORGED = b"HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nforged"


@pytest.mark.parametrize("later", [0.0, 0.05], ids=["with the answer", "while idle"])
def test_bytes_past_an_answer_are_never_taken_as_the_next_answer(later: float) -> None:
    """RFC 9112 6.3: a client must not process extra data after a response as a separate response."""

    async def exchange(endpoint: Endpoint) -> list[Response]:
        async with bounded_client(endpoint, LIMITS) as client:
            first = await client.request("GET", endpoint.url + "/0", LIMITS)
            await asyncio.sleep(0.2)
            return [first, await client.request("GET", endpoint.url + "/1", LIMITS)]

    responses = asyncio.run(served(by_target(FORGED, later=later), exchange))
    assert [r.body for r in responses] == [b"/0", b"/1"]


@pytest.mark.parametrize("status", [204, 304])
def test_body_sent_with_a_bodiless_status_is_not_the_next_answer(status: int) -> None:
    server = Recorder()

    async def bodiless_with_a_body(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if server.connections:
            await server(reader, writer)
            return
        server.connections += 1
        await hostile.read_http(reader)
        await hostile.send(
            writer, b"HTTP/1.1 %d X\r\nContent-Length: %d\r\n\r\n%s" % (status, len(FORGED), FORGED)
        )
        await reader.read()

    responses = asyncio.run(served(bodiless_with_a_body, sends("GET", "GET")))
    assert [(r.status, r.body) for r in responses] == [(status, b""), (200, b"<title>fine</title>")]


def test_chunked_wins_over_content_length_and_the_connection_is_not_kept() -> None:
    """RFC 9112 6.3: both framings may be a response-splitting attempt; the connection is closed after."""
    connections: list[int] = []
    reply = b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n"
    handler = answering(lambda: reply)

    async def counted(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connections.append(1)
        await handler(reader, writer)

    responses = asyncio.run(served(counted, sends("GET", "GET")))
    assert ([r.body for r in responses], len(connections)) == ([b"ok", b"ok"], 2)


@pytest.mark.parametrize("split", [False, True], ids=["in one read", "end in a later read"])
def test_head_of_exactly_the_cap_is_read_however_it_arrives(split: bool) -> None:
    limits = Limits(timeout=1.0, service_budget=3.0, max_bytes=4096)
    start = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX-Pad: "
    head = start + b"p" * (limits.max_bytes - len(start))

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await hostile.read_http(reader)
        await hostile.send(writer, head + b"\r\n" + (b"" if split else b"\r\nok"))
        await asyncio.sleep(0.05)
        await hostile.send(writer, b"\r\nok" if split else b"")
        await reader.read()

    async def exchange(endpoint: Endpoint) -> list[Response]:
        async with bounded_client(endpoint, limits) as client:
            return [await client.request("GET", endpoint.url + "/", limits)]

    (response,) = asyncio.run(served(handle, exchange))
    assert response.body == b"ok"

"""The RESP2 reader: whatever pieces the bytes arrive in, the same replies come out, each within its caps."""

from __future__ import annotations

import asyncio
import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from leaksonar.model import Limits
from leaksonar.protocols.base import BoundedStream, ProtocolError, ReplyTooLarge
from leaksonar.protocols.redis import ErrorReply, Reply, RespParser

CAP = 1 << 20


def resp(value: Reply) -> bytes:
    """`value` as a RESP2 server writes it."""
    if value is None:
        return b"$-1\r\n"
    if isinstance(value, bytes):
        return b"$%d\r\n%s\r\n" % (len(value), value)
    if isinstance(value, ErrorReply):
        return b"-%s\r\n" % value.message.encode()
    if isinstance(value, str):
        return b"+%s\r\n" % value.encode()
    if isinstance(value, int):
        return b":%d\r\n" % value
    return b"*%d\r\n" % len(value) + b"".join(resp(item) for item in value)


line_text = st.text(st.characters(codec="ascii", exclude_characters="\r\n"), max_size=20)
values = st.recursive(
    st.one_of(
        st.none(),
        st.binary(max_size=40),
        st.integers(-(2**63), 2**63 - 1),
        line_text,
        line_text.map(ErrorReply),
    ),
    lambda inner: st.lists(inner, max_size=5),
    max_leaves=30,
).filter(lambda value: _depth(value) <= 4)


def _depth(value: Reply) -> int:
    return 1 + max(map(_depth, value), default=0) if isinstance(value, list) else 0


def fed(data: bytes, cuts: list[int], wanted: int, keep: int = CAP) -> list[Reply]:
    """The replies read from `data` fed in pieces cut at `cuts`."""
    parser = RespParser(CAP)
    parser.keep, parser.wanted = keep, wanted
    edges = [0, *sorted(cuts), len(data)]
    for start, end in itertools.pairwise(edges):
        parser.feed(data[start:end])
    return parser.replies


@settings(max_examples=200)
@given(replies=st.lists(values, min_size=1, max_size=6), data=st.data())
def test_any_split_gives_the_same_replies(replies: list[Reply], data: st.DataObject) -> None:
    encoded = b"".join(map(resp, replies))
    cuts = data.draw(st.lists(st.integers(0, len(encoded)), max_size=12))
    assert fed(encoded, cuts, len(replies)) == replies


def test_byte_by_byte_reply_of_many_values() -> None:
    keys = [b"user:%d" % i for i in range(600)]
    encoded = resp([b"0", keys])
    assert fed(encoded, list(range(len(encoded))), 1) == [[b"0", keys]]


def test_long_value_keeps_its_head_and_the_replies_after_it_survive() -> None:
    encoded = resp(b"x" * 10_000) + resp(b"after") + resp(7)
    assert fed(encoded, [3, 50, 5_000, 10_011], 3, keep=64) == [b"x" * 64, b"after", 7]


def test_replies_past_those_wanted_wait_for_the_next_read() -> None:
    parser = RespParser(CAP)
    parser.wanted = 1
    parser.feed(resp(1) + resp(b"two") + b"$5\r\nthr")
    assert parser.replies == [1]
    parser.replies, parser.wanted = [], 2
    parser.feed(b"ee\r\n")
    assert parser.replies == [b"two", b"three"]


@pytest.mark.parametrize(
    ("data", "error"),
    [
        (b"$2000000\r\n", ReplyTooLarge),
        (b"*20000\r\n", ReplyTooLarge),
        (b"*1\r\n" * 5 + b":1\r\n", ProtocolError),
        (b"$3\r\nabcXY", ProtocolError),
        (b"?what\r\n", ProtocolError),
        (b":12x\r\n", ProtocolError),
        (b"+" + b"a" * 70_000, ReplyTooLarge),
    ],
    ids=[
        "value-over-cap",
        "elements-over-cap",
        "too-deep",
        "no-crlf",
        "unknown-type",
        "bad-number",
        "long-line",
    ],
)
def test_hostile_replies_stop_with_the_right_error(data: bytes, error: type[Exception]) -> None:
    with pytest.raises(error):
        fed(data, [], 1)


def test_announced_bytes_count_against_one_reply_not_the_connection() -> None:
    half = b"y" * (CAP // 2)
    assert fed(resp(half) + resp(half), [], 2) == [half, half]


def test_stream_that_ends_mid_reply_is_an_incomplete_read() -> None:
    async def read() -> list[Reply]:
        reader = asyncio.StreamReader()
        reader.feed_data(b"*2\r\n$3\r\nabc\r\n")
        reader.feed_eof()
        return await RespParser(CAP).read(BoundedStream(reader, None, Limits()), 1, keep=64)  # type: ignore[arg-type]

    with pytest.raises(asyncio.IncompleteReadError):
        asyncio.run(read())


class _StateMachineOnly(RespParser):
    """The parser without its fast path: every value goes through the state machine."""

    def _values(self, buffer: bytearray, at: int, end: int) -> int:
        return at


HOSTILE_TOKENS = [
    b"$-1\r\n",
    b"*-1\r\n",
    b"$-5\r\n",
    b"*-7\r\n",
    b"$0\r\n\r\n",
    b"*0\r\n",
    b"$999999999\r\n",
    b"$9999999999\r\n",
    b"*5000\r\n",
    b"*1\r\n",
    b"*2\r\n",
    b"$3\r\nab",
    b"$3\r\nabc",
    b"$3\r\nabcde",
    b"$3\r\nab\r\r\n",
    b"$003\r\nabc\r\n",
    b"$3\n",
    b"$ 3\r\n",
    b"$+3\r\n",
    b"\r",
    b"\n",
    b"+OK\r",
    b"_\r\n",
    b"%1\r\n",
    b"~1\r\n",
    b"#t\r\n",
    b",1.5\r\n",
    b"(12\r\n",
    b"!3\r\nerr\r\n",
    b"=5\r\ntxt:a\r\n",
    b">2\r\n",
    b"+" + b"a" * 300,
]
hostile_bytes = st.lists(
    st.one_of(
        values.map(resp),
        st.sampled_from(HOSTILE_TOKENS),
        st.binary(max_size=8),
        st.sampled_from([20, 55, 57, 58, 60, 100, 185, 193, 194, 196, 400]).map(lambda n: resp(b"v" * n)),
    ),
    max_size=12,
).map(b"".join)


def outcome(parser: RespParser, data: bytes, cuts: list[int], keep: int) -> tuple[list[Reply], str]:
    """The replies read from `data` fed in pieces cut at `cuts`, and the error that stopped them."""
    parser.keep, parser.wanted = keep, 1_000
    edges = [0, *sorted(cuts), len(data)]
    try:
        for start, end in itertools.pairwise(edges):
            parser.feed(data[start:end])
    except (ProtocolError, ReplyTooLarge) as exc:
        return parser.replies, type(exc).__name__
    return parser.replies, ""


@settings(max_examples=500)
@given(
    data=hostile_bytes,
    draw=st.data(),
    cap=st.sampled_from([64, 200, CAP]),
    keep=st.sampled_from([0, 3, 64, CAP]),
)
def test_fast_path_and_state_machine_agree_on_hostile_bytes(
    data: bytes, draw: st.DataObject, cap: int, keep: int
) -> None:
    """Whatever the bytes and however they are cut, the fast path reads what the state machine reads
    (fed whole, or byte by byte) and stops at the same caps with the same error."""
    cuts = draw.draw(st.lists(st.integers(0, len(data)), max_size=12))
    slow = outcome(_StateMachineOnly(cap), data, [], keep)
    assert outcome(RespParser(cap), data, [], keep) == slow
    assert outcome(RespParser(cap), data, cuts, keep) == slow
    assert outcome(_StateMachineOnly(cap), data, list(range(len(data))), keep) == slow

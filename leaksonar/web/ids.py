"""The ids the web shows: a keyed pseudo-random permutation of the index's row ids.

Row ids are counters, stored in an order that follows addresses (a scan's events are stored in address
order), so a gap between two ids a public viewer sees would tell that a hidden row lies between them,
and where. The web therefore never shows a row id: it shows `PublicIds.encode(id)`, a ten-round Feistel
network over 52 bits whose rounds are keyed BLAKE2b under the index's secret. Without the secret the
numbers are random: they tell which answers name the same row, nothing about order, count or gaps.
They stay below 2**52, so JSON and JavaScript hold them exactly, and are never 0 (the cursor that
means "from the start"). Each kind of row (findings, events) has its own permutation, so that equal
numbers of two kinds say nothing about their row ids either."""

from __future__ import annotations

import hashlib
from typing import Literal

BITS = 52
HALF = BITS // 2
MASK = (1 << HALF) - 1
LARGEST = (1 << BITS) - 1
"""The largest public id, and the largest row id that has one (the index counts to 2**52 - 1 first)."""
ROUNDS = 10
SECRET_NAME = "public ids"
"""The index secret (`store.keyring`) that keys them."""
Kind = Literal["finding", "event"]


class PublicIds:
    """encode: row id -> public id; decode: public id -> row id, None for a number that is no public id.
    A bijection of 1..LARGEST for one secret and kind of row."""

    def __init__(self, secret: bytes, kind: Kind) -> None:
        self._keys = [
            hashlib.blake2b(f"{kind} {n}".encode(), key=secret, digest_size=32).digest()
            for n in range(ROUNDS)
        ]

    def _round(self, n: int, half: int) -> int:
        digest = hashlib.blake2b(half.to_bytes(4, "big"), key=self._keys[n], digest_size=4).digest()
        return int.from_bytes(digest, "big") & MASK

    def _forward(self, value: int) -> int:
        left, right = value >> HALF, value & MASK
        for n in range(ROUNDS):
            left, right = right, left ^ self._round(n, right)
        return (left << HALF) | right

    def _backward(self, value: int) -> int:
        left, right = value >> HALF, value & MASK
        for n in reversed(range(ROUNDS)):
            left, right = right ^ self._round(n, left), left
        return (left << HALF) | right

    def encode(self, row_id: int) -> int:
        """The public id of a row id (1..LARGEST; ValueError beyond)."""
        if not 1 <= row_id <= LARGEST:
            raise ValueError(f"row id {row_id} has no public id")
        shown = self._forward(row_id)
        while shown == 0:  # cycle-walk past 0: a permutation of 1..LARGEST
            shown = self._forward(shown)
        return shown

    def decode(self, public_id: int) -> int | None:
        """The row id behind a public id; None for a number outside 1..LARGEST."""
        if not 1 <= public_id <= LARGEST:
            return None
        row_id = self._backward(public_id)
        while row_id == 0:
            row_id = self._backward(row_id)
        return row_id

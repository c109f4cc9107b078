"""Assessment of files and object stores: file-name categories, ransom notes as files, heads of small
text files, and the payment-demand rule for every kind of store."""

from __future__ import annotations

import pytest

from leaksonar.assess import assess
from leaksonar.model import Collection, Inspection, Sample

P2PKH = "1BoatSLRHtKNngkdXEeobR76b53LETtpyT"
P2SH = "3J98t1WpEZ73CNmQviecrnyiWrnqRhWNLy"
BECH32 = "bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdq"


def redis(keys: dict[str, object]) -> Inspection:
    """Redis database 0 holding `keys`, as the Redis inspector samples them."""
    docs = tuple({"key": k, "type": "string", "value": v} for k, v in keys.items())
    return Inspection(
        "redis",
        None,
        "none",
        collections=(Collection("0", "db0", len(keys)),),
        samples=(Sample("0", "db0", docs),),
        rows=len(keys),
    )


def test_redis_payment_demand_is_a_note_whatever_the_key() -> None:
    found = assess(redis({"README_PAY": f"send 0.1 BTC to {P2PKH}", "user:1": "alice"}))
    assert found.infected
    (note,) = found.notes
    assert note.where == "key README_PAY in db 0"
    assert note.btc_addresses == (P2PKH,) and note.amount_btc == 0.1


@pytest.mark.parametrize(
    "value",
    [
        f"please send 0.05 bitcoin to {P2PKH} to get your keys back",
        f"pay ₿0.2 -> {BECH32}",
        f"Transfer BTC 1.5 to {P2SH}",
    ],
)
def test_payment_demand_in_any_words_is_a_note(value: str) -> None:
    found = assess(redis({"cache:42": value}))
    assert found.infected and found.notes[0].amount_btc is not None


@pytest.mark.parametrize(
    "keys",
    [
        {"news:1": "Bitcoin rose above 100000 USD; analysts expect to send more BTC to exchanges"},
        {"news:2": "send 0.1 BTC to the address on our page"},  # no address
        {"wallet:1": {"address": P2PKH, "balance": "0.5 BTC", "note": "send funds here"}},  # apart
        {"wallet:2": f"receive address {P2PKH}, send to it"},  # no amount
        {"wallet:3": f"monthly payout 0.5 BTC to {P2PKH}"},  # no demand
        {"wallet:4": f"send 0.1 BTC to {P2PKH[:-1]}t"},  # the address fails its checksum
    ],
)
def test_bitcoin_words_addresses_and_amounts_alone_are_no_note(keys: dict[str, object]) -> None:
    assert not assess(redis(keys)).infected


def test_payment_demand_in_a_large_table_is_data() -> None:
    insp = Inspection(
        "postgresql",
        None,
        "none",
        collections=(Collection("shop", "transfers", 50_000),),
        samples=(Sample("shop", "transfers", ({"memo": f"send 0.1 BTC to {P2PKH}"},)),),
    )
    assert not assess(insp).infected

"""Assessment of files and object stores: file-name categories, ransom notes as files, heads of small
text files, and the payment-demand rule for every kind of store."""

from __future__ import annotations

from leaksonar.assess import assess
from leaksonar.model import Collection, Inspection, Sample

P2PKH = "1BoatSLRHtKNngkdXEeobR76b53LETtpyT"


def redis(keys: dict[str, object]) -> Inspection:
    """Redis database 0 holding `keys`, as the Redis inspector samples them."""
    docs = tuple({"key": k, "type": "string", "value": v} for k, v in keys.items())
    return Inspection(
        "redis", None, "none", collections=(Collection("0", "db0", len(keys)),), samples=(Sample("0", "db0", docs),), rows=len(keys)
    )


def test_redis_payment_demand_is_a_note_whatever_the_key() -> None:
    found = assess(redis({"README_PAY": f"send 0.1 BTC to {P2PKH}", "user:1": "alice"}))
    assert found.infected
    (note,) = found.notes
    assert note.where == "key README_PAY in db 0"
    assert note.btc_addresses == (P2PKH,) and note.amount_btc == 0.1

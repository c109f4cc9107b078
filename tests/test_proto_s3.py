"""S3: identification from `GET /` replies, read-only inspection of the lab's moto (a second one on another
port too), and scripted hostile servers (pagination, endless listings, refusals, XML bombs, huge names, a
slow drip)."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable, Iterator
from typing import Any

import hostile
import pytest
from hostile_s3 import DENIED, FakeS3, endless_pages, xml
from moved import moved_server
from replies import (
    GO_404,
    NGINX_400,
    S3_AWS_DISABLED,
    S3_CEPH_DENIED,
    S3_MINIO_DENIED,
    S3_MOTO_ROOT,
    http_reply,
)

from leaksonar.assess import assess, filenames
from leaksonar.lab import lab_digest
from leaksonar.model import ErrorKind, Identity, Inspection, Limits, Software
from leaksonar.protocols import filestore
from leaksonar.protocols.base import Endpoint, ProtocolError
from leaksonar.protocols.s3 import PROTOCOL, parse
from leaksonar.scan.identify import identify

FAST = Limits(timeout=1.0, service_budget=5.0)
LabService = Callable[[str], dict[str, Any]]


# --- match ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("reply", "software", "auth"),
    [
        (S3_MOTO_ROOT, Software("moto"), "unknown"),
        (S3_MINIO_DENIED, Software("minio"), "required"),
        (S3_AWS_DISABLED, Software("amazon-s3"), "required"),
        (S3_CEPH_DENIED, Software("ceph-rgw"), "required"),
        (
            http_reply(200, {"Server": "SeaweedFS S3 3.59"}, xml("ListAllMyBucketsResult", "")),
            Software("seaweedfs", "3.59"),
            "unknown",
        ),
        (
            http_reply(200, {"Server": "garage/v1.0.1"}, xml("ListAllMyBucketsResult", "")),
            Software("garage", "1.0.1"),
            "unknown",
        ),
    ],
)
def test_match_names_the_s3_server(reply: bytes, software: Software, auth: str) -> None:
    identity = PROTOCOL.match(reply)
    assert identity is not None
    assert (identity.protocol, identity.software, identity.auth) == ("s3", software, auth)


@pytest.mark.parametrize(
    "reply",
    [
        GO_404,
        NGINX_400,
        b"",
        # an S3-like error without any request id, and an Azure-like one: not claimed
        http_reply(403, {}, b"<Error><Code>AccessDenied</Code><Message>no</Message></Error>"),
        http_reply(
            404,
            {},
            b"<?xml version='1.0'?><Error><Code>ResourceNotFound</Code><RequestId>1</RequestId></Error>",
        ),
        http_reply(200, {}, b"<html><ListAllMyBucketsResult></html>"),
    ],
)
def test_match_rejects_what_is_no_s3_answer(reply: bytes) -> None:
    assert PROTOCOL.match(reply) is None


@pytest.mark.parametrize(
    "body",
    [
        b'<?xml version="1.0"?><!DOCTYPE a [<!ENTITY x "xxxxxxxxxx"><!ENTITY y "&x;&x;&x;&x;">]><a>&y;</a>',
        b'<!DOCTYPE a SYSTEM "file:///etc/passwd"><a/>',
        b"<a><b></a>",
    ],
)
def test_xml_with_a_dtd_or_broken_is_refused(body: bytes) -> None:
    with pytest.raises(ProtocolError):
        parse(body, "GET /")


# --- the lab --------------------------------------------------------------------------------------


def inspect_lab(entry: dict[str, Any], port: int | None = None) -> Inspection:
    return asyncio.run(
        PROTOCOL.inspect(Endpoint(entry["ip"], port or entry["port"]), Identity("s3"), Limits())
    )


def test_open_buckets_are_listed_read_and_assessed(lab_service: LabService) -> None:
    entry = lab_service("s3-open")
    before = lab_digest(entry)
    found = inspect_lab(entry)
    assert lab_digest(entry) == before

    assert (found.protocol, found.auth, found.exposed, found.errors) == ("s3", "none", True, ())
    assert found.software == Software("moto")
    expected = {c["name"]: c["rows"] for db in entry["databases"] for c in db["collections"]}
    assert {c.name: c.rows for c in found.collections} == expected
    assert (found.databases, found.rows, found.rows_estimated) == (3, sum(expected.values()), False)
    assert found.size_bytes and found.size_bytes == sum(c.size_bytes or 0 for c in found.collections)
    read = {d["key"] for s in found.samples for d in s.documents if "value" in d}
    assert read == {
        "shop-backups/config/.env",
        "shop-backups/db/2025/shop.sql",
        "shop-exports/customers_2025.csv",
        "shop-public/welcome.txt",
        "shop-public/docs/2024/manual/notes.md",
    }

    assessment = assess(found)
    assert assessment.severity in ("high", "critical")
    named = filenames.named_files(found)
    assert named["database_dump"] == ("shop-backups/db/2025/shop.sql",)
    assert named["secret"] == ("shop-backups/config/.env",)
    assert {"name", "phone", "email", "national_id"} <= set(assessment.collection_pii[("", "shop-exports")])


def test_the_lab_bucket_list_is_identified(lab_service: LabService) -> None:
    entry = lab_service("s3-open")
    identity = asyncio.run(identify(entry["ip"], entry["port"], None, FAST))
    assert (identity.protocol, identity.software) == ("s3", Software("moto"))


@pytest.fixture(scope="module")
def moved(lab: dict[str, Any]) -> Iterator[tuple[dict[str, Any], int]]:
    """A second moto of the lab's kind on s3-open's address, port 8999, seeded alike."""
    with moved_server(lab, "s3-open", 8999, seeded=True) as service:
        yield service, 8999


def test_moto_on_an_unusual_port_is_identified_and_inspected(moved: tuple[dict[str, Any], int]) -> None:
    service, port = moved
    assert port not in PROTOCOL.default_ports
    identity = asyncio.run(identify(service["ip"], port, None, FAST))
    assert (identity.protocol, identity.software) == ("s3", Software("moto"))
    assert inspect_lab(service, port).rows == inspect_lab(service).rows


# --- scripted and hostile servers -----------------------------------------------------------------

BUCKETS = {
    "exports": {"customers.csv": b"name,phone\nLi Lei,13800000000\n"},
    "backups": {
        "2024/shop.sql": b"INSERT INTO t VALUES (1);\n" * 10,
        "2024/old/shop.sql": b"INSERT INTO t VALUES (2);\n",
        "2024/": b"",  # a folder marker, as consoles create them
        "README_RESTORE.txt": b"Files encrypted. Send 0.1 BTC to 1BoatSLRHtKNngkdXEeobR76b53LETtpyT\n",
    },
    "media": {f"clip{i}.mp4": bytes(200_000) for i in range(5)},
}


def run(server: FakeS3, limits: Limits = FAST) -> tuple[Inspection, float]:
    return hostile.run(PROTOCOL, server.handle, Identity("s3"), limits)


def test_buckets_are_walked_page_by_page_with_gets_only() -> None:
    server = FakeS3({name: dict(objects) for name, objects in BUCKETS.items()}, page_size=2)
    found, _ = run(server)
    assert {request.split(" ", 1)[0] for request in server.requests} == {"GET"}
    assert any("continuation-token=2" in request for request in server.requests)
    files = {
        f"{b}/{k}": v for b, objects in BUCKETS.items() for k, v in objects.items() if not k.endswith("/")
    }
    assert (found.auth, found.databases, found.rows, found.errors) == ("none", 3, len(files), ())
    assert found.size_bytes == sum(map(len, files.values()))
    assert {c.name: c.rows for c in found.collections} == {"exports": 1, "backups": 3, "media": 5}
    heads_read = {d["key"]: d["value"] for s in found.samples for d in s.documents if "value" in d}
    assert heads_read == {k: v for k, v in files.items() if not k.endswith(".mp4")}
    assessment = assess(found)
    assert assessment.infected and assessment.summary.startswith(
        "MinIO without authentication: 3 buckets, 9 objects"
    )


def test_a_head_stops_at_its_cap_when_the_range_is_ignored() -> None:
    server = FakeS3({"b": {"README.txt": b"x" * 200_000}}, ranges=False)
    found, _ = run(server)
    (_, document) = found.samples[0].documents
    assert len(document["value"]) == filestore.MAX_HEAD and found.errors == ()
    assert any("Range" not in r for r in server.requests)


def test_a_refused_bucket_list_is_auth_required() -> None:
    server = FakeS3(dict(BUCKETS), public_list=False)
    found, _ = run(server)
    assert (found.auth, found.exposed, found.software, found.collections, found.errors) == (
        "required",
        False,
        Software("minio"),
        (),
        (),
    )
    assert server.requests == ["GET /"]


def test_a_refused_bucket_is_noted_and_the_others_are_listed() -> None:
    server = FakeS3(dict(BUCKETS), answer=lambda target: DENIED if target.startswith("/media") else None)
    found, _ = run(server)
    assert (found.auth, found.rows, found.rows_estimated) == ("none", 4, True)
    assert hostile.kinds(found) == [ErrorKind.COMMAND_REFUSED]
    assert "/media" in found.errors[0].message


def test_an_endless_bucket_stops_at_the_file_cap() -> None:
    found, elapsed = run(FakeS3({"b": {}}, answer=endless_pages), Limits(timeout=1.0, service_budget=10.0))
    assert elapsed < 5.0
    assert (found.auth, found.rows, found.rows_estimated) == ("none", filestore.MAX_FILES - 1, True)
    assert hostile.kinds(found) == [ErrorKind.OVER_LIMIT]


def test_empty_truncated_pages_stop_at_the_page_cap() -> None:
    tokens = itertools.count()

    def empty_pages(target: str) -> bytes | None:
        if "list-type" not in target:
            return None
        token = str(next(tokens))
        body = xml(
            "ListBucketResult",
            f"<IsTruncated>true</IsTruncated><NextContinuationToken>{token}x</NextContinuationToken>",
        )
        return http_reply(200, {"x-amz-request-id": "1"}, body)

    found, elapsed = run(FakeS3({"b": {}}, answer=empty_pages))
    assert elapsed < 3.0 and found.rows == 0 and found.rows_estimated
    assert hostile.kinds(found) == [ErrorKind.OVER_LIMIT]


def test_an_entity_bomb_is_a_protocol_error() -> None:
    bomb = (
        b'<?xml version="1.0"?><!DOCTYPE l [<!ENTITY a "aaaaaaaaaa">'
        + b"".join(
            b'<!ENTITY %c "&%c;&%c;&%c;&%c;&%c;&%c;&%c;&%c;&%c;&%c;">' % (c, *[c - 1] * 10)
            for c in range(98, 108)
        )
        + b"]><ListAllMyBucketsResult>&k;</ListAllMyBucketsResult>"
    )
    found, elapsed = run(FakeS3(answer=lambda target: http_reply(200, {}, bomb)))
    assert elapsed < 1.0
    assert (found.auth, found.collections, hostile.kinds(found)) == (
        "unknown",
        (),
        [ErrorKind.PROTOCOL_ERROR],
    )


def test_huge_and_foreign_names_are_passed_over() -> None:
    def listing(target: str) -> bytes | None:
        if "list-type" not in target:
            return None
        keys = ["a.bin", "n" * 2000, "../../etc/passwd", "tab\tname"]
        inner = "".join(f"<Contents><Key>{k}</Key><Size>1</Size></Contents>" for k in keys)
        return http_reply(200, {"x-amz-request-id": "1"}, xml("ListBucketResult", inner))

    found, _ = run(FakeS3({"b": {}}, answer=listing))
    assert [d["key"] for s in found.samples for d in s.documents] == ["b", "b/a.bin"]
    assert found.rows_estimated and set(hostile.kinds(found)) == {ErrorKind.OVER_LIMIT}


def test_a_slow_drip_ends_in_time() -> None:
    handler = hostile.drip(S3_MOTO_ROOT, interval=0.3)
    found, elapsed = hostile.run(PROTOCOL, handler, Identity("s3"), Limits(timeout=0.5, service_budget=3.0))
    assert elapsed < 3.5
    assert found.collections == () and ErrorKind.TIMEOUT in hostile.kinds(found)


def test_a_continuation_token_cycling_back_is_not_followed_again() -> None:
    def cycling(target: str) -> bytes | None:  # page A sends on to B, B back to A
        if "list-type" not in target:
            return None
        on_b = "continuation-token=B" in target
        key, token = ("b.bin", "A") if on_b else ("a.bin", "B")
        inner = f"<IsTruncated>true</IsTruncated><NextContinuationToken>{token}</NextContinuationToken>"
        inner += f"<Contents><Key>{key}</Key><Size>1</Size></Contents>"
        return http_reply(200, {"x-amz-request-id": "1"}, xml("ListBucketResult", inner))

    server = FakeS3({"b": {}}, answer=cycling)
    found, _ = run(server)
    assert [d["key"] for s in found.samples for d in s.documents] == ["b", "b/a.bin", "b/b.bin"]
    assert found.rows == 2 and found.rows_estimated
    assert sum("list-type" in r for r in server.requests) <= 3


def test_an_empty_object_has_an_empty_head_and_no_error() -> None:
    server = FakeS3({"b": {"empty.log": b"", "a.txt": b"hello"}})
    found, _ = run(server)
    documents = {d["key"]: d for s in found.samples for d in s.documents}
    assert (documents["b/empty.log"]["value"], documents["b/a.txt"]["value"]) == (b"", b"hello")
    assert found.errors == ()

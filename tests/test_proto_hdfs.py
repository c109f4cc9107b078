"""HDFS: identification from a NameNode's `GET /`, read-only inspection of the lab's NameNode stand-in
(open, wiped, and on an unusual port), and a scripted NameNode turned hostile (OPEN redirecting to another
host, endless and bottomless listings, huge names, malformed answers, Kerberos refusals)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from typing import Any

import hostile
import pytest
from hostile_hdfs import FakeNameNode, endless_statuses, one_more_level, status, statuses
from moved import moved_server
from replies import HDFS_DATANODE_ROOT, HDFS_NAMENODE_1X, HDFS_NAMENODE_ROOT, HDFS_REDIRECT, http_reply

from leaksonar.assess import assess, filenames
from leaksonar.lab import lab_digest
from leaksonar.model import ErrorKind, Identity, Inspection, Limits, Software
from leaksonar.protocols import filestore
from leaksonar.protocols.base import Endpoint
from leaksonar.protocols.hdfs import PROTOCOL, jmx_software
from leaksonar.scan.identify import identify

FAST = Limits(timeout=1.0, service_budget=5.0)
LabService = Callable[[str], dict[str, Any]]


# --- match ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("reply", [HDFS_NAMENODE_ROOT, HDFS_NAMENODE_1X, HDFS_REDIRECT])
def test_a_namenode_front_page_is_hdfs(reply: bytes) -> None:
    identity = PROTOCOL.match(reply)
    assert identity is not None
    assert (identity.protocol, identity.software, identity.auth) == ("hdfs", Software("hadoop"), "unknown")


@pytest.mark.parametrize(
    "reply",
    [
        HDFS_DATANODE_ROOT,
        http_reply(404, {}, b"<a href='dfshealth.html'>dfshealth.html</a>"),
        http_reply(302, {"Location": "/login"}, b"dfshealth.html"),
        b"dfshealth.html",
    ],
)
def test_what_is_no_namenode_front_page_is_not_hdfs(reply: bytes) -> None:
    assert PROTOCOL.match(reply) is None


@pytest.mark.parametrize(
    ("bean", "software"),
    [
        ({"SoftwareVersion": "3.3.6"}, Software("hadoop", "3.3.6")),
        ({"Version": "2.7.3, rbaa91f7c6bc9cb92be5982de4719c1c8af91ccff"}, Software("hadoop", "2.7.3")),
        ({"SoftwareVersion": "<script>"}, None),
        ({"SoftwareVersion": 3}, None),
    ],
)
def test_the_version_comes_from_namenode_info(bean: dict[str, Any], software: Software | None) -> None:
    assert jmx_software({"beans": [bean]}) == software


# --- the lab --------------------------------------------------------------------------------------


def inspect_lab(entry: dict[str, Any], port: int | None = None) -> Inspection:
    endpoint = Endpoint(entry["ip"], port or entry["port"])
    return asyncio.run(PROTOCOL.inspect(endpoint, Identity("hdfs"), Limits()))


def test_an_open_namenode_is_listed_read_and_assessed(lab_service: LabService) -> None:
    entry = lab_service("hdfs-open")
    before = lab_digest(entry)
    found = inspect_lab(entry)
    assert lab_digest(entry) == before

    assert (found.protocol, found.auth, found.exposed, found.errors) == ("hdfs", "none", True, ())
    assert found.software == Software("hadoop", entry["software"]["version"])
    expected = {c["name"]: c["rows"] for db in entry["databases"] for c in db["collections"]}
    assert {c.name: c.rows for c in found.collections} == expected
    assert (found.databases, found.rows, found.rows_estimated) == (1, sum(expected.values()), False)
    assert found.size_bytes and found.size_bytes == sum(c.size_bytes or 0 for c in found.collections)
    assert found.details["namenode"]["CapacityUsed"] > 0
    read = {d["key"] for s in found.samples for d in s.documents if "value" in d}
    assert read == {
        ".env",
        "backup/shop.sql",
        "exports/customers_2025.csv",
        "pub/welcome.txt",
        "pub/docs/2024/manual/notes.md",
    }

    assessment = assess(found)
    assert assessment.severity in ("high", "critical")
    named = filenames.named_files(found)
    assert named["database_dump"] == ("backup/shop.sql",) and named["secret"] == (".env",)
    assert {"name", "phone", "email", "national_id"} <= set(assessment.collection_pii[("", "exports")])


def test_a_wiped_namenode_shows_the_wipe_directory(lab_service: LabService) -> None:
    entry = lab_service("hdfs-wiped")
    found = inspect_lab(entry)
    assert (found.auth, found.rows, found.rows_estimated, found.errors) == ("none", 0, False, ())
    assert [c.name for c in found.collections] == ["NODATA4U_SECUREYOURSHIT"]
    assessment = assess(found)
    assert assessment.infected and "DATA WIPED" in assessment.summary


def test_the_lab_namenode_is_identified(lab_service: LabService) -> None:
    entry = lab_service("hdfs-open")
    identity = asyncio.run(identify(entry["ip"], entry["port"], None, FAST))
    assert (identity.protocol, identity.software) == ("hdfs", Software("hadoop"))


@pytest.fixture(scope="module")
def moved(lab: dict[str, Any]) -> Iterator[tuple[dict[str, Any], int]]:
    """A second NameNode stand-in of the lab's kind on hdfs-open's address, port 18020."""
    with moved_server(lab, "hdfs-open", 18020) as service:
        yield service, 18020


def test_a_namenode_on_an_unusual_port_is_identified_and_inspected(moved: tuple[dict[str, Any], int]) -> None:
    service, port = moved
    assert port not in PROTOCOL.default_ports
    identity = asyncio.run(identify(service["ip"], port, None, FAST))
    assert identity.protocol == "hdfs"
    found = inspect_lab(service, port)
    assert (found.rows, found.errors) == (inspect_lab(service).rows, ())
    assert any("value" in d for s in found.samples for d in s.documents)


# --- scripted and hostile servers -----------------------------------------------------------------

TREE = {
    "exports/customers.csv": b"name,phone\nLi Lei,13800000000\n",
    "backup/2024/shop.sql": b"INSERT INTO t VALUES (1);\n" * 10,
    "README_RESTORE.txt": b"Files encrypted. Send 0.1 BTC to 1BoatSLRHtKNngkdXEeobR76b53LETtpyT\n",
    "media/big.mp4": bytes(200_000),
}
HEADS = {k: v for k, v in TREE.items() if not k.endswith(".mp4")}


def run(server: FakeNameNode, limits: Limits = FAST) -> tuple[Inspection, float]:
    return hostile.run(PROTOCOL, server.handle, Identity("hdfs"), limits)


def heads_read(found: Inspection) -> dict[str, bytes]:
    return {d["key"]: d["value"] for s in found.samples for d in s.documents if "value" in d}


def test_a_tree_is_walked_with_gets_only_and_heads_follow_a_redirect_to_itself() -> None:
    server = FakeNameNode(dict(TREE))

    async def with_datanode_here() -> tuple[Inspection, float]:
        handler = server.handle
        listener = await asyncio.start_server(handler, "127.0.0.1", 0)
        server.datanode = f"127.0.0.1:{listener.sockets[0].getsockname()[1]}"  # same IP, another port
        async with listener:
            return await hostile.inspect_server(PROTOCOL, handler, Identity("hdfs"), FAST)

    found, _ = asyncio.run(with_datanode_here())
    assert (found.auth, found.rows, found.size_bytes, found.errors) == (
        "none",
        4,
        sum(map(len, TREE.values())),
        (),
    )
    assert found.software == Software("hadoop", "3.4.0")
    assert {c.name: c.rows for c in found.collections} == {"/": 1, "backup": 1, "exports": 1, "media": 1}
    assert heads_read(found) == HEADS
    assert sum("datanode=true" in t for t in server.targets) == len(HEADS)
    assert assess(found).infected


def test_an_open_redirecting_to_another_host_is_not_followed() -> None:
    server = FakeNameNode(dict(TREE))
    contacted: list[bool] = []

    async def datanode(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        contacted.append(True)
        writer.close()

    async def elsewhere() -> tuple[Inspection, float]:
        listener = await asyncio.start_server(datanode, "127.0.0.2", 0)
        server.datanode = f"127.0.0.2:{listener.sockets[0].getsockname()[1]}"
        async with listener:
            return await hostile.inspect_server(PROTOCOL, server.handle, Identity("hdfs"), FAST)

    found, _ = asyncio.run(elsewhere())
    assert not contacted and heads_read(found) == {}
    assert found.rows == 4 and [e.kind for e in found.errors] == [ErrorKind.COMMAND_REFUSED]
    assert "another host" in found.errors[0].message


def test_the_root_summary_gives_the_totals_when_the_listing_is_cut() -> None:
    big = {f"logs/part-{i:05}.log": b"x" for i in range(filestore.MAX_FILES + 10)}
    found, _ = run(FakeNameNode({**big, "a.txt": b"hello"}), Limits(timeout=1.0, service_budget=20.0))
    assert (found.rows, found.size_bytes) == (len(big) + 1, len(big) + 5)
    logs = next(c for c in found.collections if c.name == "logs")
    assert (logs.rows, logs.rows_estimated) == (len(big), False)
    assert ErrorKind.OVER_LIMIT in hostile.kinds(found)


def test_an_endless_listing_stops_at_the_byte_cap() -> None:
    server = FakeNameNode(listing=endless_statuses, summary=False)
    found, elapsed = run(server, Limits(timeout=1.0, service_budget=5.0, max_bytes=200_000))
    assert elapsed < 3.0
    assert (found.auth, found.collections) == ("unknown", ())
    assert ErrorKind.OVER_LIMIT in hostile.kinds(found)


def test_a_tree_without_bottom_stops_at_the_depth_cap() -> None:
    found, elapsed = run(FakeNameNode(listing=one_more_level, summary=False))
    assert elapsed < 4.0
    assert (found.rows, found.rows_estimated) == (filestore.MAX_DEPTH + 1, True)
    deepest = max((d["key"] for s in found.samples for d in s.documents), key=len)
    assert deepest.count("/") == filestore.MAX_DEPTH
    assert ErrorKind.OVER_LIMIT in hostile.kinds(found)


def test_huge_and_odd_names_are_passed_over() -> None:
    def listing(_: str) -> bytes:
        odd = [status("n" * 2000, 1), status("a/b", 1), status("..", None), status("ok.bin", 1)]
        return statuses([*odd, {"pathSuffix": 5, "type": "FILE"}, {"pathSuffix": "x", "type": "WEIRD"}])

    found, _ = run(FakeNameNode(listing=listing, summary=False))
    assert [d["key"] for s in found.samples for d in s.documents] == ["ok.bin"]
    assert found.rows_estimated and ErrorKind.OVER_LIMIT in hostile.kinds(found)
    assert all(len(error.message) < 300 for error in found.errors)


@pytest.mark.parametrize(
    "answer",
    [
        http_reply(200, {}, {"FileStatuses": 5}),
        http_reply(200, {}, b"<html>not json</html>"),
        http_reply(200, {}, b"[" * 100_000),
    ],
)
def test_a_malformed_listing_is_a_protocol_error(answer: bytes) -> None:
    found, _ = run(FakeNameNode(listing=lambda _: answer, summary=False))
    assert found.collections == () and ErrorKind.PROTOCOL_ERROR in hostile.kinds(found)


@pytest.mark.parametrize(
    "refusal",
    [
        http_reply(401, {"WWW-Authenticate": "Negotiate"}, b"Authentication required"),
        http_reply(
            403, {}, {"RemoteException": {"exception": "AccessControlException", "message": "denied"}}
        ),
    ],
)
def test_a_refusal_is_auth_required(refusal: bytes) -> None:
    server = FakeNameNode(dict(TREE), refuse=refusal)
    found, _ = run(server)
    assert (found.auth, found.exposed, found.collections, found.samples) == ("required", False, (), ())
    asked = ["NameNodeInfo", "FSNamesystem", "GETCONTENTSUMMARY", "LISTSTATUS"]
    assert [t.rpartition("=")[2] for t in server.targets] == asked


def test_a_refused_jmx_leaves_an_open_tree_to_be_listed() -> None:
    # hadoop.security.instrumentation.requires.admin: /jmx is 403 to dr.who while WebHDFS is open
    denied = http_reply(403, {}, b"Unauthenticated users are not authorized to access this page.")
    found, _ = run(FakeNameNode(dict(TREE), jmx=denied))
    assert (found.auth, found.exposed, found.rows) == ("none", True, 4)
    assert hostile.kinds(found) == [ErrorKind.COMMAND_REFUSED]
    assert "/jmx" in found.errors[0].message


def test_a_directory_named_twice_is_listed_once() -> None:
    server = FakeNameNode(
        listing=lambda path: statuses([status("d", None), status("d", None), status("f.bin", 1)]),
        summary=False,
    )
    found, _ = run(server)
    listed = [d["key"] for s in found.samples for d in s.documents]
    assert len(listed) == len(set(listed)) and ("d/d/f.bin" in listed)
    assert len(server.targets) == len(set(server.targets))


def redirected_to(location: str, host: str) -> tuple[Inspection, bool]:
    """An inspection whose OPENs redirect to `location` ({port}: a listener's on `host`), and whether that
    listener was contacted."""
    contacted: list[bool] = []

    async def other(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        contacted.append(True)
        writer.close()

    async def inspect() -> tuple[Inspection, float]:
        listener = await asyncio.start_server(other, host, 0)
        server = FakeNameNode(dict(TREE), location=location.format(port=listener.sockets[0].getsockname()[1]))
        async with listener:
            return await hostile.inspect_server(PROTOCOL, server.handle, Identity("hdfs"), FAST)

    found, _ = asyncio.run(inspect())
    return found, bool(contacted)


@pytest.mark.parametrize(
    "location",
    [
        "http://127.0.0.1:{port}/solr/admin/cores?action=UNLOAD&core=x",
        "http://127.0.0.1:{port}/webhdfs/v1/a.txt?op=DELETE",
        "http://127.0.0.1:{port}/webhdfs/v1/../../_shutdown?op=OPEN",
        "http://127.0.0.1:{port}/webhdfs/v1/a.txt?op=OPEN&op=RENAME",
    ],
)
def test_an_open_redirecting_to_another_service_of_the_same_ip_is_not_followed(location: str) -> None:
    found, contacted = redirected_to(location, "127.0.0.1")
    assert not contacted and heads_read(found) == {} and found.rows == 4


@pytest.mark.parametrize(
    "location",
    [
        "http://127.0.0.1@127.0.0.2:{port}/webhdfs/v1/a.txt?op=OPEN",
        "http://127.0.0.1:{port}@127.0.0.2:{port}/webhdfs/v1/a.txt?op=OPEN",
        "//127.0.0.2:{port}/webhdfs/v1/a.txt?op=OPEN",
        "http://2130706434:{port}/webhdfs/v1/a.txt?op=OPEN",
        "http://0x7f.0.0.2:{port}/webhdfs/v1/a.txt?op=OPEN",
        "http://[::ffff:127.0.0.2]:{port}/webhdfs/v1/a.txt?op=OPEN",
        "http://127.0.0.2.:{port}/webhdfs/v1/a.txt?op=OPEN",
    ],
)
def test_an_open_redirect_in_any_form_of_another_address_is_not_followed(location: str) -> None:
    found, contacted = redirected_to(location, "127.0.0.2")
    assert not contacted and heads_read(found) == {} and found.rows == 4


def test_a_summary_refused_for_a_private_subtree_leaves_the_tree_to_be_listed() -> None:
    # GETCONTENTSUMMARY needs r-x on the whole subtree: one private directory (a 700 /user/hive) refuses it
    message = "Permission denied: user=dr.who, access=READ_EXECUTE, inode=/user/hive"
    denied = http_reply(
        403, {}, {"RemoteException": {"exception": "AccessControlException", "message": message}}
    )
    found, _ = run(FakeNameNode(dict(TREE), summary_answer=denied))
    assert (found.auth, found.exposed, found.rows) == ("none", True, 4)
    assert hostile.kinds(found) == [ErrorKind.COMMAND_REFUSED]
    assert "AccessControlException" in found.errors[0].message

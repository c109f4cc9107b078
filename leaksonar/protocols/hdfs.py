"""HDFS: the Hadoop NameNode's HTTP port (9870, 50070 before Hadoop 3), recognised from its answer to
`GET /`; inspected read-only over its JMX servlet and WebHDFS, GETs only.

A NameNode's `GET /` serves a page that sends the browser on to `dfshealth.html` (`dfshealth.jsp`
before Hadoop 2), by a meta refresh or a redirect: that is what `match` looks for, so no other HTTP
service is taken for one and no second request is needed to identify it. Inspection reads the version
and the cluster's own facts from `/jmx` (NameNodeInfo: SoftwareVersion, Total, Used; FSNamesystem:
FilesTotal, BlocksTotal, CapacityUsed), the true totals of the tree from `GETCONTENTSUMMARY` of `/`,
walks it with the file-store kit (one `LISTSTATUS` per directory, no `user.name`: the NameNode's static
web user, `dr.who`, is who lists) and reads the heads of the files the kit chooses with
`OPEN&length=65536`. A NameNode answers OPEN with a 307 to a DataNode of its choosing: the redirect is
followed once, and only when it names the NameNode's own IP address (any port) and an OPEN below
`/webhdfs/v1/`; a DataNode elsewhere (or another service on that address) is never contacted and the
heads are left unread. 401/403 to the root's listing (Kerberos SPNEGO, `WWW-Authenticate: Negotiate`,
or any refusal) is auth "required"; a refused `/jmx` (which may be for admins only) or summary (which
needs r-x on the whole subtree) alone is not.

The record: the file-store kit's (one collection per top directory), with the service's rows and bytes
the root summary's fileCount and length, and a capped directory's own summary making its count exact.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from functools import partial
from typing import Any
from urllib.parse import parse_qs, quote, unquote, urlsplit

from leaksonar.model import ErrorKind, Identity, Inspection, Limits, Software
from leaksonar.protocols.base import AuthRequired, CommandRefused, Endpoint, ProtocolError, ReplyTooLarge
from leaksonar.protocols.filestore import MAX_HEAD, ROOT, Entry, Listing, walk
from leaksonar.protocols.http import PROTOCOL as HTTP
from leaksonar.protocols.httpclient import (
    Fetch,
    HttpClient,
    Response,
    bounded_client,
    fetcher,
    get_bounded,
    http_parts,
    json_body,
    refused,
)
from leaksonar.protocols.kit import SERVER_ERRORS, Learned, count, run_inspection

NAME = "hdfs"
SOFTWARE = "hadoop"
WEBHDFS = "/webhdfs/v1"
_UI = re.compile(rb"dfshealth\.(?:html|jsp)\b", re.I)
_LOCATION = re.compile(rb"^location:[ \t]*\S*dfshealth\.(?:html|jsp)", re.I | re.M)
_VERSION = re.compile(r"\A\d[\w.+-]{0,39}")
_JMX_INFO = "/jmx?qry=Hadoop:service=NameNode,name=NameNodeInfo"
_JMX_FS = "/jmx?qry=Hadoop:service=NameNode,name=FSNamesystem"


def _bean(document: Any) -> dict[str, Any]:
    """The first bean of a `/jmx` answer ({} if there is none)."""
    beans = document.get("beans") if isinstance(document, dict) else None
    first = beans[0] if isinstance(beans, list) and beans else None
    return first if isinstance(first, dict) else {}


def jmx_software(document: Any) -> Software | None:
    """Hadoop and its version from NameNodeInfo's SoftwareVersion (or Version, "3.3.6, r1be78...")."""
    bean = _bean(document)
    for key in ("SoftwareVersion", "Version"):
        if isinstance(value := bean.get(key), str) and (found := _VERSION.match(value.strip())):
            return Software(SOFTWARE, found.group(0).rstrip(","))
    return None


def parse_statuses(document: Any) -> list[Entry]:
    """The entries of a LISTSTATUS answer (names, not paths); a symlink is a file of unknown size."""
    statuses = document.get("FileStatuses") if isinstance(document, dict) else None
    items = statuses.get("FileStatus") if isinstance(statuses, dict) else None
    if not isinstance(items, list):
        raise ProtocolError("LISTSTATUS did not answer FileStatuses")
    entries = []
    for item in items:
        if not isinstance(item, dict) or not isinstance(name := item.get("pathSuffix"), str):
            continue
        kind = item.get("type")
        if kind == "DIRECTORY":
            entries.append(Entry(name, None, True))
        elif kind in ("FILE", "SYMLINK"):
            entries.append(Entry(name, count(item.get("length")) if kind == "FILE" else None))
    return entries


@dataclass(frozen=True, slots=True)
class Summary:
    """A directory's ContentSummary: the server's own totals."""

    directories: int | None
    files: int | None
    length: int | None


def parse_summary(document: Any) -> Summary:
    summary = document.get("ContentSummary") if isinstance(document, dict) else None
    if not isinstance(summary, dict):
        raise ProtocolError("GETCONTENTSUMMARY did not answer a ContentSummary")
    return Summary(
        count(summary.get("directoryCount")), count(summary.get("fileCount")), count(summary.get("length"))
    )


def _target(path: str, op: str) -> str:
    """The WebHDFS path and query of `op` on `path` (from the root, "" for the root)."""
    return f"{WEBHDFS}/{quote(path, safe='/')}?op={op}"


def _answer(response: Response, what: str, root: bool) -> Any:
    """The JSON of a WebHDFS answer; a refusal is AuthRequired at the root, else CommandRefused (the
    RemoteException's class named)."""
    if refused(response) and root:
        raise AuthRequired(f"{what} answered HTTP {response.status}")
    if response.status != 200:
        raise CommandRefused(f"{what} answered HTTP {response.status}{_exception(response)}")
    return json_body(response, what)


def _exception(response: Response) -> str:
    """ " (AccessControlException)": the class a RemoteException names, if the body is one."""
    try:
        remote = response.json().get("RemoteException")
    except (ValueError, AttributeError):
        return ""
    name = remote.get("exception") if isinstance(remote, dict) else None
    return f" ({name[:60]})" if isinstance(name, str) and name.isidentifier() else ""


async def _list(fetch: Fetch, learned: Learned, path: str) -> AsyncIterator[Entry]:
    """One directory's LISTSTATUS; the root's listing answered is what makes auth "none"."""
    entries = parse_statuses(_answer(await fetch(_target(path, "LISTSTATUS")), "LISTSTATUS", not path))
    if not path:
        learned.auth, learned.databases = "none", 1
    for entry in entries:
        yield entry


async def _summary(fetch: Fetch, path: str) -> Summary:
    """A directory's ContentSummary; a refusal is CommandRefused even at the root: it needs r-x on the
    whole subtree, so one private directory refuses it where the root's listing is open."""
    response = await fetch(_target(path, "GETCONTENTSUMMARY"))
    return parse_summary(_answer(response, "GETCONTENTSUMMARY", root=False))


def _datanode(endpoint: Endpoint, location: str) -> Endpoint | None:
    """The endpoint an OPEN's redirect names, if it is the scanned IP address (any port) and the redirect
    an OPEN below WebHDFS (one `op`, no dot segment): None otherwise, as for another service there."""
    try:
        url = urlsplit(location)
        port = url.port
    except ValueError:
        return None
    if url.scheme not in ("http", "https") or url.hostname != endpoint.ip.lower():
        return None
    segments = unquote(url.path).split("/")
    if segments[:3] != WEBHDFS.split("/") or {".", ".."} & set(segments):
        return None
    if parse_qs(url.query).get("op") != ["OPEN"]:
        return None
    tls = url.scheme == "https"
    return replace(endpoint, port=port or (443 if tls else 80), tls=tls, starttls=False)


async def read_head(endpoint: Endpoint, client: HttpClient, path: str, limits: Limits) -> bytes | None:
    """The first `MAX_HEAD` bytes of file `path` by OPEN, a redirect followed once when it is an OPEN on
    the NameNode's own IP address (`_datanode`); None when it is not."""
    response = await get_bounded(f"{endpoint.url}{_target(path, 'OPEN')}&length={MAX_HEAD}", limits, client)
    if response.status in (301, 302, 303, 307, 308):
        location = response.headers.get("location") or ""
        if (there := _datanode(endpoint, location)) is None:
            return None
        split = urlsplit(location)
        url = there.url + (split.path or "/") + (f"?{split.query}" if split.query else "")
        if there == endpoint:
            response = await get_bounded(url, limits, client)
        else:
            async with bounded_client(there, limits) as other:
                response = await get_bounded(url, limits, other)
    if response.status != 200:
        raise CommandRefused(f"OPEN answered HTTP {response.status}{_exception(response)}")
    return response.body[:MAX_HEAD]


async def _cluster(fetch: Fetch, learned: Learned) -> None:
    """Version and cluster facts from `/jmx`. A bean the server will not give (an error status, not JSON,
    over the byte cap) is noted and passed over, a refusal too: `/jmx` may be for admins only
    (`hadoop.security.instrumentation.requires.admin`) while WebHDFS is open, so the root's listing
    decides auth. A server that does not answer at all ends the inspection here."""
    facts: dict[str, int] = {}
    for path, keys in (
        (_JMX_INFO, ("Total", "Used")),
        (_JMX_FS, ("FilesTotal", "BlocksTotal", "CapacityUsed")),
    ):
        try:
            document = json_body(await fetch(path), "/jmx")
        except (CommandRefused, ProtocolError, ReplyTooLarge) as exc:
            learned.failed("Reading /jmx", exc)
            continue
        if path == _JMX_INFO:
            learned.software = jmx_software(document) or learned.software
        bean = _bean(document)
        facts.update({key: value for key in keys if (value := count(bean.get(key))) is not None})
    if facts:
        learned.details["namenode"] = facts


def _totals(learned: Learned, root: Summary | None) -> None:
    """The service's rows and bytes: the root summary's, the server's own count of the whole tree."""
    if root is not None and root.files is not None:
        learned.rows, learned.size_bytes, learned.rows_estimated = root.files, root.length, False


async def _recount(fetch: Fetch, learned: Learned) -> None:
    """Each directory collection the listing left incomplete, counted by its own summary."""
    for index, collection in enumerate(learned.collections):
        if not collection.rows_estimated or collection.name == ROOT:
            continue
        try:
            own = await _summary(fetch, collection.name)
        except SERVER_ERRORS as exc:
            learned.failed(f"Summing /{collection.name}", exc)
            continue
        if own.files is not None:
            learned.collections[index] = replace(
                collection, rows=own.files, size_bytes=own.length, rows_estimated=False
            )


async def _heads(endpoint: Endpoint, client: HttpClient, listing: Listing, learned: Learned) -> None:
    """The heads of the files the kit chooses; none when OPEN sends the reader to another host."""
    for entry in listing.head_candidates():
        try:
            if (head := await read_head(endpoint, client, entry.path, learned.limits)) is None:
                learned.add(
                    ErrorKind.COMMAND_REFUSED,
                    "OPEN redirected to another host (or not to an OPEN): no file head was read.",
                )
                return
            listing.heads[entry.path] = head
        except SERVER_ERRORS as exc:
            learned.failed(f"Reading the head of /{entry.path}", exc)
            if not isinstance(exc, CommandRefused):
                return


async def _inspect(endpoint: Endpoint, learned: Learned) -> None:
    async with bounded_client(endpoint, learned.limits) as client:
        fetch = fetcher(endpoint.url, learned.limits, client)
        await _cluster(fetch, learned)
        listing = Listing()
        root: Summary | None = None
        try:
            try:
                root = await _summary(fetch, "")
            except (CommandRefused, ProtocolError, ReplyTooLarge) as exc:
                learned.failed("Summing /", exc)
            await walk(partial(_list, fetch, learned), listing, learned)
            await _heads(endpoint, client, listing, learned)
        finally:
            if learned.auth == "none":  # the root was listed
                listing.present(learned)
                _totals(learned, root)
        if root is not None:
            await _recount(fetch, learned)


class HdfsProtocol:
    name = NAME
    default_ports = (9870, 50070)
    probe = HTTP.probe

    def match(self, reply: bytes) -> Identity | None:
        """A NameNode's `GET /`: a page or a redirect leading to `dfshealth.html` (or `.jsp`)."""
        if (parts := http_parts(reply)) is None:
            return None
        status, head, body, banner = parts
        leads = _LOCATION.search(head) if 300 <= status < 400 else _UI.search(body[:4096])
        if status >= 400 or not leads:
            return None
        return Identity(NAME, Software(SOFTWARE), "unknown", banner)

    async def inspect(self, endpoint: Endpoint, identity: Identity, limits: Limits) -> Inspection:
        """Cluster facts, the tree's summary and a bounded walk with a few heads; GETs only."""
        return await run_inspection(NAME, partial(_inspect, endpoint), identity, limits)


PROTOCOL = HdfsProtocol()

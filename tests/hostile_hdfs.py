"""A scripted NameNode on loopback for the HDFS tests: WebHDFS over a file tree, with the knobs a hostile
server turns (where OPEN redirects, listings without end or without bottom, refusals)."""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, unquote, urlsplit

from replies import HDFS_NAMENODE_ROOT, http_reply

if TYPE_CHECKING:
    from hostile import Handler

Reply = bytes | Iterator[bytes]
"""An answer as `hostile.http` sends it: bytes, or chunks made lazily."""
Listing = Callable[[str], Reply]
"""The whole answer to LISTSTATUS of a directory (given its path from the root), instead of the tree's."""


def status(name: str, size: int | None) -> dict[str, Any]:
    """A FileStatus: a file of `size` bytes, a directory for None."""
    kind = "DIRECTORY" if size is None else "FILE"
    return {"pathSuffix": name, "type": kind, "length": size or 0, "owner": "hdfs", "permission": "755"}


def statuses(entries: list[dict[str, Any]]) -> bytes:
    return http_reply(200, {"Content-Type": "application/json"}, {"FileStatuses": {"FileStatus": entries}})


@dataclass
class FakeNameNode:
    """A NameNode holding `tree` (file path from the root -> content; directories are implied)."""

    tree: dict[str, bytes] = field(default_factory=dict)
    datanode: str | None = None
    """host:port the OPEN redirects name (None: this server, as `datanode` does not know its own)."""
    location: str | None = None
    """The Location of every OPEN's redirect, as it is (instead of one to `datanode`)."""
    listing: Listing | None = None
    refuse: bytes | None = None
    """The answer to every request but `GET /` (a 401, say)."""
    jmx: bytes | None = None
    """The answer to `/jmx` (None: NameNodeInfo's bean)."""
    summary: bool = True
    """Answer GETCONTENTSUMMARY (else 404)."""
    summary_answer: bytes | None = None
    """The answer to GETCONTENTSUMMARY instead (a 403 for a subtree dr.who may not read, say)."""
    targets: list[str] = field(default_factory=list)
    """Every request target received."""

    def children(self, directory: str) -> dict[str, int | None]:
        prefix = f"{directory}/" if directory else ""
        found: dict[str, int | None] = {}
        for path, content in self.tree.items():
            if path.startswith(prefix):
                name, _, rest = path[len(prefix) :].partition("/")
                found[name] = None if rest else len(content)
        return found

    def answer(self, target: str) -> Reply:
        self.targets.append(target)
        if self.refuse is not None:
            return self.refuse
        url = urlsplit(target)
        query = {k: v[0] for k, v in parse_qs(url.query).items()}
        path = unquote(url.path.removeprefix("/webhdfs/v1")).strip("/")
        op = query.get("op")
        if url.path == "/jmx":
            return self.jmx or http_reply(
                200, {}, {"beans": [{"SoftwareVersion": "3.4.0", "Total": 10, "FilesTotal": 2}]}
            )
        if op == "LISTSTATUS":
            if self.listing is not None:
                return self.listing(path)
            return statuses([status(n, s) for n, s in self.children(path).items()])
        if op == "GETCONTENTSUMMARY" and self.summary_answer is not None:
            return self.summary_answer
        if op == "GETCONTENTSUMMARY" and self.summary:
            files = [c for p, c in self.tree.items() if p.startswith(f"{path}/" if path else "")]
            document = {"directoryCount": 1, "fileCount": len(files), "length": sum(map(len, files))}
            return http_reply(200, {}, {"ContentSummary": document})
        if op == "OPEN" and path in self.tree:
            if self.location is not None:
                return http_reply(307, {"Location": self.location})
            if "datanode" not in query and self.datanode is not None:
                location = f"http://{self.datanode}{url.path}?{url.query}&datanode=true"
                return http_reply(307, {"Location": location})
            return http_reply(200, {"Content-Type": "application/octet-stream"}, self.tree[path])
        error = {"exception": "FileNotFoundException", "message": f"File /{path} does not exist."}
        return http_reply(404, {}, {"RemoteException": error})

    @property
    def handle(self) -> Handler:
        import hostile  # hostile.py imports this module for its scan network

        return hostile.http(self.answer, {"/": HDFS_NAMENODE_ROOT})


def endless_statuses(_: str) -> Iterator[bytes]:
    """A LISTSTATUS answer that never ends: chunks of FileStatus entries."""
    entry = json.dumps(status("part-00000.csv", 10)).encode() + b","
    head = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
    first = b'{"FileStatuses":{"FileStatus":['
    chunk = entry * 200
    body = itertools.chain([first], itertools.repeat(chunk))
    return itertools.chain([head], (b"%x\r\n%s\r\n" % (len(c), c) for c in body))


def one_more_level(path: str) -> bytes:
    """Every directory holds one more directory, and a file."""
    return statuses([status("deeper", None), status("x.txt", 3)])

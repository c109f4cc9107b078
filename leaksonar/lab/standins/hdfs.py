"""A STAND-IN for a Hadoop 3.3.6 NameNode's HTTP port, for the lab only: no Hadoop package exists here,
so this small server plays the part of a NameNode with WebHDFS enabled and no security. It is not Hadoop.

Written from the WebHDFS REST API documentation, it answers what a scanner looks at, in WebHDFS's JSON
shapes, from a tree it loads into memory at start (the files under `--root`; empty directories too):

- `GET /` serves the page that refreshes to `dfshealth.html`, as a NameNode's web UI does;
- `GET /jmx?qry=Hadoop:service=NameNode,name=NameNodeInfo` (and `...,name=FSNamesystem`) answer one bean
  with SoftwareVersion, Version, Total, Used, Free (FilesTotal, BlocksTotal, CapacityUsed ...);
- `GET /webhdfs/v1/<path>?op=LISTSTATUS | GETFILESTATUS | GETCONTENTSUMMARY` answer `FileStatuses`,
  `FileStatus`, `ContentSummary`; a missing path the `RemoteException` FileNotFoundException (404);
- `GET ...?op=OPEN[&offset=N][&length=N]` answers a 307 to this same server with `datanode=true` added,
  where a NameNode would name a DataNode; that request answers the bytes.

Unlike a NameNode, it refuses every method but GET and HEAD (403, AccessControlException): the lab's
data can only be read through it. Run: `python hdfs.py --listen IP:PORT --root DIR`. Standard library
and h11 only (no leaksonar import), so the lab runs it as a plain script.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
from dataclasses import dataclass, field
from http import HTTPStatus
from pathlib import Path
from urllib.parse import parse_qs, quote, unquote, urlsplit

import h11

VERSION = "3.3.6"
_REVISION = "1be78238728da9266a4f88195058f08fd012bf9c"
_PREFIX = "/webhdfs/v1"
_BLOCK = 128 * 1024 * 1024
_CAPACITY = 500 * 1024**3
_MTIME = 1_767_225_600_000
"""2026-01-01T00:00:00Z in milliseconds: every entry's modification and access time."""
_UI = (
    '<!DOCTYPE html PUBLIC "-//W3C//DTD XHTML 1.0 Transitional//EN" '
    '"http://www.w3.org/TR/xhtml1/DTD/xhtml1-transitional.dtd">\n'
    '<html xmlns="http://www.w3.org/1999/xhtml">\n<head>\n'
    '<meta http-equiv="REFRESH" content="0;url=dfshealth.html" />\n'
    "<title>Hadoop Administration</title>\n</head>\n</html>\n"
)
_HEALTH = (
    '<!DOCTYPE html><html><head><meta charset="utf-8"><title>Namenode information</title></head>'
    '<body><header><a class="navbar-brand">Hadoop</a></header><div id="tab-overview"></div></body></html>'
)


@dataclass(frozen=True, slots=True)
class Reply:
    status: int
    body: bytes = b""
    headers: list[tuple[str, str]] = field(default_factory=list)


def _json(status: int, document: object) -> Reply:
    return Reply(status, json.dumps(document).encode(), [("content-type", "application/json")])


def _remote(status: int, exception: str, package: str, message: str) -> Reply:
    """WebHDFS's error document."""
    return _json(
        status,
        {
            "RemoteException": {
                "exception": exception,
                "javaClassName": f"{package}.{exception}",
                "message": message,
            }
        },
    )


class Tree:
    """The namespace: directory path -> child names, file path -> bytes (paths from "/")."""

    def __init__(self, root: Path) -> None:
        self.files: dict[str, bytes] = {}
        self.directories: dict[str, list[str]] = {"/": []}
        for item in sorted(root.rglob("*")):
            path = "/" + item.relative_to(root).as_posix()
            parent = path.rsplit("/", 1)[0] or "/"
            self.directories[parent].append(path.rsplit("/", 1)[1])
            if item.is_dir():
                self.directories[path] = []
            else:
                self.files[path] = item.read_bytes()
        self.ids = {path: 16385 + i for i, path in enumerate(sorted([*self.directories, *self.files]))}

    def status(self, path: str, suffix: str) -> dict[str, object]:
        """The FileStatus of `path`, named `suffix` (a child's name in a listing; "" for the path itself)."""
        directory = path in self.directories
        return {
            "accessTime": 0 if directory else _MTIME,
            "blockSize": 0 if directory else _BLOCK,
            "childrenNum": len(self.directories[path]) if directory else 0,
            "fileId": self.ids[path],
            "group": "supergroup",
            "length": 0 if directory else len(self.files[path]),
            "modificationTime": _MTIME,
            "owner": "hdfs",
            "pathSuffix": suffix,
            "permission": "755" if directory else "644",
            "replication": 0 if directory else 3,
            "storagePolicy": 0,
            "type": "DIRECTORY" if directory else "FILE",
        }

    def summary(self, path: str) -> dict[str, int]:
        """ContentSummary's counts under `path` (a directory counts itself, as HDFS's does)."""
        below = path.rstrip("/") + "/"
        files = [p for p in self.files if p == path or p.startswith(below)]
        directories = [p for p in self.directories if p == path or p.startswith(below) or path == "/"]
        length = sum(len(self.files[p]) for p in files)
        return {
            "directoryCount": len(directories),
            "fileCount": len(files),
            "length": length,
            "quota": -1,
            "spaceConsumed": length * 3,
            "spaceQuota": -1,
        }


class StandIn:
    """Routes one request to its reply."""

    def __init__(self, tree: Tree, listen: str) -> None:
        self.tree, self.listen = tree, listen
        self.headers = [
            ("cache-control", "no-cache"),
            ("pragma", "no-cache"),
            ("x-content-type-options", "nosniff"),
            ("x-frame-options", "SAMEORIGIN"),
            ("x-xss-protection", "1; mode=block"),
        ]

    def reply(self, method: str, target: str) -> Reply:
        url = urlsplit(target)
        query = {k: v[0] for k, v in parse_qs(url.query).items()}
        if method not in ("GET", "HEAD"):
            return _remote(403, "AccessControlException", "org.apache.hadoop.security", "read-only stand-in")
        if url.path in ("/", "/index.html"):
            return Reply(200, _UI.encode(), [("content-type", "text/html; charset=utf-8")])
        if url.path == "/dfshealth.html":
            return Reply(200, _HEALTH.encode(), [("content-type", "text/html; charset=utf-8")])
        if url.path == "/jmx":
            return _json(200, {"beans": self._beans(query.get("qry", ""))})
        if url.path == _PREFIX or url.path.startswith(_PREFIX + "/"):
            path = "/" + unquote(url.path[len(_PREFIX) :]).strip("/")
            return self._webhdfs(path, query, target)
        return Reply(404, b"Not Found", [("content-type", "text/plain")])

    def _webhdfs(self, path: str, query: dict[str, str], target: str) -> Reply:
        op = query.get("op", "").upper()
        tree = self.tree
        if path not in tree.directories and path not in tree.files:
            return _remote(404, "FileNotFoundException", "java.io", f"File {path} does not exist.")
        if op == "LISTSTATUS":
            children = [f"{path.rstrip('/')}/{name}" for name in tree.directories.get(path, [])]
            names = tree.directories.get(path, [])
            statuses = [tree.status(p, n) for p, n in zip(children, names, strict=True)]
            if path in tree.files:
                statuses = [tree.status(path, "")]
            return _json(200, {"FileStatuses": {"FileStatus": statuses}})
        if op == "GETFILESTATUS":
            return _json(200, {"FileStatus": tree.status(path, "")})
        if op == "GETCONTENTSUMMARY":
            return _json(200, {"ContentSummary": tree.summary(path)})
        if op == "OPEN":
            return self._open(path, query, target)
        return _remote(
            400, "IllegalArgumentException", "java.lang", f'Invalid value for webhdfs parameter "op": {op}'
        )

    def _open(self, path: str, query: dict[str, str], target: str) -> Reply:
        if path not in self.tree.files:
            return _remote(404, "FileNotFoundException", "java.io", f"Path is not a file: {path}")
        if query.get("datanode") != "true":
            location = f"http://{self.listen}{_PREFIX}{quote(path)}?{urlsplit(target).query}&datanode=true"
            return Reply(307, b"", [("location", location), ("content-type", "application/octet-stream")])
        content = self.tree.files[path]
        try:
            offset = int(query.get("offset", "0"))
            end = offset + int(query["length"]) if "length" in query else len(content)
        except ValueError:
            return _remote(400, "IllegalArgumentException", "java.lang", "offset and length are numbers")
        return Reply(200, content[offset:end], [("content-type", "application/octet-stream")])

    def _beans(self, query: str) -> list[dict[str, object]]:
        used = sum(len(c) for c in self.tree.files.values()) * 3
        if query == "Hadoop:service=NameNode,name=NameNodeInfo":
            return [
                {
                    "name": query,
                    "modelerType": "org.apache.hadoop.hdfs.server.namenode.FSNamesystem",
                    "Total": _CAPACITY,
                    "Used": used,
                    "Free": _CAPACITY - used,
                    "SoftwareVersion": VERSION,
                    "Version": f"{VERSION}, r{_REVISION}",
                    "Safemode": "",
                    "ClusterId": "CID-5b2f7d1e-lab",
                    "BlockPoolId": "BP-1234567-127.0.0.1-1767225600000",
                    "TotalFiles": len(self.tree.files) + len(self.tree.directories),
                }
            ]
        if query == "Hadoop:service=NameNode,name=FSNamesystem":
            return [
                {
                    "name": query,
                    "modelerType": "FSNamesystem",
                    "tag.HAState": "active",
                    "FilesTotal": len(self.tree.files) + len(self.tree.directories),
                    "BlocksTotal": sum(1 for c in self.tree.files.values() if c),
                    "CapacityTotal": _CAPACITY,
                    "CapacityUsed": used,
                    "CapacityRemaining": _CAPACITY - used,
                    "NumLiveDataNodes": 1,
                }
            ]
        return []


async def _request(conn: h11.Connection, reader: asyncio.StreamReader) -> h11.Request | None:
    """The next request (a body is dropped); None when the client is gone or misbehaves."""
    request: h11.Request | None = None
    while True:
        event = conn.next_event()
        if event is h11.NEED_DATA:
            conn.receive_data(await reader.read(65536))
        elif isinstance(event, h11.Request):
            request = event
        elif isinstance(event, h11.EndOfMessage):
            return request
        elif not isinstance(event, h11.Data):
            return None


async def _serve(app: StandIn, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    conn = h11.Connection(h11.SERVER, max_incomplete_event_size=65536)
    with contextlib.suppress(h11.ProtocolError, ConnectionError):
        while (request := await _request(conn, reader)) is not None:
            reply = app.reply(request.method.decode(), request.target.decode("latin-1"))
            fields = [*app.headers, *reply.headers, ("content-length", str(len(reply.body)))]
            reason = HTTPStatus(reply.status).phrase
            answer = conn.send(h11.Response(status_code=reply.status, headers=fields, reason=reason)) or b""
            if reply.body and request.method != b"HEAD":
                answer += conn.send(h11.Data(data=reply.body)) or b""
            writer.write(answer + (conn.send(h11.EndOfMessage()) or b""))  # head and body in one segment
            await writer.drain()
            if conn.our_state is h11.MUST_CLOSE:
                break
            conn.start_next_cycle()
    writer.close()


async def main(listen: str, root: Path) -> None:
    host, _, port = listen.rpartition(":")
    app = StandIn(Tree(root), listen)
    server = await asyncio.start_server(lambda r, w: _serve(app, r, w), host, int(port))
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description="A Hadoop NameNode stand-in for the leaksonar lab (not Hadoop)."
    )
    parser.add_argument("--listen", required=True, help="IP:PORT to listen on")
    parser.add_argument("--root", required=True, type=Path, help="the directory whose tree it serves")
    args = parser.parse_args()
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main(args.listen, args.root))

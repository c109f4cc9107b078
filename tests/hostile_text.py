"""The hostile-text kit: servers on 127.0.0.1 (free ports) whose every string carries what a terminal, a
Markdown or HTML viewer or a spreadsheet could act on: Rich markup, escape sequences, BEL, NUL, bidi
controls, HTML, Markdown, formula prefixes and a 5,000-character string (`PAYLOADS`).

- An HTTP server posing as Elasticsearch: hostile version and cluster name, one index per payload (its
  name starts with the payload), hostile mapping field names and document values, an index whose search
  fails with a hostile error (stage 1); in its second stage every index is replaced and a ransom-note
  index appears.
- A RESP server posing as Redis: hostile version in INFO, hostile key names and values; in its second
  stage a new version and a ransom-note key.

`scanned_kit(directory)` scans the first stage and then the second into an index with the CLI, so the
index holds hostile findings and hostile change events (the `hostile_index` fixture of conftest.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from hostile import Handler, Reply, http, redis
from markdown_it import MarkdownIt
from replies import http_reply

LONG = "[/]" + "x" * 4993 + "\x1b[2J"
"""A 5,000-character string, hostile at both ends."""
PAYLOADS: tuple[str, ...] = (
    "[/]",
    "[bold red]",
    "[link=https://evil.example]x[/link]",
    ":skull:",
    "\x1b]0;title\x07",
    "\x1b[2J",
    "\x1b]8;;http://evil\x1b\\",
    "\x07",
    "\x00",
    "\u202e",
    "\u2066",
    "<script>alert(1)</script>",
    "<img src=x onerror=alert(1)>",
    "![t](http://evil/p.png)",
    "[x](javascript:alert(1))",
    '=HYPERLINK("http://evil","x")',
    "+1",
    "@SUM(1)",
    LONG,
)
"""What every string of the kit carries, one or all of them: for any test of an output medium."""
SHORT = tuple(p for p in PAYLOADS if p is not LONG)
MIX = "".join(SHORT)
"""Every payload but the long one, in one string."""

BTC = "1BoatSLRHtKNngkdXEeobR76b53LETtpyT"
NOTE = (
    f"All your data is backed up. You must pay 10 BTC to {BTC} In 48 hours, your data will be publicly "
    f"disclosed and deleted. {MIX}"
)
"""A ransom note that reads as one, carrying every short payload."""

VERSIONS = {
    "elasticsearch": (
        "[/]\x1b]8;;http://evil\x1b\\7\u202e[bold red]",
        ":skull:\x1b[2J\x00\x07[/link][/]\u2066",
    ),
    "redis": (f"7.0.15{MIX}", "7.2.4[/][link=https://evil.example]x[/link]\x1b]0;title\x07\u202e"),
}
"""Each server's version in stage 1 and stage 2 (Elasticsearch versions are cut to 40 characters)."""


def index_names(stage: int) -> list[str]:
    """Elasticsearch's indices: one per payload (the name starts with it) and one holding all; in stage 1
    also one whose search fails (FAILING); stage 2 replaces them all and adds a ransom note."""
    names = [f"{payload}s{stage}i{number}" for number, payload in enumerate(PAYLOADS)] + [f"all{stage}{MIX}"]
    return names + ([FAILING] if stage == 1 else [f"READ_ME_TO_RECOVER{MIX}"])


FAILING = "[/]\x1b[2Jbroken"
"""An index whose search answers HTTP 500 with a hostile error (in stage 1: a finding with an error is
partial, and stage 2 replaces every index)."""


FIELDS = [f"{payload}f{number}" for number, payload in enumerate(PAYLOADS)] + [f"name{MIX}"]
"""The mapping's field names of every index."""


@dataclass
class Kit:
    """The kit's servers and the stage they answer as (1 or 2)."""

    elasticsearch: int
    """Its port on 127.0.0.1."""
    redis: int
    stage: int = 1

    @property
    def ports(self) -> str:
        return f"{self.elasticsearch},{self.redis}"

    # Elasticsearch

    def _root(self) -> dict[str, Any]:
        return {
            "name": f"node{MIX}",
            "cluster_name": f"cluster{MIX}",
            "cluster_uuid": MIX,
            "version": {"number": VERSIONS["elasticsearch"][self.stage - 1], "build_flavor": MIX},
            "tagline": "You Know, for Search",
        }

    def http_answer(self, target: str) -> Reply:
        path, _, _ = target.partition("?")
        if path == "/":
            return http_reply(200, {"Content-Type": "application/json"}, self._root())
        if path == "/_cat/indices":
            rows = [
                {"index": name, "docs.count": "1000", "store.size": "65536"}
                for name in index_names(self.stage)
            ]
            return http_reply(200, {"Content-Type": "application/json"}, rows)
        if path == "/_mapping":
            properties = {field: {"type": "keyword"} for field in FIELDS}
            mappings = {name: {"mappings": {"properties": properties}} for name in index_names(self.stage)}
            return http_reply(200, {"Content-Type": "application/json"}, mappings)
        index = unquote(path.removesuffix("/_search").lstrip("/"))
        if index == FAILING:
            return http_reply(500, {"Content-Type": "application/json"}, {"error": {"reason": MIX}})
        source = {"message": NOTE} if index.startswith("READ_ME") else dict.fromkeys(FIELDS, MIX)
        return http_reply(
            200, {"Content-Type": "application/json"}, {"hits": {"hits": [{"_source": source}]}}
        )

    # Redis

    def _keys(self) -> list[bytes]:
        keys = [f"{payload}k{number}".encode() for number, payload in enumerate(PAYLOADS)]
        return keys + ([f"READ_ME_TO_RECOVER{MIX}".encode()] if self.stage == 2 else [])

    def resp_answer(self, command: list[bytes]) -> Reply:
        verb = command[0].upper()
        keys = self._keys()
        if verb == b"INFO":
            info = f"redis_version:{VERSIONS['redis'][self.stage - 1]}\r\nused_memory:1048576\r\n"
            return _bulk(f"{info}# Keyspace\r\ndb0:keys={len(keys)},expires=0\r\n".encode())
        if verb == b"SELECT":
            return b"+OK\r\n"
        if verb == b"SCAN":
            return b"*2\r\n$1\r\n0\r\n*%d\r\n%s" % (len(keys), b"".join(map(_bulk, keys)))
        if verb == b"TYPE":
            return b"+string\r\n"
        if verb == b"GETRANGE":
            return _bulk((NOTE if command[1].startswith(b"READ_ME") else MIX).encode())
        return b"-ERR unknown command '%s'\r\n" % verb[:20]


def _bulk(data: bytes) -> bytes:
    return b"$%d\r\n%s\r\n" % (len(data), data)


@contextlib.contextmanager
def serving(*handlers: Handler) -> Iterator[list[int]]:
    """Each handler on 127.0.0.1 (a free port), in a thread of their own; yield their ports."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()

    async def start() -> list[asyncio.Server]:
        return [await asyncio.start_server(handler, "127.0.0.1", 0) for handler in handlers]

    async def stop() -> None:
        for listener in listeners:
            listener.close()
        for task in asyncio.all_tasks() - {asyncio.current_task()}:
            task.cancel()

    listeners = asyncio.run_coroutine_threadsafe(start(), loop).result(10)
    try:
        yield [listener.sockets[0].getsockname()[1] for listener in listeners]
    finally:
        asyncio.run_coroutine_threadsafe(stop(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()


@contextlib.contextmanager
def kit() -> Iterator[Kit]:
    """The kit's servers, running, in stage 1."""
    holder: list[Kit] = []
    handlers = (
        http(lambda target: holder[0].http_answer(target), {}),
        redis(lambda command: holder[0].resp_answer(command)),
    )
    with serving(*handlers) as (es_port, redis_port):
        holder.append(Kit(es_port, redis_port))
        yield holder[0]


def leaksonar(*args: str) -> subprocess.CompletedProcess[str]:
    """The `leaksonar` command's run (any exit code), its output captured."""
    return subprocess.run(
        [sys.executable, "-m", "leaksonar", *args], capture_output=True, text=True, timeout=120
    )


@dataclass(frozen=True)
class HostileIndex:
    """An index holding the kit's two stages, and the kit still running (in stage 2)."""

    db: Path
    jsonl: Path
    """The second scan's finding records."""
    ip: str
    """The hostile host's address (both servers)."""
    kit: Kit
    scans: tuple[subprocess.CompletedProcess[str], ...]
    """The two `scan` runs (stdout to a pipe)."""

    @property
    def records(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.jsonl.read_text("utf-8").splitlines()[1:]]  # 1st: the scan


@contextlib.contextmanager
def scanned_kit(directory: Path) -> Iterator[HostileIndex]:
    """The kit scanned in stage 1, then in stage 2, into `directory`/index.db with the CLI."""
    db, jsonl = directory / "index.db", directory / "findings.jsonl"
    with kit() as running:
        scans = []
        for stage in (1, 2):
            running.stage = stage
            scans.append(
                leaksonar("scan", "127.0.0.1", "-p", running.ports, "--db", str(db), "--jsonl", str(jsonl))
            )
        yield HostileIndex(db, jsonl, "127.0.0.1", running, tuple(scans))


MARKDOWN_RENDERERS = {
    "commonmark+linkify": MarkdownIt("commonmark", {"linkify": True}).enable("linkify"),
    "gfm-like": MarkdownIt("gfm-like", {"linkify": True}),
}
"""The Markdown engines a letter is rendered with in the tests (GitHub's own, cmark-gfm, where installed)."""

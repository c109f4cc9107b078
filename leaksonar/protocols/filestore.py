"""The kit every file store (FTP, SMB, rsync, HDFS, S3) uses: a bounded breadth-first walk of its tree,
which files get their head read, and the record it becomes.

A protocol lists one directory at a time (`ListDirectory`, an async iterator of its entries) and reads a
file's first bytes itself; `walk` visits the tree breadth-first within the caps below, and
`Listing.present` turns what was listed into the record as `assess.filenames` describes it: each top
directory (files at the root: ``/``) a `Collection` whose rows are its files, size_bytes their known
sizes and fields its notable file names (the files whose heads were read, then the first few listed:
protocols cannot import the assessment's lexicon); the files and directories the documents of its
`Sample`, ``{"key": path, "size": n}`` (a directory ``{"key": path, "directory": True}``), with
``"value"``: the head bytes of a file that was read. `rows_estimated` is set when a cap or a failure
stopped the listing before its end.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import aclosing
from dataclasses import dataclass, field
from itertools import islice
from typing import Any

from leaksonar.model import FILE_HEAD, FILES_LISTED, Collection, Sample
from leaksonar.protocols.base import CommandRefused, ReplyTooLarge
from leaksonar.protocols.kit import SERVER_ERRORS, Learned

MAX_FILES = FILES_LISTED
"""Files and directories listed per service (`model.FILES_LISTED`)."""
MAX_DIRECTORIES = 500
"""Directories listed per service (each one exchange, or more, with the server)."""
MAX_DEPTH = 16
"""Deepest directory listed (the root is depth 0)."""
MAX_PATH = 1024
"""Longest path kept (characters); longer ones are passed over."""
MAX_HEADS = 20
"""Files whose head is read per service."""
MAX_HEAD = FILE_HEAD
"""Bytes of one head (`model.FILE_HEAD`)."""
MAX_FIELDS = 20
"""Notable file names kept per collection."""
ROOT = "/"
"""The collection of the files at the root."""

TEXT_EXTENSIONS = frozenset(
    {"csv", "tsv", "json", "jsonl", "sql", "txt", "log", "env", "yaml", "yml", "xml", "ini", "conf", "md"}
)
"""Extensions of the small files whose heads are read."""
_NOTE_NAME = re.compile(r"(?:read_?me|restore|decrypt|how_?to|recover|ransom|nodata4u|warning)", re.I)
"""A name a ransom note is given: its head is read whatever its size or extension."""


@dataclass(frozen=True, slots=True)
class Entry:
    """One listed file or directory. From `ListDirectory`, `path` is its name in the directory listed;
    in a `Listing`, its path from the root ("backup/shop.sql")."""

    path: str
    size: int | None = None
    directory: bool = False


ListDirectory = Callable[[str], AsyncIterator[Entry]]
"""The entries of one directory, given its path from the root ("" for the root). Raise CommandRefused
for a directory the server will not list, ReplyTooLarge for a listing over a byte cap: the walk notes
it and goes on. Any other failure ends the walk."""

ReadHead = Callable[[str], Awaitable[bytes]]
"""At most `MAX_HEAD` bytes of the file at a path from the root. Raise CommandRefused when the server
refuses that file (the next one is tried); any other server error ends the reading of heads."""


def extension(path: str) -> str:
    """The lower-cased extension of a path's last component ("env" for ``.env``; "" without a dot)."""
    name = path.rsplit("/", 1)[-1].lower()
    return name.rsplit(".", 1)[-1] if "." in name else ""


def wants_head(entry: Entry) -> bool:
    """Whether a file's head is read: a small text file (size known, at most `MAX_HEAD`), or any file
    named like a ransom note."""
    if entry.directory:
        return False
    if _NOTE_NAME.search(entry.path.rsplit("/", 1)[-1]):
        return True
    return entry.size is not None and entry.size <= MAX_HEAD and extension(entry.path) in TEXT_EXTENSIONS


def _name_ok(name: str) -> bool:
    """A name a listing may give: one path component, no control characters."""
    return bool(name) and name not in (".", "..") and "/" not in name and name.isprintable()


@dataclass(slots=True)
class Listing:
    """What the walk of one service listed so far, and the heads read; kept when the walk is cut."""

    entries: list[Entry] = field(default_factory=list)
    heads: dict[str, bytes] = field(default_factory=dict)
    complete: bool = False
    """The walk reached its end with no cap or failure leaving anything out."""
    walked: bool = False
    """The walk ended by itself (complete, or stopped by a cap it named), not by a failure."""

    def files(self) -> list[Entry]:
        return [e for e in self.entries if not e.directory]

    def head_candidates(self) -> list[Entry]:
        """The files whose heads are to be read, ransom-note names first, at most `MAX_HEADS`."""
        chosen = [e for e in self.files() if wants_head(e)]
        chosen.sort(key=lambda e: not _NOTE_NAME.search(e.path.rsplit("/", 1)[-1]))
        return chosen[:MAX_HEADS]

    def present(self, learned: Learned) -> None:
        """Put the listing into `learned` (module docstring): one collection per top directory."""
        groups: dict[str, list[Entry]] = {}
        for entry in self.entries:
            top, _, rest = entry.path.partition("/")
            groups.setdefault(top if rest or entry.directory else ROOT, []).append(entry)
        shown = list(islice(groups.items(), learned.limits.max_collections))
        learned.capped(len(shown), len(groups), "top directories")
        if not self.walked:
            learned.left_out("The listing was cut before its end: only the files listed are counted.")
        rows = size_bytes = 0
        for name, entries in shown:
            files = [e for e in entries if not e.directory]
            sizes = [e.size for e in files if e.size is not None]
            read = [e.path for e in files if e.path in self.heads]
            fields = tuple(dict.fromkeys(read + [e.path for e in files[:MAX_FIELDS]]))[:MAX_FIELDS]
            size = sum(sizes) if sizes or not files else None
            learned.collections.append(Collection("", name, len(files), size, fields, not self.complete))
            learned.samples.append(Sample("", name, tuple(self._document(e) for e in entries)))
            rows += len(files)
            size_bytes += sum(sizes)
        learned.rows, learned.size_bytes = rows, size_bytes

    def _document(self, entry: Entry) -> dict[str, Any]:
        if entry.directory:
            return {"key": entry.path, "directory": True}
        document: dict[str, Any] = {"key": entry.path, "size": entry.size}
        if entry.path in self.heads:
            document["value"] = self.heads[entry.path]
        return document


async def walk(list_directory: ListDirectory, listing: Listing, learned: Learned) -> None:
    """List the tree breadth-first from the root into `listing`, within `MAX_FILES` entries,
    `MAX_DIRECTORIES` directories, `MAX_DEPTH` levels and `MAX_PATH` characters per path. Names passed
    over count against `MAX_FILES` too (a server sending only odd names is stopped as soon), and a path
    listed again (a name twice in a listing, pages in a loop) is dropped: each file counted and each
    directory listed once. A directory the server refuses or over-sends is an error and the walk goes on;
    `listing.complete` is set when nothing was left out."""
    queue: list[tuple[str, int]] = [("", 0)]
    complete, visited, offered = True, 0, 0
    seen: set[str] = set()
    while queue:
        directory, depth = queue.pop(0)
        if visited >= MAX_DIRECTORIES or depth > MAX_DEPTH:
            learned.left_out(
                f"Directories past {MAX_DIRECTORIES} or deeper than {MAX_DEPTH} were not listed."
            )
            complete = False
            break
        visited += 1
        try:
            async with aclosing(list_directory(directory)) as entries:
                async for entry in entries:
                    if offered >= MAX_FILES:
                        learned.left_out(f"The listing stopped at {MAX_FILES} files and directories.")
                        listing.walked = True
                        return
                    offered += 1
                    path = f"{directory}/{entry.path}" if directory else entry.path
                    if not _name_ok(entry.path) or len(path) > MAX_PATH:
                        learned.left_out(f"Odd names, or paths over {MAX_PATH} characters, were passed over.")
                        complete = False
                        continue
                    if path in seen:
                        continue
                    seen.add(path)
                    listing.entries.append(Entry(path, entry.size, entry.directory))
                    if entry.directory:
                        queue.append((path, depth + 1))
        except (CommandRefused, ReplyTooLarge) as exc:
            learned.failed(f"Listing /{directory}", exc)
            complete = False
    listing.complete, listing.walked = complete, True


async def read_heads(listing: Listing, read_head: ReadHead, learned: Learned) -> None:
    """The heads of the files the kit chooses (`Listing.head_candidates`) into `listing.heads`; a file the
    server refuses is noted and the next one tried, any other failure noted and the reading stopped."""
    for entry in listing.head_candidates():
        try:
            listing.heads[entry.path] = await read_head(entry.path)
        except SERVER_ERRORS as exc:
            learned.failed(f"Reading the head of /{entry.path}", exc)
            if not isinstance(exc, CommandRefused):
                return


async def survey(list_directory: ListDirectory, read_head: ReadHead, learned: Learned) -> None:
    """A file store's whole listing: the walk, then the heads, presented in `learned` however they end
    (a deadline, a broken connection: what was listed is kept)."""
    listing = Listing()
    try:
        await walk(list_directory, listing, learned)
        await read_heads(listing, read_head, learned)
    finally:
        listing.present(learned)

"""rsync daemon: recognised from its ``@RSYNCD:`` greeting; inspected read-only, as a client without a
password.

Inspection asks for the module list (an empty module name), opens each listed module to learn whether
it wants a password (``@RSYNCD: AUTHREQD``: none is ever sent) and walks the readable ones with the
file-store kit (`filestore.walk`): the root's entries are the readable modules, and each directory is
one connection asking the daemon to send it as ``rsync --list-only --dirs`` would (``--server --sender
-d . module/dir/``). A chosen file's head is one more connection asking for that file alone, whole-file
(no checksums), read to the head cap and then hung up on. Protocol 27 is spoken: its file list has no
variable-length integers and no incremental recursion. Nothing that writes is ever asked (the daemon
is always the sender).
"""

from __future__ import annotations

import re
import struct
from collections.abc import AsyncIterator
from dataclasses import dataclass
from functools import partial

from leaksonar.model import Identity, Inspection, Limits, Software
from leaksonar.protocols.base import (
    AuthRequired,
    BoundedStream,
    CommandRefused,
    Endpoint,
    ProtocolError,
    ReplyTooLarge,
)
from leaksonar.protocols.filestore import MAX_HEAD, MAX_PATH, Entry, survey
from leaksonar.protocols.kit import Learned, run_inspection

NAME = "rsync"
VERSION = b"@RSYNCD: 27\n"
"""Our greeting: protocol 27 (rsync 2.6.0 on), which every daemon since still speaks."""
MAX_MODULES = 500
"""Lines of the module list read (message-of-the-day lines included)."""
_MAX_LINE = 4096
_MAX_MODULE_NAME = 100
"""Characters of a module name opened (and named in the record)."""
_MAX_NAME = 4096
"""Bytes of one name in a file list."""
_GREETING = re.compile(rb"\A@RSYNCD: (\d{1,4})(?:\.(\d{1,4}))?[ \r\n]")
_WILDCARD = re.compile(r"[*?\[]")
"""Characters that make the daemon expand a path component (then they and backslashes are escaped)."""
_MPLEX_BASE = 7
_MSG_DATA = 0
_MSG_ERRORS = (1, 3)
"""MSG_ERROR_XFER and MSG_ERROR: the daemon's error text, kept for the refusal."""
_SAME_MODE, _SAME_NAME, _LONG_NAME, _SAME_TIME = 1 << 1, 1 << 5, 1 << 6, 1 << 7
_DIRECTORY, _REGULAR, _TYPE = 0o040000, 0o100000, 0o170000


def _text(raw: bytes) -> str:
    return raw.strip().decode("utf-8", "replace")[:200]


async def _open(endpoint: Endpoint, limits: Limits, module: str) -> BoundedStream:
    """A connection with module `module` opened ("" asks for the module list, left unread). AuthRequired
    when the module wants a password, CommandRefused when the daemon refuses it."""
    stream = await BoundedStream.open(endpoint, limits)
    try:
        greeting = await stream.read_line(_MAX_LINE)
        if not _GREETING.match(greeting):
            raise ProtocolError(f"unexpected greeting {greeting[:40]!r}")
        await stream.send(VERSION + module.encode() + b"\n")
        if not module:
            return stream
        for _ in range(MAX_MODULES):
            line = await stream.read_line(_MAX_LINE)
            if line.startswith(b"@RSYNCD: OK"):
                return stream
            if line.startswith(b"@RSYNCD: AUTHREQD"):
                raise AuthRequired(f"module {module} wants a password")
            if line.startswith((b"@ERROR", b"@RSYNCD: EXIT")):
                raise CommandRefused(_text(line))
        raise ReplyTooLarge(f"more than {MAX_MODULES} lines before the module opened")
    except BaseException:
        stream.writer.transport.abort()
        raise


async def modules(endpoint: Endpoint, limits: Limits) -> list[str]:
    """The names the module list gives (``name<TAB>comment`` lines, other lines being the message of the
    day, up to ``@RSYNCD: EXIT``), at most `MAX_MODULES` lines read."""
    async with await _open(endpoint, limits, "") as stream:
        names: list[str] = []
        for _ in range(MAX_MODULES):
            line = await stream.read_line(_MAX_LINE)
            if line.startswith(b"@RSYNCD: EXIT"):
                return names
            if line.startswith(b"@ERROR"):
                raise CommandRefused(_text(line))
            if b"\t" in line:
                names.append(line.split(b"\t", 1)[0].strip().decode("utf-8", "replace"))
        raise ReplyTooLarge(f"a module list of more than {MAX_MODULES} lines")


class _Multiplexed:
    """The daemon's multiplexed output: data packets read through, messages read and set aside, within
    `limits.max_bytes` in all."""

    def __init__(self, stream: BoundedStream) -> None:
        self.stream, self.left = stream, stream.limits.max_bytes
        self.buffer = bytearray()
        self.error = ""

    async def read(self, n: int) -> bytes:
        while len(self.buffer) < n:
            header = await self._raw(4)
            (word,) = struct.unpack("<I", header)
            tag, length = (word >> 24) - _MPLEX_BASE, word & 0xFFFFFF
            if tag < 0:
                raise ProtocolError(f"a packet of tag {tag + _MPLEX_BASE} in the multiplexed stream")
            payload = await self._raw(length)
            if tag == _MSG_DATA:
                self.buffer += payload
            elif tag in _MSG_ERRORS:
                self.error = _text(payload)
        data = bytes(self.buffer[:n])
        del self.buffer[:n]
        return data

    async def _raw(self, n: int) -> bytes:
        self.left -= n
        if self.left < 0:
            raise ReplyTooLarge(f"reply over the {self.stream.limits.max_bytes}-byte cap")
        try:
            return await self.stream.read_exactly(n)
        except EOFError as exc:  # the daemon hung up: its error message, if it sent one, says why
            if self.error:
                raise CommandRefused(self.error) from exc
            raise

    async def int32(self) -> int:
        (value,) = struct.unpack("<i", await self.read(4))
        return int(value)

    async def byte(self) -> int:
        return (await self.read(1))[0]


@dataclass(frozen=True, slots=True)
class _Listed:
    name: str
    size: int | None
    """None: a negative size."""
    mode: int


async def _file_list(wire: _Multiplexed) -> AsyncIterator[_Listed]:
    """The entries of a protocol-27 file list (sent without -o -g -l -D: no ids, links or devices)."""
    name, mode = b"", 0
    while flags := await wire.byte():
        same = await wire.byte() if flags & _SAME_NAME else 0
        length = await wire.int32() if flags & _LONG_NAME else await wire.byte()
        if same > len(name) or not 0 <= length <= _MAX_NAME:
            raise ProtocolError("a file list name out of bounds")
        name = name[:same] + await wire.read(length)
        size = await wire.int32()
        if size == -1:
            (size,) = struct.unpack("<q", await wire.read(8))
        if not flags & _SAME_TIME:
            await wire.read(4)
        if not flags & _SAME_MODE:
            mode = await wire.int32() & 0xFFFFFFFF
        yield _Listed(name.decode("utf-8", "replace"), size if size >= 0 else None, mode)


def _argument(path: str) -> bytes:
    """`path` ("module/dir") as a sender argument. The daemon expands each component holding a wildcard
    (a backslash escaping there) and takes the others as they are, so only in the first are wildcards
    and backslashes escaped."""
    return "/".join(
        re.sub(r"([\\*?\[])", r"\\\1", part) if _WILDCARD.search(part) else part for part in path.split("/")
    ).encode()


async def _send(endpoint: Endpoint, limits: Limits, path: str, *, directory: bool) -> BoundedStream:
    """A connection on which the daemon sends the directory or file `path` (from the root: its first
    component is the module), its file list next to be read."""
    module = path.split("/", 1)[0]
    stream = await _open(endpoint, limits, module)
    try:
        options = [b"--server", b"--sender", b"-d"] if directory else [b"--server", b"--sender"]
        target = _argument(path) + (b"/" if directory else b"")
        if len(target) > MAX_PATH + 16:
            raise CommandRefused("path too long to ask for")
        await stream.send(b"".join(a + b"\n" for a in [*options, b".", target]) + b"\n")
        await stream.read_exactly(4)  # the checksum seed
        await stream.send(struct.pack("<i", 0))  # no filter rules
        return stream
    except BaseException:
        stream.writer.transport.abort()
        raise


async def list_directory(
    endpoint: Endpoint, limits: Limits, readable: list[str], path: str
) -> AsyncIterator[Entry]:
    """The kit's `ListDirectory`: the readable modules at the root, a directory's entries below."""
    if not path:
        for module in readable:
            yield Entry(module, None, True)
        return
    stream = await _send(endpoint, limits, path, directory=True)
    try:
        wire = _Multiplexed(stream)
        async for listed in _file_list(wire):
            kind = listed.mode & _TYPE
            if listed.name != "." and kind in (_DIRECTORY, _REGULAR):
                yield Entry(listed.name, None if kind == _DIRECTORY else listed.size, kind == _DIRECTORY)
    finally:
        stream.writer.transport.abort()


async def read_head(endpoint: Endpoint, limits: Limits, path: str) -> bytes:
    """The first `MAX_HEAD` bytes (at most `max_bytes`) of file `path`, sent whole (no block checksums);
    the connection is dropped at the cap."""
    stream = await _send(endpoint, limits, path, directory=False)
    try:
        await stream.send(struct.pack("<5i", 0, 0, 0, 0, 0))  # file 0, an empty checksum header
        wire = _Multiplexed(stream)
        files = [listed async for listed in _file_list(wire)]
        if len(files) != 1 or files[0].mode & _TYPE != _REGULAR:
            raise CommandRefused(wire.error or "the daemon did not send the one file asked for")
        await wire.read(4 + 4 + 16)  # the list's error flag, the file index, the checksum header
        cap = min(MAX_HEAD, limits.max_bytes)
        head = bytearray()
        while len(head) < cap and (token := await wire.int32()):
            if token < 0:
                raise ProtocolError("a block reference where only literal data was due")
            head += await wire.read(min(token, cap - len(head)))
        return bytes(head)
    finally:
        stream.writer.transport.abort()


def _module_ok(name: str) -> bool:
    """A module name that is safe to ask for: printable, one component, and without a leading dash (a
    daemon whose option parser reads options wherever they stand, popt's default, would take the path
    ``-e/x`` for the option ``-e /x``; rsync 3.5.0's does not, but nothing is left to chance)."""
    return 0 < len(name) <= _MAX_MODULE_NAME and name.isprintable() and "/" not in name and name[0] != "-"


async def _check(endpoint: Endpoint, limits: Limits, module: str) -> None:
    """Open `module` and hang up: AuthRequired or CommandRefused say why it is not readable."""
    stream = await _open(endpoint, limits, module)
    stream.writer.transport.abort()


async def _inspect(endpoint: Endpoint, learned: Learned) -> None:
    limits = learned.limits
    names = await modules(endpoint, limits)
    learned.databases = len(names)
    shown = names[: limits.max_collections]
    learned.capped(len(shown), len(names), "modules")
    readable, locked, refused = [], [], []
    for name in shown:
        if not _module_ok(name):
            learned.left_out(
                f"Odd module names (a leading dash included), or names over {_MAX_MODULE_NAME} characters,"
                " were passed over."
            )
            continue
        try:
            await _check(endpoint, limits, name)
            readable.append(name)
        except AuthRequired:
            locked.append(name)
        except CommandRefused as exc:
            refused.append(name)
            learned.failed(f"Opening module {name}", exc)
    learned.details["modules"] = {"readable": readable, "auth_required": locked, "refused": refused}
    if not readable:
        if locked:
            raise AuthRequired("every module wants a password")
        return
    learned.auth = "none"
    await survey(
        partial(list_directory, endpoint, limits, readable), partial(read_head, endpoint, limits), learned
    )


class RsyncProtocol:
    name = NAME
    default_ports = (873,)
    probe = None

    def match(self, reply: bytes) -> Identity | None:
        """An rsync daemon's greeting, ``@RSYNCD: <protocol>[.<sub>] [digests]``: software "rsync" without
        a version (the greeting gives only the protocol's; openrsync greets alike)."""
        if not _GREETING.match(reply):
            return None
        banner = reply.split(b"\n", 1)[0].strip()[:200].decode("ascii", "replace")
        return Identity(NAME, Software(NAME), "unknown", banner)

    async def inspect(self, endpoint: Endpoint, identity: Identity, limits: Limits) -> Inspection:
        """The readable modules' trees, bounded, with the heads of a few files; read-only, never raises."""
        return await run_inspection(NAME, partial(_inspect, endpoint), identity, limits)


PROTOCOL = RsyncProtocol()

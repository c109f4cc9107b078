"""FTP: recognised from the 220 greeting; inspected read-only as the anonymous user.

Inspection logs in as ``anonymous`` with leaksonar's identifying string as the password (530: auth
"required"), asks FEAT whether MLSD is spoken (else LIST, read as Unix ``ls -l`` or DOS lines), walks
the tree from ``/`` with the file-store kit (`filestore.walk`) and reads the heads of the files it
chooses with RETR, closing the data connection at the head cap. Each listing or transfer opens a
passive data connection (PASV, EPSV over IPv6) to the control connection's own address: the address a
227 reply names is the server's word and is ignored, only its port is used. Nothing that writes
(STOR, DELE, MKD, RNFR, SITE ...) is ever sent.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
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
from leaksonar.protocols.filestore import MAX_HEAD, Entry, survey
from leaksonar.protocols.kit import Learned, count, run_inspection
from leaksonar.protocols.useragent import USER_AGENT

NAME = "ftp"
PASSWORD = re.sub(r"[\x00-\x1f\x7f]", "", USER_AGENT)
"""The anonymous password: leaksonar's identifying string (its info URL), as the convention asks."""
_MAX_LINE = 4096
"""Bytes of one control or listing line."""
_MAX_REPLY_LINES = 100
"""Lines of one multi-line reply."""
_REPLY = re.compile(rb"\A([1-5]\d\d)([ -])")
_GREETING = re.compile(rb"\A220[ -]")
_PASV = re.compile(rb"(\d{1,3}),(\d{1,3}),(\d{1,3}),(\d{1,3}),(\d{1,3}),(\d{1,3})")
_EPSV = re.compile(rb"\(([!-~])\1\1(\d{1,5})\1\)")
_SOFTWARE: tuple[tuple[re.Pattern[bytes], str], ...] = (
    (re.compile(rb"vsFTPd ?([\w.]{1,32})?", re.I), "vsftpd"),
    (re.compile(rb"ProFTPD ?(\d[\w.]{0,31})?", re.I), "proftpd"),
    (re.compile(rb"Pure-FTPd()", re.I), "pure-ftpd"),
    (re.compile(rb"FileZilla Server(?: version)? ?(\d[\w.]{0,31}(?: beta)?)?", re.I), "filezilla-server"),
    (re.compile(rb"Microsoft FTP Service()", re.I), "microsoft-ftp"),
)
_UNIX = re.compile(
    r"\A([dl\-])\S{9}\S*\s+(?:\S+\s+){2,3}?(\d+)\s+"
    r"[A-Za-z]{3}\s+\d{1,2}\s+(?:\d{1,2}:\d{2}|\d{4})\s(.+)\Z"
)
_DOS = re.compile(r"\A\d{2}-\d{2}-\d{2,4}\s+\d{1,2}:\d{2}\s*[AP]M\s+(<DIR>|\d+)\s+(.+)\Z", re.I)


def software(greeting: bytes) -> Software | None:
    """The server's product and version, as its greeting names them (None: a generic greeting)."""
    for pattern, name in _SOFTWARE:
        if found := pattern.search(greeting):
            version = found.group(1)
            return Software(name, version.decode("ascii", "replace") if version else None)
    return None


def parse_line(line: str, mlsd: bool) -> Entry | None:
    """One entry of an MLSD, Unix ``ls -l`` or DOS listing (a name, not a path); None for anything else
    (``total``, ``.``, a device, a line that is none of these)."""
    if mlsd:
        facts, _, name = line.partition(" ")
        pairs = dict(f.split("=", 1) for f in facts.lower().split(";") if "=" in f)
        kind = pairs.get("type")
        if kind not in ("file", "dir") or not name:
            return None
        return Entry(name, count(pairs.get("size")), kind == "dir")
    if unix := _UNIX.match(line):
        kind, size, name = unix.groups()
        if kind == "l":  # a link: listed as a file of unknown size, never followed
            return Entry(name.split(" -> ", 1)[0], None)
        return Entry(name, count(size), kind == "d")
    if dos := _DOS.match(line):
        size, name = dos.groups()
        return Entry(name, None, True) if size.upper() == "<DIR>" else Entry(name, count(size))
    return None


class _Session:
    """One logged-in control connection. A transfer's closing reply is read before the next command."""

    def __init__(self, endpoint: Endpoint, stream: BoundedStream) -> None:
        self.endpoint, self.stream, self.limits = endpoint, stream, stream.limits
        self.pending = 0
        self.mlsd = False

    async def read_reply(self) -> tuple[int, str, list[bytes]]:
        """One reply, a multi-line one read to its last line: its code, its first line's text and its
        other lines."""
        line = await self.stream.read_line(_MAX_LINE)
        if (start := _REPLY.match(line)) is None:
            raise ProtocolError(f"unexpected line {line[:40]!r} where an FTP reply was due")
        code, more = start.groups()
        text = line[4:].strip().decode("utf-8", "replace")[:200]
        lines: list[bytes] = []
        while more == b"-":
            if len(lines) >= _MAX_REPLY_LINES:
                raise ReplyTooLarge(f"reply of more than {_MAX_REPLY_LINES} lines")
            line = await self.stream.read_line(_MAX_LINE)
            more = b"-" if not line.startswith(code + b" ") else b" "
            lines.append(line.strip())
        return int(code), text, lines

    async def command(self, line: bytes) -> tuple[int, str, list[bytes]]:
        """Send one command (after reading any transfer's closing reply) and read its reply."""
        if b"\r" in line or b"\n" in line:
            raise ProtocolError("a name holds a line break")
        while self.pending:
            self.pending -= 1
            await self.read_reply()
        await self.stream.send(line + b"\r\n")
        return await self.read_reply()

    async def login(self) -> None:
        """Anonymous login; AuthRequired when the server wants a real account."""
        code, text, _ = await self.command(b"USER anonymous")
        if code == 331:
            code, text, _ = await self.command(b"PASS " + PASSWORD.encode())
        if code in (331, 332, 530):
            raise AuthRequired(f"{code} {text}")
        if code != 230:
            raise CommandRefused(f"anonymous login answered {code} {text}")
        code, _, features = await self.command(b"FEAT")
        self.mlsd = code == 211 and any(f.upper().startswith(b"MLST") for f in features)
        await self.command(b"TYPE I")

    async def _data(self) -> BoundedStream:
        """A passive data connection to the control connection's own address, at the port the server
        names (the address in its reply is ignored)."""
        if ":" in self.endpoint.ip:
            code, text, _ = await self.command(b"EPSV")
            found = _EPSV.search(text.encode()) if code == 229 else None
            port = int(found.group(2)) if found else 0
        else:
            code, text, _ = await self.command(b"PASV")
            found = _PASV.search(text.encode()) if code == 227 else None
            port = int(found.group(5)) * 256 + int(found.group(6)) if found else 0
        if found is None:
            raise CommandRefused(f"passive mode answered {code} {text}")
        if not 0 < port < 65536:
            raise ProtocolError(f"passive mode named port {port}")
        return await BoundedStream.open(Endpoint(self.endpoint.ip, port), self.limits)

    async def transfer(self, line: bytes) -> BoundedStream:
        """The data connection of command `line` (LIST, MLSD, RETR), once the server has accepted it."""
        data = await self._data()
        try:
            code, text, _ = await self.command(line)
        except BaseException:
            data.writer.transport.abort()
            raise
        if code in (125, 150):
            self.pending += 1
        elif code >= 300:
            data.writer.transport.abort()
            raise CommandRefused(f"{code} {text}")
        return data

    async def list_directory(self, path: str) -> AsyncIterator[Entry]:
        """The entries of directory `path` (from the root), within `max_bytes` in all."""
        data = await self.transfer((b"MLSD /" if self.mlsd else b"LIST /") + path.encode())
        left = self.limits.max_bytes
        try:
            while line := await _next_line(data):
                left -= len(line)
                if left < 0:
                    raise ReplyTooLarge(f"listing over the {self.limits.max_bytes}-byte cap")
                text = line.rstrip(b"\r\n").decode("utf-8", "replace")
                if (entry := parse_line(text, self.mlsd)) is not None:
                    yield entry
        finally:
            data.writer.transport.abort()

    async def read_head(self, path: str) -> bytes:
        """The first `MAX_HEAD` bytes (at most `max_bytes`) of file `path`; the rest is never read."""
        data = await self.transfer(b"RETR /" + path.encode())
        cap = min(MAX_HEAD, self.limits.max_bytes)
        head = bytearray()
        try:
            while len(head) < cap and (chunk := await data.read_some(cap - len(head))):
                head += chunk
        finally:
            data.writer.transport.abort()
        return bytes(head)


async def _next_line(data: BoundedStream) -> bytes:
    """The next line of a listing (b"" at its end; a last line without terminator is a line)."""
    try:
        return await data.read_line(_MAX_LINE)
    except EOFError as exc:  # asyncio.IncompleteReadError: the end, with what came before it
        return getattr(exc, "partial", b"")


async def _inspect(endpoint: Endpoint, learned: Learned) -> None:
    async with await BoundedStream.open(endpoint, learned.limits) as stream:
        session = _Session(endpoint, stream)
        code, text, _ = await session.read_reply()
        if code != 220:
            raise CommandRefused(f"the greeting was {code} {text}")
        await session.login()
        learned.auth, learned.databases = "none", 1  # one tree: the anonymous user's
        await survey(session.list_directory, session.read_head, learned)


class FtpProtocol:
    name = NAME
    default_ports = (21,)
    probe = None

    def match(self, reply: bytes) -> Identity | None:
        """An FTP greeting: a 220 reply that is not an SMTP server's."""
        if not _GREETING.match(reply) or b"SMTP" in reply[:1024].upper():
            return None
        banner = reply.split(b"\n", 1)[0][4:].strip()[:200].decode("utf-8", "replace")
        return Identity(NAME, software(reply[:4096]), "unknown", banner)

    async def inspect(self, endpoint: Endpoint, identity: Identity, limits: Limits) -> Inspection:
        """The anonymous user's tree, bounded, with the heads of a few files; read-only, never raises."""
        return await run_inspection(NAME, partial(_inspect, endpoint), identity, limits)


PROTOCOL = FtpProtocol()

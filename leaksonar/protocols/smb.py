"""SMB2/3: recognised from the answer to an SMB2 NEGOTIATE; inspected read-only as the guest user.

Identification sends one SMB2 NEGOTIATE (dialects 2.0.2 to 3.0.2) and reads the answer's header magic
(``\\xfeSMB``; ``\\xffSMB`` for a server speaking only SMB1), with the dialect and whether signing is
required. Inspection runs `smbprotocol` (blocking) in worker threads: it negotiates, sets up an NTLM
session as user ``guest`` with an empty password (a refusal: auth "required"; pyspnego cannot send a
truly anonymous NTLM session), then tries a tree connect to each of `SHARE_NAMES` (smbprotocol has no
srvsvc share enumeration, and none is written by hand here). The readable shares are the top
directories of one tree that the file-store kit walks (each share one collection); the heads of the
files it chooses are read through handles opened for reading only. Each blocking call runs under
`Limits.timeout`: past it, or past the inspection's deadline, the socket is shut down so that the
thread blocked in smbprotocol returns. Every message the server sends is capped at `MAX_MESSAGE`
bytes before smbprotocol allocates it, and every directory listing answer is checked (`MAX_LISTING`
bytes, entries that do not overlap) before smbprotocol parses it.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import socket
import struct
import uuid
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import Any, TypeVar

import smbprotocol.connection
from smbprotocol.connection import Connection
from smbprotocol.exceptions import (
    BadNetworkName,
    LogonFailure,
    NoMoreFiles,
    SMBAuthenticationError,
    SMBConnectionClosed,
    SMBResponseException,
)
from smbprotocol.file_info import FileInformationClass
from smbprotocol.open import (
    CreateDisposition,
    CreateOptions,
    DirectoryAccessMask,
    FileAttributes,
    FilePipePrinterAccessMask,
    ImpersonationLevel,
    Open,
    ShareAccess,
    SMB2QueryDirectoryRequest,
)
from smbprotocol.session import Session
from smbprotocol.transport import Tcp
from smbprotocol.tree import TreeConnect

from leaksonar.model import Identity, Inspection, Limits, Software
from leaksonar.protocols.base import AuthRequired, CommandRefused, Endpoint, ProtocolError, ReplyTooLarge
from leaksonar.protocols.filestore import MAX_HEAD, Entry, Listing, read_heads, walk
from leaksonar.protocols.kit import SERVER_ERRORS, Learned, run_inspection

NAME = "smb"
GUEST = "guest"
SHARE_NAMES = (
    "public",
    "private",
    "share",
    "shared",
    "shares",
    "data",
    "backup",
    "backups",
    "files",
    "users",
    "home",
    "homes",
    "Documents",
    "ftp",
    "upload",
    "uploads",
    "export",
    "exports",
    "media",
    "scans",
    "transfer",
    "temp",
    "www",
    "dump",
    "db",
    "C$",
    "ADMIN$",
)
"""Share names tried (no share enumeration): the common ones, administrative shares last."""
MAX_MESSAGE = 1 << 20
"""Bytes of one SMB message from the server (every answer asked for is at most 64 KiB of payload)."""
_DIALECTS = (0x0202, 0x0210, 0x0300, 0x0302)
_SHARE_ACCESS = ShareAccess.FILE_SHARE_READ | ShareAccess.FILE_SHARE_WRITE | ShareAccess.FILE_SHARE_DELETE
_DIRECTORY_ATTRIBUTE = 0x10
_REPARSE_POINT = 0x400
T = TypeVar("T")
_THREADS = ThreadPoolExecutor(max_workers=16, thread_name_prefix="smb")
"""smbprotocol's blocking calls: a pool of their own, so that servers that hang them never starve the
event loop's default executor (name lookups)."""


def _negotiate_request() -> bytes:
    """One SMB2 NEGOTIATE, framed for direct TCP (4-byte length)."""
    header = b"\xfeSMB" + struct.pack("<HHIHHIIQIIQ16s", 64, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, b"")
    body = struct.pack("<HHHHI16sQ", 36, len(_DIALECTS), 1, 0, 0, b"leaksonar-probe!", 0)
    body += b"".join(struct.pack("<H", d) for d in _DIALECTS)
    message = header + body
    return struct.pack(">I", len(message)) + message


PROBE = _negotiate_request()


def dialect_name(revision: int) -> str:
    """ "3.0.2" for 0x0302; "2.?" for the wildcard 0x02FF."""
    major, minor = revision >> 8, revision & 0xFF
    return f"{major}.?" if minor == 0xFF else f"{major}.{minor >> 4}.{minor & 0xF}"


def samba_name(guid: bytes) -> str | None:
    """The NetBIOS name Samba puts in its server GUID (lower-case, zero-padded), or None: another server's
    GUID (Windows' is random)."""
    name = guid.rstrip(b"\0")
    if 0 < len(name) < len(guid) and re.fullmatch(rb"[a-z0-9][a-z0-9._-]*", name):
        return name.decode("ascii")
    return None


class _CappedTcp(Tcp):  # type: ignore[misc]
    """smbprotocol's transport, refusing a message announced over `MAX_MESSAGE` (it would allocate it)."""

    too_large = False
    """Set when the server announced a message over the cap (and the connection was closed)."""

    def recv(self, timeout: float) -> bytes:
        size, timeout = self._recv(4, timeout)
        if not size:
            return b""
        (length,) = struct.unpack(">L", size)
        if length > MAX_MESSAGE:
            self.too_large = True
            self.close()
            return b""
        message: bytes | None = self._recv(length, timeout)[0]
        return message or b""


smbprotocol.connection.Tcp = _CappedTcp  # every smbprotocol connection in this process is capped

MAX_LISTING = 64 * 1024
"""Bytes of one directory listing answer (what smbprotocol asks for at most)."""
_ENTRY = 64
"""Bytes of a FILE_DIRECTORY_INFORMATION entry before its name (whose length is its last field)."""
_unpack_listing = SMB2QueryDirectoryRequest.unpack_response


def _checked_listing(file_information_class: int, buffer: bytes) -> list[Any]:
    """smbprotocol's parse of a directory listing answer, once its size and entry offsets are checked:
    smbprotocol copies the rest of the buffer for every entry, so entries a few bytes apart would cost
    minutes of CPU in a thread that cannot be stopped. ValueError for an answer out of bounds."""
    if file_information_class == FileInformationClass.FILE_DIRECTORY_INFORMATION:
        if len(buffer) > MAX_LISTING:
            raise ValueError(f"a directory listing of {len(buffer)} bytes")
        offset = 0
        while step := _entry_step(buffer, offset):
            offset += step
    return list(_unpack_listing(file_information_class, buffer))


def _entry_step(buffer: bytes, offset: int) -> int:
    """The offset of the entry after the one at `offset` (0: the last), checked to pass this one whole."""
    if offset + _ENTRY > len(buffer):
        raise ValueError("a directory listing entry past the answer's end")
    step, name_length = (
        struct.unpack_from("<I", buffer, offset)[0],
        struct.unpack_from("<I", buffer, offset + 60)[0],
    )
    if step and step < _ENTRY + name_length:
        raise ValueError("directory listing entries that overlap")
    return int(step)


SMB2QueryDirectoryRequest.unpack_response = staticmethod(_checked_listing)  # every listing is checked


def _translate(exc: Exception) -> Exception:
    """One of the kit's failures for an smbprotocol exception."""
    if isinstance(exc, SMBAuthenticationError | LogonFailure):
        return AuthRequired(str(exc).splitlines()[0][:200])
    if isinstance(exc, SMBConnectionClosed):
        return ConnectionResetError("the server closed the connection")
    if isinstance(exc, SMBResponseException):
        return CommandRefused(type(exc).__name__)
    if isinstance(exc, ValueError) and isinstance(exc.__cause__, OSError):
        return exc.__cause__
    if isinstance(exc, SERVER_ERRORS):
        return exc
    return ProtocolError(f"{type(exc).__name__}: {str(exc)[:120]}")


class _Client:
    """One guest session; every blocking call in a worker thread, under `Limits.timeout`."""

    def __init__(self, endpoint: Endpoint, limits: Limits) -> None:
        self.endpoint, self.limits = endpoint, limits
        self.connection = Connection(uuid.uuid4(), endpoint.ip, endpoint.port, require_signing=False)
        self.connection._receive_timeout = max(1, round(limits.timeout))
        self.session: Session | None = None
        self.trees: dict[str, TreeConnect] = {}

    async def call(self, fn: Callable[..., T], *args: Any) -> T:
        try:
            async with asyncio.timeout(self.limits.timeout):
                return await asyncio.get_running_loop().run_in_executor(_THREADS, partial(fn, *args))
        except (TimeoutError, asyncio.CancelledError):
            self.abort()
            raise
        except Exception as exc:
            if getattr(self.connection.transport, "too_large", False):
                raise ReplyTooLarge(f"a message announced over {MAX_MESSAGE} bytes") from exc
            raise _translate(exc) from exc

    def abort(self) -> None:
        """Shut the socket down, then close it: a thread blocked in smbprotocol then returns. The shutdown
        comes first and takes no lock: smbprotocol's close waits on the lock that a send blocked on a
        server that reads nothing holds, and it is the shutdown that unblocks that send."""
        transport = self.connection.transport
        if transport is not None and transport.connected:
            with contextlib.suppress(OSError):
                transport._sock.shutdown(socket.SHUT_RDWR)
            transport.close()

    async def open(self) -> None:
        await self.call(self.connection.connect, None, self.limits.timeout)
        self.session = Session(self.connection, GUEST, "", require_encryption=False, auth_protocol="ntlm")
        await self.call(self.session.connect)

    async def tree(self, share: str) -> bool:
        """Connect to `share`: False if there is no such share; CommandRefused if it is not readable."""
        tree = TreeConnect(self.session, rf"\\{self.endpoint.ip}\{share}")
        try:
            await self.call(partial(tree.connect, require_secure_negotiate=False))
        except CommandRefused as exc:
            if isinstance(exc.__cause__, BadNetworkName):
                return False
            raise
        self.trees[share] = tree
        return True

    def _open(self, path: str, directory: bool) -> Open:
        share, _, rest = path.partition("/")
        handle = Open(self.trees[share], rest.replace("/", "\\"))
        if directory:
            access = DirectoryAccessMask.FILE_LIST_DIRECTORY | DirectoryAccessMask.FILE_READ_ATTRIBUTES
            attributes, options = FileAttributes.FILE_ATTRIBUTE_DIRECTORY, CreateOptions.FILE_DIRECTORY_FILE
        else:
            access = FilePipePrinterAccessMask.FILE_READ_DATA | FilePipePrinterAccessMask.FILE_READ_ATTRIBUTES
            attributes, options = FileAttributes.FILE_ATTRIBUTE_NORMAL, CreateOptions.FILE_NON_DIRECTORY_FILE
        handle.create(
            ImpersonationLevel.Impersonation,
            access,
            attributes,
            _SHARE_ACCESS,
            CreateDisposition.FILE_OPEN,
            options,
        )
        return handle

    @staticmethod
    def _batch(handle: Open) -> list[Any]:
        try:
            return list(handle.query_directory("*", FileInformationClass.FILE_DIRECTORY_INFORMATION))
        except NoMoreFiles:
            return []

    async def list_directory(self, path: str) -> AsyncIterator[Entry]:
        """The readable shares at the root; else the entries of directory `path` ("share/dir"). Its own
        "." and ".." are passed over once each; anything else goes to the walk, which passes over (and
        counts) odd names: a name holding a backslash is given with a slash, for the walk to see it as
        more than one component."""
        if not path:
            for share in self.trees:
                yield Entry(share, None, True)
            return
        handle = await self.call(self._open, path, True)
        own = {".", ".."}
        try:
            while batch := await self.call(self._batch, handle):
                for info in batch:
                    name = info["file_name"].get_value().decode("utf-16-le", "replace").replace("\\", "/")
                    if name in own:
                        own.discard(name)
                        continue
                    attributes = info["file_attributes"].get_value()
                    if attributes & _REPARSE_POINT:  # a link: listed, never followed
                        yield Entry(name, None)
                    elif attributes & _DIRECTORY_ATTRIBUTE:
                        yield Entry(name, None, True)
                    else:
                        yield Entry(name, info["end_of_file"].get_value())
        finally:
            await self._close(handle)

    def _read(self, handle: Open) -> bytes:
        length = min(MAX_HEAD, self.limits.max_bytes, handle.end_of_file, self.connection.max_read_size)
        return bytes(handle.read(0, length)) if length > 0 else b""

    async def read_head(self, path: str) -> bytes:
        """The first `MAX_HEAD` bytes (at most `max_bytes`) of file `path`, opened for reading only."""
        handle = await self.call(self._open, path, False)
        try:
            return (await self.call(self._read, handle))[:MAX_HEAD]
        finally:
            await self._close(handle)

    async def _close(self, handle: Open) -> None:
        with contextlib.suppress(*SERVER_ERRORS):
            await self.call(handle.close)


def _details(connection: Connection) -> dict[str, Any]:
    details: dict[str, Any] = {
        "dialect": dialect_name(connection.dialect),
        "signing_required": bool(connection.server_security_mode & 0x02),
    }
    if (name := samba_name(connection.server_guid.bytes)) is not None:
        details["server_name"] = name
    return details


async def _inspect(endpoint: Endpoint, learned: Learned) -> None:
    client = _Client(endpoint, learned.limits)
    listing = Listing()
    try:
        await client.open()
        learned.details.update(_details(client.connection))
        if "server_name" in learned.details and learned.software is None:
            learned.software = Software("samba")
        learned.auth = "none"
        refused: list[str] = []
        for share in SHARE_NAMES:
            try:
                await client.tree(share)
            except CommandRefused:
                refused.append(share)
        learned.databases = len(client.trees) + len(refused)
        if refused:
            learned.details["shares_refused"] = refused
        await walk(client.list_directory, listing, learned)
        await read_heads(listing, client.read_head, learned)
    finally:
        if learned.auth == "none":
            listing.present(learned)
        client.abort()


class SmbProtocol:
    name = NAME
    default_ports = (445,)
    probe = PROBE

    def match(self, reply: bytes) -> Identity | None:
        """An SMB2 NEGOTIATE answer (its dialect and signing in the banner), or any SMB1 answer."""
        if len(reply) < 8 or reply[0] != 0:
            return None
        if reply[4:8] == b"\xffSMB":
            return Identity(NAME, None, "unknown", "SMB1")
        if reply[4:8] != b"\xfeSMB" or reply[8:10] != b"\x40\x00" or len(reply) < 74:
            return None
        mode, revision = struct.unpack_from("<HH", reply, 70)
        signing = ", signing required" if mode & 0x02 else ""
        software = Software("samba") if samba_name(reply[76:92]) else None
        return Identity(NAME, software, "unknown", f"SMB {dialect_name(revision)}{signing}")

    async def inspect(self, endpoint: Endpoint, identity: Identity, limits: Limits) -> Inspection:
        """The guest user's readable shares, bounded, with the heads of a few files; read-only."""
        return await run_inspection(NAME, partial(_inspect, endpoint), identity, limits)


PROTOCOL = SmbProtocol()

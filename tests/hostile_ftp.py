"""A scripted FTP server on loopback for the FTP tests: a file tree served over passive data connections,
with the knobs a hostile server turns (the address its PASV reply names, listings without end, refusals)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

Data = bytes | Iterator[bytes]
"""What a data connection carries: bytes, or chunks made lazily (a listing without end)."""
Listing = Callable[[str], Data]
"""The listing data of a directory (given its path from the root), instead of the tree's."""


async def _send(writer: asyncio.StreamWriter, data: Data, drip: float) -> None:
    """Send `data`, one byte per `drip` seconds if `drip`."""
    for chunk in [data] if isinstance(data, bytes) else data:
        for piece in (chunk[i : i + 1] for i in range(len(chunk))) if drip else [chunk]:
            writer.write(piece)
            await writer.drain()
            await asyncio.sleep(drip)


@dataclass
class FakeFtp:
    """An FTP server holding `tree` (file path from the root -> content; directories are implied)."""

    tree: dict[str, bytes] = field(default_factory=dict)
    mlsd: bool = True
    """Announce MLST in FEAT and answer MLSD (else LIST only, in `ls -l` lines)."""
    anonymous: bool = True
    """Let the anonymous user in (else 530)."""
    pasv_address: str | None = None
    """The address the 227 reply names (None: the control connection's own)."""
    listing: Listing | None = None
    sizes: dict[str, int] = field(default_factory=dict)
    """Sizes to announce instead of the files' true ones."""
    greeting: bytes = b"220 (vsFTPd 3.0.3)\r\n"
    drip: float = 0.0
    """Seconds between the bytes of a data connection (0: at once)."""
    commands: list[bytes] = field(default_factory=list)
    """The verb of every command received."""
    data_addresses: list[str] = field(default_factory=list)
    """The local address of every data connection accepted."""

    def children(self, directory: str) -> dict[str, int | None]:
        """Name -> size (None: a directory) of the entries directly in `directory`."""
        prefix = f"{directory}/" if directory else ""
        found: dict[str, int | None] = {}
        for path, content in self.tree.items():
            if path.startswith(prefix):
                name, _, rest = path[len(prefix) :].partition("/")
                found[name] = None if rest else self.sizes.get(path, len(content))
        return found

    def list_data(self, directory: str, mlsd: bool) -> Data:
        if self.listing is not None:
            return self.listing(directory)
        lines = []
        for name, size in sorted(self.children(directory).items()):
            if mlsd:
                facts = "type=dir;" if size is None else f"type=file;size={size};"
                lines.append(f"{facts}modify=20250101000000; {name}\r\n")
            else:
                kind = "d" if size is None else "-"
                lines.append(f"{kind}rw-r--r--    1 0        0    {size or 4096:>12} Jan 01 00:00 {name}\r\n")
        return "".join(lines).encode()

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        own = writer.get_extra_info("sockname")[0]
        accepted: asyncio.Queue[asyncio.StreamWriter] = asyncio.Queue()
        servers: list[asyncio.Server] = []

        async def on_data(_: asyncio.StreamReader, data: asyncio.StreamWriter) -> None:
            self.data_addresses.append(data.get_extra_info("sockname")[0])
            await accepted.put(data)

        async def transfer(reply: Data) -> bytes:
            writer.write(b"150 Here comes the data.\r\n")
            data = await asyncio.wait_for(accepted.get(), 5)
            try:
                await _send(data, reply, self.drip)
                data.close()
            except ConnectionError:
                return b"426 Failure writing network stream.\r\n"
            return b"226 Transfer complete.\r\n"

        async def answer(verb: bytes, argument: str) -> bytes:
            if verb == b"USER":
                return b"331 Please specify the password.\r\n"
            if verb == b"PASS":
                return b"230 Login successful.\r\n" if self.anonymous else b"530 Login incorrect.\r\n"
            if verb == b"FEAT":
                return (
                    b"211-Features:\r\n"
                    + (b" MLST type*;size*;\r\n" if self.mlsd else b"")
                    + b" PASV\r\n211 End\r\n"
                )
            if verb == b"TYPE":
                return b"200 Switching to Binary mode.\r\n"
            if verb == b"PASV":
                server = await asyncio.start_server(on_data, own, 0)
                servers.append(server)
                port = server.sockets[0].getsockname()[1]
                named = (self.pasv_address or own).replace(".", ",")
                return b"227 Entering Passive Mode (%s,%d,%d).\r\n" % (named.encode(), port >> 8, port & 255)
            if verb in (b"LIST", b"MLSD") and (verb == b"LIST" or self.mlsd):
                return await transfer(self.list_data(argument.strip("/"), verb == b"MLSD"))
            if verb == b"RETR" and argument.strip("/") in self.tree:
                return await transfer(self.tree[argument.strip("/")])
            return b"550 Failed.\r\n"

        writer.write(self.greeting)
        with contextlib.suppress(ConnectionError, TimeoutError):
            while line := await reader.readline():
                verb, _, argument = line.rstrip(b"\r\n").partition(b" ")
                self.commands.append(verb.upper())
                writer.write(await answer(verb.upper(), argument.decode()))
                await writer.drain()
        for server in servers:
            server.close()
        writer.close()


def endless_files(_: str) -> Iterator[bytes]:
    """An MLSD listing that never ends: file after file."""
    n = 0
    while True:
        yield b"".join(b"type=file;size=1; f%d\r\n" % i for i in range(n, n + 100))
        n += 100


def one_more_level(_: str) -> bytes:
    """An MLSD listing of every directory: one more directory inside it, without end."""
    return b"type=dir; d\r\ntype=file;size=3; f.bin\r\n"

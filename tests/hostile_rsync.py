"""A scripted rsync daemon on loopback for the rsync tests: modules holding file trees (or wanting a
password), sent as a protocol-27 daemon sends them, with the knobs a hostile server turns (listings
without end, a module list without end, a slow drip)."""

from __future__ import annotations

import asyncio
import contextlib
import re
import struct
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

GREETING = b"@RSYNCD: 32.0 sha512 sha256 sha1 md5 md4\n"
"""rsync 3.5.0's greeting (Debian), captured in the lab."""
Listing = Callable[[str], Iterator[bytes]]
"""The file-list bytes of a directory (given its path from the module), instead of the tree's."""
_FILE, _DIRECTORY = 0o100644, 0o040755


def entry(name: bytes, size: int, directory: bool = False) -> bytes:
    """One protocol-27 file-list entry with every field sent (a long name, time and mode)."""
    length = struct.pack("<i", size) if size < 2**31 else struct.pack("<iq", -1, size)
    mode = _DIRECTORY if directory else _FILE
    return bytes([0x40]) + struct.pack("<i", len(name)) + name + length + struct.pack("<iI", 0, mode)


def packets(data: bytes, tag: int = 0) -> bytes:
    """`data` in multiplexed packets of tag `tag` (0: data)."""
    chunks = [data[i : i + 0xFFFFFF] for i in range(0, len(data), 0xFFFFFF)] or [b""]
    return b"".join(struct.pack("<I", ((7 + tag) << 24) | len(c)) + c for c in chunks)


@dataclass
class FakeRsync:
    """An rsync daemon serving `modules` (name -> path -> content; None: the module wants a password)."""

    modules: dict[str, dict[str, bytes] | None] = field(default_factory=dict)
    listing: Listing | None = None
    module_lines: Iterator[bytes] | None = None
    """The module list's lines, instead of the modules'."""
    sizes: dict[str, int] = field(default_factory=dict)
    """Sizes to announce instead of the files' true ones."""
    drip: float = 0.0
    """Seconds between the bytes sent after the seed (0: at once)."""
    opened: list[str] = field(default_factory=list)
    """Every module name received ("" for the module list)."""
    arguments: list[list[str]] = field(default_factory=list)
    """The server arguments of every opened module."""

    def children(self, tree: dict[str, bytes], directory: str) -> Iterator[bytes]:
        prefix = f"{directory}/" if directory else ""
        found: dict[str, int | None] = {}
        for path, content in tree.items():
            if path.startswith(prefix):
                name, _, rest = path[len(prefix) :].partition("/")
                found[name] = None if rest else self.sizes.get(path, len(content))
        yield entry(b".", 0, True)
        for name, size in sorted(found.items()):
            yield entry(name.encode(), size or 0, size is None)

    async def send(self, writer: asyncio.StreamWriter, data: bytes) -> None:
        for piece in (data[i : i + 1] for i in range(len(data))) if self.drip else [data]:
            writer.write(piece)
            await writer.drain()
            await asyncio.sleep(self.drip)

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(
            ConnectionError, asyncio.IncompleteReadError, TimeoutError, asyncio.CancelledError
        ):
            writer.write(GREETING)
            await reader.readline()
            module = (await reader.readline()).rstrip(b"\n").decode()
            self.opened.append(module)
            if not module:
                lines = self.module_lines or (f"{m:<15}\tcomment\n".encode() for m in self.modules)
                for line in lines:
                    writer.write(line)
                    await writer.drain()
                    await asyncio.sleep(0)  # an endless list must let the client read
                writer.write(b"@RSYNCD: EXIT\n")
            elif module not in self.modules:
                writer.write(b"@ERROR: Unknown module '%s'\n" % module.encode())
            elif (tree := self.modules[module]) is None:
                writer.write(b"@RSYNCD: AUTHREQD c2VjcmV0Y2hhbGxlbmdl\n")
            else:
                await self.serve(reader, writer, module, tree)
            await writer.drain()
            await asyncio.wait_for(reader.read(), 5)
        writer.close()

    async def serve(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, module: str, tree: dict[str, bytes]
    ) -> None:
        """Send the directory or file the arguments ask for, as a daemon's sender does."""
        writer.write(b"@RSYNCD: OK\n")
        arguments: list[str] = []
        while line := (await reader.readline()).rstrip(b"\n"):
            arguments.append(line.decode())
        self.arguments.append(arguments)
        writer.write(b"\x01\x02\x03\x04")  # the checksum seed
        await reader.readexactly(4)  # the filter rules: none
        target = "/".join(  # a component holding a wildcard is expanded: its backslashes escape
            re.sub(r"\\(.)", r"\1", part) if re.search(r"[*?\[]", part) else part
            for part in arguments[-1].split("/")
        )
        path = target.removeprefix(module).strip("/")
        if "-d" in arguments:
            listed = (self.listing or (lambda d: self.children(tree, d)))(path)
            for chunk in listed:
                await self.send(writer, packets(chunk))
            await self.send(writer, packets(b"\0" + bytes(4)))
            return
        if path not in tree:
            await self.send(writer, packets(b"link_stat failed: No such file\n", tag=3))
            return
        content = tree[path]
        await reader.readexactly(20)  # the file's index and its empty checksum header
        body = entry(path.rsplit("/", 1)[-1].encode(), self.sizes.get(path, len(content))) + b"\0" + bytes(4)
        body += bytes(20) + b"".join(
            struct.pack("<i", len(c)) + c
            for c in (content[i : i + 32768] for i in range(0, len(content), 32768))
        )
        await self.send(writer, packets(body + bytes(4) + bytes(16)))


def endless_files(_: str) -> Iterator[bytes]:
    """A directory listing that never ends: file after file."""
    n = 0
    while True:
        yield b"".join(entry(b"f%d" % i, 1) for i in range(n, n + 100))
        n += 100


def one_more_level(_: str) -> Iterator[bytes]:
    """Every directory: one more directory inside it, without end."""
    yield entry(b".", 0, True) + entry(b"d", 0, True) + entry(b"f.bin", 3)

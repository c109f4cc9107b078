"""A scripted S3 server on loopback for the S3 tests: buckets of objects served path-style (bucket list,
ListObjectsV2 with delimiter and continuation tokens, ranged GETs), with the knobs a hostile server turns
(listings without end, refusals, a body of its own for every answer)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import parse_qs, unquote, urlsplit
from xml.sax.saxutils import escape

Answer = Callable[[str], bytes | None]
"""A raw answer for a request target (None: the server's own)."""


def _reply(status: str, body: bytes, *headers: str) -> bytes:
    head = "".join(f"{h}\r\n" for h in ("Server: MinIO", "X-Amz-Request-Id: 187F1D2A3C4B5E6F", *headers))
    return f"HTTP/1.1 {status}\r\n{head}Content-Length: {len(body)}\r\n\r\n".encode() + body


def xml(root: str, inner: str) -> bytes:
    return (
        f'<?xml version="1.0" encoding="UTF-8"?>\n<{root} xmlns="http://s3.amazonaws.com/doc/2006-03-01/">'.encode()
        + (f"{inner}</{root}>".encode())
    )


DENIED = _reply(
    "403 Forbidden",
    b"<Error><Code>AccessDenied</Code><Message>Access Denied.</Message><RequestId>1</RequestId></Error>",
)


def endless_pages(target: str) -> bytes | None:
    """Every listing page truncated, with fresh keys and a fresh token: a bucket without end."""
    query = parse_qs(urlsplit(target).query)
    if "list-type" not in query:
        return None
    page = int((query.get("continuation-token") or ["0"])[0]) + 1
    keys = "".join(f"<Contents><Key>k{page}-{i}.bin</Key><Size>1</Size></Contents>" for i in range(1000))
    body = xml(
        "ListBucketResult",
        f"<IsTruncated>true</IsTruncated><NextContinuationToken>{page}</NextContinuationToken>{keys}",
    )
    return _reply("200 OK", body)


@dataclass
class FakeS3:
    """An S3 server holding `buckets` (bucket -> key -> content)."""

    buckets: dict[str, dict[str, bytes]] = field(default_factory=dict)
    page_size: int = 1000
    """Most keys and prefixes per listing page (fewer than asked for: continuation tokens follow)."""
    public_list: bool = True
    """Answer the bucket list to anyone (else 403 AccessDenied)."""
    answer: Answer | None = None
    ranges: bool = True
    """Honour a Range header (else the whole object, 200)."""
    requests: list[str] = field(default_factory=list)
    """'METHOD target' of every request received."""

    def bucket_list(self) -> bytes:
        if not self.public_list:
            return DENIED
        names = "".join(f"<Bucket><Name>{escape(b)}</Name></Bucket>" for b in self.buckets)
        return _reply("200 OK", xml("ListAllMyBucketsResult", f"<Buckets>{names}</Buckets>"))

    def listing(self, bucket: str, query: dict[str, list[str]]) -> bytes:
        prefix = (query.get("prefix") or [""])[0]
        start = int((query.get("continuation-token") or ["0"])[0])
        items: list[str] = []
        for key, content in sorted(self.buckets[bucket].items()):
            if not key.startswith(prefix):
                continue
            below, slash, _ = key[len(prefix) :].partition("/")
            item = (
                f"<CommonPrefixes><Prefix>{escape(prefix + below)}/</Prefix></CommonPrefixes>"
                if slash
                else f"<Contents><Key>{escape(key)}</Key><Size>{len(content)}</Size></Contents>"
            )
            if item not in items:
                items.append(item)
        page = items[start : start + self.page_size]
        more = start + self.page_size < len(items)
        token = f"<NextContinuationToken>{start + self.page_size}</NextContinuationToken>" if more else ""
        inner = f"<IsTruncated>{str(more).lower()}</IsTruncated>{token}{''.join(page)}"
        return _reply("200 OK", xml("ListBucketResult", inner))

    def object(self, bucket: str, key: str, wanted: str | None) -> bytes:
        content = self.buckets[bucket].get(key)
        if content is None:
            return _reply("404 Not Found", b"<Error><Code>NoSuchKey</Code></Error>")
        if wanted and self.ranges:
            if not content:  # as AWS (and moto) answer a range of an empty object
                return _reply("416 Range Not Satisfiable", b"<Error><Code>InvalidRange</Code></Error>")
            last = int(wanted.removeprefix("bytes=0-"))
            return _reply("206 Partial Content", content[: last + 1])
        return _reply("200 OK", content)

    def reply(self, method: str, target: str, headers: dict[str, str]) -> bytes:
        self.requests.append(f"{method} {target}")
        if self.answer is not None and (own := self.answer(target)) is not None:
            return own
        split = urlsplit(target)
        bucket, _, key = unquote(split.path).lstrip("/").partition("/")
        if not bucket:
            return self.bucket_list()
        if bucket not in self.buckets:
            return _reply("404 Not Found", b"<Error><Code>NoSuchBucket</Code></Error>")
        if key:
            return self.object(bucket, key, headers.get("range"))
        return self.listing(bucket, parse_qs(split.query))

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError, asyncio.IncompleteReadError, ValueError):
            while line := await reader.readline():
                method, target, _ = line.decode().split(" ", 2)
                headers: dict[str, str] = {}
                while (header := await reader.readline()) not in (b"\r\n", b""):
                    name, _, value = header.decode().partition(":")
                    headers[name.strip().lower()] = value.strip()
                writer.write(self.reply(method, target, headers))
                await writer.drain()
        writer.close()

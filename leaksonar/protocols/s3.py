"""S3 REST API (MinIO 9000, SeaweedFS 8333, Ceph RGW 7480, Garage 3900, and 80/443): recognised from an
unsigned `GET /`; inspected with unsigned GETs only.

Identification: `GET /` answers the bucket list (`ListAllMyBucketsResult`) or an S3 error document
(`<Error><Code>AccessDenied</Code>...` with its `RequestId`, or an `x-amz-request-id` header). The product
comes from the headers: `Server: MinIO`, `Server: AmazonS3`, `Server: SeaweedFS`, `Server: Garage`, a
Ceph RGW request id (`tx000...`); moto (the lab's stand-in) answers `Server: Werkzeug` with
`server: amazon.com` and is reported as "moto". Anything else is software unknown.

Inspection: `GET /` (an S3 error or 401/403: auth "required"; a bucket that allows anonymous listing
while the bucket list is refused cannot be found without its name), then the file-store kit's walk
(`filestore.walk`) over path-style listings, one directory at a time:
`GET /{bucket}?list-type=2&delimiter=/&prefix=dir/&max-keys=1000`, pages followed by their continuation
token up to `_MAX_PAGES` pages a directory (a token sent before ends it: pages in a loop); and the heads
of the files the kit chooses, `GET /{bucket}/{key}` with `Range: bytes=0-65535`. Buckets past
min(`max_databases`, `max_collections`) are not listed. Every XML body is parsed with defusedxml, a DTD
refused. Naming: databases = buckets, one collection per bucket (database ""), rows = the objects listed,
size_bytes the sum of their sizes.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import AsyncIterator, Iterator
from functools import partial
from urllib.parse import quote
from xml.etree.ElementTree import Element, ParseError

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring

from leaksonar.model import Auth, Identity, Inspection, Limits, Software
from leaksonar.protocols.base import AuthRequired, CommandRefused, Endpoint, ProtocolError, ReplyTooLarge
from leaksonar.protocols.filestore import MAX_HEAD, Entry, survey
from leaksonar.protocols.http import PROTOCOL as HTTP
from leaksonar.protocols.httpclient import Headers, HttpClient, Response, bounded_client, http_parts
from leaksonar.protocols.kit import Learned, count, run_inspection

NAME = "s3"
PAGE_KEYS = 1000
"""Keys asked for per listing page (S3's own maximum)."""
_MAX_PAGES = 10
"""Pages of one directory's listing (the kit stops the walk at `filestore.MAX_FILES` before that)."""
_MAX_TOKEN = 1024
"""Longest continuation token sent back."""
_AUTH_CODES = frozenset(
    {
        "AccessDenied",
        "AllAccessDisabled",
        "InvalidAccessKeyId",
        "SignatureDoesNotMatch",
        "MissingSecurityHeader",
        "AuthorizationHeaderMalformed",
        "InvalidToken",
        "ExpiredToken",
    }
)
"""Error codes that mean the server wants credentials."""
_CODES = _AUTH_CODES | {
    "NoSuchBucket",
    "NoSuchKey",
    "InvalidRequest",
    "InvalidBucketName",
    "PermanentRedirect",
}
"""Error codes `GET /` may answer on an S3 server (with an S3 request id)."""
_XML_START = rb"\A\s*(?:<\?xml[^>]{0,200}\?>\s*)?"
_BUCKET_LIST = re.compile(_XML_START + rb"<ListAllMyBucketsResult[\s>]")
_ERROR = re.compile(_XML_START + rb"<Error>\s*<Code>([A-Za-z]{1,64})</Code>")
_REQUEST_ID = re.compile(rb"<RequestId>|^x-amzn?-request-?id:", re.I | re.M)
_PRODUCTS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"\bMinIO(?:/([\w.+-]{1,40}))?", re.I), "minio"),
    (re.compile(r"\bAmazonS3\b()"), "amazon-s3"),
    (re.compile(r"\bSeaweedFS\b(?:[ /]S3)?(?:[ /]v?(\d[\w.+-]{0,39}))?", re.I), "seaweedfs"),
    (re.compile(r"\bGarage(?:/v?(\d[\w.+-]{0,39}))?", re.I), "garage"),
    (re.compile(r"\bCeph(?: Object Gateway)?(?:/(\d[\w.+-]{0,39}))?", re.I), "ceph-rgw"),
)
"""`Server` header products (with their version where they say it)."""


def product(headers: Headers) -> Software | None:
    """The S3 server's product, as its headers name it (None: not said)."""
    server = headers.get("server") or ""
    for pattern, name in _PRODUCTS:
        if found := pattern.search(server):
            return Software(name, found.group(1) or None)
    if (headers.get("x-amz-request-id") or "").startswith("tx0"):
        return Software("ceph-rgw")
    if "Werkzeug" in server and "amazon.com" in server:
        return Software("moto")
    return None


def _raw_headers(head: bytes) -> Headers:
    fields = []
    for line in head.split(b"\r\n")[1:100]:
        name, colon, value = line.partition(b":")
        if colon:
            fields.append((name.strip().lower(), value.strip()))
    return Headers(fields)


def parse(body: bytes, what: str) -> Element:
    """The root of an XML body, namespaces dropped from its tags; a DTD or an entity is refused."""
    try:
        root = fromstring(body, forbid_dtd=True)
    except (ParseError, DefusedXmlException, ValueError):
        raise ProtocolError(f"{what} did not answer S3 XML") from None
    for element in root.iter():
        if isinstance(element.tag, str):
            element.tag = element.tag.rpartition("}")[2]
    return root


def _text(element: Element, name: str) -> str | None:
    child = element.find(name)
    return child.text or "" if child is not None else None


def refusal(response: Response, what: str) -> AuthRequired | CommandRefused:
    """What a non-200 answer says: its status and S3 error code; AuthRequired for an authorization one."""
    code = ""
    if response.body.lstrip().startswith(b"<"):
        with contextlib.suppress(ProtocolError):
            code = _text(parse(response.body, what), "Code") or ""
    code = code if re.fullmatch(r"[A-Za-z]{1,64}", code) else ""
    said = f"{what} answered HTTP {response.status} {code}".rstrip()
    if response.status in (401, 403) or code in _AUTH_CODES:
        return AuthRequired(said)
    return CommandRefused(said)


def bucket_names(root: Element) -> list[str]:
    """The bucket names of a `ListAllMyBucketsResult`."""
    if root.tag != "ListAllMyBucketsResult":
        raise ProtocolError(f"GET / answered {root.tag[:40]!r}, not a bucket list")
    return [name for bucket in root.iter("Bucket") if (name := _text(bucket, "Name"))]


def page_entries(root: Element, prefix: str) -> Iterator[Entry]:
    """The objects and common prefixes of one `ListBucketResult` page, named below `prefix`; a folder
    marker (the key `prefix` itself) and anything not below `prefix` are left out."""
    for item in root:
        if item.tag == "Contents":
            key, directory = _text(item, "Key") or "", False
        elif item.tag == "CommonPrefixes":
            key, directory = (_text(item, "Prefix") or "").removesuffix("/"), True
        else:
            continue
        if key.startswith(prefix) and (name := key[len(prefix) :]):
            yield Entry(name, None if directory else count(_text(item, "Size")), directory)


class _Bucket:
    """Unsigned, path-style reads of the buckets of one server."""

    def __init__(self, client: HttpClient, base: str, limits: Limits, buckets: list[str]) -> None:
        self.client, self.base, self.limits, self.buckets = client, base, limits, buckets

    async def get(self, path: str, params: dict[str, str] | None = None, **headers: str) -> Response:
        url = self.base + "/" + quote(path, safe="/")
        return await self.client.request("GET", url, self.limits, params=params, headers=headers)

    async def list_directory(self, path: str) -> AsyncIterator[Entry]:
        """The buckets (path ""), or one directory of a bucket: its objects and common prefixes."""
        if not path:
            for name in self.buckets:
                yield Entry(name, None, True)
            return
        bucket, _, below = path.partition("/")
        prefix = f"{below}/" if below else ""
        params = {"list-type": "2", "delimiter": "/", "max-keys": str(PAGE_KEYS), "prefix": prefix}
        sent: set[str] = set()
        for _ in range(_MAX_PAGES):
            response = await self.get(bucket, params)
            if response.status != 200:
                raise CommandRefused(str(refusal(response, f"GET /{bucket}")))
            root = parse(response.body, f"GET /{bucket}")
            if root.tag != "ListBucketResult":
                raise ProtocolError(f"GET /{bucket} answered {root.tag[:40]!r}, not a listing")
            for entry in page_entries(root, prefix):
                yield entry
            if (_text(root, "IsTruncated") or "").strip().lower() != "true":
                return
            token = _text(root, "NextContinuationToken") or ""
            if not token or len(token) > _MAX_TOKEN or token in sent:  # one already sent: pages in a loop
                raise CommandRefused(f"GET /{bucket} was cut without a usable continuation token")
            sent.add(token)
            params["continuation-token"] = token
        raise ReplyTooLarge(f"a listing of more than {_MAX_PAGES} pages")

    async def read_head(self, path: str) -> bytes:
        """The first `MAX_HEAD` bytes of object `path` ("bucket/key"), asked for with a Range (which an
        empty object answers 416: its head is empty)."""
        response = await self.get(path, Range=f"bytes=0-{MAX_HEAD - 1}")
        if response.status == 416:
            return b""
        if response.status not in (200, 206):
            raise CommandRefused(str(refusal(response, "a GET of the object")))
        return response.body[:MAX_HEAD]


async def _inspect(endpoint: Endpoint, learned: Learned) -> None:
    limits = learned.limits
    async with bounded_client(endpoint, limits) as client:
        root = await client.request("GET", endpoint.url + "/", limits)
        learned.software = product(root.headers) or learned.software
        if root.status != 200:
            raise refusal(root, "GET /")
        names = bucket_names(parse(root.body, "GET /"))
        learned.auth, learned.databases = "none", len(names)
        shown = names[: min(limits.max_databases, limits.max_collections)]
        learned.capped(len(shown), len(names), "buckets")
        buckets = _Bucket(client, endpoint.url, limits, shown)
        await survey(buckets.list_directory, buckets.read_head, learned)


class S3Protocol:
    name = NAME
    default_ports = (9000, 8333, 7480, 3900)
    probe = HTTP.probe

    def match(self, reply: bytes) -> Identity | None:
        """The bucket list, or an S3 error document with its request id, answering `GET /`."""
        if (parts := http_parts(reply)) is None:
            return None
        _, head, body, banner = parts
        auth: Auth = "unknown"
        if (error := _ERROR.match(body)) is not None:
            code = error.group(1).decode("ascii")
            if code not in _CODES or not _REQUEST_ID.search(head + b"\r\n" + body[:4096]):
                return None
            auth = "required" if code in _AUTH_CODES else "unknown"
        elif _BUCKET_LIST.match(body) is None:
            return None
        return Identity(NAME, product(_raw_headers(head)), auth, banner)

    async def inspect(self, endpoint: Endpoint, identity: Identity, limits: Limits) -> Inspection:
        """The buckets, walked with unsigned listings, and the heads of a few objects; GETs only."""
        return await run_inspection(NAME, partial(_inspect, endpoint), identity, limits)


PROTOCOL = S3Protocol()

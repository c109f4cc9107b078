"""Docker registries (the Docker/OCI Distribution API over HTTP, 5000): `/v2/` without a token, the
catalog, tags per repository, manifest sizes and the image configs' environment; GETs only.

Every answer under `/v2/` carries `Docker-Distribution-API-Version: registry/2.0`; `/v2/` itself answers
200 `{}` when open, 401 with `WWW-Authenticate: Bearer realm=...` or `Basic` when not. Distribution's
`GET /` is an empty 200 (`Cache-Control: no-cache`) without that header: identification sends `GET /v2/`
only after a `GET /` reply that looks like that (`looks_like`), or first on port 5000.

Inspection reads `/v2/`, the catalog (`/v2/_catalog?n=100`, following `Link: <...>; rel="next"` while it
is a relative `/v2/_catalog?` link, at most `MAX_CATALOG_PAGES` pages; a later page that fails keeps what
the pages before it listed), per repository `/v2/<name>/tags/list`
(one page), and per repository the manifests of at most `MAX_MANIFESTS` tags (`latest` first; an image
index or manifest list leads to its first platform's manifest), never a layer. Each distinct image's
config blob (announced at most `MAX_CONFIG` bytes) gives `config.Env` and the history's `created_by`.

The record: one database (the registry); a collection per repository, rows its tags (the server's
count: the tags listed), size_bytes the sum of its distinct images' sizes (config + layers as their
manifests announce them: compressed bytes); the sample a document per image,
``{"image": "repo:tag", "tags": [...], "size": n, "env": {"DB_PASSWORD": "..."}, "history": [...]}``,
so that the personal-data detection sees passwords and keys baked into images. Names, tags and digests
that break the Distribution grammar are passed over, never put into a request.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass, field, replace
from functools import partial
from typing import Any

from leaksonar.model import Collection, ErrorKind, Identity, Inspection, Limits, Sample, Software
from leaksonar.protocols.base import AuthRequired, Endpoint, ProtocolError
from leaksonar.protocols.httpclient import (
    HttpClient,
    Response,
    bounded_client,
    http_parts,
    json_body,
    refused,
)
from leaksonar.protocols.kit import SERVER_ERRORS, Learned, bounded, count, run_inspection
from leaksonar.protocols.useragent import USER_AGENT

NAME = "docker-registry"
MAX_CATALOG_PAGES = 10
"""Catalog pages read (of `CATALOG_PAGE` repositories each; a page of more ends the reading)."""
CATALOG_PAGE = 100
MAX_TAGS = 1000
"""Tags kept per repository (one page of `tags/list`)."""
MAX_MANIFESTS = 5
"""Tags per repository whose manifest is read."""
MAX_CONFIG = 64 * 1024
"""Largest image config read (bytes)."""
MAX_ENV = 200
"""Environment variables kept per image."""
MAX_HISTORY = 50
"""History steps kept per image."""
_CONCURRENCY = 4
"""Repositories read at the same time."""
_API = re.compile(rb"^docker-distribution-api-version:[ \t]*registry/2\.", re.I | re.M)
_CACHE_NO = re.compile(rb"^cache-control:[ \t]*no-cache[ \t]*\r?$", re.I | re.M)
_LOCATION_V2 = re.compile(rb"^location:[ \t]*\S*/v2/?[ \t]*\r?$", re.I | re.M)
_NEXT = re.compile(r'<([^<>]{1,2048})>\s*;\s*rel="?next"?', re.I)
_REPOSITORY = re.compile(r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*")
_TAG = re.compile(r"[\w][\w.-]{0,127}", re.ASCII)
_DIGEST = re.compile(r"sha256:[a-f0-9]{64}|sha512:[a-f0-9]{128}")
ACCEPT = ", ".join(
    (
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
        "application/vnd.docker.distribution.manifest.v2+json",
    )
)
PROBE = f"GET /v2/ HTTP/1.0\r\nUser-Agent: {USER_AGENT}\r\nAccept: */*\r\n\r\n".encode()


def looks_like(reply: bytes) -> bool:
    """Whether a generic HTTP answer to `GET /` may be a registry's: Distribution's empty 200 with
    `Cache-Control: no-cache`, or a redirect to `/v2/`. Only then is `GET /v2/` asked."""
    if (parts := http_parts(reply)) is None:
        return False
    status, head, body, _ = parts
    if status == 200:
        return not body and _CACHE_NO.search(head) is not None
    return status in (301, 302, 303, 307, 308) and _LOCATION_V2.search(head) is not None


def valid_name(name: Any) -> bool:
    return isinstance(name, str) and len(name) <= 255 and _REPOSITORY.fullmatch(name) is not None


def valid_tag(tag: Any) -> bool:
    return isinstance(tag, str) and _TAG.fullmatch(tag) is not None


def valid_digest(digest: Any) -> bool:
    return isinstance(digest, str) and _DIGEST.fullmatch(digest) is not None


def next_page(response: Response, prefix: str) -> str | None:
    """The `rel="next"` link of an answer when it is a relative path starting with `prefix` (a link to
    another host, or to another API, is not followed)."""
    link = response.headers.get("Link")
    found = _NEXT.search(link) if link else None
    target = found.group(1) if found else None
    return (
        target
        if target and target.startswith(prefix) and target.isprintable() and " " not in target
        else None
    )


# --- manifests and configs ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Image:
    """What one manifest says: its bytes (config + layers, None when it does not say) and config digest."""

    size: int | None
    config: str | None
    config_size: int | None


def image_of(manifest: Any) -> Image:
    """An image manifest's size and config (Docker v2 schema 2 or OCI); schema 1 names no sizes."""
    if not isinstance(manifest, dict):
        raise ProtocolError("a manifest is not a JSON object")
    config, layers = manifest.get("config"), manifest.get("layers")
    if not isinstance(config, dict) or not isinstance(layers, list):
        return Image(None, None, None)
    sizes = [count(config.get("size"))] + [
        count(layer.get("size")) if isinstance(layer, dict) else None for layer in layers
    ]
    size = None if None in sizes else sum(s for s in sizes if s is not None)
    digest = config.get("digest")
    return Image(size, digest if valid_digest(digest) else None, count(config.get("size")))


def first_platform(index: Any) -> str | None:
    """The digest of an image index's (manifest list's) first platform's manifest, attestations
    (platform unknown) passed over; None if `index` is not an index."""
    entries = index.get("manifests") if isinstance(index, dict) else None
    if not isinstance(entries, list):
        return None
    candidates = [e for e in entries[:100] if isinstance(e, dict) and valid_digest(e.get("digest"))]
    real = [
        e for e in candidates if not (isinstance(p := e.get("platform"), dict) and p.get("os") == "unknown")
    ]
    chosen = (real or candidates)[:1]
    return chosen[0]["digest"] if chosen else None


def environment(config: Any) -> tuple[dict[str, str], list[str]]:
    """An image config's `config.Env` as name -> value, and its history's `created_by` steps."""
    if not isinstance(config, dict):
        raise ProtocolError("an image config is not a JSON object")
    inner = config.get("config")
    env = inner.get("Env") if isinstance(inner, dict) else None
    variables: dict[str, str] = {}
    for item in env[:MAX_ENV] if isinstance(env, list) else ():
        if isinstance(item, str) and "=" in item:
            name, _, value = item.partition("=")
            variables[name] = value
    history = config.get("history")
    steps = [
        step["created_by"]
        for step in (history[:MAX_HISTORY] if isinstance(history, list) else ())
        if isinstance(step, dict) and isinstance(step.get("created_by"), str)
    ]
    return variables, steps


def _repositories(page: Any) -> list[Any]:
    """The `repositories` of a catalog page."""
    listed = page.get("repositories") if isinstance(page, dict) else None
    if not isinstance(listed, list):
        raise ProtocolError("/v2/_catalog did not answer a list of repositories")
    return listed


# --- reading ---------------------------------------------------------------------------------------


@dataclass(slots=True)
class Registry:
    """One inspection's reads: GETs below the registry's base URL on one keep-alive client."""

    client: HttpClient
    base: str
    learned: Learned
    configs: dict[str, tuple[dict[str, str], list[str]]] = field(default_factory=dict)

    async def get(self, path: str, accept: str | None = None, limits: Limits | None = None) -> Response:
        headers = {"Accept": accept} if accept else None
        return await self.client.request(
            "GET", self.base + path, limits or self.learned.limits, headers=headers
        )

    async def catalog(self) -> list[str] | None:
        """Repository names, in order, at most `MAX_CATALOG_PAGES` pages; None when the first is refused
        for want of credentials. A later page that fails (refused, broken) is noted and what the pages
        before it listed is kept."""
        names: dict[str, None] = {}
        path = f"/v2/_catalog?n={CATALOG_PAGE}"
        for _ in range(MAX_CATALOG_PAGES):
            try:
                response = await self.get(path)
                if refused(response) and not names:
                    return None
                listed = _repositories(json_body(response, "/v2/_catalog"))
            except SERVER_ERRORS as exc:
                if not names:
                    raise
                self.learned.failed("Reading the catalog's next page", exc)
                self.learned.rows_estimated = True
                return list(names)
            before = len(names)
            if len(names) + len(listed) > MAX_CATALOG_PAGES * CATALOG_PAGE:
                break
            for name in listed:
                if valid_name(name):
                    names.setdefault(name)
                else:
                    self.learned.left_out(
                        "Repository names that break the Distribution grammar were passed over."
                    )
            following = next_page(response, "/v2/_catalog?") if len(names) > before else None
            if following is None:
                return list(names)
            path = following
        self.learned.left_out(  # past MAX_CATALOG_PAGES, or a page over-long
            f"The catalog was read to {MAX_CATALOG_PAGES * CATALOG_PAGE} repositories: no more were counted."
        )
        return list(names)

    async def tags(self, name: str) -> tuple[list[str], bool]:
        """A repository's tags (one page, at most `MAX_TAGS`) and whether that was all of them."""
        path = f"/v2/{name}/tags/list"
        response = await self.get(path)
        listed = json_body(response, path)
        tags = listed.get("tags") if isinstance(listed, dict) else None
        if tags is None:  # a repository whose tags were all deleted answers null
            return [], True
        if not isinstance(tags, list):
            raise ProtocolError(f"{path} did not answer a list of tags")
        kept = list(dict.fromkeys(t for t in tags if isinstance(t, str)))
        return kept[:MAX_TAGS], len(kept) <= MAX_TAGS and next_page(response, "/v2/") is None

    async def manifest(self, name: str, reference: str) -> tuple[str, Image]:
        """The image a tag names (through an index, its first platform's): its digest and sizes."""
        path = f"/v2/{name}/manifests/{reference}"
        response = await self.get(path, ACCEPT)
        document = json_body(response, path)
        digest = response.headers.get("Docker-Content-Digest") or ""
        if (platform := first_platform(document)) is not None:
            path = f"/v2/{name}/manifests/{platform}"
            response = await self.get(path, ACCEPT)
            document, digest = json_body(response, path), platform
        return (digest if valid_digest(digest) else f"{name}:{reference}"), image_of(document)

    async def config(self, name: str, image: Image) -> tuple[dict[str, str], list[str]]:
        """An image config's environment and history (read once per digest); nothing when it announces
        more than `MAX_CONFIG` bytes."""
        if image.config is None or image.config_size is None or image.config_size > MAX_CONFIG:
            return {}, []
        if image.config not in self.configs:
            path = f"/v2/{name}/blobs/{image.config}"
            limits = replace(self.learned.limits, max_bytes=min(self.learned.limits.max_bytes, MAX_CONFIG))
            self.configs[image.config] = environment(json_body(await self.get(path, limits=limits), path))
        return self.configs[image.config]


def _ordered(tags: list[str]) -> list[str]:
    """The tags whose manifests are read: `latest` first, then the others as listed."""
    return sorted(tags, key=lambda tag: tag != "latest")[:MAX_MANIFESTS]


async def _repository(registry: Registry, name: str) -> tuple[Collection, Sample | None]:
    """One repository: its tag count, its distinct images' sizes and a document per image."""
    learned = registry.learned
    try:
        tags, complete = await registry.tags(name)
    except SERVER_ERRORS as exc:
        learned.failed(f"Listing the tags of {name}", exc)
        return Collection("", name, None, None, (), True), None
    images: dict[str, dict[str, Any]] = {}
    sizes: dict[str, int | None] = {}
    for tag in _ordered([t for t in tags if valid_tag(t)]):
        try:
            digest, image = await registry.manifest(name, tag)
        except SERVER_ERRORS as exc:
            learned.failed(f"Reading the manifest of {name}:{tag}", exc)
            continue
        if digest in images:
            images[digest]["tags"].append(tag)
            continue
        try:
            env, history = await registry.config(name, image)
        except SERVER_ERRORS as exc:
            learned.failed(f"Reading the config of {name}:{tag}", exc)
            env, history = {}, []
        sizes[digest] = image.size
        images[digest] = {
            "image": f"{name}:{tag}",
            "tags": [tag],
            "size": image.size,
            "env": env,
            "history": history,
        }
    known = [s for s in sizes.values() if s is not None]
    fields = tuple(sorted({variable for doc in images.values() for variable in doc["env"]}))[:100]
    collection = Collection("", name, len(tags), sum(known) if known else None, fields, not complete)
    documents = tuple(bounded(doc, learned.limits) for doc in images.values())
    return collection, Sample("", name, documents) if documents else None


async def _inspect(endpoint: Endpoint, learned: Learned) -> None:
    async with bounded_client(endpoint, learned.limits) as client:
        registry = Registry(client, endpoint.url, learned)
        root = await registry.get("/v2/")
        if refused(root):
            raise AuthRequired(f"GET /v2/ answered HTTP {root.status}")
        json_body(root, "/v2/")
        learned.auth = "none"
        names = await registry.catalog()
        if names is None:
            learned.auth = "required"
            learned.add(ErrorKind.AUTH_REQUIRED, "Listing the repositories needs credentials.")
            return
        learned.databases = 1
        shown = names[: learned.limits.max_collections]
        learned.capped(len(shown), len(names), "repositories")
        gate = asyncio.Semaphore(_CONCURRENCY)

        async def read(name: str) -> None:
            async with gate:
                collection, sample = await _repository(registry, name)
            learned.collections.append(collection)
            if sample is not None:
                learned.samples.append(sample)

        try:
            await asyncio.gather(*(read(name) for name in shown))
        finally:  # what was read before a deadline is kept, in the catalog's order
            order = {name: i for i, name in enumerate(shown)}
            learned.collections.sort(key=lambda c: order[c.name])
            learned.samples.sort(key=lambda s: order[s.collection])
            learned.rows = sum(c.rows or 0 for c in learned.collections)
            learned.size_bytes = sum(c.size_bytes or 0 for c in learned.collections)
            learned.rows_estimated |= len(learned.collections) < len(shown)


class DockerRegistryProtocol:
    name = NAME
    default_ports = (5000,)
    probe = PROBE

    def match(self, reply: bytes) -> Identity | None:
        """Any HTTP answer carrying `Docker-Distribution-API-Version: registry/2.x` (a 401: auth required)."""
        if (parts := http_parts(reply)) is None:
            return None
        status, head, _, banner = parts
        if _API.search(head) is None:
            return None
        return Identity(self.name, Software(NAME), "required" if status == 401 else "unknown", banner)

    async def inspect(self, endpoint: Endpoint, identity: Identity, limits: Limits) -> Inspection:
        """Catalog, tags, manifest sizes and the images' environments; GETs only, never a layer."""
        return await run_inspection(self.name, partial(_inspect, endpoint), identity, limits, Software(NAME))


PROTOCOL = DockerRegistryProtocol()

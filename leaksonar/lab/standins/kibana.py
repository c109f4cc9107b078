"""A STAND-IN for Kibana, for the lab only: no Kibana package exists here, so this small server plays
the part of Kibana 7.10.2 in front of the lab's OpenSearch. It is not Kibana.

Written from Kibana's public API documentation, it answers what a scanner looks at:

- every answer carries Kibana's `kbn-name` and `kbn-license-sig` headers;
- `GET /` redirects to `/app/home`, and `GET /app/...` serves an HTML shell;
- `GET /api/status` answers the 7.x status document (name, uuid, version.number, status.overall);
- `POST /api/console/proxy?path=P&method=M` (with a `kbn-xsrf` header) forwards `GET P` to the cluster
  and answers the cluster's status and body. Unlike Kibana, it refuses any method but GET (400): the
  lab's data can only be read through it.

Run: `python kibana.py --listen IP:PORT --elasticsearch http://IP:PORT`. Standard library, h11 and httpx
only (no leaksonar import), so the lab runs it as a plain script.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import json
import uuid
from dataclasses import dataclass, field
from http import HTTPStatus
from urllib.parse import parse_qs, urlsplit

import h11
import httpx

VERSION = "7.10.2"
NAME = "kibana"
_BUILD = {"build_hash": "a0b793698735eb1d0b5e2ba5b5e8f5b8f5e8d1c0", "build_number": 36468}
_MAX_BODY = 1 << 20
_SHELL = (
    '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>Elastic</title></head>'
    '<body><kbn-csp data="{&quot;strictCsp&quot;:false}"></kbn-csp>'
    f'<kbn-injected-metadata data="{{&quot;version&quot;:&quot;{VERSION}&quot;}}"></kbn-injected-metadata>'
    '<div class="kbnWelcomeView"><div class="kbnWelcomeTitle">Please upgrade your browser</div></div>'
    "</body></html>"
)


@dataclass(frozen=True, slots=True)
class Reply:
    status: int
    body: bytes = b""
    headers: list[tuple[str, str]] = field(default_factory=list)


def _json(status: int, document: object) -> Reply:
    return Reply(
        status,
        json.dumps(document, separators=(",", ":")).encode(),
        [("content-type", "application/json; charset=utf-8")],
    )


def _error(status: int, error: str, message: str) -> Reply:
    """Kibana's (hapi's) error document."""
    return _json(status, {"statusCode": status, "error": error, "message": message})


def status_document(name: str) -> dict[str, object]:
    """The 7.x `/api/status` answer of a healthy Kibana."""
    return {
        "name": name,
        "uuid": str(uuid.uuid5(uuid.NAMESPACE_DNS, f"{name}.kibana.lab")),
        "version": {"number": VERSION, **_BUILD, "build_snapshot": False},
        "status": {
            "overall": {
                "since": "2026-01-01T00:00:00.000Z",
                "state": "green",
                "title": "Green",
                "nickname": "Looking good",
                "icon": "success",
                "uiColor": "secondary",
            },
            "statuses": [
                {"id": "core:elasticsearch@7.10.2", "state": "green", "message": "Elasticsearch is available"}
            ],
        },
        "metrics": {"last_updated": "2026-01-01T00:00:00.000Z", "collection_interval_in_millis": 5000},
    }


class StandIn:
    """Routes one request to its reply; forwards console-proxy GETs to `elasticsearch`."""

    def __init__(self, name: str, elasticsearch: str, client: httpx.AsyncClient) -> None:
        self.name, self.elasticsearch, self.client = name, elasticsearch.rstrip("/"), client
        self.headers = [
            ("kbn-name", name),
            ("kbn-license-sig", hashlib.sha256(f"{name} basic license".encode()).hexdigest()),
            ("x-content-type-options", "nosniff"),
            ("referrer-policy", "no-referrer-when-downgrade"),
            ("cache-control", "private, no-cache, no-store, must-revalidate"),
        ]

    async def reply(self, method: str, target: str, headers: dict[str, str]) -> Reply:
        url = urlsplit(target)
        if method == "POST" and url.path == "/api/console/proxy":
            return await self._proxy(parse_qs(url.query), headers)
        if method not in ("GET", "HEAD"):
            return _error(404, "Not Found", "Not Found")
        if url.path == "/":
            return Reply(302, headers=[("location", "/app/home")])
        if url.path.startswith("/app/"):
            return Reply(200, _SHELL.encode(), [("content-type", "text/html; charset=utf-8")])
        if url.path == "/api/status":
            return _json(200, status_document(self.name))
        return _error(404, "Not Found", "Not Found")

    async def _proxy(self, query: dict[str, list[str]], headers: dict[str, str]) -> Reply:
        if "kbn-xsrf" not in headers:
            return _error(400, "Bad Request", "Request must contain a kbn-xsrf header.")
        path, method = query.get("path", [""])[0], query.get("method", [""])[0]
        if not path:
            return _error(400, "Bad Request", "[request query.path]: expected value of type [string]")
        if method.upper() != "GET":
            return _error(400, "Bad Request", f"This Kibana stand-in forwards GET only, not {method!r}.")
        try:
            answer = await self.client.get(self.elasticsearch + "/" + path.lstrip("/"))
        except httpx.HTTPError as exc:
            return _error(502, "Bad Gateway", f"Elasticsearch did not answer: {type(exc).__name__}")
        kind = answer.headers.get("content-type", "application/json; charset=utf-8")
        return Reply(answer.status_code, answer.content, [("content-type", kind)])


async def _request(conn: h11.Connection, reader: asyncio.StreamReader) -> h11.Request | None:
    """The next request (its body read and dropped); None when the client is gone or misbehaves."""
    request: h11.Request | None = None
    size = 0
    while True:
        event = conn.next_event()
        if event is h11.NEED_DATA:
            data = await reader.read(65536)
            conn.receive_data(data)
            continue
        if isinstance(event, h11.Request):
            request = event
        elif isinstance(event, h11.Data):
            size += len(event.data)
            if size > _MAX_BODY:
                return None
        elif isinstance(event, h11.EndOfMessage):
            return request
        else:  # ConnectionClosed or PAUSED
            return None


async def _serve(app: StandIn, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    conn = h11.Connection(h11.SERVER)
    with contextlib.suppress(h11.ProtocolError, ConnectionError):
        while (request := await _request(conn, reader)) is not None:
            headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in request.headers}
            reply = await app.reply(request.method.decode(), request.target.decode("latin-1"), headers)
            fields = [*app.headers, *reply.headers, ("content-length", str(len(reply.body)))]
            writer.write(
                conn.send(
                    h11.Response(
                        status_code=reply.status, headers=fields, reason=HTTPStatus(reply.status).phrase
                    )
                )
            )
            if reply.body and request.method != b"HEAD":
                writer.write(conn.send(h11.Data(data=reply.body)))
            writer.write(conn.send(h11.EndOfMessage()))
            await writer.drain()
            if conn.our_state is h11.MUST_CLOSE:
                break
            conn.start_next_cycle()
    writer.close()


async def main(listen: str, elasticsearch: str) -> None:
    host, _, port = listen.rpartition(":")
    async with httpx.AsyncClient(timeout=10.0, trust_env=False) as client:
        app = StandIn(NAME, elasticsearch, client)
        server = await asyncio.start_server(lambda r, w: _serve(app, r, w), host, int(port))
        async with server:
            await server.serve_forever()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="A Kibana stand-in for the leaksonar lab (not Kibana).")
    parser.add_argument("--listen", required=True, help="IP:PORT to listen on")
    parser.add_argument("--elasticsearch", required=True, help="base URL of the cluster it fronts")
    args = parser.parse_args()
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main(args.listen, args.elasticsearch))

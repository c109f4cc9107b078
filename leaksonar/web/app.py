"""The web application: REST API under /api, the UI pages, static files, one error shape."""

from __future__ import annotations

from collections.abc import Collection
from pathlib import Path

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException

import leaksonar
from leaksonar.store.db import Store
from leaksonar.web import api, ui
from leaksonar.web.access import Level
from leaksonar.web.guard import BodyLimit, HostCheck, SecurityHeaders, api_docs, host_name, same_origin
from leaksonar.web.ratelimit import RateLimit, parse_rate

STATIC = Path(__file__).parent / "static"
POLL_BOUNDS = (0.05, 60.0)
"""Seconds between two looks at the store for new events (the stream)."""


def create_app(
    store: Store,
    *,
    allowed_hosts: Collection[str],
    anonymous: str = "public",
    rate_limit: str = "600/minute",
    poll_seconds: float = 1.0,
) -> FastAPI:
    """The app over `store`. `allowed_hosts`: the host names (or IP addresses, IPv6 in brackets) it answers
    to, 400 for any other `Host`; `anonymous`: the level of requests without a key (public | analyst);
    `rate_limit`: N/second|minute|hour per valid key or session (per client address without one). ValueError
    on bad settings."""
    hosts = set()
    for name in allowed_hosts:
        if (host := host_name(name)) is None:
            raise ValueError(f"allowed host {name!r}: use a host name or an IP address ([::1] for IPv6)")
        hosts.add(host)
    try:
        level = Level(anonymous)
    except ValueError:
        raise ValueError(f"anonymous level {anonymous!r}: use public or analyst") from None
    if not POLL_BOUNDS[0] <= poll_seconds <= POLL_BOUNDS[1]:
        raise ValueError(f"poll interval {poll_seconds} s: use {POLL_BOUNDS[0]} to {POLL_BOUNDS[1]} s")
    burst, period = parse_rate(rate_limit)
    docs, docs_policy = api_docs()
    app = FastAPI(
        title="leaksonar",
        summary="Search exposed-database findings, their history and change events.",
        version=leaksonar.__version__,
        redirect_slashes=False,  # `/event/1/` is not a page: 404, like any other unknown path
        docs_url=None,  # served below, with the policy that lets its script run
        redoc_url=None,
        dependencies=[Depends(same_origin)],
        default_response_class=api.InertJSONResponse,
    )
    app.state.store = store
    app.state.anonymous = level
    app.state.poll_seconds = poll_seconds
    # outermost last: headers on every answer, then the Host check, the rate limit, the body cap
    app.add_middleware(BodyLimit)
    app.add_middleware(RateLimit, store=store, burst=burst, period=period)
    app.add_middleware(HostCheck, allowed=hosts)
    app.add_middleware(SecurityHeaders, policies={"/docs": docs_policy})
    app.add_api_route("/docs", lambda: HTMLResponse(docs), include_in_schema=False)
    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _bad_request)
    app.add_exception_handler(Exception, _internal_error)
    app.mount("/static", StaticFiles(directory=STATIC, check_dir=False), name="static")
    app.include_router(api.router, prefix="/api")
    app.include_router(ui.router)
    return app


async def _http_error(request: Request, exc: Exception) -> Response:
    """API errors are {"error": "one line"}; elsewhere the UI's error page."""
    assert isinstance(exc, HTTPException)
    if not request.url.path.startswith("/api/"):
        return ui.error_page(request, exc.status_code, str(exc.detail))
    return api.InertJSONResponse({"error": str(exc.detail)}, status_code=exc.status_code, headers=exc.headers)


async def _bad_request(_request: Request, exc: Exception) -> Response:
    """A parameter that does not validate: 400 with one line naming it."""
    assert isinstance(exc, RequestValidationError)
    first = exc.errors()[0] if exc.errors() else {}
    where = ".".join(str(p) for p in first.get("loc", ()) if p not in ("query", "path", "header", "body"))
    return api.InertJSONResponse(
        {"error": f"{where or 'request'}: {first.get('msg', 'invalid')}"}, status_code=400
    )


async def _internal_error(_request: Request, exc: Exception) -> Response:
    return api.InertJSONResponse({"error": f"internal error: {type(exc).__name__}"}, status_code=500)

"""`leaksonar serve` (the web UI and REST API) and `leaksonar keys` (its API keys)."""

from __future__ import annotations

import ipaddress
import json
import logging
from dataclasses import asdict
from typing import Annotated

import typer

from leaksonar.cli.common import DbOption, JsonFlag, fail, open_store, stop_on_sigterm
from leaksonar.cli.logs import LogLevel, LogLevelOption, setup_logging
from leaksonar.cli.render import err

log = logging.getLogger("leaksonar.serve")


def serve(
    db: DbOption = None,
    host: Annotated[str, typer.Option(help="Address to listen on: an IP address.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="TCP port to listen on.")] = 8080,
    anonymous: Annotated[
        str, typer.Option(help="Level of requests without an API key: public or analyst.")
    ] = "public",
    rate_limit: Annotated[
        str,
        typer.Option(help="Requests allowed per valid API key (per client address otherwise): N/minute."),
    ] = "600/minute",
    allowed_host: Annotated[
        list[str] | None,
        typer.Option(help="A host name browsers use for this server (a proxy's name); repeatable."),
    ] = None,
    behind_proxy: Annotated[
        list[str] | None,
        typer.Option(
            help="Address (or network) of a reverse proxy whose X-Forwarded-For/-Proto to trust; repeatable."
        ),
    ] = None,
    log_level: LogLevelOption = LogLevel.info,
) -> None:
    """Serve the web UI and the REST API (OpenAPI at /docs) over the index."""
    import socket

    import uvicorn

    from leaksonar.web.app import create_app
    from leaksonar.web.guard import LOOPBACK_HOSTS

    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        fail(f"--host {host!r} is not an IP address (e.g. 127.0.0.1)")
    proxies = behind_proxy or []
    for proxy in proxies:
        try:
            ipaddress.ip_network(proxy, strict=False)
        except ValueError:
            fail(f"--behind-proxy {proxy!r} is not an IP address or network (e.g. 127.0.0.1)")
    bound = f"[{address}]" if address.version == 6 else str(address)
    local = LOOPBACK_HOSTS if address.is_loopback or address.is_unspecified else ()
    try:
        web = create_app(
            open_store(db),
            allowed_hosts=[bound, *local, *(allowed_host or [])],
            anonymous=anonymous,
            rate_limit=rate_limit,
        )
    except ValueError as exc:
        fail(str(exc))
    listener = socket.socket(socket.AF_INET6 if address.version == 6 else socket.AF_INET)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        listener.bind((host, port))
    except OSError as exc:
        fail(f"cannot listen on {host}:{port}: {exc.strerror}")
    setup_logging(log_level, "uvicorn")
    if not address.is_loopback:
        log.warning("serving on %s, reachable from other machines (by the names --allowed-host gives)", host)
    url = f"http://[{host}]:{port}/" if address.version == 6 else f"http://{host}:{port}/"
    log.info("serving %s (API docs %sdocs); Ctrl-C to stop", url, url)
    stop_on_sigterm()
    config = uvicorn.Config(
        web,
        log_config=None,
        log_level=log_level,
        access_log=log_level is LogLevel.debug,
        proxy_headers=bool(proxies),  # uvicorn's default trusts any local process's X-Forwarded-For
        forwarded_allow_ips=proxies,
    )
    try:
        uvicorn.Server(config).run(sockets=[listener])
    except KeyboardInterrupt:  # uvicorn stopped on Ctrl-C or SIGTERM, then signalled itself again
        log.info("stopped")


keys_app = typer.Typer(no_args_is_help=True, help="API keys for the web API and UI (levels public, analyst).")


@keys_app.command("create")
def keys_create(
    name: Annotated[str, typer.Argument(help="Who or what the key is for (unique).")],
    level: Annotated[
        str, typer.Option(help="public or analyst (analysts see critical findings).")
    ] = "public",
    db: DbOption = None,
) -> None:
    """Create an API key and print it once (only its SHA-256 is stored)."""
    from leaksonar.web.keys import ApiKeyError, create_key

    try:
        key = create_key(open_store(db, create=True), name, level)
    except ApiKeyError as exc:
        fail(str(exc))
    typer.echo(key)
    err.print(f"key {name!r} ({level}) created; it is not shown again")


@keys_app.command("list")
def keys_list(db: DbOption = None, as_json: JsonFlag = False) -> None:
    """List API keys: name, level, created, revoked (never the key)."""
    rows = open_store(db).keys.all()
    if as_json:
        typer.echo(json.dumps([asdict(row) for row in rows], indent=2))
        return
    for row in rows:
        state = f"revoked {row.revoked}" if row.revoked else "valid"
        typer.echo(f"{row.name}\t{row.level}\tcreated {row.created}\t{state}")
    if not rows:
        err.print("no API keys")


@keys_app.command("revoke")
def keys_revoke(name: Annotated[str, typer.Argument(help="The key's name.")], db: DbOption = None) -> None:
    """Revoke an API key: requests with it are refused (401) from now on."""
    from leaksonar.web.keys import ApiKeyError, revoke_key

    try:
        revoke_key(open_store(db), name)
    except ApiKeyError as exc:
        fail(str(exc))
    err.print(f"key {name!r} revoked")

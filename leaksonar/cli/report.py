"""`leaksonar report`: disclosure letters to the owners of exposed services."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated

import typer

from leaksonar.cli.common import DbOption, fail, open_store, whole
from leaksonar.cli.render import err, out
from leaksonar.formats import address_port
from leaksonar.store.addresses import parse_network

_DOMAIN = re.compile(r"[a-z0-9_-]{1,63}(\.[a-z0-9_-]{1,63})*", re.ASCII)
"""A domain as certificates name it (an internationalised one in its xn-- form), no wildcard."""
_MOST_DOMAIN = 200
"""Longest domain: the report history keeps it as the owner (200 characters)."""


def report(
    network: Annotated[
        str | None, typer.Option("--network", help="Report on this CIDR block (IPv4 or IPv6).")
    ] = None,
    asn: Annotated[int | None, whole("Report on this autonomous system.", "--asn", most=2**32 - 1)] = None,
    org: Annotated[
        str | None, typer.Option("--org", help="Report on organisations whose name contains NAME.")
    ] = None,
    domain: Annotated[
        str | None,
        typer.Option(
            "--domain", help="Report on services whose certificate names DOMAIN or a name under it."
        ),
    ] = None,
    owners: Annotated[
        Path | None,
        typer.Option("--owners", help="Owners file (TOML): network -> organisation, abuse address."),
    ] = None,
    out_dir: Annotated[Path, typer.Option("--out", help="Directory for the letters.")] = Path("reports"),
    formats: Annotated[str, typer.Option("--format", help="md, html or md,html.")] = "md,html",
    force: Annotated[
        bool, typer.Option("--force", help="Report again services reported within their reminder interval.")
    ] = False,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Write the letters but do not record them as sent.")
    ] = False,
    db: DbOption = None,
) -> None:
    """Write disclosure letters, one per owner (Markdown and HTML), for the exposed services in a network,
    ASN or organisation, or with a certificate for a domain (one letter for the domain); services reported
    recently are skipped until their reminder is due."""
    from leaksonar import report as reporting  # Jinja2 and templates: loaded on first use
    from leaksonar.formats import utc_now

    if sum(x is not None for x in (network, asn, org, domain)) != 1:
        fail("give exactly one of --network CIDR, --asn N, --org NAME, --domain NAME")
    name = domain.strip().rstrip(".").lower() if domain is not None else None
    if name is not None and (len(name) > _MOST_DOMAIN or not _DOMAIN.fullmatch(name)):
        fail(f"--domain {domain!r} is not a domain name (such as example.cn)")
    try:
        selection = reporting.Selection(
            network=parse_network(network) if network else None,
            asn=asn,
            org=org,
            domain=name,
        )
    except ValueError:
        fail(f"--network {network!r} is not an IP network (CIDR)")
    try:
        fmts = reporting.parse_formats(formats)
        table = reporting.load_owners(owners)
    except (reporting.ReportError, reporting.OwnersError) as exc:
        fail(str(exc))
    store = open_store(db)
    now = utc_now()
    plans = reporting.plan(store, selection, table, now, force)
    try:
        reporting.write_reports(store, plans, out_dir, fmts, now, record=not dry_run)
    except reporting.ReportError as exc:
        fail(str(exc))
    if not plans:
        err.print("no exposed services in the index match; nothing to report")
    for plan in plans:
        contact = plan.owner.abuse or "no abuse contact known"
        out.print(f"{plan.owner.org} <{contact}>: {len(plan.due)} service(s) to report")
        for path in plan.files:
            out.print(f"  wrote {path}")
        for row, reason in plan.skipped:
            out.print(f"  skipped {address_port(row.ip, row.port)}: {reason}")

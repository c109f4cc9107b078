"""`leaksonar alerts test|send`: deliver change events by webhook, e-mail and Slack."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from leaksonar.cli import render
from leaksonar.cli.common import DbOption, JsonFlag, alert_config, fail, open_store
from leaksonar.cli.render import err, out

if TYPE_CHECKING:
    from leaksonar.notify.alerts import Delivery

alerts_app = typer.Typer(no_args_is_help=True, help="Deliver change events by webhook, e-mail and Slack.")
ConfigOption = Annotated[Path, typer.Option("--config", "-c", help="Alert rules and channels (TOML).")]


def _print_deliveries(deliveries: Sequence[Delivery], as_json: bool, **extra: int) -> None:
    """One line per delivery (or JSON); exit 1 when any failed after its retries."""
    if as_json:
        typer.echo(json.dumps({"deliveries": [asdict(d) for d in deliveries], **extra}, indent=2))
    for d in [] if as_json else deliveries:
        out.print(render.delivery_line(d), soft_wrap=True)
    if any(d.status != "sent" for d in deliveries):
        raise typer.Exit(1)


@alerts_app.command("test")
def alerts_test(config: ConfigOption, as_json: JsonFlag = False) -> None:
    """Send a sample event (on 203.0.113.7, marked TEST) to every channel in CONFIG."""
    from leaksonar.notify.alerts import send_sample

    _print_deliveries(send_sample(alert_config(config)), as_json)


@alerts_app.command("send")
def alerts_send(
    config: ConfigOption,
    since: Annotated[
        str | None,
        typer.Option(help="Only events at or after this time: ISO 8601 (2026-11-28) or ago (7d, 24h)."),
    ] = None,
    db: DbOption = None,
    as_json: JsonFlag = False,
) -> None:
    """Deliver stored events to the channels of the rules they match; each event goes once per rule and
    channel, and failed deliveries are tried again on the next run."""
    from leaksonar.formats import parse_since
    from leaksonar.notify.alerts import deliver_events

    try:
        start = parse_since(since) if since is not None else None
    except ValueError as exc:
        fail(f"--since: {exc}")
    settings = alert_config(config)
    store = open_store(db)
    report = deliver_events(store.events.find(since=start), settings, store)
    if not as_json:
        err.print(f"{report.sent} sent, {report.failed} failed, {report.already} delivered before")
    _print_deliveries(report.deliveries, as_json, already=report.already)

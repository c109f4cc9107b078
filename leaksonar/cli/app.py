"""The Typer app: every command group under one `leaksonar` command."""

from __future__ import annotations

from typing import Annotated, Any

import click
import typer
from typer.core import TyperGroup

from leaksonar.cli import alerts, db, export, index, report, scan, serve, verify, workers
from leaksonar.cli.common import fail


class Commands(TyperGroup):
    """leaksonar's commands, `lab` among them loaded on first use (see leaksonar.cli.lab)."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return [*super().list_commands(ctx), "lab"]

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name != "lab":
            return super().get_command(ctx, cmd_name)
        from leaksonar.cli.lab import lab_group

        return lab_group()

    def invoke(self, ctx: click.Context) -> Any:
        """Run the command; a value its option refuses (out of bounds, not a number) is one line, exit 2,
        as any bad input."""
        try:
            return super().invoke(ctx)
        except typer.BadParameter as exc:
            fail(exc.format_message())


app = typer.Typer(
    name="leaksonar",
    cls=Commands,
    help=(
        "Find databases that answer without a password, measure what they expose, and index the "
        "findings. Scan only address space you are responsible for or authorised to test."
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
)


def _print_version(wanted: bool) -> None:
    if wanted:
        from leaksonar import __version__

        typer.echo(f"leaksonar {__version__}")
        raise typer.Exit()


@app.callback()
def _options(
    version: Annotated[
        bool,
        typer.Option("--version", is_eager=True, callback=_print_version, help="Print the version and exit."),
    ] = False,
) -> None:
    """The options of `leaksonar` itself."""


for command in (
    scan.scan,
    index.hosts,
    index.search,
    index.show,
    index.events,
    export.export,
    scan.watch,
    workers.worker,
    workers.beat,
    verify.verify,
    report.report,
    serve.serve,
):
    app.command()(command)
app.add_typer(alerts.alerts_app, name="alerts")
app.add_typer(serve.keys_app, name="keys")
app.add_typer(db.db_app, name="db")

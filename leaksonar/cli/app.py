"""The Typer app: every command group under one `leaksonar` command."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from importlib import import_module
from typing import Annotated, Any

import click
import typer
from typer.core import TyperGroup
from typer.models import CommandInfo, TyperInfo

from leaksonar.cli.common import fail

COMMANDS = {
    "scan": "scan:scan",
    "hosts": "index:hosts",
    "search": "index:search",
    "show": "index:show",
    "events": "index:events",
    "export": "export:export",
    "watch": "scan:watch",
    "worker": "workers:worker",
    "beat": "workers:beat",
    "verify": "verify:verify",
    "report": "report:report",
    "serve": "serve:serve",
    "alerts": "alerts:alerts_app",
    "keys": "serve:keys_app",
    "db": "db:db_app",
}
"""Each command -> its function, or its group's Typer app, as `module:name` in leaksonar.cli: imported
when the command is run (or its help shown), so a command loads its own modules and no other's."""


class Loaded(Mapping[str, click.Command]):
    """The commands of COMMANDS by name, each made into a click command when first asked for."""

    def __init__(self) -> None:
        self.made: dict[str, click.Command] = {}

    def __getitem__(self, name: str) -> click.Command:
        if name not in self.made:
            module, attribute = COMMANDS[name].split(":")
            self.made[name] = _command(name, getattr(import_module(f"leaksonar.cli.{module}"), attribute))
        return self.made[name]

    def __iter__(self) -> Iterator[str]:
        return iter(COMMANDS)

    def __len__(self) -> int:
        return len(COMMANDS)


def _command(name: str, found: Any) -> click.Command:
    """`found` (a command's function or a group's Typer app) as Typer makes it for `app`."""
    settings: dict[str, Any] = {
        "pretty_exceptions_short": app.pretty_exceptions_short,
        "rich_markup_mode": app.rich_markup_mode,
    }
    if isinstance(found, typer.Typer):
        info = TyperInfo(found, name=name)
        return typer.main.get_group_from_info(info, suggest_commands=app.suggest_commands, **settings)
    return typer.main.get_command_from_info(CommandInfo(name, callback=found), **settings)


class Commands(TyperGroup):
    """leaksonar's commands, each loaded on first use (COMMANDS; `lab`: see leaksonar.cli.lab)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.commands = Loaded()  # type: ignore[assignment]

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

"""`leaksonar lab`, loaded only when asked for: nothing else in leaksonar imports the lab, and its servers
and data generators come with the lab extra."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from importlib import import_module
from typing import Any

import click
import typer

from leaksonar.cli.common import EXTRAS, needs_extra

HELP = "Real database servers on loopback with synthetic data."


def lab_group() -> click.Group:
    """The lab's commands; each first checks that the lab extra is installed (their --help does not)."""
    from leaksonar.lab.cli import lab_app

    group = typer.main.get_group(lab_app)
    group.name, group.help = "lab", HELP
    for command in group.commands.values():
        if command.callback is not None:
            command.callback = _with_lab_extra(command.callback)
    return group


def _with_lab_extra(callback: Callable[..., Any]) -> Callable[..., Any]:
    @wraps(callback)
    def checked(*args: Any, **kwargs: Any) -> Any:
        with needs_extra("lab", "lab"):
            for module in sorted(EXTRAS["lab"]):
                import_module(module)
        return callback(*args, **kwargs)

    return checked

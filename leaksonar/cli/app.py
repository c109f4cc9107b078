"""The Typer app: every command group under one `leaksonar` command."""

from __future__ import annotations

import typer

from leaksonar.cli import db, index, report, scan, serve, verify, workers
from leaksonar.cli.alerts import alerts_app
from leaksonar.lab.cli import lab_app

app = typer.Typer(
    name="leaksonar",
    help=(
        "Find databases that answer without a password, measure what they expose, and index the "
        "findings. Scan only address space you are responsible for or authorised to test."
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
)
for command in (
    scan.scan,
    index.hosts,
    index.search,
    index.show,
    index.events,
    scan.watch,
    workers.worker,
    workers.beat,
    verify.verify,
    report.report,
    serve.serve,
):
    app.command()(command)
app.add_typer(lab_app, name="lab", help="Real database servers on loopback with synthetic data.")
app.add_typer(alerts_app, name="alerts")
app.add_typer(serve.keys_app, name="keys")
app.add_typer(db.db_app, name="db")

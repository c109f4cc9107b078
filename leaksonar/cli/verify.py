"""`leaksonar verify`: check a leak sample before trusting it."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from leaksonar.cli.common import JsonFlag, echo_json, fail, whole
from leaksonar.cli.render import out
from leaksonar.sanitize import for_terminal
from leaksonar.terminal import echo


def verify(
    file: Annotated[Path, typer.Argument(help="Leak sample: CSV, JSON or JSON lines; gzip ok.")],
    as_json: JsonFlag = False,
    limit: Annotated[int, whole("Rows read at most.", least=1)] = 100_000,
) -> None:
    """Check a leak sample before trusting it: what each column holds, checksum validity, whether IDs agree
    with birth dates, genders, ages and places, duplicates, date ranges, and a verdict with its reasons."""
    from leaksonar.inputs import InputError
    from leaksonar.verify import reader as verifying  # the validators are heavy: loaded on first use

    try:
        leak, report = verifying.verify(file, limit)
    except InputError as exc:
        fail(str(exc))
    if leak.cut:  # partial, and said so: its first rows are as genuine as a whole file's
        echo(f"leaksonar: warning: {for_terminal(f'{file}: {verifying.TRUNCATED}')}", err=True)
    if as_json:
        echo_json(verifying.report_record(leak, report))
    else:
        for part in verifying.renderables(leak, report):
            out.print(part)

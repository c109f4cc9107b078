"""Operational messages of the long-running commands (`worker`, `beat`, `serve`, `watch`) through the
standard `logging` module, on stderr, one record a line."""

from __future__ import annotations

import logging
from enum import StrEnum
from typing import Annotated

import typer

from leaksonar.sanitize import for_terminal


class LogLevel(StrEnum):
    debug = "debug"
    info = "info"
    warning = "warning"
    error = "error"


LogLevelOption = Annotated[
    LogLevel, typer.Option("--log-level", case_sensitive=False, help="Least severe log messages shown.")
]


class OneLineFormatter(logging.Formatter):
    """`2026-11-28 05:00:00,000 INFO leaksonar.watch: ...`, its message and traceback on the one line:
    every control character (newline, escape, ...) and bidi control shown as an escape (`for_terminal`), so
    what a scanned server or a client wrote cannot start a fake log line or act on the terminal."""

    def format(self, record: logging.LogRecord) -> str:
        return for_terminal(super().format(record))


def setup_logging(level: LogLevel, *libraries: str) -> None:
    """Log records of leaksonar and of the `libraries` it runs (celery, uvicorn) from `level` up, and
    warnings (Python's among them) and errors of everything else, to stderr."""
    handler = logging.StreamHandler()
    handler.setFormatter(OneLineFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.WARNING)
    logging.captureWarnings(True)
    for name in ("leaksonar", *libraries):
        logging.getLogger(name).setLevel(level.upper())

"""The leaksonar command line: one module per command group, assembled in `leaksonar.cli.app`."""

from __future__ import annotations

import gc
import os
import sys

from leaksonar.sanitize import for_terminal
from leaksonar.terminal import echo, escape_unencodable


def main() -> None:
    """`leaksonar`: run the command line's app; an internal error is one line, exit 1."""
    escape_unencodable()
    try:
        from leaksonar.cli.app import app

        gc.freeze()  # the imported modules live until exit: neither the collector nor exit need walk them
        app()
    except Exception as exc:  # an internal error: one line, exit 1 (LEAKSONAR_DEBUG=1 for the traceback)
        if os.environ.get("LEAKSONAR_DEBUG"):
            raise
        echo(f"leaksonar: internal error: {for_terminal(f'{type(exc).__name__}: {exc}')}", err=True)
        sys.exit(1)
    finally:
        # what the command left is collected now (an index's connections close, its WAL checkpointed) and
        # the rest frozen: the interpreter's own collections at exit need not walk it (~60 ms less)
        gc.collect()
        gc.freeze()

"""Rich output that shows every string as written: the terminal's side of the output boundary (see
`leaksonar.sanitize.for_terminal`).

Two guards, each enough on its own for what it covers, and the standard streams' fallback:
- `plain(value, style)` is the one way to turn a value into Rich `Text`: its control characters shown as
  escapes, never read as markup, emoji codes or highlighting. Tables and lines are built from it, so they
  are safe on any console.
- `PlainConsole` never reads a string as markup either: whatever string reaches it (a table cell, a title,
  a printed line, whoever built it) is shown through `plain`. Styles come only from `Text` styles.
- `escape_unencodable()` makes stdout and stderr write a character their encoding cannot hold (a
  `LC_ALL=C` or Latin-1 terminal, `PYTHONIOENCODING=ascii`) as a JSON-style escape (`\\u4e2d`) instead
  of failing: tables, lines, `--json` (which stays valid JSON) and log records alike.
"""

from __future__ import annotations

import codecs
import io
import sys
from typing import Any

from rich.console import Console, JustifyMethod, OverflowMethod
from rich.style import StyleType
from rich.table import Table
from rich.text import Text

from leaksonar.sanitize import for_terminal

Part = object | tuple[object, StyleType]
"""A piece of a line: a value, or a value and its style."""


def plain(*parts: Part, style: StyleType = "") -> Text:
    """`parts` (values, or (value, style) pairs) as one `Text` in `style`, each value shown literally
    (`str(value)` through `for_terminal`)."""
    text = Text(style=style)
    for part in parts:
        value, part_style = part if isinstance(part, tuple) else (part, "")
        text.append(for_terminal(str(value)), style=part_style)
    return text


def add_row(table: Table, *cells: object) -> None:
    """A row of `table`, each cell shown with `plain` (a `Text` cell is one built with it)."""
    table.add_row(*(cell if isinstance(cell, Text) else plain(cell) for cell in cells))


class PlainConsole(Console):
    """A Rich console that reads no string as markup, emoji codes or highlighting and shows control
    characters as escapes: every string it is given is rendered as `plain(string)`."""

    def __init__(self, **options: Any) -> None:
        super().__init__(markup=False, emoji=False, highlight=False, **options)

    def render_str(
        self,
        text: str,
        *,
        style: StyleType = "",
        justify: JustifyMethod | None = None,
        overflow: OverflowMethod | None = None,
        **_ignored: Any,  # emoji, markup, highlight, highlighter: never applied
    ) -> Text:
        shown = plain(text, style=style)
        shown.justify, shown.overflow = justify, overflow
        return shown


ESCAPE_ERRORS = "leaksonar.escape"
"""The codec error handler `escape_unencodable` installs: `\\uXXXX` per UTF-16 unit (a JSON escape)."""


def _escape(error: UnicodeError) -> tuple[str, int]:
    if not isinstance(error, UnicodeEncodeError):
        raise error
    units = error.object[error.start : error.end].encode("utf-16-be", "surrogatepass")
    escaped = "".join(f"\\u{units[i]:02x}{units[i + 1]:02x}" for i in range(0, len(units), 2))
    return escaped, error.end


codecs.register_error(ESCAPE_ERRORS, _escape)


def escape_unencodable() -> None:
    """stdout and stderr write what their encoding cannot hold as escapes (`\\u4e2d`), never failing."""
    for stream in (sys.stdout, sys.stderr):
        if isinstance(stream, io.TextIOWrapper):
            stream.reconfigure(errors=ESCAPE_ERRORS)


def echo(text: str, *, err: bool = False) -> None:
    """`text` and a line break on stdout (`err`: stderr) as they are: through `escape_unencodable`'s
    escapes, where `typer.echo` would write UTF-8 to a terminal that declared ASCII."""
    stream = sys.stderr if err else sys.stdout
    stream.write(f"{text}\n")
    stream.flush()

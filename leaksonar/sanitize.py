"""The output boundary for text a scanned server wrote: one function per medium. The store keeps the
raw value as evidence and JSON output stays exact; every other medium passes server text through
here first.

- `for_terminal`: control characters (C0, DEL, C1), bidi and other invisible format characters, and
  line or paragraph separators become visible escapes such as `\\x1b` or `\\u202e`, so a string can
  neither move the cursor, set a window title, ring a bell, reorder a line nor start a new one.
  (Rich markup is a separate concern: terminal output hands server text to Rich as `Text`, never as
  markup.)
- `for_csv`: a cell a spreadsheet would run as a formula gets a leading apostrophe."""

from __future__ import annotations

import re
import unicodedata

_INVISIBLE = frozenset({"Cc", "Cf", "Zl", "Zp", "Cs", "Co", "Cn"})
"""Unicode categories shown as escapes: controls, format characters (bidi, zero-width), line and
paragraph separators, surrogates, private use and unassigned code points."""

_FORMULA = ("=", "+", "-", "@", "\t", "\r", "\n")
"""First characters that make a spreadsheet read a cell as a formula (OWASP CSV injection)."""

_SUSPECT = re.compile(r"[^\x20-\x7e]")
"""Anything outside printable ASCII is looked at one character at a time; the rest passes as is."""


def _escape(char: str) -> str:
    if unicodedata.category(char) not in _INVISIBLE:
        return char
    code = ord(char)
    if code <= 0xFF:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}"


def for_terminal(text: str) -> str:
    """`text` with every character that could act on a terminal, or hide or reorder text, shown as a
    visible escape (`\\x1b`, `\\x00`, `\\u202e`); a literal backslash is kept as it is."""
    return _SUSPECT.sub(lambda match: _escape(match.group()), text)


def for_csv(text: str) -> str:
    """A CSV cell a spreadsheet shows as the literal text: one that starts with `= + - @`, a tab or a
    line break gets a leading apostrophe."""
    return f"'{text}" if text.startswith(_FORMULA) else text

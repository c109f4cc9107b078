"""The output boundary for text a scanned server wrote: one function per medium. The store keeps the
raw value as evidence and JSON output stays exact; every other medium passes server text through
here first.

- `for_terminal`: control characters (C0, DEL, C1), bidi and other invisible format characters, and
  line or paragraph separators become visible escapes such as `\\x1b` or `\\u202e`, so a string can
  neither move the cursor, set a window title, ring a bell, reorder a line nor start a new one.
  (Rich markup is a separate concern: terminal output hands server text to Rich as `Text`, never as
  markup.)
- `for_csv`: a cell a spreadsheet would run as a formula gets a leading apostrophe.
- `for_markdown`: inline text that CommonMark and GitHub-flavoured Markdown render as the literal
  text (`@` as `＠`): no image, link, autolink, mention, raw HTML, entity, emphasis, code, heading or
  table break.
- `for_slack`: Slack mrkdwn that shows the literal text: no mention, link or formatting.
- `for_email`: an e-mail header value (one line) or a line of a plain-text body.
- `for_json`: JSON text, exact for a JSON reader, with every character `for_terminal` escapes written as
  a JSON escape (`\\u202e`), so the JSON itself is inert wherever it is shown.

Each first makes control characters visible as `for_terminal` does, so no value can start a new line."""

from __future__ import annotations

import json
import re
import unicodedata
from typing import Any

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


_MARKDOWN_SPECIAL = re.compile(
    r"[`*\[\]<>&|~#$]"  # emphasis, code, links, images, HTML, entities, tables, headings, math
    r"|(?<![^\W_])_|_(?![^\W_])"  # an underscore that is not inside a word (snake_case is inert)
    r"|\\(?=[!-/:-@\[-`{-~]|$)"  # a backslash that would escape what follows it
    r"|\.(?=[^\W\d_]|$)|(?i:(?<=www)\.)"  # the dot of a domain name (evil.example) and www.: autolinks
    r"|:(?=//)|/(?=/)"  # scheme://, //host: URL autolinks
    r"|^[-+=]"  # at the start of a line: a list item, setext heading or thematic break
)
"""What can make inline Markdown more than its literal text; the rest (letters, digits, spaces, `. , : ;
( ) - + = ' "` elsewhere) renders as itself. A backslash stops the URL and www. autolinks of cmark-gfm
(GitHub's engine), which it finds while parsing; not its e-mail autolinks (`x@y.z`, `mailto:`, `xmpp:`),
which it finds in the text after escapes and entities are decoded: hence `@` as a look-alike."""
_MARKDOWN_AT = "\uff20"
"""`＠`: no e-mail autolink and no @mention, in any Markdown engine."""

_ORDERED_ITEM = re.compile(r"^(\d+)(?=[.)]( |$))")
"""`1. ` or `1)` at the start of a line: an ordered list item."""


def for_markdown(text: str) -> str:
    """Inline Markdown that CommonMark and GitHub-flavoured Markdown (tables, autolinks, strikethrough)
    render as the literal `text`: each character that could format, link, embed or break a table cell
    is backslash-escaped (CommonMark lets any ASCII punctuation be escaped) and `@` becomes `＠`. For
    running text and table cells and after a block quote's `>`, not for the inside of a code span."""
    literal = for_terminal(text).replace("@", _MARKDOWN_AT)
    escaped = _MARKDOWN_SPECIAL.sub(lambda match: "\\" + match.group(), literal)
    return _ORDERED_ITEM.sub(r"\1\\", escaped)


_SLACK_ENTITIES = {"&": "&amp;", "<": "&lt;", ">": "&gt;"}
_SLACK_FORMAT = {"*": "\u2217", "_": "\uff3f", "~": "\uff5e", "`": "\u02cb", "@": "\uff20"}
"""mrkdwn has no escape character for its formatting marks: they become look-alikes (`∗ ＿ ～ ˋ ＠`), so
server text can neither bold, italicise, strike or quote as code, nor mention @channel."""
_SLACK_SPECIAL = re.compile("[&<>*_~`@]")


def for_slack(text: str) -> str:
    """Slack mrkdwn that shows `text` as it is: `& < >` as the entities Slack documents (no `<!channel>`,
    no `<http://x|label>` link), formatting marks and `@` as look-alikes."""
    return _SLACK_SPECIAL.sub(
        lambda match: _SLACK_ENTITIES.get(match.group()) or _SLACK_FORMAT[match.group()], for_terminal(text)
    )


def for_email(text: str) -> str:
    """An e-mail header value or body line: `for_terminal`, so CR and LF cannot add a header or a line
    and no control character reaches the reader's terminal or mail client."""
    return for_terminal(text)


_NOT_ASCII = re.compile(r"[^\x20-\x7e\n]")


def for_json(value: Any, indent: int | None = None, sort_keys: bool = False) -> str:
    """`value` as JSON text, compact unless indented: exact (a JSON reader gets the very strings) and any
    script's letters as written, but each character `for_terminal` would escape (a bidi control, DEL, a
    C1 control ...) as a JSON escape (`\\u202e`): nothing in it acts on a terminal, an editor or a page."""
    compact = (",", ":") if indent is None else None
    text = json.dumps(value, indent=indent, separators=compact, ensure_ascii=False, sort_keys=sort_keys)
    return _NOT_ASCII.sub(lambda m: m[0] if _escape(m[0]) == m[0] else json.dumps(m[0])[1:-1], text)

"""The output boundary for server text: what each medium shows of a hostile string."""

from __future__ import annotations

import html
import json
import re
from collections.abc import Callable

import pytest
from hypothesis import given
from hypothesis import strategies as st
from markdown_it import MarkdownIt

from leaksonar.sanitize import for_csv, for_email, for_json, for_markdown, for_slack, for_terminal


def test_terminal_text_shows_controls_and_bidi_as_escapes() -> None:
    hostile = "7.0\x1b]0;pwned\x07\x00\u202eevil\u2066\r\nx\x9b"
    assert for_terminal(hostile) == "7.0\\x1b]0;pwned\\x07\\x00\\u202eevil\\u2066\\x0d\\x0ax\\x9b"


def test_terminal_text_keeps_printable_text_of_any_script() -> None:
    assert for_terminal("用户表 [bold]x[/] C:\\dir café") == "用户表 [bold]x[/] C:\\dir café"


@given(st.text())
def test_no_terminal_control_survives(text: str) -> None:
    shown = for_terminal(text)
    assert not any(ord(c) < 0x20 or 0x7F <= ord(c) <= 0x9F for c in shown)
    assert "\u202e" not in shown and "\u2028" not in shown


def test_csv_cells_that_a_spreadsheet_would_run_get_an_apostrophe() -> None:
    for cell in ('=HYPERLINK("http://x")', "+1", "-2+3", "@SUM(A1)", "\tx", "\rx"):
        assert for_csv(cell) == "'" + cell
    assert for_csv("users") == "users"
    assert for_csv("a=b") == "a=b"


GFM = MarkdownIt("gfm-like", {"linkify": True})
"""GitHub-flavoured Markdown as markdown-it renders it: tables, strikethrough, autolinks (linkify)."""
MARKDOWN_TEXT = st.text(
    st.one_of(st.sampled_from("\\`*_[]()<>!&#|~$@:/.=+-1 wW\n\t\x1b\u202e"), st.characters()), max_size=40
)


def test_markdown_text_is_escaped_where_it_could_format_and_readable_elsewhere() -> None:
    assert for_markdown("![t](http://evil.example/p.png)") == "!\\[t\\](http\\:\\//evil\\.example/p\\.png)"
    assert for_markdown("<b>&amp;</b> **x** | y") == "\\<b\\>\\&amp;\\</b\\> \\*\\*x\\*\\* \\| y"
    assert for_markdown("# 1. - www.x.example") == "\\# 1. - www\\.x\\.example"
    assert for_markdown("- x") == "\\- x" and for_markdown("12) x") == "12\\) x"
    assert (
        for_markdown("national_id 127.0.0.1:9200 7.10.2 C:\\dir")
        == "national_id 127.0.0.1:9200 7.10.2 C:\\dir"
    )
    assert for_markdown("\x1b[2J\r\n") == "\\x1b\\[2J\\x0d\\x0a"


@pytest.fixture(scope="module", params=["markdown-it", "cmark-gfm"])
def render(request: pytest.FixtureRequest) -> Callable[[str], str]:
    """Markdown to HTML as markdown-it (linkify) and as cmark-gfm, GitHub's own engine (dev extras)."""
    if request.param == "markdown-it":
        return GFM.render
    return pytest.importorskip("cmarkgfm").github_flavored_markdown_to_html


@pytest.mark.parametrize(
    "text",
    [
        "write to restore@attacker.example",
        "xmpp:ransom@attacker.example",
        "www.000.0000/claim",
        "www.1-2.com/x",
    ],
)
def test_markdown_has_no_autolink_of_server_text(render: Callable[[str], str], text: str) -> None:
    rendered = render(for_markdown(text))
    assert "<a " not in rendered
    assert html.unescape(rendered.strip().removeprefix("<p>").removesuffix("</p>")) == text.replace("@", "＠")


@given(MARKDOWN_TEXT)
def test_markdown_renders_as_the_literal_text(render: Callable[[str], str], text: str) -> None:
    literal = for_terminal(text).replace("@", "＠")
    for before, after in (("a ", " b"), ("> ", ""), ("", "")):
        rendered = render(before + for_markdown(text) + after)
        assert "<a " not in rendered and "<img" not in rendered
        shown = html.unescape(re.sub(r"</?(p|blockquote)>", "", rendered)).strip()
        assert shown == (before.removeprefix("> ") + literal + after).strip()


def test_slack_text_has_no_mention_link_or_formatting() -> None:
    text = for_slack("<!channel> <http://evil|x> *b* _i_ ~s~ `c` @here &amp;\n")
    assert text == "&lt;!channel&gt; &lt;http://evil|x&gt; ∗b∗ ＿i＿ ～s～ ˋcˋ ＠here &amp;amp;\\x0a"


def test_email_text_is_one_line() -> None:
    assert for_email("x\r\nBcc: y\x1b") == "x\\x0d\\x0aBcc: y\\x1b"


@given(
    st.recursive(st.text(), lambda inner: st.lists(inner) | st.dictionaries(st.text(), inner), max_leaves=8)
)
def test_json_is_exact_and_inert(value: object) -> None:
    text = for_json(value)
    assert json.loads(text) == value
    assert for_terminal(text) == text  # nothing in it a terminal, editor or page would act on


def test_json_keeps_letters_of_any_script_and_escapes_controls() -> None:
    assert for_json(["Ünïcödé 数据", "\u202e\x1b\x85"]) == '["Ünïcödé 数据","\\u202e\\u001b\\u0085"]'

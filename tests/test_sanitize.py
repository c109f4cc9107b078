"""The output boundary for server text: what each medium shows of a hostile string."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from leaksonar.sanitize import for_csv, for_terminal


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

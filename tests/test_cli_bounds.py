"""Numbers, times and durations out of range on the command line: refused with exit 2 before they reach
the index, a timer or a sum; never an internal error. Every number option of every command is bounded
by the one definition in cli/common.py (`whole`, `number`)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import typer
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from leaksonar.cli.app import app
from leaksonar.cli.lab import lab_group
from leaksonar.formats import parse_duration, parse_since
from leaksonar.store.db import Store

HUGE = "99999999999999999999"
NOW = datetime(2026, 12, 1, tzinfo=UTC)


@pytest.fixture(scope="module")
def index(tmp_path_factory: pytest.TempPathFactory) -> str:
    db = str(tmp_path_factory.mktemp("bounds") / "index.db")
    Store(db)
    return db


@pytest.fixture(scope="module")
def alerts(tmp_path_factory: pytest.TempPathFactory) -> str:
    path = tmp_path_factory.mktemp("alerts") / "alerts.toml"
    path.write_text(
        '[[rule]]\nname = "r"\nchannels = ["c"]\n[[webhook]]\nname = "c"\nurl = "http://127.0.0.1:9/"\n'
    )
    return str(path)


def invoke(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(args))
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result.exit_code, result.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["show", f"127.66.0.1:{HUGE}"], "is not IP or IP:PORT (a port from 0 to 65535)"),
        (["show", "127.66.0.1:-1"], "is not IP or IP:PORT"),
        (["events", "--since", "800000d"], "--since: '800000d' is longer than 36,500 days"),
        (["events", "--since", "999999999999d"], "is longer than 36,500 days"),
        (["events", "--since", "99999999h"], "is longer than 36,500 days"),
        (["events", "--since", "0" * 5000 + "1d" + "9" * 5000 + "s"], "is longer than 36,500 days"),
        (["events", "--since", "0001-01-01T00:00:00+05:00"], "is outside the years 1 to 9999 in UTC"),
        (["events", "--since", "9999-12-31T23:59:59-05:00"], "is outside the years 1 to 9999 in UTC"),
        (["events", "--ip", f"127.0.0.1:{HUGE}"], "is not IP or IP:PORT"),
        (["alerts", "send", "--since", "800000d"], "--since: '800000d' is longer than 36,500 days"),
        (["watch", "127.0.0.1", "--every", "99999999999999d"], "--every: '99999999999999d' is longer than"),
    ],
)
def test_out_of_range_times_fail_in_one_line(index: str, alerts: str, args: list[str], message: str) -> None:
    extra = ["--config", alerts] if args[0] == "alerts" else []
    code, output = invoke(*args, *extra, "--db", index)
    assert code == 2
    assert output.strip().splitlines() == [f"leaksonar: error: {output.strip().split('error: ', 1)[1]}"]
    assert message in output


@pytest.mark.parametrize(
    "args",
    [
        ["hosts", "--limit", HUGE],
        ["events", "--limit", HUGE],
        ["search", "", "--offset", HUGE],
        ["verify", "x.csv", "--limit", HUGE],
        ["report", "--asn", HUGE],
        ["scan", "127.0.0.1", "--per-host", HUGE],
        ["scan", "127.0.0.1", "--seed", HUGE],
        ["scan", "127.0.0.1", "--rate", "nan"],
        ["scan", "127.0.0.1", "--rate", "inf"],
        ["scan", "127.0.0.1", "--rate", "-inf"],
        ["scan", "127.0.0.1", "--rate", "0"],
        ["scan", "127.0.0.1", "--timeout", "nan"],
        ["scan", "127.0.0.1", "--timeout", "1e999"],
        ["scan", "127.0.0.1", "--read-timeout", "NaN"],
        ["watch", "127.0.0.1", "--rate", "nan"],
        ["worker", "--lease-ttl", "nan"],
        ["worker", "--heartbeat", "inf"],
    ],
)
def test_out_of_range_numbers_are_refused(index: str, args: list[str]) -> None:
    code, output = invoke(*args, "--db", index) if args[0] != "verify" else invoke(*args)
    assert code == 2
    (line,) = output.strip().splitlines()
    assert line.startswith(f"leaksonar: error: Invalid value for '{args[-2]}'")


def _number_options() -> list[tuple[str, typer.core.TyperOption]]:
    root = typer.main.get_command(app)
    found = []

    def walk(command: object, path: str) -> None:
        for name, sub in getattr(command, "commands", {}).items():
            walk(sub, f"{path} {name}")
        for param in getattr(command, "params", ()):
            if param.type_descriptor.annotation in (int, float):
                found.append((f"{path} {param.name}", param))

    walk(root, "leaksonar")
    walk(lab_group(), "leaksonar lab")
    return found


def test_every_number_option_is_bounded() -> None:
    options = _number_options()
    assert len(options) > 20
    for name, param in options:
        if param.type_descriptor.annotation is int:
            assert param.min is not None and param.max is not None, name
        else:
            parser = param.type_descriptor.parameter_info.parser
            assert parser is not None and parser.__qualname__ == "number.<locals>.parse", name


_DURATIONS = st.from_regex(r"\A\s?(?:[0-9]{1,30}[smhdwSMHDW]){1,4}\s?\Z") | st.text(max_size=40)
_TIMES = st.datetimes(timezones=st.timezones()).map(datetime.isoformat) | st.from_regex(
    r"\A(0001|9999|[0-9]{4})-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9])(T[0-9]{2}:[0-9]{2}:[0-9]{2}([+-][0-9]{2}:[0-9]{2}|Z))?\Z"
)


@settings(max_examples=400, deadline=None)
@given(text=_DURATIONS | _TIMES)
def test_times_and_durations_parse_or_fail_with_a_value_error(text: str) -> None:
    for parse in (parse_duration, lambda t: parse_since(t, NOW)):
        try:
            parse(text)
        except ValueError as exc:
            assert "\n" not in str(exc)


@pytest.mark.parametrize(
    "text", ["36500d", "1d", "0001-01-02", "9999-12-31T23:59:59Z", "2026-11-28T05:00:00+05:00"]
)
def test_times_within_range_are_taken(text: str) -> None:
    assert len(parse_since(text, NOW)) == 20


def test_a_duration_past_the_longest_is_refused() -> None:
    with pytest.raises(ValueError, match="longer than 36,500 days"):
        parse_duration("36501d")


def test_an_old_time_keeps_four_year_digits() -> None:
    assert parse_since("0099-01-01T00:00:00Z", NOW) == "0099-01-01T00:00:00Z"

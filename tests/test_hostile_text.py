"""Server text at every terminal output: the hostile-text kit (tests/hostile_text.py) is scanned, and every
command that shows what is stored (scan, show, hosts, search, events, verify) runs to a pipe and on a
terminal (a pseudo-terminal, styles on): exit 0, nothing acts on the terminal (no escape sequence but the
styles Rich itself writes, no BEL, NUL or bidi control, no hyperlink), and every payload is shown as the
literal text, control characters as visible escapes. Below, the render functions and the console are held
to the same on their own, and a structural check keeps every Rich output on the one boundary."""

from __future__ import annotations

import ast
import csv
import dataclasses
import inspect
import io
import json
import os
import pty
import re
import select
import subprocess
import sys
import tty
import unicodedata
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from hostile_text import MIX, PAYLOADS, SHORT, VERSIONS, HostileIndex, index_names
from rich.console import Console, RenderableType
from rich.table import Table

from leaksonar.cli import render
from leaksonar.model import Event, Finding
from leaksonar.notify.alerts import Delivery
from leaksonar.sanitize import for_terminal
from leaksonar.store.rows import Hit, HostRow
from leaksonar.terminal import PlainConsole
from leaksonar.verify import reader

WIDE = 30_000
"""Terminal width of the terminal runs: no cell is wrapped, so each payload shows whole."""
_SGR = re.compile(r"\x1b\[[0-9;]*m")
"""The escape sequences Rich writes for styles: the only ones allowed on a terminal."""


def assert_inert(shown: str) -> None:
    """Nothing in `shown` acts on a terminal or reorders text: no hyperlink, no escape sequence but
    Rich's own styles, no other control character than the line feed, no bidi or separator character."""
    assert "\x1b]8;" not in shown
    acting = sorted(
        {
            f"U+{ord(c):04X}"
            for c in _SGR.sub("", shown)
            if (c != "\n" and unicodedata.category(c) == "Cc")
            or unicodedata.category(c) in ("Cf", "Zl", "Zp")
        }
    )
    assert not acting, acting


def assert_literal(shown: str, *texts: str) -> None:
    """Each of `texts` shows as written (its control characters as visible escapes)."""
    missing = [text[:40] for text in texts if for_terminal(text) not in _SGR.sub("", shown)]
    assert not missing, missing


# --- the kit scanned: every command, to a pipe and on a terminal ---------------------------------------


def on_terminal(*args: str, columns: int = WIDE) -> tuple[int, str, str]:
    """(exit code, stdout, stderr) of `leaksonar ARGS` with its stdout on a pseudo-terminal of `columns`."""
    master, slave = pty.openpty()
    tty.setraw(slave)
    env = {**os.environ, "COLUMNS": str(columns), "TERM": "xterm-256color"}
    env.pop("NO_COLOR", None)
    with Path(os.devnull).open() as stdin, io.BytesIO() as shown:
        errors = subprocess.Popen(
            [sys.executable, "-m", "leaksonar", *args],
            stdin=stdin,
            stdout=slave,
            stderr=subprocess.PIPE,
            env=env,
        )
        os.close(slave)
        try:
            while select.select([master], [], [], 60)[0]:
                try:
                    chunk = os.read(master, 1 << 16)
                except OSError:  # EIO: the command closed its terminal
                    break
                if not chunk:
                    break
                shown.write(chunk)
            _, stderr = errors.communicate(timeout=60)
        finally:
            os.close(master)
        return errors.returncode, shown.getvalue().decode("utf-8"), stderr.decode("utf-8")


def on_pipe(*args: str) -> tuple[int, str, str]:
    result = subprocess.run(
        [sys.executable, "-m", "leaksonar", *args], capture_output=True, text=True, timeout=120
    )
    return result.returncode, result.stdout, result.stderr


def run_both(*args: str, exit_code: int = 0) -> str:
    """`leaksonar ARGS` to a pipe and on a terminal; both exit with `exit_code`, with inert output and
    stderr. The terminal's stdout (wide, styled)."""
    shown = ""
    for run in (on_pipe, on_terminal):
        code, stdout, stderr = run(*args)
        assert code == exit_code and "internal error" not in stderr, (run.__name__, code, stderr[-2000:])
        assert_inert(stdout)
        assert_inert(stderr)
        shown = stdout
    assert "\x1b[" in shown, "the terminal run shows no styles: it did not run on a terminal"
    return shown


def test_both_scans_of_the_kit_to_a_pipe(hostile_index: HostileIndex) -> None:
    for scan in hostile_index.scans:
        assert scan.returncode == 0 and "internal error" not in scan.stderr, scan.stderr
        assert_inert(scan.stdout + scan.stderr)
        assert "\x1b" not in scan.stdout and "2 exposed" in scan.stdout  # a pipe gets no styles
    protocols = sorted(record["protocol"] for record in hostile_index.records)
    assert protocols == ["elasticsearch", "redis"]


def test_a_scan_table_on_a_terminal(hostile_index: HostileIndex, tmp_path: Path) -> None:
    running = hostile_index.kit
    code, shown, stderr = on_terminal(
        "scan", "127.0.0.1", "-p", running.ports, "--db", str(tmp_path / "i.db")
    )
    assert code == 0 and "internal error" not in stderr, stderr
    assert_inert(shown)
    assert_literal(shown, VERSIONS["elasticsearch"][1], VERSIONS["redis"][1])


def test_show(hostile_index: HostileIndex) -> None:
    shown = run_both("show", hostile_index.ip, "--db", str(hostile_index.db))
    assert_literal(shown, *PAYLOADS, *index_names(2), VERSIONS["elasticsearch"][1])


@pytest.mark.parametrize("command", [("show", "127.0.0.1"), ("search", "ip:127.0.0.1"), ("events",)])
def test_json_keeps_the_exact_text_and_is_inert(
    hostile_index: HostileIndex, command: tuple[str, ...]
) -> None:
    code, stdout, stderr = on_pipe(*command, "--json", "--db", str(hostile_index.db))
    assert code == 0, stderr
    assert_inert(stdout)
    if command[0] == "events":
        summaries = [json.loads(line)["summary"] for line in stdout.splitlines()]
    else:
        found = json.loads(stdout)
        records = found if command[0] == "show" else found["hits"]
        summaries = [f"software {r['software']['name']} {r['software']['version']}" for r in records]
    assert any(VERSIONS["elasticsearch"][1] in summary for summary in summaries)
    assert any(VERSIONS["redis"][1] in summary for summary in summaries)


def test_hosts(hostile_index: HostileIndex) -> None:
    shown = run_both("hosts", "--db", str(hostile_index.db))
    assert hostile_index.ip in shown


@pytest.mark.parametrize("query", ["ip:127.0.0.1", "infected:true"])
def test_search_with_facets(hostile_index: HostileIndex, query: str) -> None:
    shown = run_both("search", query, "--facets", "--db", str(hostile_index.db))
    assert_literal(shown, f"elasticsearch {VERSIONS['elasticsearch'][1]}", f"redis {VERSIONS['redis'][1]}")
    assert "2 found" in shown and "software: elasticsearch 1, redis 1" in shown


def test_events(hostile_index: HostileIndex) -> None:
    es, redis = VERSIONS["elasticsearch"], VERSIONS["redis"]
    changed = [f"software elasticsearch {es[0]} -> elasticsearch {es[1]}", f"software redis {redis[0]}"]
    replaced = ", ".join(sorted(index_names(1))[:3])
    shown = run_both("events", "--db", str(hostile_index.db))
    assert_literal(shown, *changed, f"collections replaced: {replaced} (+")
    _, lines, _ = on_pipe("events", "--db", str(hostile_index.db))
    assert_literal(lines, *changed)  # one line per event, wrapped nowhere


def _hostile_files(directory: Path) -> tuple[Path, Path]:
    """A CSV whose column names are the payloads (NUL aside: a NUL byte makes a file binary data) and a
    JSON array whose keys are all of them."""
    headers = ["id"] + [f"{payload}c{number}" for number, payload in enumerate(PAYLOADS) if payload != "\x00"]
    table = directory / "hostile.csv"
    with table.open("w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        writer.writerow(headers)
        writer.writerows([[f"{headers[0]}{row}" for _ in headers] for row in range(5)])
    document = directory / "hostile.json"
    keys = [f"{payload}k{number}" for number, payload in enumerate(PAYLOADS)]
    document.write_text(json.dumps([{key: f"{MIX}{row}" for key in keys} for row in range(5)]))
    return table, document


def test_verify(tmp_path: Path) -> None:
    table, document = _hostile_files(tmp_path)
    for path in (table, document):
        shown = run_both("verify", str(path))
        assert_literal(shown, *(p for p in PAYLOADS if p != "\x00" or path == document))


def test_lab_status(tmp_path: Path) -> None:
    """The lab's table too (its manifest is a file anyone could have written)."""
    from leaksonar.lab.manifest import manifest_path

    service = {"name": MIX, "protocol": MIX, "ip": "127.0.0.1", "port": 9, "pid": 2**30}
    manifest_path(tmp_path).write_text(json.dumps({"dir": str(tmp_path), "services": [service]}))
    shown = run_both("lab", "status", "--dir", str(tmp_path), exit_code=1)  # 1: a service is not running
    assert_literal(shown, MIX)


# --- the render functions and the console, on their own ----------------------------------------------

_RECORD: dict[str, Any] = {
    "ip": "127.0.0.1",
    "port": 9200,
    "protocol": "elasticsearch",
    "software": {"name": "elasticsearch", "version": "7.10.2"},
    "auth": "none",
    "exposed": True,
    "dataset": {"databases": 1, "collections": 1, "rows": 970000, "size_bytes": 23000000000},
    "rows_estimated": False,
    "collections": [
        {
            "database": "db",
            "name": "person",
            "rows": 970000,
            "rows_estimated": False,
            "size_bytes": 0,
            "fields": ["xm"],
            "pii": ["name"],
        }
    ],
    "pii": {"name": {"matches": 18, "sampled": 20, "fields": ["xm"], "example": "Z**"}},
    "ransom": {
        "infected": True,
        "notes": [{"where": "index read_me", "excerpt": "pay", "btc_addresses": []}],
    },
    "errors": [{"kind": "timeout", "message": "Sampling person timed out"}],
    "severity": "critical",
    "summary": "Elasticsearch 7.10.2 without authentication",
    "time": "2026-11-28T05:00:00Z",
    "scan_id": "s1",
    "geo": {"country": "CN"},
    "hostname": "es.example.cn",
    "tls": {
        "version": "TLSv1.3",
        "cipher": "TLS_AES_256_GCM_SHA384",
        "cert": {
            "subject": "CN=es.example.cn",
            "names": ["es.example.cn", "*.example.cn"],
            "issuer": "CN=R11,O=Let's Encrypt,C=US",
            "not_before": "2026-10-01T00:00:00Z",
            "not_after": "2026-12-30T00:00:00Z",
            "self_signed": True,
            "expired": True,
            "sha256": "ab" * 32,
            "key": "EC secp256r1",
        },
    },
}


def hostile(value: Any) -> Any:
    """`value` with the payloads in every string it holds (values of mappings, fields of dataclasses)."""
    if isinstance(value, str):
        return f"{MIX}{value}"
    if isinstance(value, dict):
        return {k: hostile(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(map(hostile, value))
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.replace(
            value, **{f.name: hostile(getattr(value, f.name)) for f in dataclasses.fields(value)}
        )
    return value


def _verify_report() -> list[RenderableType]:
    leak = reader.LeakFile(Path(MIX), MIX, compressed=True, notes=[MIX])
    for row in range(5):
        leak.add({f"{payload}x": f"{MIX}{row}" for payload in SHORT})
    return reader.renderables(leak, reader.check_table(leak.columns, date.today()))


RECORD = hostile(_RECORD)
EVENT = hostile(Event("127.0.0.1", 9200, "wiped", "2026-11-28T05:00:00Z", "s1", "redis", "high", "rows"))
RENDERERS: dict[str, Callable[[], RenderableType | list[RenderableType]]] = {
    "auth_text": lambda: render.auth_text({**RECORD, "exposed": False}),
    "severity_text": lambda: render.severity_text(RECORD["severity"]),
    "findings_table": lambda: render.findings_table([Finding.from_record(RECORD)], title=MIX),
    "search_table": lambda: render.search_table(1, [Hit(1, MIX, MIX, RECORD)]),
    "facets_lines": lambda: render.facets_lines({MIX: [(MIX, 1)]}),
    "delivery_line": lambda: render.delivery_line(
        hostile(Delivery("wiped", "r", "slack", "failed", 3, "500"))
    ),
    "hosts_table": lambda: render.hosts_table([hostile(HostRow("127.0.0.1", "t0", "t1", 2, 1, "redis"))]),
    "collections_table": lambda: render.collections_table(RECORD),
    "service_line": lambda: render.service_line(RECORD, MIX, MIX, 3.0),
    "tls_line": lambda: render.tls_line(RECORD),
    "event_line": lambda: render.event_line(EVENT),
    "events_table": lambda: render.events_table([EVENT], title=MIX),
    "scan_line": lambda: render.scan_line(MIX, 10, 1.0, 2, 2, 1),
    "verify": _verify_report,
}
"""Each public function of leaksonar.cli.render (and verify's report), called with hostile text."""


def test_every_render_function_is_held_here() -> None:
    public = {
        name
        for name, function in inspect.getmembers(render, inspect.isfunction)
        if function.__module__ == render.__name__ and not name.startswith("_")
    }
    assert public == set(RENDERERS) - {"verify"}


@pytest.mark.parametrize("name", sorted(RENDERERS))
def test_render_functions_show_server_text_literally_on_any_console(name: str) -> None:
    """On a standard Rich console (markup, emoji and highlighting on), not only on leaksonar's own."""
    parts = RENDERERS[name]()
    console = Console(file=io.StringIO(), force_terminal=True, color_system="truecolor", width=WIDE)
    for part in parts if isinstance(parts, list) else [parts]:
        assert not isinstance(part, str), "a plain str is read as markup by a standard console"
        console.print(part)
    shown = console.file.getvalue()  # type: ignore[attr-defined]
    assert_inert(shown)
    assert_literal(shown, MIX)


def test_the_console_reads_no_string_as_markup() -> None:
    console = PlainConsole(file=io.StringIO(), force_terminal=True, color_system="truecolor", width=WIDE)
    table = Table(title=MIX)
    table.add_column(MIX)
    table.add_row(MIX)
    console.print(MIX, table, markup=True, emoji=True, highlight=True)
    shown = console.file.getvalue()  # type: ignore[attr-defined]
    assert_inert(shown)
    assert shown.count(for_terminal(MIX)) == 4


# --- the boundary, kept: Rich output is built in one way only ------------------------------------------

PACKAGE = Path(render.__file__).parents[1]
BOUNDARY = PACKAGE / "terminal.py"


def _calls(path: Path) -> list[tuple[str, ast.Call]]:
    return [
        (node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", ""), node)
        for node in ast.walk(ast.parse(path.read_text("utf-8")))
        if isinstance(node, ast.Call)
    ]


def test_rich_output_goes_through_the_boundary_only() -> None:
    """Outside leaksonar/terminal.py: no Rich console but `PlainConsole`, no markup, `Text` only of a
    literal, and table rows only through `add_row(table, ...)` (each cell through `plain`)."""
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if path == BOUNDARY:
            continue
        source = path.read_text("utf-8")
        where = path.relative_to(PACKAGE)
        if re.search(r"rich\.markup|from_markup|render_markup|from_ansi|markup=True", source):
            found.append(f"{where}: markup")
        for name, call in _calls(path):
            if name == "Console":
                found.append(f"{where}:{call.lineno}: Console (use PlainConsole)")
            if name == "Text" and call.args and not isinstance(call.args[0], ast.Constant):
                found.append(f"{where}:{call.lineno}: Text of a value (use plain)")
            if name in ("add_row", "assemble") and isinstance(call.func, ast.Attribute):
                found.append(f"{where}:{call.lineno}: .{name} (use add_row(table, ...) and plain)")
    assert not found, found

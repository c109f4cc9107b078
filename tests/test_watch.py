"""`leaksonar watch`: scans on a schedule into the index, prints each pass's change events, stops cleanly."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from conftest import leaksonar

from leaksonar.formats import parse_duration
from leaksonar.store.db import Store


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("90s", 90), ("15m", 900), ("1h", 3600), ("1h30m", 5400), ("2d", 172800), ("1W", 604800)],
)
def test_every_accepts_durations(text: str, seconds: int) -> None:
    assert parse_duration(text) == timedelta(seconds=seconds)


@pytest.mark.parametrize("text", ["", "0s", "0h0m", "1x", "-1h", "h", "1.5h", "1 h", "soon"])
def test_bad_durations_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match="duration"):
        parse_duration(text)


@pytest.mark.parametrize("text", ["0s", "1x", "-1h"])
def test_bad_every_is_refused_before_anything_is_stored(text: str, tmp_path: Path) -> None:
    db = tmp_path / "index.db"
    result = leaksonar("watch", "127.0.0.1", "-p", "1", "--every", text, "--db", str(db), check=False)
    assert result.returncode == 2
    assert result.stderr.startswith("leaksonar: error: --every:") and result.stderr.count("\n") == 1
    assert not db.exists()


def test_watch_once_stores_a_scan_and_prints_its_events(lab_service: Any, tmp_path: Path) -> None:
    cache = lab_service("redis-open")
    db = str(tmp_path / "index.db")
    args = ("watch", cache["ip"], "-p", str(cache["port"]), "--db", db, "--once", "--every", "10m")
    first = leaksonar(*args)
    [line] = first.stdout.splitlines()
    assert f"{cache['ip']}:{cache['port']} new_exposure: exposed without authentication" in line
    assert "1 exposed, 1 change event" in first.stderr
    second = leaksonar(*args)  # for cron: each run one pass; nothing changed, nothing printed
    assert second.stdout == ""
    store = Store(db)
    assert [e.type for e in store.events.find()] == ["new_exposure"]
    scans = [
        store.scans.get(re.search(r"leaksonar.watch: scan (\S+):", run.stderr)[1]) for run in (first, second)
    ]
    assert [s and s.status for s in scans] == ["done", "done"]


@pytest.mark.parametrize("how", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_ctrl_c_or_sigterm_stops_watch_cleanly(lab_service: Any, tmp_path: Path, how: signal.Signals) -> None:
    cache = lab_service("redis-open")
    db = str(tmp_path / "index.db")
    watch = subprocess.Popen(
        [sys.executable, "-m", "leaksonar", "watch", cache["ip"], "-p", str(cache["port"]), "--db", db],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        assert watch.stderr is not None
        first_pass = watch.stderr.readline()  # the first pass is done; the next is an hour away
        assert " INFO leaksonar.watch: scan " in first_pass, first_pass
        watch.send_signal(how)
        stdout, stderr = watch.communicate(timeout=30)
    finally:
        watch.kill()
    assert watch.returncode == 0, stderr
    assert "watch stopped" in stderr and "Traceback" not in stderr
    assert "new_exposure" in stdout
    assert len(Store(db).events.find()) == 1

"""The command line as a package: its version, the optional extras (a missing one is one line, exit 2;
the core runs without the lab's packages), and log records no server can forge."""

from __future__ import annotations

import logging
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import leaksonar

from leaksonar.cli.logs import OneLineFormatter

LAB_MODULES = ("faker", "mmdb_writer", "osmem_server", "pymemcache", "redis", "secantus", "nx_27017")


def without(modules: tuple[str, ...], *args: str) -> subprocess.CompletedProcess[str]:
    """`leaksonar ARGS` in a process where importing any of `modules` fails, as when not installed."""
    code = (
        f"import sys; sys.modules.update(dict.fromkeys({modules!r})); from leaksonar.cli import main; main()"
    )
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=60)


def test_version_is_the_package_metadata_version() -> None:
    from importlib.metadata import version

    result = leaksonar("--version")
    assert result.returncode == 0 and result.stdout == f"leaksonar {version('leaksonar')}\n"


def test_the_core_works_without_the_lab_and_distributed_packages(tmp_path: Path) -> None:
    blocked = (*LAB_MODULES, "celery", "kombu")
    db = str(tmp_path / "index.db")
    scanned = without(blocked, "scan", "127.0.0.1", "-p", "9", "--timeout", "0.2", "--db", db, "-q")
    assert scanned.returncode == 0, scanned.stderr
    assert without(blocked, "hosts", "--db", db, "--json").stdout.strip() == "[]"
    assert without(blocked, "lab", "--help").returncode == 0


@pytest.mark.parametrize(
    ("blocked", "args", "message"),
    [
        (
            LAB_MODULES,
            ("lab", "status", "--dir", "nowhere"),
            "'lab' needs the lab extra: pip install 'leaksonar[lab]'",
        ),
        (
            ("celery",),
            ("worker",),
            "'worker' needs the distributed extra: pip install 'leaksonar[distributed]'",
        ),
        (("celery",), ("beat", "127.0.0.1"), "'beat' needs the distributed extra"),
        (
            ("celery",),
            ("scan", "127.0.0.1", "--distributed"),
            "'scan --distributed' needs the distributed extra",
        ),
        (
            ("pymisp",),
            ("export", "--format", "misp"),
            "'export --format misp' needs the misp extra: pip install 'leaksonar[misp]'",
        ),
    ],
)
def test_a_missing_extra_is_one_line_naming_it(
    blocked: tuple[str, ...], args: tuple[str, ...], message: str, tmp_path: Path
) -> None:
    result = without(blocked, *args, *(("--db", str(tmp_path / "i.db")) if args[0] == "scan" else ()))
    assert result.returncode == 2, result
    assert result.stderr.startswith(f"leaksonar: error: {message}") and result.stderr.count("\n") == 1


def test_a_log_record_cannot_forge_another() -> None:
    hostile = "db\n2026-11-28 05:00:00,000 INFO leaksonar.watch: all clear\x1b[2J\u2028"
    record = logging.LogRecord(
        "leaksonar.worker", logging.WARNING, __file__, 1, "shard 3: %s", (hostile,), None
    )
    line = OneLineFormatter("%(levelname)s %(name)s: %(message)s").format(record)
    assert "\n" not in line and "\x1b" not in line and "\u2028" not in line
    assert line.startswith("WARNING leaksonar.worker: shard 3: db\\x0a2026-11-28")
    assert line.endswith("all clear\\x1b[2J\\u2028")


def test_scan_workers_probe_before_the_index_is_loaded(tmp_path: Path) -> None:
    """A new scan forks its discovery workers before it imports SQLAlchemy and opens the index, so they
    probe while the index opens (what keeps a short scan's wall time near discovery's)."""
    code = (
        "import os, sys\n"
        "seen = []\n"
        "os.register_at_fork(before=lambda: seen.append('fork'))\n"
        "class Watch:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name == 'sqlalchemy' and 'sqlalchemy' not in seen: seen.append('sqlalchemy')\n"
        "sys.meta_path.insert(0, Watch())\n"
        "from leaksonar.cli import main\n"
        "try: main()\n"
        "finally: print(' '.join(seen), file=sys.stderr)\n"
    )
    args = ["scan", "127.0.0.1", "-p", "9", "--workers", "2", "--db", str(tmp_path / "i.db"), "-q"]
    result = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=60)
    order = result.stderr.split()
    assert result.returncode == 0 and order.index("fork") < order.index("sqlalchemy"), result.stderr

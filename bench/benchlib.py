"""What the benchmarks share: timing whole commands, the machine they ran on, results files."""

from __future__ import annotations

import json
import os
import platform
import shutil
import subprocess
import sys
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NamedTuple, NoReturn

ROOT = Path(__file__).resolve().parent.parent
LEAKSONAR = str(ROOT / ".venv" / "bin" / "leaksonar")
RESULTS = ROOT / "bench" / "results"
LOOPBACK = "127.0.0.0/8"


class Measure(NamedTuple):
    seconds: float
    """Wall time from start to exit."""
    rss_mb: float
    """Peak RSS of the largest of the command and its waited-for children."""
    cpu_s: float
    """User + system CPU time of the command and its waited-for children."""


LAUNCHER = """
import os, sys, time
report = int(sys.argv[1])
os.set_inheritable(report, False)
started = time.perf_counter()
pid = os.fork()
if pid == 0:
    os.execvp(sys.argv[2], sys.argv[2:])
_, status, usage = os.wait4(pid, 0)
seconds = time.perf_counter() - started
os.write(report, f"{seconds} {usage.ru_maxrss} {usage.ru_utime + usage.ru_stime}".encode())
sys.exit(os.waitstatus_to_exitcode(status) and 1)
"""
"""Runs a command and writes its wall seconds, peak RSS (KB) and CPU seconds to the file descriptor it is
given. A command forked straight from the benchmark would start with the benchmark's own peak RSS (Linux
keeps the high-water mark across fork and exec); forked from this fresh interpreter, it starts with
about 5 MB."""


def run(command: list[str], stdout: int | None = subprocess.DEVNULL) -> Measure:
    """Run one command to its end; exit the benchmark with its stderr if it fails."""
    read, write = os.pipe()
    try:
        done = subprocess.run(
            [sys.executable, "-S", "-I", "-c", LAUNCHER, str(write), *command],
            stdout=stdout,
            stderr=subprocess.PIPE,
            pass_fds=(write,),
            check=False,
        )
    finally:
        os.close(write)
    with os.fdopen(read) as report:
        figures = report.read().split()
    if done.returncode != 0 or len(figures) != 3:
        error = done.stderr.decode(errors="replace")
        sys.exit(f"{' '.join(command[:3])} ... failed: {error[-800:]}")
    seconds, rss_kb, cpu = map(float, figures)
    return Measure(seconds, rss_kb / 1024, cpu)


def rerun_in_namespace(script: str, tools: Iterable[str]) -> NoReturn:
    """Run `script` again with `--inside` and this run's arguments in a new network namespace (`unshare -n`,
    `unshare -rn` when not root), where only its own loopback exists, and exit with its status; exits with
    one line first if one of `tools` is not installed."""
    for tool in ("unshare", "ip", *tools):
        if shutil.which(tool) is None:
            sys.exit(f"{tool} is not installed (make setup installs it)")
    unshare = ["unshare", "-n"] if os.geteuid() == 0 else ["unshare", "-rn"]
    command = [*unshare, sys.executable, script, "--inside", *sys.argv[1:]]
    sys.exit(subprocess.run(command, check=False).returncode)


def machine() -> dict[str, Any]:
    """Cores, CPU model, memory and kernel of this machine."""
    model = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
        memory_kb = next(
            int(line.split()[1])
            for line in Path("/proc/meminfo").read_text().splitlines()
            if line.startswith("MemTotal:")
        )
    except (OSError, StopIteration):
        memory_kb = 0
    return {
        "cores": os.cpu_count(),
        "cpu": model,
        "memory_gb": round(memory_kb / 1024 / 1024, 1),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "load_1min": round(os.getloadavg()[0], 2),
    }


def describe(info: dict[str, Any]) -> str:
    return f"{info['cores']} cores, {info['cpu']}, {info['memory_gb']} GB, Linux {info['kernel']}"


def save(name: str, results: dict[str, Any]) -> Path:
    """Write bench/results/NAME.json (with the machine and the time of the run)."""
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"{name}.json"
    record = {"time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "machine": machine(), **results}
    path.write_text(json.dumps(record, indent=2) + "\n")
    return path


def listening_prefixes() -> set[tuple[int, int]]:
    """First two octets of every IPv4 address something listens on (TCP)."""
    prefixes = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if fields[3] == "0A":  # LISTEN
            address = int(fields[1].split(":")[0], 16)  # little-endian
            prefixes.add((address & 255, (address >> 8) & 255))
    return prefixes


def free_block(first: int = 92, last: int = 126) -> str:
    """A 127.x.0.0 base (x in first..last) with nothing listening on any 127.x address."""
    busy = listening_prefixes()
    for second in range(first, last + 1):
        if (127, second) not in busy:
            return f"127.{second}.0.0"
    sys.exit(f"no free 127.x.0.0/16 block between 127.{first} and 127.{last}")


@contextmanager
def running_lab(
    tmp: Path, lab_dir: Path | None, base: str | None, services: Iterable[str] | None = None
) -> Iterator[dict[str, Any]]:
    """The manifest of the running lab in `lab_dir`, or of a lab of `services` (all for None) started
    in `tmp` on `base` (default: a free 127.x.0.0) and stopped on leaving."""
    if lab_dir is not None:
        yield json.loads((lab_dir / "manifest.json").read_text())
        return
    from leaksonar.lab import LabError, lab_down, lab_up

    base = base or free_block()
    if not base.startswith("127."):
        sys.exit("the lab runs on loopback only (127.0.0.0/8)")
    tmp.chmod(0o711)  # the lab's PostgreSQL runs as user postgres and must reach its directory
    started = time.perf_counter()
    try:
        manifest = lab_up(tmp / "lab", base, services)
    except LabError as exc:
        sys.exit(f"lab up failed: {exc}")
    print(f"lab up on {base} ({len(manifest['services'])} services) in {time.perf_counter() - started:.1f} s")
    try:
        yield dict(manifest)
    finally:
        lab_down(tmp / "lab")

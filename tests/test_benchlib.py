"""bench/benchlib.py's `run`: the figures it reports are the command's own."""

from __future__ import annotations

import resource
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))

from benchlib import run


def test_peak_rss_of_a_command_is_its_own_not_the_benchmarks() -> None:
    held = bytearray(200 << 20)
    for i in range(0, len(held), 4096):
        held[i] = 1
    own_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    assert own_mb > 200
    assert run(["/bin/true"]).rss_mb < 20


def test_cpu_counts_the_commands_waited_for_children() -> None:
    busy = "import time\nt = time.process_time()\nwhile time.process_time() - t < 0.3: pass"
    measure = run(["sh", "-c", f"{sys.executable} -c '{busy}' & wait"])
    assert measure.cpu_s >= 0.3
    assert measure.seconds >= 0.3

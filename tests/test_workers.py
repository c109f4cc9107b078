"""The pipe from a discovery worker to the scan's main process: a worker that dies part-way through sending
a finding ends the scan as its death says (Ctrl-C: interrupted; anything else: an error naming it)."""

from __future__ import annotations

import asyncio
import os
import signal

import pytest

from leaksonar.model import Finding
from leaksonar.scan.discover import DiscoveryStats
from leaksonar.scan.workers import Worker, WorkerInterrupted, follow


def worker_dying_mid_finding(how: signal.Signals) -> Worker:
    """A forked process that reports an open port, sends the start of its finding, then dies by `how`."""
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read_fd)
        os.write(write_fd, b"O 127.0.0.1 6379 0\nF 0 200000\n" + b"\x80" * 1000)
        signal.signal(signal.SIGINT, signal.SIG_DFL)  # as a forked worker has it
        os.kill(os.getpid(), how)
        os._exit(0)
    os.close(write_fd)
    return Worker(pid, read_fd, DiscoveryStats(), 0)


@pytest.mark.parametrize(
    ("how", "error"),
    [(signal.SIGINT, WorkerInterrupted), (signal.SIGKILL, RuntimeError)],
    ids=["ctrl-c", "killed"],
)
def test_worker_dying_mid_finding_ends_the_scan_as_its_death_says(
    how: signal.Signals, error: type[Exception]
) -> None:
    opened: list[tuple[str, int, int]] = []
    found: list[tuple[Finding, int]] = []

    async def run() -> None:
        worker = worker_dying_mid_finding(how)
        await follow(worker, lambda *port: opened.append(port), lambda *f: found.append(f), lambda: None)

    with pytest.raises(error, match="discovery worker"):
        asyncio.run(run())
    assert opened == [("127.0.0.1", 6379, 0)]  # pending in checkpoints: examined again on resume
    assert found == []

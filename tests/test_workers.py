"""The pipe from a discovery worker to the scan's main process: a worker that dies part-way through sending
a report or a finding ends the scan as its death says (Ctrl-C: interrupted; anything else: an error naming
it); a worker whose main process is gone stops."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import time

import pytest

from leaksonar.model import Finding, Limits
from leaksonar.scan.discover import DiscoveryStats
from leaksonar.scan.examine import Examination
from leaksonar.scan.workers import DiscoverySettings, Worker, WorkerInterrupted, follow, fork_workers
from leaksonar.targets import build_space


def worker_dying_mid_finding(how: signal.Signals, last: bytes) -> Worker:
    """A forked process that reports an open port, sends `last` (the start of its finding), then dies by
    `how`."""
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read_fd)
        os.write(write_fd, b"O 127.0.0.1 6379 0\n" + last)
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
@pytest.mark.parametrize(
    "last", [b"F 0 200000\n" + b"\x80" * 1000, b"F 0", b"S 1 1 0 0"], ids=["finding", "header", "report"]
)
def test_worker_dying_mid_finding_ends_the_scan_as_its_death_says(
    how: signal.Signals, error: type[Exception], last: bytes
) -> None:
    opened: list[tuple[str, int, int]] = []
    found: list[tuple[Finding, int]] = []

    async def run() -> None:
        worker = worker_dying_mid_finding(how, last)
        await follow(worker, lambda *port: opened.append(port), lambda *f: found.append(f), lambda: None)

    with pytest.raises(error, match="discovery worker"):
        asyncio.run(run())
    assert opened == [("127.0.0.1", 6379, 0)]  # pending in checkpoints: examined again on resume
    assert found == []


def test_worker_ends_soon_when_the_main_process_is_gone_mid_inspection() -> None:
    """kill -9 (or SIGTERM) of the scan's main process alone: a worker inspecting a slow service does not
    go on to the inspection's end, orphaned (nor, on SIGTERM, keep the main process waiting for it)."""
    with socket.create_server(("127.0.0.1", 0)) as silent:  # accepts, never answers
        space = build_space(["127.0.0.1"], (silent.getsockname()[1],))
        examination = Examination("scan", Limits(timeout=30.0, service_budget=60.0), 4)
        [worker] = fork_workers(space, 1, DiscoverySettings(10, 4, None, 1.0, 0), examination)
        try:
            with os.fdopen(worker.fd, "rb") as pipe:  # read until the port is reported, then gone
                while not pipe.readline().startswith(b"O "):
                    pass
            started = time.monotonic()
            os.waitpid(worker.pid, 0)
            assert time.monotonic() - started < 5
        finally:
            with contextlib.suppress(ProcessLookupError, ChildProcessError):
                os.kill(worker.pid, signal.SIGKILL)
                os.waitpid(worker.pid, 0)

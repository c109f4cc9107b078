"""leaksonar names itself to the HTTP servers it probes, with the operator's info URL."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest


@pytest.fixture
def recorder() -> Iterator[tuple[int, list[str]]]:
    """An HTTP server on 127.0.0.1 that records every User-Agent it is sent."""
    agents: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            agents.append(self.headers.get("User-Agent", ""))
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield server.server_address[1], agents
    finally:
        server.shutdown()


def scan(port: int, tmp_path: Path, **env: str) -> None:
    command = [sys.executable, "-m", "leaksonar", "scan", "127.0.0.1", "-p", str(port), "-q"]
    command += ["--db", str(tmp_path / "i.db")]
    subprocess.run(command, check=True, timeout=60, env={**os.environ, **env})


def test_every_request_names_leaksonar_and_its_info_url(
    recorder: tuple[int, list[str]], tmp_path: Path
) -> None:
    port, agents = recorder
    scan(port, tmp_path)
    assert agents and all(a.startswith("leaksonar/") and "(+https://" in a for a in agents)


def test_the_operator_sets_the_info_url(recorder: tuple[int, list[str]], tmp_path: Path) -> None:
    port, agents = recorder
    scan(port, tmp_path, LEAKSONAR_INFO_URL="https://scanner.example.org/about")
    assert agents and all(a.endswith("(+https://scanner.example.org/about)") for a in agents)

"""HDFS STAND-IN (no Hadoop package exists here): leaksonar/lab/standins/hdfs.py, a small server written
from the WebHDFS REST API documentation that plays a Hadoop 3.3.6 NameNode's HTTP port (web UI, /jmx,
WebHDFS, OPEN redirecting to itself as to a DataNode). It is not Hadoop.

Services: hdfs-open, the FTP share's seeded tree (`data.ftp_files`: a customer export, a SQL dump, a
`.env`, nested directories) open to anyone; hdfs-wiped, a cluster after the HDFS wipe wave, holding only
the empty directory the attackers left, `/NODATA4U_SECUREYOURSHIT`. The stand-in loads the tree written
under the service's workdir into memory and never writes.
"""

from __future__ import annotations

import dataclasses
import hashlib
import signal
import sys
from typing import Any

import httpx

from leaksonar.lab import data
from leaksonar.lab.digest import Hasher
from leaksonar.lab.kinds.base import Launch, Started
from leaksonar.lab.seed import Seeded, attack, database, files_per_top
from leaksonar.lab.spec import ServiceSpec
from leaksonar.lab.standins import hdfs as standin

SERVICES = (
    ServiceSpec("hdfs-open", 65, 9870, "hdfs", "none"),
    ServiceSpec("hdfs-wiped", 66, 9870, "hdfs", "none"),
)
WIPE_DIRECTORY = "NODATA4U_SECUREYOURSHIT"
"""What the HDFS wipe wave left in place of the data: one empty directory."""


def tree(name: str) -> tuple[dict[str, bytes], tuple[str, ...]]:
    """The service's files (path -> content) and its empty directories."""
    if name == "hdfs-wiped":
        return {}, (WIPE_DIRECTORY,)
    return data.ftp_files(), ()


class Hdfs:
    protocol = "hdfs"
    programs = ("hdfs.py",)
    software = "hadoop"
    user = None
    stop_signal = signal.SIGTERM
    standin = True

    def start(self, launch: Launch) -> Started:
        files, empty = tree(launch.name)
        root = launch.workdir / "tree"
        root.mkdir()
        for path, content in files.items():
            target = root / path
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(content)
        for directory in empty:
            (root / directory).mkdir()
        listen = f"{launch.ip}:{launch.port}"
        return Started([sys.executable, standin.__file__, "--listen", listen, "--root", str(root)])

    def seed(self, launch: Launch, started: Started) -> Seeded:
        """The tree was written by `start`: its files per top directory (an empty one counts 0)."""
        files, empty = tree(launch.name)
        seeded = Seeded(standin.VERSION, [database("", files_per_top(files, empty))])
        if launch.name != "hdfs-wiped":
            return seeded
        wipe = attack("wipe", [{"database": "", "collection": WIPE_DIRECTORY}], wiped=True)
        return dataclasses.replace(seeded, attack=wipe)

    def digest(self, entry: dict[str, Any], h: Hasher) -> None:
        """Every file's path and content hash, and every directory, read over WebHDFS."""
        base = f"http://{entry['ip']}:{entry['port']}/webhdfs/v1"
        with httpx.Client(timeout=10.0, trust_env=False, follow_redirects=True) as client:
            _digest_directory(client, base, "", h)


def _digest_directory(client: httpx.Client, base: str, path: str, h: Hasher) -> None:
    answer = client.get(f"{base}/{path}", params={"op": "LISTSTATUS"})
    answer.raise_for_status()
    for status in sorted(answer.json()["FileStatuses"]["FileStatus"], key=lambda s: s["pathSuffix"]):
        child = f"{path}/{status['pathSuffix']}" if path else status["pathSuffix"]
        if status["type"] == "DIRECTORY":
            h.add(child, "directory")
            _digest_directory(client, base, child, h)
        else:
            content = client.get(f"{base}/{child}", params={"op": "OPEN"})
            content.raise_for_status()
            h.add(child, hashlib.sha256(content.content).hexdigest())


KIND = Hdfs()

"""rsync (Debian rsync in daemon mode): `rsync-open`, read-only, with a module `backups` anyone may read
(the seeded tree of `data.ftp_files`) and a module `private` that wants a password."""

from __future__ import annotations

import hashlib
import re
import secrets
import signal
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from leaksonar.lab import data, servers
from leaksonar.lab.digest import Hasher
from leaksonar.lab.kinds.base import Launch, Started
from leaksonar.lab.seed import Seeded, database
from leaksonar.lab.spec import LabError, ServiceSpec

SERVICES = (ServiceSpec("rsync-open", 63, 873, "rsync", "none"),)
OPEN, PRIVATE = "backups", "private"
"""The module anyone may read, and the one that wants a password."""


def _config(launch: Launch, root: bool) -> str:
    """rsyncd.conf: read-only modules on the lab address, no reverse lookups, logs in the workdir; as
    root, chrooted into each module as nobody."""
    work = launch.workdir
    account = ["uid = nobody", "gid = nogroup", "use chroot = yes"] if root else ["use chroot = no"]
    return "\n".join(
        [
            *account,
            "read only = yes",
            "reverse lookup = no",
            "numeric ids = yes",
            f"log file = {work / 'rsyncd.log'}",
            f"lock file = {work / 'rsyncd.lock'}",
            f"[{OPEN}]",
            f"  path = {work / OPEN}",
            "  comment = nightly backups",
            f"[{PRIVATE}]",
            f"  path = {work / PRIVATE}",
            "  comment = private",
            "  auth users = backup",
            f"  secrets file = {work / 'rsyncd.secrets'}",
            "",
        ]
    )


class Rsync:
    protocol = "rsync"
    programs = ("rsync",)
    software = "rsync"
    user = None
    stop_signal = signal.SIGTERM
    standin = False

    def start(self, launch: Launch) -> Started:
        program = servers.program("rsync", "rsync")
        work = launch.workdir
        files = data.ftp_files()
        servers.write_tree(work / OPEN, files)
        servers.write_tree(work / PRIVATE, {".env": files[".env"]})
        secrets_file = work / "rsyncd.secrets"
        secrets_file.write_text(f"backup:{secrets.token_hex(16)}\n")
        secrets_file.chmod(0o600)
        config = work / "rsyncd.conf"
        config.write_text(_config(launch, servers.is_root()))
        return Started(
            [
                program,
                "--daemon",
                "--no-detach",
                f"--config={config}",
                f"--address={launch.ip}",
                f"--port={launch.port}",
            ]
        )

    def seed(self, launch: Launch, started: Started) -> Seeded:
        """The tree was written by `start`: the open module's files; the version from `rsync --version`
        (the daemon's greeting names only its protocol: a scan cannot learn it)."""
        shown = subprocess.run([started.argv[0], "--version"], capture_output=True, text=True, timeout=10)
        found = re.search(r"version v?(\d[\w.]*)", shown.stdout)
        return Seeded(found.group(1) if found else "", [database("", {OPEN: len(data.ftp_files())})])

    def digest(self, entry: dict[str, Any], h: Hasher) -> None:
        """Every file's path and content hash, and every directory, of the open module as a client
        copies it."""
        with tempfile.TemporaryDirectory() as copy:
            url = f"rsync://{entry['ip']}:{entry['port']}/{OPEN}/"
            done = subprocess.run(["rsync", "-r", url, copy], capture_output=True, text=True, timeout=30)
            if done.returncode:
                raise LabError(f"rsync could not copy {url}: {done.stderr.strip()[:200]}")
            for path in sorted(Path(copy).rglob("*")):
                name = str(path.relative_to(copy))
                h.add(name, "directory" if path.is_dir() else hashlib.sha256(path.read_bytes()).hexdigest())


KIND = Rsync()

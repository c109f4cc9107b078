"""FTP (Debian vsftpd): `ftp-anon`, anonymous and read-only, serving a seeded tree (`data.ftp_files`)."""

from __future__ import annotations

import ftplib
import hashlib
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from leaksonar.lab import data, servers
from leaksonar.lab.digest import Hasher
from leaksonar.lab.kinds.base import Launch, Started
from leaksonar.lab.seed import Seeded, database, files_per_top
from leaksonar.lab.spec import LabError, ServiceSpec

SERVICES = (ServiceSpec("ftp-anon", 39, 21, "ftp", "none"),)


def _config(launch: Launch, files: Path, empty: Path) -> str:
    """vsftpd in the foreground on the lab address: anonymous only, nothing writable, chrooted into
    `files` (it starts as root and drops to the `ftp` user)."""
    return "\n".join(
        [
            "listen=YES",
            "listen_ipv6=NO",
            f"listen_address={launch.ip}",
            f"listen_port={launch.port}",
            "background=NO",
            "anonymous_enable=YES",
            "no_anon_password=NO",
            "local_enable=NO",
            "write_enable=NO",
            "anon_upload_enable=NO",
            "anon_mkdir_write_enable=NO",
            "anon_other_write_enable=NO",
            f"anon_root={files}",
            f"secure_chroot_dir={empty}",
            "force_dot_files=YES",
            "hide_ids=YES",
            "pasv_enable=YES",
            "port_enable=NO",
            "connect_from_port_20=NO",
            "xferlog_enable=NO",
            "seccomp_sandbox=NO",
            "isolate=NO",
            "isolate_network=NO",
            "tcp_wrappers=NO",
            "ssl_enable=NO",
            "max_per_ip=0",
            "",
        ]
    )


class Ftp:
    protocol = "ftp"
    programs = ("vsftpd",)
    software = "vsftpd"
    user = None
    stop_signal = signal.SIGTERM
    standin = False

    def start(self, launch: Launch) -> Started:
        if not servers.is_root():
            raise LabError("vsftpd needs root here (it chroots the anonymous user)")
        files, empty = launch.workdir / "files", launch.workdir / "empty"
        empty.mkdir(mode=0o755)
        servers.write_tree(files, data.ftp_files())
        config = launch.workdir / "vsftpd.conf"
        config.write_text(_config(launch, files, empty))
        # The address on the command line too: how `lab down` and `status` recognise the server.
        return Started([servers.program("vsftpd", "vsftpd"), str(config), f"-olisten_address={launch.ip}"])

    def seed(self, launch: Launch, started: Started) -> Seeded:
        """The tree was written by `start`: its files per top directory; the version from the greeting."""
        with _client(launch.ip, launch.port) as ftp:
            greeting = ftp.getwelcome()
        version = greeting.split("vsFTPd ", 1)[-1].rstrip(")") if "vsFTPd " in greeting else ""
        return Seeded(version, [database("", files_per_top(data.ftp_files()))])

    def digest(self, entry: dict[str, Any], h: Hasher) -> None:
        """Every file's path and content hash, and every directory, as the anonymous user sees them."""
        with _client(entry["ip"], entry["port"]) as ftp:
            for path, directory in _tree(ftp, ""):
                if directory:
                    h.add(path, "directory")
                else:
                    content = hashlib.sha256()
                    ftp.retrbinary(f"RETR /{path}", content.update)
                    h.add(path, content.hexdigest())


def _client(ip: str, port: int) -> ftplib.FTP:
    ftp = ftplib.FTP(timeout=10)
    ftp.connect(ip, port)
    ftp.login()
    return ftp


def _tree(ftp: ftplib.FTP, directory: str) -> Iterator[tuple[str, bool]]:
    """(path, is a directory) of everything under `directory`, sorted, from vsftpd's `ls -l` lines."""
    lines: list[str] = []
    ftp.retrlines(f"LIST /{directory}", lines.append)
    for line in sorted(lines):
        parts = line.split(None, 8)
        if len(parts) < 9:
            continue
        path = f"{directory}/{parts[8]}" if directory else parts[8]
        yield path, parts[0].startswith("d")
        if parts[0].startswith("d"):
            yield from _tree(ftp, path)


KIND = Ftp()

"""SMB (Debian samba): `smb-guest`, a real smbd with a guest-readable share `public` serving the seeded
tree (`data.ftp_files`) and a share `private` for a named user only (guests are refused)."""

from __future__ import annotations

import hashlib
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import smbclient

from leaksonar.lab import data, servers
from leaksonar.lab.digest import Hasher
from leaksonar.lab.kinds.base import Launch, Started
from leaksonar.lab.seed import Seeded, database
from leaksonar.lab.spec import LabError, ServiceSpec

SERVICES = (ServiceSpec("smb-guest", 64, 445, "smb", "none"),)
SHARE = "public"
"""The guest-readable share; `private` holds nothing a guest may see."""
_DIRECTORIES = ("private", "lock", "state", "cache", "pid", "ncalrpc", "passdb")


def _interface(ip: str) -> str:
    """The lab address as smbd's `interfaces` takes it: an address no interface carries (only lo's
    127.0.0.1 does) is refused alone, but with loopback's netmask smbd binds that one address."""
    return f"{ip}/8"


def _config(launch: Launch, files: Path, private: Path) -> str:
    """smbd on the lab address only, every directory inside the workdir, no NetBIOS, no printing;
    unknown users (and `guest`) map to the guest account."""
    workdir = launch.workdir
    return "\n".join(
        [
            "[global]",
            f"interfaces = {_interface(launch.ip)}",
            "bind interfaces only = yes",
            f"smb ports = {launch.port}",
            "disable netbios = yes",
            "server role = standalone server",
            "map to guest = Bad User",
            "passdb backend = tdbsam",
            f"private dir = {workdir / 'passdb'}",
            f"lock directory = {workdir / 'lock'}",
            f"state directory = {workdir / 'state'}",
            f"cache directory = {workdir / 'cache'}",
            f"pid directory = {workdir / 'pid'}",
            f"ncalrpc dir = {workdir / 'ncalrpc'}",
            "log level = 1",
            "load printers = no",
            "printing = bsd",
            "printcap name = /dev/null",
            "disable spoolss = yes",
            "",
            f"[{SHARE}]",
            f"path = {files}",
            "guest ok = yes",
            "read only = yes",
            "",
            "[private]",
            f"path = {private}",
            "valid users = leaksonar-owner",
            "guest ok = no",
            "read only = yes",
            "",
        ]
    )


class Smb:
    protocol = "smb"
    programs = ("smbd",)
    software = "samba"
    user = None
    stop_signal = signal.SIGTERM
    standin = False

    def start(self, launch: Launch) -> Started:
        if not servers.is_root():
            raise LabError("smbd needs root here (it switches to the guest account for guest sessions)")
        files = launch.workdir / "files"
        for name in _DIRECTORIES:
            (launch.workdir / name).mkdir(mode=0o755)
        servers.write_tree(files, data.ftp_files())
        config = launch.workdir / "smb.conf"
        config.write_text(_config(launch, files, launch.workdir / "private"))
        smbd = servers.program("smbd", "samba")
        # The address on the command line too: how `lab down` and `status` recognise the server.
        return Started(
            [
                smbd,
                "--foreground",
                "--no-process-group",
                "--debug-stdout",
                "-s",
                str(config),
                f"--option=interfaces={_interface(launch.ip)}",
            ]
        )

    def seed(self, launch: Launch, started: Started) -> Seeded:
        """The tree was written by `start`: every file in the one share; the version from smbd."""
        found = subprocess.run([started.argv[0], "--version"], capture_output=True, text=True, timeout=10)
        version = found.stdout.strip().removeprefix("Version ")
        return Seeded(version, [database("", {SHARE: len(data.ftp_files())})])

    def digest(self, entry: dict[str, Any], h: Hasher) -> None:
        """Every file's path and content hash, and every directory, as the guest sees the share."""
        ip, port = entry["ip"], entry["port"]
        cache: dict[str, Any] = {}
        smbclient.ClientConfig(require_secure_negotiate=False)
        smbclient.register_session(
            ip,
            username="guest",
            password="",
            port=port,
            encrypt=False,
            connection_timeout=10,
            connection_cache=cache,
            auth_protocol="ntlm",
            require_signing=False,
        )
        try:
            for path, unc, directory in _tree(rf"\\{ip}\{SHARE}", {"port": port, "connection_cache": cache}):
                if directory:
                    h.add(path, "directory")
                    continue
                with smbclient.open_file(unc, mode="rb", port=port, connection_cache=cache) as handle:
                    h.add(path, hashlib.sha256(handle.read()).hexdigest())
        finally:
            smbclient.reset_connection_cache(connection_cache=cache)


def _tree(directory: str, options: dict[str, Any], prefix: str = "") -> Iterator[tuple[str, str, bool]]:
    """(path, UNC path, is a directory) of everything under the UNC path `directory`, sorted."""
    for found in sorted(smbclient.scandir(directory, **options), key=lambda e: e.name):
        path, unc = f"{prefix}{found.name}", f"{directory}\\{found.name}"
        yield path, unc, found.is_dir()
        if found.is_dir():
            yield from _tree(unc, options, f"{path}/")


KIND = Smb()

"""Start and stop the lab's server processes: programs, data directories, PIDs, readiness.

Every server binds exactly one loopback address, keeps its data (and its unix socket, if it must have
one) under the lab directory, and never reads the system configuration files. What is particular to a
kind of server (its command line, data, seeding) is in `leaksonar.lab.kinds`.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import re
import shutil
import signal
import socket
import stat
import struct
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from leaksonar.lab import kinds
from leaksonar.lab.spec import LabError

_SOCKET_PATH_MAX = 107
_ERROR = re.compile(r"error|fatal|fail|in use", re.IGNORECASE)
_children: dict[int, subprocess.Popen[bytes]] = {}


def is_root() -> bool:
    return os.geteuid() == 0


def program(name: str, package: str, directory: Path | None = None) -> str:
    """Full path of a server program, looked up in `directory` (if given) and then on PATH; raise
    naming the (Debian) `package` that provides it if it is missing."""
    path = os.environ.get("PATH", "")
    found = shutil.which(name, path=f"{directory}{os.pathsep}{path}" if directory else path)
    if not found:
        raise LabError(f"{name} is not installed (the lab needs {package})")
    return found


@dataclass(frozen=True, slots=True)
class Account:
    """A system user a server runs as when the lab is started by root (PostgreSQL refuses root)."""

    name: str
    uid: int
    gid: int


def system_account(user: str, software: str) -> Account | None:
    """The system `user` when running as root, else None (run as the current user)."""
    if not is_root():
        return None
    try:
        entry = pwd.getpwnam(user)
    except KeyError:
        raise LabError(f"running as root, but there is no `{user}` user to run {software} as") from None
    return Account(entry.pw_name, entry.pw_uid, entry.pw_gid)


def check_traversable(path: Path, account: Account, software: str = "PostgreSQL") -> None:
    """Raise unless `account` can reach `path` (search permission on it and on every parent)."""
    groups = set(os.getgrouplist(account.name, account.gid))
    for directory in (path, *path.parents):
        st = directory.stat()
        if st.st_uid == account.uid:
            bit = stat.S_IXUSR
        elif st.st_gid in groups:
            bit = stat.S_IXGRP
        else:
            bit = stat.S_IXOTH
        if not st.st_mode & bit:
            raise LabError(
                f"{directory} is not traversable by user {account.name}, who runs {software}: "
                "chmod o+x it or use another lab directory"
            )


def owned_dir(path: Path, account: Account | None) -> Path:
    """Create `path` (mode 0700) owned by `account`."""
    path.mkdir(mode=0o700)
    if account:
        os.chown(path, account.uid, account.gid)
    return path


def write_owned(path: Path, text: str, account: Account | None) -> None:
    """Write a file only `account` (or the current user) can read."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(text)
    if account:
        os.chown(path, account.uid, account.gid)


def write_tree(directory: Path, files: dict[str, bytes]) -> None:
    """Write `files` (path below `directory` -> content) readable by everyone: files 0644, directories
    0755 (a server that drops to a guest account must read them)."""
    for path, content in files.items():
        target = directory / path
        target.parent.mkdir(mode=0o755, parents=True, exist_ok=True)
        target.write_bytes(content)
        target.chmod(0o644)
    directory.mkdir(mode=0o755, exist_ok=True)
    directory.chmod(0o755)


def check_socket_path(path: Path) -> Path:
    if len(str(path)) > _SOCKET_PATH_MAX:
        raise LabError(f"unix socket path {path} is too long: use a shorter lab directory")
    return path


def run(argv: list[str], log: Path, account: Account | None = None) -> None:
    """Run a setup command to completion; raise with the end of its log if it fails."""
    with log.open("ab") as out:
        done = subprocess.run(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=log.parent,
            check=False,
            **_as(account),
        )
    if done.returncode:
        raise LabError(f"{Path(argv[0]).name} failed (exit {done.returncode}): {log_tail(log)}")


def spawn(
    argv: list[str], log: Path, account: Account | None = None, env: dict[str, str] | None = None
) -> int:
    """Start a server in its own session (it outlives this process); return its PID. `env` is added to
    this process's environment."""
    with log.open("ab") as out:
        proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=log.parent,
            start_new_session=True,
            env={**os.environ, **env} if env else None,
            **_as(account),
        )
    _children[proc.pid] = proc
    return proc.pid


def _as(account: Account | None) -> dict[str, object]:
    return {"user": account.uid, "group": account.gid, "extra_groups": []} if account else {}


def log_tail(log: Path, lines: int = 3) -> str:
    """The last error lines of a server log (or its last lines), on one line."""
    try:
        text = log.read_text(errors="replace").strip().splitlines()
    except OSError:
        return "(no log)"
    errors = [line for line in text if _ERROR.search(line)]
    return " | ".join((errors or text)[-lines:]) or "(empty log)"


def alive(pid: int) -> bool:
    """True while `pid` runs (a zombie is not running; our own children are reaped)."""
    child = _children.get(pid)
    if child is not None:
        return child.poll() is None
    try:
        stat_line = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat_line.rsplit(")", 1)[1].split()[0] != "Z"


def matches(pid: int, protocol: str, ip: str) -> bool:
    """True if `pid` is still the `protocol` server the lab started on `ip` (guards against PID reuse):
    one of the kind's programs is argv[0] or argv[1] (an interpreter's script), and `ip` is on the
    command line. Some servers rewrite their title (redis-server), hence the split on blanks."""
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False
    command = raw.replace(b"\0", b" ").decode(errors="replace").strip()
    programs = kinds.kind(protocol).programs
    return any(Path(arg).name in programs for arg in command.split()[:2]) and (
        re.search(rf"{re.escape(ip)}(?!\d)", command) is not None
    )


def port_open(ip: str, port: int, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((ip, port), timeout=timeout):
            return True
    except OSError:
        return False


def listening(pid: int, ip: str, port: int) -> bool:
    """True if process `pid` itself holds a TCP socket listening on ip:port (not some other server)."""
    local = f"{struct.unpack('=I', socket.inet_aton(ip))[0]:08X}:{port:04X}"
    rows = (line.split() for line in Path("/proc/net/tcp").read_text().splitlines()[1:])
    sockets = {f"socket:[{row[9]}]" for row in rows if row[1] == local and row[3] == "0A"}
    try:
        fds = list(Path(f"/proc/{pid}/fd").iterdir())
    except OSError:
        return False
    for fd in fds:
        with contextlib.suppress(OSError):
            if os.readlink(fd) in sockets:
                return True
    return False


def wait_listening(pid: int, ip: str, port: int, log: Path, timeout: float = 20.0) -> None:
    """Wait until the server `pid` listens on ip:port; raise if it dies or takes too long."""
    deadline = time.monotonic() + timeout
    while not listening(pid, ip, port):
        if not alive(pid):
            raise LabError(f"{log.parent.name} exited while starting: {log_tail(log)}")
        if time.monotonic() > deadline:
            raise LabError(f"{log.parent.name} did not listen on {ip}:{port} within {timeout:.0f}s")
        time.sleep(0.02)


def stop(pid: int, protocol: str, ip: str, grace: float = 5.0) -> bool:
    """Stop the server the lab started (with its kind's stop signal; SIGKILL after `grace` s).

    Returns False, touching nothing, if `pid` is gone or is no longer that server.
    """
    if not (alive(pid) and matches(pid, protocol, ip)):
        return False
    os.kill(pid, kinds.kind(protocol).stop_signal)
    if not _wait_gone(pid, grace):
        os.kill(pid, signal.SIGKILL)
        _wait_gone(pid, 2.0)
    _children.pop(pid, None)
    return True


def _wait_gone(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while alive(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True

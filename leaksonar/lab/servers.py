"""Start and stop the lab's server processes: argument lists, data directories, PIDs, readiness.

Every server binds exactly one loopback address, keeps its data (and its unix socket, if it must have
one) under the lab directory, and never reads the system configuration files.
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

from leaksonar.lab.spec import Kind, LabError

PG_BIN = Path("/usr/lib/postgresql/15/bin")
PROGRAMS: dict[Kind, str] = {
    "redis": "redis-server",
    "postgresql": "postgres",
    "mysql": "mariadbd",
    "memcached": "memcached",
}
# PostgreSQL: fast shutdown (SIGTERM would wait for every client to leave).
_STOP_SIGNALS: dict[Kind, signal.Signals] = {"postgresql": signal.SIGINT}
_SOCKET_PATH_MAX = 107
_ERROR = re.compile(r"error|fatal|fail|in use", re.IGNORECASE)
_children: dict[int, subprocess.Popen[bytes]] = {}


def _root() -> bool:
    return os.geteuid() == 0


def program(name: str) -> str:
    """Full path of a server program (PostgreSQL's from its versioned directory)."""
    found = shutil.which(name, path=f"{PG_BIN}{os.pathsep}{os.environ.get('PATH', '')}")
    if not found:
        raise LabError(
            f"{name} is not installed (the lab needs redis-server, memcached, mariadb-server, postgresql-15)"
        )
    return found


@dataclass(frozen=True, slots=True)
class Account:
    """The system user PostgreSQL runs as when the lab is started by root (it refuses to run as root)."""

    name: str
    uid: int
    gid: int


def postgres_account() -> Account | None:
    """`postgres` when running as root, else None (run as the current user)."""
    if not _root():
        return None
    try:
        entry = pwd.getpwnam("postgres")
    except KeyError:
        raise LabError("running as root, but there is no `postgres` user to run PostgreSQL as") from None
    return Account(entry.pw_name, entry.pw_uid, entry.pw_gid)


def check_traversable(path: Path, account: Account) -> None:
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
                f"{directory} is not traversable by user {account.name}, who runs PostgreSQL: "
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


def spawn(argv: list[str], log: Path, account: Account | None = None) -> int:
    """Start a server in its own session (it outlives this process); return its PID."""
    with log.open("ab") as out:
        proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=log.parent,
            start_new_session=True,
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


def matches(pid: int, kind: Kind, ip: str) -> bool:
    """True if `pid` is still the `kind` server the lab started on `ip` (guards against PID reuse)."""
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False
    command = raw.replace(b"\0", b" ").decode(errors="replace").strip()
    return (
        bool(command)
        and Path(command.split()[0]).name == PROGRAMS[kind]
        and re.search(rf"{re.escape(ip)}(?!\d)", command) is not None
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


def stop(pid: int, kind: Kind, ip: str, grace: float = 5.0) -> bool:
    """Stop the server the lab started (SIGTERM, or SIGINT for PostgreSQL; SIGKILL after `grace` s).

    Returns False, touching nothing, if `pid` is gone or is no longer that server.
    """
    if not (alive(pid) and matches(pid, kind, ip)):
        return False
    os.kill(pid, _STOP_SIGNALS.get(kind, signal.SIGTERM))
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


def _flags(prefix: str, options: dict[str, str]) -> list[str]:
    return [arg for key, value in options.items() for arg in (f"{prefix}{key}", value)]


def redis_argv(ip: str, port: int, workdir: Path, password: str | None) -> list[str]:
    options = {
        "bind": ip,
        "port": str(port),
        "protected-mode": "no",
        "dir": str(workdir),
        "save": "",
        "appendonly": "no",
        "daemonize": "no",
        "logfile": "",
    }
    if password:
        options["requirepass"] = password
    return [program("redis-server"), *_flags("--", options)]


def memcached_argv(ip: str, port: int) -> list[str]:
    return [program("memcached"), "-l", ip, "-p", str(port), "-U", "0", "-m", "64"] + (
        ["-u", "root"] if _root() else []
    )


def initdb_argv(data: Path, pwfile: Path | None) -> list[str]:
    argv = [program("initdb"), "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8"]
    argv += ["--locale=C.UTF-8", "--no-sync"]
    return argv + ([f"--pwfile={pwfile}"] if pwfile else [])


def pg_hba(method: str) -> str:
    """Client authentication for every user over TCP from loopback (the server has no unix socket)."""
    return f"host all all 127.0.0.0/8 {method}\n"


def postgres_argv(ip: str, port: int, data: Path) -> list[str]:
    settings = {
        "listen_addresses": ip,
        "port": str(port),
        "unix_socket_directories": "",
        "fsync": "off",
        "synchronous_commit": "off",
        "full_page_writes": "off",
        "shared_buffers": "32MB",
        "max_connections": "40",
        "logging_collector": "off",
    }
    return [
        program("postgres"),
        "-D",
        str(data),
        *(arg for k, v in settings.items() for arg in ("-c", f"{k}={v}")),
    ]


_MARIADB_COMMON = ("--innodb-log-file-size=8M", "--innodb-buffer-pool-size=64M")


def install_db_argv(data: Path) -> list[str]:
    return [
        program("mariadb-install-db"),
        "--no-defaults",
        f"--datadir={data}",
        f"--tmpdir={data.parent}",
        "--auth-root-authentication-method=normal",
        "--skip-test-db",
        *_MARIADB_COMMON,
        *(["--user=root"] if _root() else []),
    ]


def mariadb_argv(ip: str, port: int, data: Path, workdir: Path) -> list[str]:
    return [
        program("mariadbd"),
        "--no-defaults",
        f"--datadir={data}",
        f"--bind-address={ip}",
        f"--port={port}",
        f"--socket={check_socket_path(workdir / 'mysqld.sock')}",
        f"--pid-file={workdir / 'mariadbd.pid'}",
        f"--tmpdir={workdir}",
        "--skip-name-resolve",
        "--character-set-server=utf8mb4",
        "--collation-server=utf8mb4_unicode_ci",
        "--innodb-flush-log-at-trx-commit=0",
        "--innodb-doublewrite=0",
        *_MARIADB_COMMON,
        *(["--user=root"] if _root() else []),
    ]

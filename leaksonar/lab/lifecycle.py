"""Bring a lab up (start, seed, write the manifest), take it down, report on it."""

from __future__ import annotations

import contextlib
import secrets
import shutil
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from leaksonar.lab import kinds, servers
from leaksonar.lab.geo import ASN_FILE, GEO_FILE, write_lab_mmdbs
from leaksonar.lab.kinds.base import Launch
from leaksonar.lab.manifest import Manifest, manifest_path, read_manifest, write_manifest
from leaksonar.lab.spec import DEFAULT_BASE, LabError, ServiceSpec, check_base, select, service_ip
from leaksonar.lab.tls import CA_FILE, LabCA


class _Launch:
    """One `lab_up`: starts and seeds services in parallel, remembers PIDs for cleanup on failure."""

    def __init__(self, directory: Path, base: str, specs: tuple[ServiceSpec, ...]) -> None:
        self.directory, self.base = directory, base
        self.passwords = {s.name: secrets.token_hex(12) for s in specs if s.auth == "required"}
        self.pids: dict[str, tuple[int, str, str]] = {}
        self.ca = LabCA() if any(s.tls for s in specs) else None

    def bring_up(self, spec: ServiceSpec) -> dict[str, Any]:
        try:
            return self._bring_up(spec)
        except LabError:
            raise
        except Exception as exc:
            raise LabError(f"{spec.name}: {type(exc).__name__}: {exc}") from exc

    def _bring_up(self, spec: ServiceSpec) -> dict[str, Any]:
        kind, product = kinds.kind(spec.runner), kinds.kind(spec.protocol)
        ip, port = service_ip(self.base, spec), spec.port
        workdir = self.directory / spec.name
        workdir.mkdir(mode=0o755)
        password = self.passwords.get(spec.name)
        leaf = self.ca.issue(spec.tls, ip) if self.ca and spec.tls else None
        launch = Launch(spec.name, ip, port, workdir, password, workdir / "server.log", leaf)
        started = kind.start(launch)
        pid = servers.spawn(started.argv, launch.log, started.account, started.env)
        self.pids[spec.name] = (pid, spec.runner, ip)
        for each in (port, *started.ports):
            servers.wait_listening(pid, ip, each, launch.log)
        seeded = kind.seed(launch, started)
        entry: dict[str, Any] = {
            "name": spec.name,
            "ip": ip,
            "port": port,
            "protocol": spec.protocol,
            "auth": spec.auth,
            "software": {"name": product.software, "version": seeded.version},
            "pid": pid,
            "credentials": {"user": kind.user, "password": password} if password else None,
            "databases": seeded.databases,
        }
        if spec.kind:
            entry["kind"] = spec.kind
        if leaf:
            entry["hostname"] = leaf.spec.names[0]
            entry["tls"] = leaf.manifest()
        if started.ports:
            entry["extra_ports"] = list(started.ports)
        if product.standin:
            entry["standin"] = True
        if seeded.keys is not None:
            entry["keys"] = seeded.keys
        if seeded.attack is not None:
            entry["attack"] = seeded.attack
        return entry

    def abort(self) -> None:
        """Stop whatever this launch started and remove its data."""
        for pid, kind, ip in self.pids.values():
            servers.stop(pid, kind, ip)
        _remove_data(self.directory)


def _remove_data(directory: Path) -> None:
    """Remove everything a lab keeps in `directory`, then the directory itself if it is left empty."""
    for name in (s.name for s in select(None)):
        shutil.rmtree(directory / name, ignore_errors=True)
    manifest_path(directory).unlink(missing_ok=True)
    shutil.rmtree(directory / CA_FILE.parent, ignore_errors=True)
    for name in (GEO_FILE, ASN_FILE):
        (directory / name).unlink(missing_ok=True)
    with contextlib.suppress(OSError):
        directory.rmdir()


def runner(entry: dict[str, Any]) -> str:
    """The registry key of the kind that runs a manifest entry's server."""
    return str(entry.get("kind") or entry["protocol"])


def _running(manifest: Manifest) -> list[str]:
    return [
        s["name"]
        for s in manifest["services"]
        if servers.alive(s["pid"]) and servers.matches(s["pid"], runner(s), s["ip"])
    ]


def _prepare(directory: Path, base: str, specs: tuple[ServiceSpec, ...]) -> None:
    """Refuse if a lab runs in `directory` or an address is taken; clear a stale lab's leftovers."""
    if manifest_path(directory).exists():
        running = _running(read_manifest(directory))
        if running:
            raise LabError(
                f"a lab is already running in {directory} ({', '.join(running)}): "
                f"stop it with `leaksonar lab down --dir {directory}`"
            )
    for spec in specs:
        ip = service_ip(base, spec)
        if servers.port_open(ip, spec.port):
            raise LabError(f"{ip}:{spec.port} (for {spec.name}) is already in use")
    _remove_data(directory)
    directory.mkdir(mode=0o755, parents=True, exist_ok=True)


def lab_up(directory: Path, base: str = DEFAULT_BASE, services: Iterable[str] | None = None) -> Manifest:
    """Start the lab's servers (all, or those named in `services`) on `base` + offset, seed them, and
    write and return `directory/manifest.json`."""
    specs = select(services)
    check_base(base)
    directory = directory.resolve()
    for protocol in dict.fromkeys(p for s in specs for p in (s.protocol, s.runner)):
        kinds.kind(protocol)  # import the kind modules (and their drivers) here, not in the threads
    launch = _Launch(directory, base, specs)
    _prepare(directory, base, specs)
    try:
        ca = launch.ca.write(directory) if launch.ca else None
        with ThreadPoolExecutor(max_workers=len(specs)) as pool:
            entries = list(pool.map(launch.bring_up, specs))
        geo, asn = write_lab_mmdbs(directory, base)
        manifest: Manifest = {
            "base": base,
            "dir": str(directory),
            "services": entries,
            "mmdb": {"country": str(geo), "asn": str(asn)},
            "tls_ca": str(ca) if ca else None,
        }
        write_manifest(directory, manifest)
    except BaseException:
        launch.abort()
        raise
    return manifest


def lab_down(directory: Path) -> list[str]:
    """Stop the servers recorded in the manifest (only if each PID is still that server), remove the
    lab's data, and return the names of the services stopped."""
    directory = directory.resolve()
    manifest = read_manifest(directory)
    stopped = [s["name"] for s in manifest["services"] if servers.stop(s["pid"], runner(s), s["ip"])]
    _remove_data(directory)
    return stopped


def lab_status(directory: Path) -> list[dict[str, Any]]:
    """Per service: name, protocol, address, pid, and whether it runs (the recorded PID is alive, is
    still that server, and listens on the service's address)."""
    manifest = read_manifest(directory.resolve())
    running = set(_running(manifest))
    return [
        {
            "name": s["name"],
            "protocol": s["protocol"],
            "address": f"{s['ip']}:{s['port']}",
            "pid": s["pid"],
            "running": s["name"] in running and servers.listening(s["pid"], s["ip"], s["port"]),
        }
        for s in manifest["services"]
    ]

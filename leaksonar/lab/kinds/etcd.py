"""etcd (Debian etcd-server): etcd-open, seeded with ~300 keys (config/..., users/... as JSON) through the
v3 JSON gateway (seeding writes; inspection only reads)."""

from __future__ import annotations

import base64
import json
import signal
import socket
from typing import Any

import httpx

from leaksonar.lab import servers
from leaksonar.lab.data import SEED, Synth
from leaksonar.lab.digest import Hasher
from leaksonar.lab.kinds.base import Launch, Started
from leaksonar.lab.seed import Seeded, database
from leaksonar.lab.spec import LabError, ServiceSpec

SERVICES = (ServiceSpec("etcd-open", 31, 2379, "etcd", "none"),)
USERS, SETTINGS = 250, 50
_TXN_OPS = 100
"""Puts per transaction (etcd's default --max-txn-ops is 128)."""
_EVERY_KEY = {"key": base64.b64encode(b"\0").decode(), "range_end": base64.b64encode(b"\0").decode()}


def _b64(raw: str) -> str:
    return base64.b64encode(raw.encode()).decode()


def free_port(ip: str) -> int:
    """A TCP port free on `ip` right now (for etcd's peer listener, which the lab never uses)."""
    with socket.socket() as probe:
        probe.bind((ip, 0))
        return int(probe.getsockname()[1])


def keys() -> dict[str, str]:
    """users/NNNN -> a person as JSON; config/... -> settings. Deterministic."""
    s = Synth(SEED + 31)
    found = {
        f"users/{i:04d}": json.dumps(
            {"name": p.name, "phone": p.phone, "email": p.email, "id_number": p.national_id},
            ensure_ascii=False,
        )
        for i, p in enumerate(s.people(USERS), 1)
    }
    for i in range(SETTINGS):
        service = ("billing", "search", "gateway", "auth", "mailer")[i % 5]
        found[f"config/{service}/setting{i:02d}"] = json.dumps({"host": f"10.0.{i}.1", "port": 8000 + i})
    return found


def _client(ip: str, port: int) -> httpx.Client:
    return httpx.Client(base_url=f"http://{ip}:{port}", timeout=10, trust_env=False)


class Etcd:
    protocol = "etcd"
    programs = ("etcd",)
    software = "etcd"
    user = "root"
    stop_signal = signal.SIGTERM
    standin = False

    def start(self, launch: Launch) -> Started:
        client, peer = f"http://{launch.ip}:{launch.port}", f"http://{launch.ip}:{free_port(launch.ip)}"
        options = {
            "name": launch.name,
            "data-dir": str(launch.workdir / "data"),
            "listen-client-urls": client,
            "advertise-client-urls": client,
            "listen-peer-urls": peer,
            "initial-advertise-peer-urls": peer,
            "initial-cluster": f"{launch.name}={peer}",
        }
        flags = [f"--{key}={value}" for key, value in options.items()]
        return Started([servers.program("etcd", "etcd-server"), *flags])

    def seed(self, launch: Launch, started: Started) -> Seeded:
        items = list(keys().items())
        with _client(launch.ip, launch.port) as client:
            for start in range(0, len(items), _TXN_OPS):
                puts = [
                    {"request_put": {"key": _b64(k), "value": _b64(v)}}
                    for k, v in items[start : start + _TXN_OPS]
                ]
                done = client.post("/v3/kv/txn", json={"success": puts})
                if done.status_code != 200:
                    raise LabError(f"etcd refused the seed: {done.text[:200]}")
            version = client.get("/version").json()["etcdserver"]
        return Seeded(version, [database("", {"keys": len(items)})])

    def digest(self, entry: dict[str, Any], h: Hasher) -> None:
        """The store's revision and every key with its value and revisions."""
        with _client(entry["ip"], entry["port"]) as client:
            page = client.post("/v3/kv/range", json=_EVERY_KEY).json()
        h.add("revision", page["header"]["revision"])
        for kv in page.get("kvs", []):
            h.add(
                kv["key"],
                kv.get("value"),
                kv.get("create_revision"),
                kv.get("mod_revision"),
                kv.get("version"),
            )


KIND = Etcd()

"""InfluxDB 1.x (Debian influxdb): influxdb-open, database `telemetry` with measurements `gps` (2,000
points: device tag, lat/lon) and `cpu` (1,000 points), written with the line protocol at seed time."""

from __future__ import annotations

import signal
from typing import Any

import httpx

from leaksonar.lab import servers
from leaksonar.lab.data import SEED, Synth
from leaksonar.lab.digest import Hasher
from leaksonar.lab.kinds.base import Launch, Started
from leaksonar.lab.kinds.etcd import free_port
from leaksonar.lab.seed import Seeded, database
from leaksonar.lab.spec import LabError, ServiceSpec

SERVICES = (ServiceSpec("influxdb-open", 35, 8086, "influxdb", "none"),)
DATABASE = "telemetry"
GPS, CPU = 2000, 1000
_START = 1_735_689_600
"""2025-01-01T00:00:00Z: the first point (one point per series per second after it)."""

_CONFIG = """reporting-disabled = true
bind-address = "{ip}:{rpc}"
[meta]
  dir = "{dir}/meta"
[data]
  dir = "{dir}/data"
  wal-dir = "{dir}/wal"
  query-log-enabled = false
[http]
  bind-address = "{ip}:{port}"
  log-enabled = false
[monitor]
  store-enabled = false
[continuous_queries]
  enabled = false
"""


def lines() -> str:
    """The seed points in line protocol (seconds precision). Deterministic."""
    s = Synth(SEED + 35)
    devices = [f"truck-{i:02d}" for i in range(20)]
    gps = [
        f"gps,device={devices[i % 20]} lat={s.rnd.uniform(22.0, 40.0):.6f},"
        f'lon={s.rnd.uniform(100.0, 122.0):.6f},driver="{s.zh.name()}" {_START + i}'
        for i in range(GPS)
    ]
    cpu = [
        f"cpu,host=web-{i % 4} usage_user={s.rnd.uniform(0, 100):.2f},"
        f"usage_system={s.rnd.uniform(0, 30):.2f} {_START + i}"
        for i in range(CPU)
    ]
    return "\n".join(gps + cpu)


def _client(ip: str, port: int) -> httpx.Client:
    return httpx.Client(base_url=f"http://{ip}:{port}", timeout=10, trust_env=False)


def _series(client: httpx.Client, statement: str, db: str | None = None) -> list[dict[str, Any]]:
    params = {"q": statement, **({"db": db} if db else {})}
    result = client.get("/query", params=params).json()["results"][0]
    return list(result.get("series", []))


class Influxdb:
    protocol = "influxdb"
    programs = ("influxd",)
    software = "influxdb"
    user = "admin"
    stop_signal = signal.SIGTERM
    standin = False

    def start(self, launch: Launch) -> Started:
        # The address in the file name puts it on the command line, where `servers.matches` looks.
        config = launch.workdir / f"influxdb-{launch.ip}.conf"
        config.write_text(
            _CONFIG.format(ip=launch.ip, rpc=free_port(launch.ip), port=launch.port, dir=launch.workdir)
        )
        return Started([servers.program("influxd", "influxdb"), "-config", str(config)])

    def seed(self, launch: Launch, started: Started) -> Seeded:
        with _client(launch.ip, launch.port) as client:
            created = client.post("/query", params={"q": f"CREATE DATABASE {DATABASE}"})
            written = client.post("/write", params={"db": DATABASE, "precision": "s"}, content=lines())
            if created.status_code != 200 or written.status_code != 204:
                raise LabError(f"influxdb refused the seed: {created.text[:100]} {written.text[:100]}")
            version = client.get("/ping").headers["X-Influxdb-Version"]
        return Seeded(version, [database(DATABASE, {"cpu": CPU, "gps": GPS})])

    def digest(self, entry: dict[str, Any], h: Hasher) -> None:
        """Every database, measurement and point (and the users)."""
        with _client(entry["ip"], entry["port"]) as client:
            h.add("users", repr(_series(client, "SHOW USERS")))
            for (db,) in _series(client, "SHOW DATABASES")[0]["values"]:
                for series in _series(client, "SHOW MEASUREMENTS", db) or [{"values": []}]:
                    for (name,) in series["values"]:
                        h.add(db, name, repr(_series(client, f'SELECT * FROM "{name}"', db)))


KIND = Influxdb()

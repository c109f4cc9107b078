"""Redis (Debian redis-server): redis-open, redis-auth, redis-attacked; redis-tls, TLS only (no plaintext
port), holding redis-open's data, with an expired certificate."""

from __future__ import annotations

import dataclasses
import signal
from collections.abc import Callable
from typing import Any

import redis

from leaksonar.lab import data, servers
from leaksonar.lab.data import RedisData
from leaksonar.lab.digest import Hasher, credentials
from leaksonar.lab.kinds.base import Launch, Started
from leaksonar.lab.seed import Seeded, Target, attack, database
from leaksonar.lab.spec import ServiceSpec, TlsSpec

SERVICES = (
    ServiceSpec(
        "redis-tls", 44, 6379, "redis", "none", TlsSpec(("cache",), "redis-open", required=True, expired=True)
    ),
)


def _tls(tls: bool) -> dict[str, Any]:
    """redis-py options for a TLS server (its certificate is not checked)."""
    return {"ssl": True, "ssl_cert_reqs": "none"} if tls else {}


def _load(target: Target, content: RedisData) -> Seeded:
    dbs = content.key_counts()
    for db in dbs:
        client = redis.Redis(
            host=target.ip,
            port=target.port,
            db=db,
            password=target.password,
            socket_timeout=10,
            **_tls(target.tls),
        )
        with client:
            pipe = client.pipeline(transaction=False)
            for key, mapping in content.hashes.get(db, {}).items():
                pipe.hset(key, mapping=mapping)
            for key, value in content.strings.get(db, {}).items():
                pipe.set(key, value)
            for key, items in content.lists.get(db, {}).items():
                pipe.rpush(key, *items)
            pipe.execute()
            version = str(client.info("server")["redis_version"])
    return Seeded(version, [database(str(db), {f"db{db}": n}) for db, n in dbs.items()])


def _attacked(target: Target) -> Seeded:
    """The cron-job attack (keys backup1..4) and the SSH key plant (crackit), among ordinary keys."""
    seeded = _load(target, data.redis_attacked())
    planted = (*data.CRON_KEYS, *data.SSH_KEY_PLANT)
    places = [{"database": "0", "collection": "db0", "key": key} for key in planted]
    return dataclasses.replace(seeded, attack=attack("cron-job", places, wiped=False))


def _open(target: Target) -> Seeded:
    return _load(target, data.redis_open())


_SEEDERS: dict[str, Callable[[Target], Seeded]] = {
    "redis-open": _open,
    "redis-auth": lambda target: _load(target, data.redis_auth()),
    "redis-attacked": _attacked,
    "redis-tls": _open,
}


class Redis:
    protocol = "redis"
    programs = ("redis-server",)
    software = "redis"
    user = "default"
    stop_signal = signal.SIGTERM
    standin = False

    def start(self, launch: Launch) -> Started:
        options = {
            "bind": launch.ip,
            "port": str(launch.port),
            "protected-mode": "no",
            "dir": str(launch.workdir),
            "save": "",
            "appendonly": "no",
            "daemonize": "no",
            "logfile": "",
        }
        if launch.password:
            options["requirepass"] = launch.password
        if launch.tls:
            files = launch.tls.write(launch.workdir)
            options |= {
                "port": "0",
                "tls-port": str(launch.port),
                "tls-cert-file": str(files.cert),
                "tls-key-file": str(files.key),
                "tls-auth-clients": "no",
            }
        flags = [arg for key, value in options.items() for arg in (f"--{key}", value)]
        return Started([servers.program("redis-server", "redis-server"), *flags])

    def seed(self, launch: Launch, started: Started) -> Seeded:
        target = Target(launch.ip, launch.port, launch.password, tls=launch.tls is not None)
        return _SEEDERS[launch.name](target)

    def digest(self, entry: dict[str, Any], h: Hasher) -> None:
        """Every key of every database: name, type, TTL and DUMP of the value."""
        user, password = credentials(entry, "default")
        options = {
            "host": entry["ip"],
            "port": entry["port"],
            "username": user if password else None,
            "password": password,
            "socket_timeout": 10,
            **_tls(bool(entry.get("tls"))),
        }
        with redis.Redis(**options) as first:
            dbs = sorted(int(name[2:]) for name in first.info("keyspace"))
        for db in dbs:
            with redis.Redis(db=db, **options) as client:
                keys = sorted(client.scan_iter(count=1000))
                pipe = client.pipeline(transaction=False)
                for key in keys:
                    pipe.type(key).ttl(key).dump(key)
                replies = pipe.execute()
            h.add("db", db)
            for i, key in enumerate(keys):
                h.add(key, *replies[3 * i : 3 * i + 3])


KIND = Redis()

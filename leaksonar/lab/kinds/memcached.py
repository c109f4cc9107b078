"""Memcached (Debian memcached): one service, `memcached`, whose keys the manifest lists."""

from __future__ import annotations

import signal
from typing import Any

from pymemcache.client.base import Client as Memcache

from leaksonar.lab import data, servers
from leaksonar.lab.digest import Hasher
from leaksonar.lab.kinds.base import Launch, Started
from leaksonar.lab.seed import Seeded, database
from leaksonar.lab.spec import LabError


class Memcached:
    protocol = "memcached"
    programs = ("memcached",)
    software = "memcached"
    user = None
    stop_signal = signal.SIGTERM
    standin = False

    def start(self, launch: Launch) -> Started:
        argv = [servers.program("memcached", "memcached"), "-l", launch.ip, "-p", str(launch.port)]
        argv += ["-U", "0", "-m", "64"]
        return Started(argv + (["-u", "root"] if servers.is_root() else []))

    def seed(self, launch: Launch, started: Started) -> Seeded:
        items = data.memcached_items()
        client = Memcache((launch.ip, launch.port), connect_timeout=5, timeout=10)
        try:
            failed = client.set_many(items, noreply=False)
            version = client.version().decode()
        finally:
            client.close()
        if failed:
            raise LabError(f"memcached refused {len(failed)} items")
        return Seeded(version, [database("", {"items": len(items)})], keys=list(items))

    def digest(self, entry: dict[str, Any], h: Hasher) -> None:
        """The item count and every key listed in the manifest with its value."""
        client = Memcache((entry["ip"], entry["port"]), connect_timeout=5, timeout=10)
        try:
            keys = sorted(entry["keys"])
            values = client.get_many(keys)
            h.add("items", client.stats()[b"curr_items"])
        finally:
            client.close()
        for key in keys:
            h.add(key, values.get(key))


KIND = Memcached()

"""Kibana STAND-IN (no Kibana package exists here): leaksonar/lab/standins/kibana.py, a small server
written from Kibana's public API docs that plays Kibana 7.10.2 and fronts the lab's opensearch-open. It
is not Kibana.

Service: kibana-open (no auth), the open Kibana link of the reference case. Its data is opensearch-open's
(the police database), reached through the console proxy; so the manifest lists opensearch-open's indices
(database "", one collection per index), and the software is "kibana" with the stand-in's version.
kibana-open needs opensearch-open running in the same lab: its address is derived from the lab base
(this service's address minus its offset) plus opensearch-open's offset.
"""

from __future__ import annotations

import ipaddress
import signal
import sys
import time
from typing import Any

import httpx

from leaksonar.lab.digest import Hasher
from leaksonar.lab.kinds.base import Launch, Started
from leaksonar.lab.kinds.opensearch import BACKEND, COUNTS, Get, client, digest_cluster
from leaksonar.lab.seed import Seeded, database
from leaksonar.lab.spec import LabError, ServiceSpec
from leaksonar.lab.standins import kibana as standin

SERVICES = (ServiceSpec("kibana-open", 19, 5601, "kibana", "none"),)
_WAIT = 30.0
"""Seconds kibana-open waits for opensearch-open to hold the reference case."""


def backend_url(launch: Launch) -> str:
    """opensearch-open's address in the lab that `launch` belongs to."""
    base = ipaddress.IPv4Address(launch.ip) - SERVICES[0].offset
    return f"http://{base + BACKEND.offset}:{BACKEND.port}"


def proxy_get(client: httpx.Client, ip: str, port: int) -> Get:
    """GET one API path of the cluster behind the stand-in, through its console proxy."""

    def get(path: str) -> Any:
        answer = client.post(
            f"http://{ip}:{port}/api/console/proxy",
            params={"path": path, "method": "GET"},
            headers={"kbn-xsrf": "true"},
        )
        answer.raise_for_status()
        return answer.json()

    return get


def _indices(get: Get) -> dict[str, int]:
    """Visible index -> document count, or {} while the cluster is not reachable."""
    try:
        rows = get("/_cat/indices?format=json")
    except httpx.HTTPError:
        return {}
    return {row["index"]: int(row["docs.count"]) for row in rows if not row["index"].startswith(".")}


class Kibana:
    protocol = "kibana"
    programs = ("kibana.py",)
    software = "kibana"
    user = None
    stop_signal = signal.SIGTERM
    standin = True

    def start(self, launch: Launch) -> Started:
        listen = f"{launch.ip}:{launch.port}"
        return Started(
            [sys.executable, standin.__file__, "--listen", listen, "--elasticsearch", backend_url(launch)]
        )

    def seed(self, launch: Launch, started: Started) -> Seeded:
        """Nothing to load: wait until the reference case shows through the proxy, and list it."""
        deadline = time.monotonic() + _WAIT
        with client() as http:
            get = proxy_get(http, launch.ip, launch.port)
            while (found := _indices(get)) != COUNTS:
                if time.monotonic() > deadline:
                    raise LabError(
                        f"{launch.name} fronts {BACKEND.name} at {backend_url(launch)}, which did not show "
                        f"the reference case within {_WAIT:.0f} s: start both in the same lab"
                    )
                time.sleep(0.25)
        return Seeded(standin.VERSION, [database("", found)])

    def digest(self, entry: dict[str, Any], h: Hasher) -> None:
        """All data of the cluster behind the stand-in, read through its console proxy."""
        h.add("through", "kibana")
        with client() as http:
            digest_cluster(proxy_get(http, entry["ip"], entry["port"]), h)


KIND = Kibana()

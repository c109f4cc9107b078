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

import signal
import sys
from typing import Any

import httpx

from leaksonar.lab.digest import Hasher
from leaksonar.lab.kinds.base import Launch, Started
from leaksonar.lab.kinds.opensearch import (
    BACKEND,
    Get,
    base_url,
    client,
    digest_cluster,
    wait_for_reference_case,
)
from leaksonar.lab.seed import Seeded, database
from leaksonar.lab.spec import ServiceSpec, neighbour_ip
from leaksonar.lab.standins import kibana as standin

SERVICES = (ServiceSpec("kibana-open", 19, 5601, "kibana", "none"),)


def backend_url(launch: Launch) -> str:
    """opensearch-open's address in the lab that `launch` belongs to."""
    return f"http://{neighbour_ip(launch.ip, SERVICES[0], BACKEND)}:{BACKEND.port}"


def proxy_get(client: httpx.Client, base: str) -> Get:
    """GET one API path of the cluster behind the Kibana at `base` (http://IP:PORT), through its console
    proxy."""

    def get(path: str) -> Any:
        answer = client.post(
            f"{base}/api/console/proxy",
            params={"path": path, "method": "GET"},
            headers={"kbn-xsrf": "true"},
        )
        answer.raise_for_status()
        return answer.json()

    return get


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
        with client() as http:
            found = wait_for_reference_case(proxy_get(http, f"http://{launch.ip}:{launch.port}"), launch.name)
        return Seeded(standin.VERSION, [database("", found)])

    def digest(self, entry: dict[str, Any], h: Hasher) -> None:
        """All data of the cluster behind the stand-in, read through its console proxy."""
        h.add("through", "kibana")
        with client() as http:
            digest_cluster(proxy_get(http, base_url(entry)), h)


KIND = Kibana()

"""OpenSearch API stand-in (no Elasticsearch or OpenSearch server is packaged here): osmem-server (PyPI
`osmem-server`, an in-memory server speaking the OpenSearch 3.x REST API; a Go binary in the wheel).

Service: opensearch-open (no auth), seeded with the reference case, a police database as it was found
behind an open Kibana: `person` (3,000 people: xm name, sfzh national ID with a valid check digit, sjhm
phone, csrq birth date, jg birth place, xb gender, zz address), `address` (2,000 registered and current
addresses of those people) and `case` (1,000 case records: ajbh case number, sfzh citizen ID, ajlx case
type, jyaq description, larq date opened). Field names are pinyin abbreviations, as such systems use.

The manifest names things as the scanner does: one database "" and one collection per index, rows =
documents. The software is "opensearch" with the version osmem-server claims at `GET /`.
"""

from __future__ import annotations

import json
import signal
import time
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import osmem_server

from leaksonar.lab import data, servers
from leaksonar.lab.digest import Hasher
from leaksonar.lab.kinds.base import Launch, Started
from leaksonar.lab.seed import Seeded, database
from leaksonar.lab.spec import LabError, ServiceSpec

SERVICES = (ServiceSpec("opensearch-open", 15, 9200, "elasticsearch", "none"),)
BACKEND = SERVICES[0]
"""The service Kibana's lab entry fronts."""
COUNTS = {"address": 2000, "case": 1000, "person": 3000}
"""Documents per index of the reference case."""
_MAX_WINDOW = 10_000
"""OpenSearch's default index.max_result_window: the most documents one _search returns."""

Documents = dict[str, dict[str, dict[str, Any]]]
"""index -> document id -> source."""
Get = Callable[[str], Any]
"""GET one API path from a cluster; its JSON."""


def reference_case() -> Documents:
    """The police database of the reference case (deterministic)."""
    s = data.Synth(data.SEED + 40)
    people = s.people(COUNTS["person"])
    person = {
        str(i): {
            "xm": p.name,
            "sfzh": p.national_id,
            "sjhm": p.phone,
            "csrq": p.birth_date.isoformat(),
            "jg": p.birth_place,
            "xb": p.gender,
            "zz": p.address,
        }
        for i, p in enumerate(people, 1)
    }
    address = {
        str(i): {
            "sfzh": p.national_id,
            "xm": p.name,
            "hjdz": p.address,
            "xzz": s.zh.address(),
            "djrq": s.day(date(2010, 1, 1), 4000).isoformat(),
        }
        for i, p in enumerate(people[: COUNTS["address"]], 1)
    }
    case = {}
    for i in range(1, COUNTS["case"] + 1):
        opened, citizen = s.day(date(2012, 1, 1), 3650), s.rnd.choice(people).national_id
        case[str(i)] = {
            "ajbh": f"A{citizen[:6]}{opened:%Y%m}{i:05d}",
            "sfzh": citizen,
            "ajlx": s.rnd.choice(data._CASE_TYPES),
            "jyaq": s.zh.sentence(16),
            "larq": opened.isoformat(),
        }
    return {"person": person, "address": address, "case": case}


def bulk_body(documents: Documents) -> bytes:
    """The documents as one `_bulk` request (NDJSON)."""
    lines = [
        line
        for index, docs in documents.items()
        for doc_id, source in docs.items()
        for line in ({"index": {"_index": index, "_id": doc_id}}, source)
    ]
    return "".join(json.dumps(line, ensure_ascii=False) + "\n" for line in lines).encode()


def digest_cluster(get: Get, h: Hasher) -> None:
    """Every index (hidden ones too): its mapping, document count and every document, in _id order."""
    for row in sorted(get("/_cat/indices?format=json"), key=lambda row: row["index"]):
        index, rows = row["index"], int(row["docs.count"])
        if rows > _MAX_WINDOW:
            raise LabError(f"index {index} holds {rows} documents, more than one _search returns")
        path = f"/{quote(index, safe='')}"
        hits = get(f"{path}/_search?size={_MAX_WINDOW}")["hits"]["hits"]
        h.add("index", index, rows, json.dumps(get(f"{path}/_mapping"), sort_keys=True))
        for hit in sorted(hits, key=lambda hit: hit["_id"]):
            h.add(hit["_id"], json.dumps(hit["_source"], sort_keys=True, ensure_ascii=False))


def client() -> httpx.Client:
    """An HTTP client for the lab's loopback servers (HTTPS certificates are not checked)."""
    return httpx.Client(timeout=60, trust_env=False, verify=False)


def base_url(entry: dict[str, Any]) -> str:
    """http://IP:PORT of a manifest entry, or https:// for a service behind TLS."""
    return f"{'https' if entry.get('tls') else 'http'}://{entry['ip']}:{entry['port']}"


def _indices(get: Get) -> dict[str, int]:
    """Visible index -> document count, or {} while the cluster is not reachable."""
    try:
        rows = get("/_cat/indices?format=json")
    except httpx.HTTPError:
        return {}
    return {row["index"]: int(row["docs.count"]) for row in rows if not row["index"].startswith(".")}


def wait_for_reference_case(get: Get, waiting: str, timeout: float = 120.0) -> dict[str, int]:
    """Wait until `get` shows opensearch-open's reference case (a service that fronts it, starting in
    parallel); its index -> document count. `waiting` names the service that waits, for the error."""
    deadline = time.monotonic() + timeout
    while (found := _indices(get)) != COUNTS:
        if time.monotonic() > deadline:
            raise LabError(
                f"{waiting} fronts {BACKEND.name}, which did not show the reference case within "
                f"{timeout:.0f} s: start both in the same lab"
            )
        time.sleep(0.25)
    return found


def direct_get(http: httpx.Client, base: str) -> Get:
    def get(path: str) -> Any:
        answer = http.get(base + path)
        answer.raise_for_status()
        return answer.json()

    return get


class OpenSearch:
    protocol = "elasticsearch"
    programs = ("osmem-server",)
    software = "opensearch"
    user = None
    stop_signal = signal.SIGTERM
    standin = True

    def start(self, launch: Launch) -> Started:
        directory = Path(osmem_server.__file__).parent / "bin"
        program = servers.program("osmem-server", "PyPI osmem-server", directory)
        return Started([program, "-addr", f"{launch.ip}:{launch.port}", "-no-stdin-watch", "-no-ja"])

    def seed(self, launch: Launch, started: Started) -> Seeded:
        documents = reference_case()
        base = f"http://{launch.ip}:{launch.port}"
        headers = {"Content-Type": "application/x-ndjson"}
        with client() as http:
            answer = http.post(f"{base}/_bulk?refresh=true", content=bulk_body(documents), headers=headers)
            answer.raise_for_status()
            if answer.json().get("errors"):
                raise LabError("osmem-server refused documents of the bulk load")
            version = str(direct_get(http, base)("/")["version"]["number"])
        # Listed in index name order, as `_cat/indices` (and so kibana-open and the TLS proxy) list them.
        return Seeded(version, [database("", {index: len(documents[index]) for index in sorted(documents)})])

    def digest(self, entry: dict[str, Any], h: Hasher) -> None:
        with client() as http:
            digest_cluster(direct_get(http, base_url(entry)), h)


KIND = OpenSearch()

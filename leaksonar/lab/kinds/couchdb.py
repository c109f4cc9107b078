"""CouchDB API stand-in (no CouchDB server is packaged here): pouchdb-server (npm `pouchdb-server` 4.2.0,
installed into leaksonar/lab/node by `npm ci --prefix leaksonar/lab/node`), run by node, in memory.

Service: couchdb-open (no auth, "admin party": no admin exists), seeded with a clinic's databases:
`patients` (800: name, phone, email, national ID, birth date, address), `appointments` (1,500: patient
ID, national ID, doctor, department, time) and `config` (10 settings). Its root answers
`{"express-pouchdb":"Welcome!","version":"4.2.0",...}`, so the software is "express-pouchdb".

The manifest names things as the scanner does: database = the CouchDB database, collection = the same
name; rows = `doc_count` (no design documents are stored, so it equals the documents seeded).
"""

from __future__ import annotations

import signal
from datetime import date, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx

from leaksonar.lab import data, servers
from leaksonar.lab.digest import Hasher
from leaksonar.lab.kinds.base import Launch, Started
from leaksonar.lab.seed import Seeded, database
from leaksonar.lab.spec import LabError, ServiceSpec

SERVICES = (ServiceSpec("couchdb-open", 24, 5984, "couchdb", "none"),)
NODE_PROJECT = Path(__file__).resolve().parents[1] / "node"
SCRIPT = NODE_PROJECT / "node_modules" / "pouchdb-server" / "bin" / "pouchdb-server"
_PATIENTS, _APPOINTMENTS = 800, 1500
_DEPARTMENTS = ("内科", "外科", "儿科", "妇产科", "眼科", "口腔科", "皮肤科", "急诊科")

Documents = dict[str, list[dict[str, Any]]]
"""database -> documents (each with its `_id`)."""


def clinic() -> Documents:
    """The clinic's databases (deterministic)."""
    s = data.Synth(data.SEED + 60)
    people = s.people(_PATIENTS, english_share=0.1)
    patients = [
        {
            "_id": f"patient:{i:05d}",
            "name": p.name,
            "phone": p.phone,
            "email": p.email,
            "national_id": p.national_id,
            "birth_date": p.birth_date.isoformat(),
            "address": p.address,
        }
        for i, p in enumerate(people, 1)
    ]
    appointments = []
    for i in range(1, _APPOINTMENTS + 1):
        n = s.rnd.randrange(_PATIENTS)
        when = date(2025, 1, 1) + timedelta(days=s.rnd.randrange(365))
        appointments.append(
            {
                "_id": f"appointment:{i:05d}",
                "patient": f"patient:{n + 1:05d}",
                "national_id": people[n].national_id,
                "doctor": s.zh.name(),
                "department": s.rnd.choice(_DEPARTMENTS),
                "time": f"{when.isoformat()}T{s.rnd.randrange(8, 18):02d}:{s.rnd.choice((0, 30)):02d}:00",
            }
        )
    config = [
        {"_id": f"setting:{key}", "value": value}
        for key, value in {
            "clinic_name": "康宁社区诊所",
            "timezone": "Asia/Shanghai",
            "slot_minutes": 30,
            "open_hour": 8,
            "close_hour": 18,
            "sms_gateway": "sms.example.invalid",
            "reminder_hours": 24,
            "max_daily_slots": 120,
            "currency": "CNY",
            "language": "zh-CN",
        }.items()
    ]
    return {"appointments": appointments, "config": config, "patients": patients}


def _client(ip: str, port: int) -> httpx.Client:
    return httpx.Client(base_url=f"http://{ip}:{port}", timeout=60, trust_env=False)


class CouchDB:
    protocol = "couchdb"
    programs = ("pouchdb-server",)
    software = "express-pouchdb"
    user = None
    stop_signal = signal.SIGTERM
    standin = True

    def start(self, launch: Launch) -> Started:
        node = servers.program("node", "Debian nodejs")
        if not SCRIPT.exists():
            raise LabError(f"pouchdb-server is not installed: run `npm ci --prefix {NODE_PROJECT}`")
        flags = ["--in-memory", "--host", launch.ip, "--port", str(launch.port), "--no-color"]
        return Started([node, str(SCRIPT), *flags, "--config", str(launch.workdir / "config.json")])

    def seed(self, launch: Launch, started: Started) -> Seeded:
        documents = clinic()
        with _client(launch.ip, launch.port) as client:
            for name, docs in documents.items():
                client.put(f"/{name}").raise_for_status()
                answer = client.post(f"/{name}/_bulk_docs", json={"docs": docs})
                answer.raise_for_status()
                if any("error" in row for row in answer.json()):
                    raise LabError(f"pouchdb-server refused documents of {name}")
            version = str(client.get("/").json()["version"])
        return Seeded(version, [database(name, {name: len(docs)}) for name, docs in documents.items()])

    def digest(self, entry: dict[str, Any], h: Hasher) -> None:
        """Every database (system ones too): its info counters and every document with its revision."""
        with _client(entry["ip"], entry["port"]) as client:
            for name in sorted(client.get("/_all_dbs").raise_for_status().json()):
                path = f"/{quote(name, safe='')}"
                info = client.get(path).raise_for_status().json()
                h.add("database", name, info.get("doc_count"), info.get("update_seq"))
                rows = client.get(f"{path}/_all_docs", params={"include_docs": "true"})
                for row in rows.raise_for_status().json()["rows"]:
                    h.add(row["id"], row["value"]["rev"], repr(sorted(row["doc"].items())))


KIND = CouchDB()

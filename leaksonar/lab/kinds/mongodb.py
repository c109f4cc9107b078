"""MongoDB wire-compatible stand-ins (no MongoDB server is packaged here): SecantusDB (PyPI `secantusdb`,
`secantusd-py`) and NX-27017 (PyPI `nx-27017`), both in memory except mongodb-auth.

Services: mongodb-secantus and mongodb-nx (no auth), mongodb-auth (SecantusDB with --auth). Each holds an
app's data: `app.users` (nested contact {phone, email}, address, national ID), `app.orders` (shipping
contact) and `logs.events` (IP addresses). The manifest names a collection as the scanner does:
database = database name, collection = collection name; the software is "mongodb" with the version the
server claims in buildInfo (SecantusDB says 8.2.11, NX-27017 says 7.0.0).

SecantusDB has no localhost exception, so mongodb-auth is prepared in `start`: a first SecantusDB
without --auth on the service's address and a data directory in the workdir gets the data and the user,
is stopped, and the lab then runs it again with --auth on the same data.
"""

from __future__ import annotations

import signal
import socket
import sys
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any

import bson
import pymongo
from bson.objectid import ObjectId

from leaksonar.lab import data, servers
from leaksonar.lab.digest import Hasher, credentials
from leaksonar.lab.kinds.base import Launch, Started
from leaksonar.lab.seed import Seeded, database
from leaksonar.lab.spec import ServiceSpec
from leaksonar.protocols.mongodb import op_query

SERVICES = (
    ServiceSpec("mongodb-secantus", 11, 27017, "mongodb", "none"),
    ServiceSpec("mongodb-nx", 12, 27017, "mongodb", "none"),
    ServiceSpec("mongodb-auth", 13, 27017, "mongodb", "required"),
)
_USER = "root"
_VENV_BIN = Path(sys.executable).parent
"""Where pip put the stand-ins' commands (the lab may run without the venv on PATH)."""
_MACHINE = bytes.fromhex("640b1e9a27")
"""The middle five bytes of the synthetic ObjectIds."""
_EVENTS = ("login", "logout", "password_reset", "order_placed", "address_changed", "login_failed")
_STATUSES = ("paid", "shipped", "delivered", "refunded", "cancelled")
_PRODUCTS = ("蓝牙耳机", "保温杯", "运动鞋", "电饭煲", "羽绒服", "充电宝", "机械键盘", "茶叶礼盒")

Documents = dict[str, dict[str, list[dict[str, Any]]]]
"""database -> collection -> documents."""


def _oid(moment: datetime, n: int) -> ObjectId:
    """A realistic ObjectId: creation time, a fixed machine part, `n` as the counter."""
    return ObjectId(int(moment.timestamp()).to_bytes(4, "big") + _MACHINE + n.to_bytes(3, "big"))


def _users(s: data.Synth, n: int) -> list[dict[str, Any]]:
    docs = []
    for i, p in enumerate(s.people(n, english_share=0.2), 1):
        created = s.moment(2024)
        docs.append(
            {
                "_id": _oid(created, i),
                "username": f"{s.en.user_name()}{i}",
                "name": p.name,
                "gender": p.gender,
                "birthday": datetime.combine(p.birth_date, datetime.min.time()),
                "national_id": p.national_id,
                "contact": {"phone": p.phone, "email": p.email},
                "address": {"full": p.address, "birth_place": p.birth_place},
                "vip": s.rnd.random() < 0.1,
                "created_at": created,
            }
        )
    return docs


def _orders(s: data.Synth, n: int, users: list[dict[str, Any]]) -> list[dict[str, Any]]:
    docs = []
    for i in range(1, n + 1):
        user, placed = s.rnd.choice(users), s.moment(2025)
        items = [
            {
                "sku": f"SKU{s.rnd.randrange(10**6):06d}",
                "name": s.rnd.choice(_PRODUCTS),
                "qty": s.rnd.randint(1, 3),
            }
            for _ in range(s.rnd.randint(1, 3))
        ]
        docs.append(
            {
                "_id": _oid(placed, i),
                "order_no": f"MO{2025_000_000 + i * 13}",
                "user_id": user["_id"],
                "items": items,
                "total": float(s.money(10, 5000)),
                "status": s.rnd.choice(_STATUSES),
                "shipping": {
                    "name": user["name"],
                    "phone": user["contact"]["phone"],
                    "address": user["address"]["full"],
                },
                "placed_at": placed,
            }
        )
    return docs


def _events(s: data.Synth, n: int, users: list[dict[str, Any]]) -> list[dict[str, Any]]:
    start = datetime(2025, 11, 1, tzinfo=UTC)
    docs = []
    for i in range(1, n + 1):
        event = s.rnd.choice(_EVENTS)
        docs.append(
            {
                "_id": _oid(start + timedelta(seconds=60 * i), i),
                "ts": start + timedelta(seconds=60 * i + s.rnd.randrange(60)),
                "level": "warn" if event == "login_failed" else "info",
                "event": event,
                "user": s.rnd.choice(users)["username"],
                "ip": s.en.ipv4_public(),
                "user_agent": s.en.user_agent(),
            }
        )
    return docs


def app(seed: int, users: int, orders: int, events: int) -> Documents:
    """An app's databases: `app.users`, `app.orders` and `logs.events`, deterministic for `seed`."""
    s = data.Synth(seed)
    people = _users(s, users)
    return {
        "app": {"users": people, "orders": _orders(s, orders, people)},
        "logs": {"events": _events(s, events, people)},
    }


_APPS = {
    "mongodb-secantus": (11, 1500, 3000, 500),
    "mongodb-nx": (12, 1500, 3000, 500),
    "mongodb-auth": (13, 800, 1200, 200),
}
"""Service -> seed offset, users, orders, events."""


@cache
def content(name: str) -> Documents:
    """The documents of service `name` (made once per process: Faker is slow to warm up)."""
    offset, *counts = _APPS[name]
    return app(data.SEED + offset, *counts)


def _client(ip: str, port: int, password: str | None = None) -> pymongo.MongoClient[dict[str, Any]]:
    login = {"username": _USER, "password": password} if password else {}
    return pymongo.MongoClient(
        ip, port, directConnection=True, serverSelectionTimeoutMS=10_000, socketTimeoutMS=30_000, **login
    )


def _load(ip: str, port: int, documents: Documents) -> None:
    with _client(ip, port) as client:
        for db, collections in documents.items():
            for name, docs in collections.items():
                client[db][name].insert_many(docs, ordered=False)


def _legacy_handshake(ip: str, port: int) -> None:
    """An OP_QUERY isMaster, as old drivers (and the scanner's probe) send: NX-27017 answers it by
    registering an empty `test` database, so it is made here, not by the first scan."""
    with socket.create_connection((ip, port), timeout=10) as sock:
        sock.sendall(op_query(1, "admin.$cmd", {"isMaster": 1}, -1))
        sock.recv(4096)


def _secantus(launch: Launch, storage: str, *auth: str) -> list[str]:
    program = servers.program("secantusd-py", "PyPI secantusdb", _VENV_BIN)
    return [
        program,
        "--host",
        launch.ip,
        "--port",
        str(launch.port),
        "--storage-path",
        storage,
        "--standalone",
        *auth,
    ]


def _prepare_auth(launch: Launch) -> list[str]:
    """Fill a SecantusDB data directory and create the user (without --auth, on the service's own address,
    stopped again); return the command that serves that directory with --auth."""
    storage = str(launch.workdir / "data")
    pid = servers.spawn(_secantus(launch, storage), launch.log)
    try:
        documents = content(launch.name)  # while the server starts
        servers.wait_listening(pid, launch.ip, launch.port, launch.log)
        _load(launch.ip, launch.port, documents)
        with _client(launch.ip, launch.port) as client:
            client.admin.command("createUser", _USER, pwd=launch.password, roles=["root"])
    finally:
        servers.stop(pid, "mongodb", launch.ip)
    return _secantus(launch, storage, "--auth")


class MongoDB:
    protocol = "mongodb"
    programs = ("secantusd-py", "nx-27017")
    software = "mongodb"
    user = _USER
    stop_signal = signal.SIGTERM
    standin = True

    def start(self, launch: Launch) -> Started:
        if launch.name == "mongodb-nx":
            program = servers.program("nx-27017", "PyPI nx-27017", _VENV_BIN)
            files = [
                "--log-file",
                str(launch.workdir / "nx.log"),
                "--pid-file",
                str(launch.workdir / "nx.pid"),
            ]
            return Started([program, "--host", launch.ip, "-p", str(launch.port), "--db", "memory", *files])
        if launch.password:
            return Started(_prepare_auth(launch))
        return Started(_secantus(launch, ":memory:"))

    def seed(self, launch: Launch, started: Started) -> Seeded:
        documents = content(launch.name)
        if not launch.password:
            _load(launch.ip, launch.port, documents)
        if launch.name == "mongodb-nx":
            _legacy_handshake(launch.ip, launch.port)
        with _client(launch.ip, launch.port) as client:
            version = str(client.admin.command("buildInfo")["version"])
        return Seeded(
            version,
            [database(db, {name: len(docs) for name, docs in cs.items()}) for db, cs in documents.items()],
        )

    def digest(self, entry: dict[str, Any], h: Hasher) -> None:
        """Every database, collection and document (as BSON, in _id order)."""
        _, password = credentials(entry, _USER)
        with _client(entry["ip"], entry["port"], password) as client:
            for db in sorted(client.list_database_names()):
                h.add("database", db)
                for name in sorted(client[db].list_collection_names()):
                    h.add("collection", name)
                    for doc in client[db][name].find(sort=[("_id", 1)]):
                        h.add(bson.encode(doc))


KIND = MongoDB()

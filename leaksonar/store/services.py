"""Hosts and services: the latest state of each, as the last scan that saw it left it."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import Engine, case, func, select

from leaksonar.store import search as views
from leaksonar.store.addresses import Network, network_keys
from leaksonar.store.query import certified_for, public_only
from leaksonar.store.rows import HostRow, HostView, ServiceRow
from leaksonar.store.schema import hosts, services
from leaksonar.store.sql import select_as


class Hosts:
    """`store.hosts`."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def top(self, limit: int = 1000) -> list[HostRow]:
        """Hosts with their service counts and protocols, first and last seen over their services (as
        `get` shows them, whichever batch stored which), most exposed first, then by address."""
        exposed = func.sum(case((services.c.exposed, 1), else_=0))
        protocols = (
            func.string_agg(services.c.protocol, ",")
            if self.engine.dialect.name == "postgresql"
            else func.group_concat(services.c.protocol, ",")
        )
        query = (
            select(
                hosts.c.ip,
                func.min(services.c.first_seen).label("first_seen"),
                func.max(services.c.last_seen).label("last_seen"),
                func.count(services.c.id).label("services"),
                exposed.label("exposed"),
                protocols.label("protocols"),
            )
            .join(services, services.c.ip == hosts.c.ip)
            .group_by(hosts.c.ip, hosts.c.ip_key)
            .order_by(exposed.desc(), hosts.c.ip_key)
            .limit(limit)
        )
        with self.engine.connect() as conn:
            return [HostRow(*row) for row in conn.execute(query)]

    def get(self, ip: str, *, public: bool = False) -> HostView | None:
        """A host and its services (as search hits, by port), first and last seen over them. `public`: the
        visible services only, and None when there is none (as for an address not in the index)."""
        query = select(*views.HIT_COLUMNS).where(services.c.ip == ip).order_by(services.c.port)
        if public:
            query = query.where(public_only(services))
        with self.engine.connect() as conn:
            found = [views.hit(r) for r in conn.execute(query)]
        if not found:
            return None
        first, last = min(s.first_seen for s in found), max(s.last_seen for s in found)
        return HostView(ip=ip, first_seen=first, last_seen=last, services=found)


class Services:
    """`store.services`."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def _read(self, *where: object, order: Iterable[object] = (services.c.port,)) -> list[ServiceRow]:
        query = select_as(ServiceRow, services).where(*where).order_by(*order)
        with self.engine.connect() as conn:
            return [ServiceRow(*row) for row in conn.execute(query)]

    def get(self, ip: str, port: int) -> ServiceRow | None:
        found = self._read(services.c.ip == ip, services.c.port == port)
        return found[0] if found else None

    def on(self, ip: str) -> list[ServiceRow]:
        """The services on `ip`, by port."""
        return self._read(services.c.ip == ip)

    def exposed(self, network: Network | None = None, domain: str | None = None) -> list[ServiceRow]:
        """The exposed services (with addresses in `network`, IPv4 or IPv6; with a certificate
        for `domain`, in lower case, or a name under it), by address."""
        where = [services.c.exposed.is_(True)]
        if network is not None:
            where.append(services.c.ip_key.between(*network_keys(network)))
        if domain is not None:
            where.append(certified_for(domain))
        return self._read(*where, order=(services.c.ip_key, services.c.port))

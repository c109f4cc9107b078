"""The delivery log of alerts: each event once per rule and channel, claimed atomically before it is sent."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, and_, or_

from leaksonar.store.rows import DeliveryRow
from leaksonar.store.schema import deliveries
from leaksonar.store.sql import insert, select_as


def _delivery(key: str, rule: str, channel: str) -> tuple[Any, ...]:
    return (deliveries.c.event_key == key, deliveries.c.rule == rule, deliveries.c.channel == channel)


class Deliveries:
    """`store.deliveries`."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def claim(self, key: str, event_id: int | None, rule: str, channel: str, now: str, stale: str) -> bool:
        """Take the delivery of event `key` by `rule` to `channel`, unless it was sent or is being sent
        (a claim older than `stale` is taken over). Atomic, so concurrent runs never send twice."""
        ids = {"event_key": key, "event_id": event_id, "rule": rule, "channel": channel}
        with self.engine.begin() as conn:
            claim = insert(conn, deliveries).values(**ids, attempts=0, status="sending", time=now)
            if conn.execute(claim.on_conflict_do_nothing()).rowcount == 1:
                return True
            retake = (
                deliveries.update()
                .where(*_delivery(key, rule, channel))
                .where(
                    or_(
                        deliveries.c.status == "failed",
                        and_(deliveries.c.status == "sending", deliveries.c.time < stale),
                    )
                )
                .values(status="sending", time=now, event_id=event_id)
            )
            return conn.execute(retake).rowcount == 1

    def finish(
        self, key: str, rule: str, channel: str, status: str, attempts: int, error: str | None, now: str
    ) -> None:
        """Record the outcome of a claimed delivery; attempts add up over runs."""
        with self.engine.begin() as conn:
            conn.execute(
                deliveries.update()
                .where(*_delivery(key, rule, channel))
                .values(status=status, attempts=deliveries.c.attempts + attempts, last_error=error, time=now)
            )

    def all(self) -> list[DeliveryRow]:
        """The delivery log, oldest first."""
        with self.engine.connect() as conn:
            query = select_as(DeliveryRow, deliveries).order_by(deliveries.c.id)
            return [DeliveryRow(*row) for row in conn.execute(query)]

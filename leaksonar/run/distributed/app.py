"""The Celery app: a Redis broker, late acknowledgement, one task reserved per worker process.

A task is acknowledged only when it has finished. The shard of a worker that dies is queued again by
whoever sweeps its lapsed lease (`state.lapsed`, within a minute); the broker's visibility timeout
(LEAKSONAR_VISIBILITY_TIMEOUT, default 3600 s) remains the safety net that hands its unacknowledged
message out again, and that late copy finds the shard done.
"""

from __future__ import annotations

import os

import redis
from celery import Celery

BROKER_ENV = "LEAKSONAR_BROKER"
VISIBILITY_ENV = "LEAKSONAR_VISIBILITY_TIMEOUT"

app = Celery("leaksonar", include=["leaksonar.run.distributed.tasks"])


class BrokerError(Exception):
    """No broker given, or it cannot be reached; the message is one line."""


def configure(broker: str | None) -> redis.Redis:
    """Point the app at `broker` (or $LEAKSONAR_BROKER); return a client of its Redis, checked."""
    url = broker or os.environ.get(BROKER_ENV)
    if not url:
        raise BrokerError(f"no broker: give --broker redis://HOST:PORT/N or set {BROKER_ENV}")
    if not url.startswith(("redis://", "rediss://", "unix://")):
        raise BrokerError(f"broker {url!r} is not a Redis URL (redis://HOST:PORT/N)")
    visibility = float(os.environ.get(VISIBILITY_ENV) or 3600)
    app.conf.update(
        broker_url=url,
        broker_connection_retry_on_startup=True,
        broker_transport_options={
            "visibility_timeout": visibility,
            "unacked_restore_interval": max(1, min(10, int(visibility / 4))),
            "unacked_restore_throttle": 1,
        },
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        task_ignore_result=True,
        worker_prefetch_multiplier=1,
        worker_hijack_root_logger=False,
        task_serializer="json",
        accept_content=["json"],
    )
    client = redis.Redis.from_url(url, socket_timeout=10)
    try:
        client.ping()
    except redis.RedisError as exc:
        raise BrokerError(f"cannot reach the broker {url.rsplit('@', 1)[-1]}: {exc}") from None
    return client

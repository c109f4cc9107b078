"""Options on a worker: the scan's (they travel as `dataclasses.asdict` JSON), with the discovery limits
of one shard and the global rate taken from the bucket all workers share; and the lease a worker holds
on the shard it scans (the worker's own settings, from its environment)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from leaksonar.model import Limits
from leaksonar.scan.discover import Discovery, TokenBucket
from leaksonar.scan.engine import ScanOptions
from leaksonar.scan.workers import DiscoverySettings

LEASE_ENV = "LEAKSONAR_LEASE_TTL"
HEARTBEAT_ENV = "LEAKSONAR_HEARTBEAT"
LEASE_TTL = 30.0
"""Seconds a shard's lease lasts without a heartbeat: a dead worker's shard is queued again this long
after its last heartbeat, at the latest."""
HEARTBEAT = 10.0
"""Seconds between a worker's renewals of the lease on a shard it scans."""


@dataclass(frozen=True, slots=True)
class LeaseSettings:
    """How long a shard's lease lasts (`ttl`) and how often its worker renews it (`heartbeat`)."""

    ttl: float = LEASE_TTL
    heartbeat: float = HEARTBEAT

    def __post_init__(self) -> None:
        if not 0 < self.heartbeat < self.ttl:
            raise ValueError(
                f"the heartbeat ({self.heartbeat:g} s) must be positive and shorter than the lease "
                f"({self.ttl:g} s)"
            )

    @classmethod
    def from_env(cls) -> LeaseSettings:
        """$LEAKSONAR_LEASE_TTL and $LEAKSONAR_HEARTBEAT (seconds), or the defaults."""
        return cls(
            float(os.environ.get(LEASE_ENV) or LEASE_TTL), float(os.environ.get(HEARTBEAT_ENV) or HEARTBEAT)
        )

    def export(self) -> None:
        """Put these settings in the environment, where a worker's pool processes read them."""
        os.environ[LEASE_ENV], os.environ[HEARTBEAT_ENV] = str(self.ttl), str(self.heartbeat)


@dataclass(frozen=True, slots=True)
class SharedSettings(DiscoverySettings):
    """A worker's discovery: the whole of the scan's per-shard limits, and the shared bucket if any."""

    bucket: TokenBucket | None = None

    def share(self, shards: int) -> SharedSettings:
        return self

    def discovery(self, *args: Any, **kwargs: Any) -> Discovery:
        found = DiscoverySettings.discovery(self, *args, **kwargs)
        if self.bucket is not None:
            found.bucket = self.bucket
        return found


@dataclass(frozen=True, slots=True)
class WorkerOptions(ScanOptions):
    """The scan's options on a worker; `rate` is enforced by `bucket`, shared by all workers."""

    bucket: TokenBucket | None = None

    @classmethod
    def from_json(cls, values: dict[str, Any], bucket: TokenBucket | None) -> WorkerOptions:
        fields = {**values, "limits": Limits(**values["limits"]), "workers": 1}
        return cls(**fields, bucket=bucket)

    def discovery(self) -> SharedSettings:
        return SharedSettings(
            self.concurrency, self.per_host, self.rate, self.timeout, self.retries, self.bucket
        )

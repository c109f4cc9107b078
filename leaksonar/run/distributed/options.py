"""Scan options on a worker (they travel as `dataclasses.asdict` JSON): the discovery limits
of one shard, with the global rate taken from the bucket all workers share."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from leaksonar.model import Limits
from leaksonar.scan.discover import Discovery, TokenBucket
from leaksonar.scan.engine import ScanOptions
from leaksonar.scan.workers import DiscoverySettings


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

"""A global rate limit shared by every worker: one token bucket in the broker's Redis, taken in small
batches so that a worker asks Redis a few hundred times a second at most."""

from __future__ import annotations

import redis

from leaksonar.scan.discover import TokenBucket

_TAKE = """
local rate, burst, want = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local clock = redis.call('TIME')
local now = tonumber(clock[1]) + tonumber(clock[2]) / 1e6
local state = redis.call('HMGET', KEYS[1], 'tokens', 'stamp')
local tokens = tonumber(state[1]) or burst
local stamp = tonumber(state[2]) or now
tokens = math.min(burst, tokens + math.max(0, now - stamp) * rate)
local granted = math.min(want, math.floor(tokens))
tokens = tokens - granted
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'stamp', tostring(now))
redis.call('EXPIRE', KEYS[1], 3600)
return {granted, tostring((1 - tokens) / rate)}
"""


class SharedBucket(TokenBucket):
    """At most `rate` starts per second across all workers."""

    def __init__(self, client: redis.Redis, key: str, rate: float) -> None:
        super().__init__(rate)
        self.key = key
        self.burst = max(1.0, rate / 20)  # 50 ms of traffic
        self.batch = max(1, int(rate / 200))  # 5 ms of traffic per request to Redis
        self.granted = 0
        self.take = client.register_script(_TAKE)

    def delay(self) -> float:
        """0 and a token taken, or the seconds to wait before asking again."""
        if self.granted == 0:
            granted, wait = self.take(keys=[self.key], args=[self.rate, self.burst, self.batch])
            if not granted:
                return max(float(wait), 0.001)
            self.granted = int(granted)
        self.granted -= 1
        return 0.0

"""Per-key rate limits: the four documented buckets over a rolling 60 s window, on the sandbox clock."""

from __future__ import annotations

import hashlib
import math
from collections import deque

from postqued.clock import Clock

DEFAULT_LIMITS: dict[str, int] = {"upload": 20, "read": 30, "publish": 10, "delete": 20}
WINDOW_SECONDS = 60.0


class RateLimiter:
    """Sliding-window counters keyed by (API key digest, bucket). Refused requests use no slot."""

    def __init__(self, limits: dict[str, int] | None, clock: Clock) -> None:
        self.limits = dict(limits) if limits is not None else None
        self._clock = clock
        self._hits: dict[tuple[str, str], deque[float]] = {}

    def check(self, api_key: str, bucket: str | None) -> int | None:
        """Take a slot and return None, or return the whole seconds until one frees up."""
        if self.limits is None or bucket is None or bucket not in self.limits:
            return None
        limit = self.limits[bucket]
        now = self._clock.monotonic()
        key = (hashlib.sha256(api_key.encode()).hexdigest()[:16], bucket)
        hits = self._hits.setdefault(key, deque())
        while hits and hits[0] <= now - WINDOW_SECONDS:
            hits.popleft()
        if len(hits) >= limit:
            return max(1, math.ceil(hits[0] + WINDOW_SECONDS - now))
        hits.append(now)
        return None

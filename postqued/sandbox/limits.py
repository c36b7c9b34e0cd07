"""Per-key rate limits: the four documented buckets over a rolling 60 s window, on the sandbox clock."""

from __future__ import annotations

import hashlib
import math
from collections import deque

from postqued.clock import Clock
from postqued.sandbox.extras import EXTRA_BUCKETS

DEFAULT_LIMITS: dict[str, int] = {"upload": 20, "read": 30, "publish": 10, "delete": 20}
WINDOW_SECONDS = 60.0

# Every route the sandbox knows, with its bucket (None: not limited).
ROUTE_BUCKETS: dict[str, str | None] = {
    "ping": None,
    "context": "read",
    "integrations": "read",
    "creator_info": "read",
    "content_upload": "upload",
    "content_complete": "upload",
    "content_list": "read",
    "content_get": "read",
    "content_file": "read",
    "content_update": None,
    "content_delete": "delete",
    "publish": "publish",
    "publish_list": "read",
    "publish_get": "read",
    "publish_cancel": None,
    "target_cancel": None,
    "target_reschedule": None,
    "publish_delete": "delete",
    "storage_put": None,
    "v1_content_upload": "upload",
    "v1_content_complete": "upload",
    "v1_upload_image": "upload",
    "v1_platform_accounts": "read",
    "v1_publish": "publish",
    "v1_publish_get": "read",
    **EXTRA_BUCKETS,  # analytics, engagement, approvals, team, providers, admin
    "engagement_delete": None,  # a POST, not an HTTP DELETE: see the bucket rule in postqued/api/operations.py
}


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

"""One retry policy for every call, the local rate-limit buckets, and the retry decision as pure functions.

``should_retry`` and ``calculate_retry_timeout`` decide from the operation's call kind, the error, the
attempt and the policy alone (no I/O), so tests/test_client_retry.py checks them as a table; the client's
request loop and the upload PUT (postqued/uploads.py) use the same ``RetryPolicy``.
"""

from __future__ import annotations

import logging
import random
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from email.utils import parsedate_to_datetime
from typing import Protocol

from postqued.api.operations import CallKind
from postqued.clock import Clock
from postqued.errors import PostQuedError, RateLimitedError

log = logging.getLogger("postqued.client")  # the client's logger: these run inside its calls


@dataclass
class RetryPolicy:
    """One policy for every call class: capped, jittered exponential backoff and a Retry-After cap."""

    max_retries: int = 2
    base_delay: float = 0.5
    max_delay: float = 8.0
    max_retry_wait: float = 30.0
    rng: random.Random = field(default_factory=random.Random)

    def backoff(self, attempt: int) -> float:
        """Full jitter over ``base * 2**attempt`` capped at ``max_delay`` (attempt counts from 0)."""
        return self.rng.uniform(0, min(self.max_delay, self.base_delay * (2**attempt)))


class BucketStore(Protocol):
    """Where the sends of a rate-limit bucket are counted when several processes share one PostQued key
    (e.g. the team journal's database): ``reserve`` records one send now and returns 0 if the bucket has
    room within the window, else records nothing and returns the seconds until it has room."""

    async def reserve(self, bucket: str, limit: int, window: float) -> float: ...


class RateLimiter:
    """Local sliding-window buckets matching PostQued's per-minute limits, so bursts queue, not 429.

    With a ``store`` the buckets are shared by every process that uses the same store (and key)."""

    window = 60.0
    margin = 0.25  # clocks of two machines never agree exactly

    def __init__(self, limits: Mapping[str, int], clock: Clock, store: BucketStore | None = None) -> None:
        self._limits = dict(limits)
        self._clock = clock
        self._sent: dict[str, deque[float]] = {name: deque() for name in limits}
        self.store = store

    async def reserve(self, bucket: str | None) -> float:
        """Take one send from ``bucket`` now (0) or say how long until it has room (nothing taken)."""
        limit = self._limits.get(bucket) if bucket else None
        if self.store is not None and bucket is not None and limit:
            try:
                return await self.store.reserve(bucket, limit, self.window + self.margin)
            except PostQuedError as exc:  # the shared store is down: this process's own count still holds
                log.warning("shared rate-limit bucket %s unavailable (%s); counting locally", bucket, exc.code)
        delay = self.delay(bucket)
        if delay <= 0:
            self.take(bucket)
        return delay

    def delay(self, bucket: str | None) -> float:
        """Seconds until ``bucket`` has room (0 when it has room now)."""
        limit = self._limits.get(bucket) if bucket else None
        if bucket is None or not limit:
            return 0.0
        sent = self._sent[bucket]
        now = self._clock.monotonic()
        while sent and now - sent[0] >= self.window + self.margin:
            sent.popleft()
        if len(sent) < limit:
            return 0.0
        return sent[0] + self.window + self.margin - now

    def take(self, bucket: str | None) -> None:
        if bucket in self._sent:
            self._sent[bucket].append(self._clock.monotonic())


def should_retry(kind: CallKind, error: PostQuedError, *, attempt: int, limit: int, arrived: bool) -> bool:
    """Whether to send again after ``error`` on attempt ``attempt`` (from 0) of at most ``limit`` retries.

    ``arrived``: the request may have reached PostQued (an answer came, or the connection broke mid-request).
    A one-shot write (no key makes a second copy safe) is repeated only when it cannot have been processed:
    it never arrived, or PostQued refused it with 429. Everything else repeats a retryable error.
    """
    if attempt >= limit or not error.retryable:
        return False
    return kind != "once" or not arrived or isinstance(error, RateLimitedError)


def calculate_retry_timeout(policy: RetryPolicy, error: PostQuedError, attempt: int, now: datetime) -> float | None:
    """Seconds before the next attempt: PostQued's Retry-After when it sent one (None beyond the policy's cap:
    the caller answers with ``retry_at`` instead of waiting), else the policy's jittered backoff."""
    if error.retry_at is not None:
        wait = max(0.0, (error.retry_at - now).total_seconds())
        return wait if wait <= policy.max_retry_wait else None
    return policy.backoff(attempt)


def retry_after_seconds(raw: str | None, now: datetime) -> float | None:
    if not raw:
        return None
    try:
        return max(0.0, float(raw))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(raw)
    except (TypeError, ValueError):
        return None
    return max(0.0, (when - now).total_seconds())

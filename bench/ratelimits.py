"""Rate limits: 25 publishes and 40 status reads submitted at once against the sandbox's real limits.

PostQued's limits are per minute (publish 10/min, read 30/min), so the burst takes minutes of real time.
The benchmark runs it in simulated time instead: the sandbox and the client share a ``SimClock`` whose
``sleep`` parks the caller until every task is waiting on the clock, then jumps to the earliest wake-up.
Every request still goes through the client's local token buckets, its retry policy and the sandbox's own
sliding windows exactly as in real time; only the waiting is skipped. The client queues a call for up to
``max_retry_wait`` (30 s); a longer wait is answered locally with ``RATE_LIMITED_LOCAL`` and a
``retry_at``, and the submitter here calls again at that time, as an agent following the error would.

The figure is the simulated time from submission until the last answer, next to the minimum the limits
allow for the same burst (``(ceil(n / limit) - 1) * 60 s`` for the busiest bucket). The time the requests
themselves take (well under a second in all) is not part of simulated time.
"""

from __future__ import annotations

import asyncio
import heapq
import math
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

from bench.common import Config, Row, Stats

PUBLISHES = 25
READS = 40
GOAL = 1.10


class SimClock:
    """Virtual time: ``sleep`` returns when all other work is blocked and no earlier sleeper is left."""

    def __init__(self) -> None:
        self._start = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
        self._mono = 0.0
        self._sleepers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._seq = 0

    def now(self) -> datetime:
        return self._start + timedelta(seconds=self._mono)

    def monotonic(self) -> float:
        return self._mono

    def advance(self, seconds: float) -> None:
        self._mono += seconds

    async def sleep(self, seconds: float) -> None:
        if seconds <= 0:
            await asyncio.sleep(0)
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._seq += 1
        heapq.heappush(self._sleepers, (self._mono + seconds, self._seq, future))
        await future

    async def run(self, work: Any) -> Any:
        """Await ``work``, moving time forward whenever the event loop has nothing else to run."""
        loop = asyncio.get_running_loop()
        task = asyncio.ensure_future(work)
        while not task.done():
            await asyncio.sleep(0)
            if loop._ready:  # type: ignore[attr-defined]  # something can still run at this instant
                continue
            if self._sleepers:
                wake, _, future = heapq.heappop(self._sleepers)
                self._mono = max(self._mono, wake)
                if not future.done():
                    future.set_result(None)
            else:
                await asyncio.sleep(0.001)  # waiting on real I/O (none expected in-process)
        return task.result()


def minimum_seconds(counts: dict[str, int], limits: dict[str, int], window: float = 60.0) -> float:
    """The least time a burst can take: a bucket of limit L serves L requests per window."""
    return max((math.ceil(n / limits[b]) - 1) * window for b, n in counts.items() if n)


async def burst_once(state_dir: Path) -> tuple[float, int, float, int]:
    """(simulated seconds, 429 answers, wall seconds, local waits advised) of one burst on a fresh sandbox."""
    from bench.sandboxkit import client_for, draft_request, ready_video
    from postqued.errors import RateLimitedError
    from postqued.sandbox import DEFAULT_LIMITS, Sandbox
    from postqued.settings import DEFAULT_RATE_LIMITS

    clock = SimClock()
    with Sandbox(clock=clock, rate_limits=dict(DEFAULT_LIMITS)) as sb:
        async with client_for(sb, state_dir, clock=clock, rate_limits=dict(DEFAULT_RATE_LIMITS)) as client:

            async def setup() -> str:
                content_id = await ready_video(client)
                first = await client.publish(
                    await client.scoped_request(draft_request(sb.tiktok_public_id, content_id, "setup")), "setup-key"
                )
                publish_id: str = first.id
                return publish_id

            publish_id = await clock.run(setup())
            clock.advance(61.0)  # let every window of the setup calls expire
            content_id = next(iter(sb.contents))
            requests = [
                await client.scoped_request(draft_request(sb.tiktok_public_id, content_id, f"burst {i}"))
                for i in range(PUBLISHES)
            ]
            ledger_start = len(sb.ledger)
            begin, wall = clock.monotonic(), time.perf_counter()
            advised = 0

            async def patiently(call: Callable[[], Awaitable[Any]]) -> Any:
                """What an agent does with RATE_LIMITED_LOCAL: wait until its retry_at, then call again."""
                nonlocal advised
                while True:
                    try:
                        return await call()
                    except RateLimitedError as exc:
                        if exc.code != "RATE_LIMITED_LOCAL" or exc.retry_at is None:
                            raise
                        advised += 1
                        await clock.sleep((exc.retry_at - clock.now()).total_seconds())

            work = [patiently(partial(client.publish, r, f"burst-key-{i}")) for i, r in enumerate(requests)]
            work += [patiently(partial(client.get_publish, publish_id)) for _ in range(READS)]
            await clock.run(asyncio.gather(*work))
            simulated, wall = clock.monotonic() - begin, time.perf_counter() - wall
            refused = sum(1 for e in sb.ledger[ledger_start:] if e.status == 429)
            sent = sum(1 for e in sb.ledger[ledger_start:] if e.route in ("publish", "publish_get"))
            if sent != PUBLISHES + READS:
                raise RuntimeError(f"expected {PUBLISHES + READS} requests, the sandbox saw {sent}")
    return simulated, refused, wall, advised


def run(config: Config) -> list[Row]:
    from postqued.settings import DEFAULT_RATE_LIMITS

    floor = minimum_seconds({"publish": PUBLISHES, "read": READS}, dict(DEFAULT_RATE_LIMITS))
    results = []
    with tempfile.TemporaryDirectory(prefix="postqued-bench-") as tmp:
        for i in range(config.runs):
            results.append(asyncio.run(burst_once(Path(tmp) / str(i))))
    simulated = Stats.of(r[0] for r in results)
    refused = max(r[1] for r in results)
    wall = Stats.of(r[2] for r in results)
    advised = max(r[3] for r in results)
    ratio_value = simulated.median / floor
    return [
        Row(
            figure=f"Rate limits: {PUBLISHES} publishes + {READS} status reads at once, real limits (simulated time)",
            value=f"{simulated.show('s', 1.0, 2)}, {refused} x 429",
            baseline=f"minimum the limits allow: {floor:.0f} s",
            ratio=f"{ratio_value:.3f}x",
            goal=f"<= {GOAL:.2f}x minimum, zero 429s",
            met=ratio_value <= GOAL and refused == 0,
            notes=[
                f"rate limits: publish {DEFAULT_RATE_LIMITS['publish']}/min, read {DEFAULT_RATE_LIMITS['read']}/min; "
                f"the client queues up to POSTQUED_MAX_RETRY_WAIT (30 s) and waits 0.25 s past each window for clock "
                f"skew; longer waits come back as RATE_LIMITED_LOCAL with retry_at ({advised} in this burst), "
                "and the submitter calls again at retry_at, as an agent would",
                f"each burst took {wall.show()} of real time (simulated clock shared by client and sandbox)",
            ],
        )
    ]

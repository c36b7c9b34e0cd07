"""Journal: live publish latency with the journal, against the same publish without it.

With the journal: ``Publisher.publish(plan)``, i.e. the intent committed (and fsynced) to the SQLite
journal before the request leaves, the request, then the outcome recorded. Without it: the same
``client.publish`` call with a fresh idempotency key and no journal writes. Both publish a TikTok draft to
the in-process sandbox (rate limits off, real clock) and alternate, each with its own already-checked plan
(planning is not timed). The journal lives in a temporary folder on the same disk as a real state folder.
"""

from __future__ import annotations

import asyncio
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from bench.common import Config, Row, Stats, ratio

GOAL_MS = 5.0


async def _measure(n: int, warmup: int, state_dir: Path) -> tuple[Stats, Stats]:
    from bench.sandboxkit import client_for, draft_request, ready_video
    from postqued.clock import SystemClock
    from postqued.journal import SqliteJournal
    from postqued.publishing import Publisher
    from postqued.sandbox import Sandbox

    with Sandbox(rate_limits=None) as sb, SqliteJournal(state_dir / "journal.sqlite3") as journal:
        async with client_for(sb, state_dir) as client:
            publisher = Publisher(client, lambda: journal, SystemClock(), client.settings)
            content_id = await ready_video(client)
            plans: list[Any] = []
            for i in range(2 * (n + warmup)):
                plans.append(await publisher.plan(draft_request(sb.tiktok_public_id, content_id, f"bench post {i}")))
            with_journal: list[float] = []
            without: list[float] = []
            for i in range(n + warmup):
                a, b = plans[2 * i], plans[2 * i + 1]
                start = time.perf_counter()
                outcome = await publisher.publish(a)
                mid = time.perf_counter()
                status = await client.publish(b.request, str(uuid.uuid4()))
                end = time.perf_counter()
                assert outcome.status.id and status.id and not outcome.replayed
                if i >= warmup:
                    with_journal.append(mid - start)
                    without.append(end - mid)
    return Stats.of(with_journal), Stats.of(without)


def fsync_latency(folder: Path, n: int = 30) -> Stats:
    """How long one fsync of a small write takes on this disk (what each journal commit waits for)."""
    import os

    samples = []
    fd = os.open(folder / "fsync-probe", os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        for _ in range(n):
            os.write(fd, b"x" * 512)
            start = time.perf_counter()
            os.fsync(fd)
            samples.append(time.perf_counter() - start)
    finally:
        os.close(fd)
    return Stats.of(samples)


def run(config: Config) -> list[Row]:
    n, warmup = (10, 2) if config.short else (100, 10)
    with tempfile.TemporaryDirectory(prefix="postqued-bench-") as tmp:
        disk = fsync_latency(Path(tmp))
        journaled, bare = asyncio.run(_measure(n, warmup, Path(tmp)))
    diff = journaled.median - bare.median
    return [
        Row(
            figure="Journal: live publish latency with the journal (intent fsynced before send, outcome after)",
            value=f"{journaled.show(digits=2)} ({diff * 1000:+.2f} ms)",
            baseline=f"same publish, journal off: {bare.show(digits=2)}",
            ratio=ratio(journaled.median, bare.median),
            goal=f"difference < {GOAL_MS:.0f} ms",
            met=diff * 1000 < GOAL_MS,
            notes=[
                f"journal: {n} publishes each, alternating, after {warmup} warm-up pairs; two fsynced commits per "
                f"publish (intent, outcome); one fsync on this disk takes {disk.show(digits=2)}",
            ],
        )
    ]

"""Journal: live publish latency with the journal, against the same publish without it.

With the journal: ``Publisher.publish(plan)``, i.e. the intent committed (and fsynced) to the journal
before the request leaves, the request, then the outcome recorded: the SQLite journal, and the PostgreSQL
one on a server started for the run (tests/pgkit.py; skipped with the reason where none can start).
Without it: the same ``client.publish`` call with a fresh idempotency key and no journal writes. All
publish a TikTok draft to the in-process sandbox (rate limits off, real clock) and alternate, each with its
own already-checked plan (planning is not timed). The SQLite journal lives in a temporary folder on the
same disk as a real state folder.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from bench.common import Config, Row, Stats, ratio

GOAL_MS = 5.0


async def _measure(n: int, warmup: int, state_dir: Path, pg_url: str | None) -> tuple[Stats, Stats | None, Stats]:
    from bench.sandboxkit import client_for, draft_request, ready_video
    from postqued.clock import SystemClock
    from postqued.journal import Journal, SqliteJournal
    from postqued.publishing import Publisher
    from postqued.sandbox import Sandbox

    journals: list[Journal] = [SqliteJournal(state_dir / "journal.sqlite3")]
    if pg_url is not None:
        from postqued.journal.postgres import PostgresJournal

        journals.append(PostgresJournal(pg_url))
    with Sandbox(rate_limits=None) as sb:
        async with client_for(sb, state_dir) as client:
            publishers = [
                Publisher(client, functools.partial(_same, j), SystemClock(), client.settings) for j in journals
            ]
            content_id = await ready_video(client)
            rounds = len(publishers) + 1
            plans: list[Any] = []
            for i in range(rounds * (n + warmup)):
                request = draft_request(sb.tiktok_public_id, content_id, f"bench post {i}")
                plans.append(await publishers[0].plan(request))
            samples: list[list[float]] = [[] for _ in range(rounds)]
            for i in range(n + warmup):
                for k, publisher in enumerate(publishers):  # each journal, then the bare publish, alternating
                    start = time.perf_counter()
                    outcome = await publisher.publish(plans[rounds * i + k])
                    if i >= warmup:
                        samples[k].append(time.perf_counter() - start)
                    assert outcome.status.id and not outcome.replayed
                start = time.perf_counter()
                status = await client.publish(plans[rounds * i + rounds - 1].request, str(uuid.uuid4()))
                if i >= warmup:
                    samples[-1].append(time.perf_counter() - start)
                assert status.id
        for journal in journals:
            await journal.aclose()
    postgres = Stats.of(samples[1]) if pg_url is not None else None
    return Stats.of(samples[0]), postgres, Stats.of(samples[-1])


def _same(journal: Any) -> Any:
    return journal


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
    with tempfile.TemporaryDirectory(prefix="postqued-bench-") as tmp, contextlib.ExitStack() as stack:
        disk = fsync_latency(Path(tmp))
        pg_url, pg_missing = None, ""
        try:
            from tests.pgkit import PostgresUnavailable, postgres_server

            try:
                pg_url = stack.enter_context(postgres_server(durable=True)).create_database()
            except PostgresUnavailable as exc:
                pg_missing = str(exc)
        except ImportError as exc:  # an installed copy without the tests folder
            pg_missing = str(exc)
        journaled, postgres, bare = asyncio.run(_measure(n, warmup, Path(tmp), pg_url))
    diff = journaled.median - bare.median
    rows = [
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
    if postgres is None:
        rows[0].notes.append(f"journal on PostgreSQL not measured: {pg_missing}")
        return rows
    pg_diff = postgres.median - bare.median
    rows.append(
        Row(
            figure="Journal on PostgreSQL (team deployment): live publish latency, next to SQLite in the same run",
            value=f"{postgres.show(digits=2)} ({pg_diff * 1000:+.2f} ms)",
            baseline=f"SQLite journal: {journaled.show(digits=2)}; journal off: {bare.show(digits=2)}",
            ratio=ratio(postgres.median, journaled.median),
            goal=f"difference < {GOAL_MS:.0f} ms",
            met=pg_diff * 1000 < GOAL_MS,
            notes=[
                "postgres: a local server on loopback (fsync on) started for the run; two committed transactions "
                "per publish (intent under advisory locks, outcome); ratio against the SQLite journal",
            ],
        )
    )
    return rows

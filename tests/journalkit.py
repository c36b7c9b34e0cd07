"""Journal backends for tests: the same contract suite runs on each (SQLite always, PostgreSQL when a
server can be started here; see tests/pgkit.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from postqued.clock import ManualClock
from postqued.journal import Journal, SqliteJournal

BACKENDS = ["sqlite"]

JournalFactory = Callable[[], Awaitable[Journal]]


@asynccontextmanager
async def journal_factory(
    request: pytest.FixtureRequest, backend: str, clock: ManualClock, tmp_path: Path
) -> AsyncIterator[JournalFactory]:
    """Yields a function that opens a new journal object on one fresh store; all are closed at the end."""
    opened: list[Journal] = []

    async def make() -> Journal:
        journal = SqliteJournal(tmp_path / "state" / "journal.sqlite3", clock)
        await journal.open()
        opened.append(journal)
        return journal

    try:
        yield make
    finally:
        for journal in opened:
            await journal.aclose()

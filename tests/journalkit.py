"""Journal backends for tests: the same contract suite runs on each (SQLite always; PostgreSQL on a real
server started here by tests/pgkit.py, skipped with the reason where none can be started)."""

from __future__ import annotations

import atexit
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import ExitStack, asynccontextmanager
from pathlib import Path

import pytest

from postqued.clock import ManualClock
from postqued.journal import Journal, SqliteJournal
from tests.pgkit import PostgresServer, PostgresUnavailable, postgres_server

BACKENDS = ["sqlite", "postgres"]

JournalFactory = Callable[[], Awaitable[Journal]]

_servers = ExitStack()
atexit.register(_servers.close)
_started: list[PostgresServer | PostgresUnavailable] = []


def shared_postgres() -> PostgresServer:
    """One server for the whole test process (started on first use); skips the test if none can start."""
    if not _started:
        try:
            _started.append(_servers.enter_context(postgres_server()))
        except PostgresUnavailable as exc:
            _started.append(exc)
    server = _started[0]
    if isinstance(server, PostgresUnavailable):
        pytest.skip(f"PostgreSQL cannot be started here: {server}")
    return server


def fresh_postgres_url() -> str:
    """A new empty database on the shared server."""
    return shared_postgres().create_database()


@asynccontextmanager
async def journal_factory(backend: str, clock: ManualClock, tmp_path: Path) -> AsyncIterator[JournalFactory]:
    """Yields a function that opens a new journal object on one fresh store; all are closed at the end."""
    opened: list[Journal] = []
    url = fresh_postgres_url() if backend == "postgres" else ""

    async def make() -> Journal:
        journal: Journal
        if backend == "postgres":
            from postqued.journal.postgres import PostgresJournal

            journal = PostgresJournal(url, clock)
        else:
            journal = SqliteJournal(tmp_path / "state" / "journal.sqlite3", clock)
        await journal.open()
        opened.append(journal)
        return journal

    try:
        yield make
    finally:
        for journal in opened:
            await journal.aclose()

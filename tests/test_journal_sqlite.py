"""The SQLite backend: its file (permissions, WAL, migrations, damage), several processes on one file, and
a locked file that never stops the server (issue 12.5) nor makes a repeat post twice (issue 12.7)."""

from __future__ import annotations

import asyncio
import multiprocessing
import sqlite3
import stat
import threading
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import anyio
import anyio.lowlevel
import mcp.types as mt
import pytest
from mcp import Client

from postqued.clock import ManualClock
from postqued.digest import plan_digest
from postqued.errors import JournalError
from postqued.journal import SCHEMA_VERSION, PublishIntent, SqliteJournal, sqlite_schema
from postqued.journal import sqlite as backend
from postqued.sandbox import Sandbox
from postqued.settings import Settings
from tests.conftest import make_client

WS = "ws-1"
BODY: dict[str, Any] = {"workspaceId": WS, "contentIds": ["c-1"], "targets": []}
DIGEST = plan_digest(BODY)


def make_body(caption: str) -> dict[str, Any]:
    return {**BODY, "targets": [{"platform": "tiktok", "accountId": "a-1", "intent": "draft", "caption": caption}]}


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "state" / "journal.sqlite3"


@pytest.fixture
async def journal(path: Path, clock: ManualClock) -> AsyncIterator[SqliteJournal]:
    async with SqliteJournal(path, clock) as j:
        yield j


async def begin(journal: SqliteJournal, body: dict[str, Any] = BODY) -> PublishIntent:
    return await journal.begin_publish(plan_digest(body), WS, body, [], None, "v2")


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def count_rows(path: Path) -> int:
    with sqlite3.connect(path) as conn:
        return int(conn.execute("SELECT count(*) FROM publishes").fetchone()[0])


@pytest.fixture
def write_lock(path: Path) -> Iterator[sqlite3.Connection]:
    """Another connection holding the file's write lock (as another process mid-write would) until rolled back."""
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        yield conn
    finally:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        conn.close()


# -- opening the file --------------------------------------------------------------------------------


async def test_open_creates_private_files_in_wal_mode(journal: SqliteJournal, path: Path) -> None:
    assert journal.path == path and journal.where == str(path)
    assert (mode(path.parent), mode(path)) == (0o700, 0o600)
    await begin(journal)
    wal = path.with_name(path.name + "-wal")
    assert wal.exists()
    assert stat.S_IMODE(wal.stat().st_mode) == 0o600
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    with journal._store.write("check") as conn:
        assert conn.execute("PRAGMA synchronous").fetchone() == {"synchronous": 2}  # FULL


async def test_existing_loose_permissions_are_tightened(tmp_path: Path) -> None:
    path = tmp_path / "j.sqlite3"
    path.touch()
    path.chmod(0o644)
    async with SqliteJournal(path):
        pass
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


async def test_reopen_keeps_data_and_close_is_idempotent(path: Path, clock: ManualClock) -> None:
    async with SqliteJournal(path, clock) as first:
        key = (await begin(first)).idempotency_key
    await first.aclose()
    first.close()
    async with SqliteJournal(path, clock) as second:
        entry = await second.find_by_key(key)
        assert entry is not None and entry.digest == DIGEST


async def test_closed_journal_raises_journal_error(path: Path) -> None:
    j = SqliteJournal(path)
    await j.open()
    await j.aclose()
    with pytest.raises(JournalError):
        await j.list_entries()
    with pytest.raises(JournalError):
        await begin(j)


async def test_parent_is_a_regular_file(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(JournalError) as info:
        await SqliteJournal(blocker / "state" / "journal.sqlite3").open()
    assert info.value.code == "JOURNAL_UNAVAILABLE"
    assert str(blocker) in info.value.message


async def test_path_is_a_directory(tmp_path: Path) -> None:
    with pytest.raises(JournalError):
        await SqliteJournal(tmp_path).open()


async def test_not_a_database(tmp_path: Path) -> None:
    path = tmp_path / "junk.sqlite3"
    path.write_bytes(b"this is not sqlite at all" * 100)
    with pytest.raises(JournalError, match="not a database"):
        await SqliteJournal(path).open()
    with pytest.raises(JournalError, match="not a database"):
        await SqliteJournal(path).list_entries()


async def test_schema_from_the_future_is_refused(path: Path) -> None:
    async with SqliteJournal(path):
        pass
    with sqlite3.connect(path) as conn:
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    with pytest.raises(JournalError, match="newer"):
        await SqliteJournal(path).open()
    with pytest.raises(JournalError, match="schema version"):
        await SqliteJournal(path).list_entries()


async def test_unversioned_file_is_migrated(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite3"
    sqlite3.connect(path).close()
    async with SqliteJournal(path) as j:
        assert await j.list_entries() == []
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION


async def test_unwritable_journal_blocks_begin_publish(journal: SqliteJournal) -> None:
    # Running as root, chmod cannot make a file read-only; a query-only connection refuses writes for real.
    with journal._store.write("setup") as conn:
        pass
    conn.execute("PRAGMA query_only = ON")
    with pytest.raises(JournalError, match="begin_publish") as info:
        await begin(journal)
    assert "readonly" in info.value.message
    for call in (
        journal.record_plan(DIGEST, WS, {}),
        journal.remember_upload(WS, "ab", 1, "c"),
        journal.recover(),
    ):
        with pytest.raises(JournalError):
            await call
    assert await journal.list_entries() == []  # reads still work; nothing half-written


async def test_record_status_resolves_unknown(journal: SqliteJournal, path: Path) -> None:
    key = (await begin(journal)).idempotency_key
    await journal.record_accepted(key, "pub-1", "pending", [])
    with sqlite3.connect(path) as conn:  # e.g. an older build marked it unknown
        conn.execute("UPDATE publishes SET status = 'unknown'")
    entry = await journal.record_status("pub-1", "processing", [], terminal=False)
    assert entry is not None and entry.status == "accepted" and not entry.terminal


async def test_recover_after_crash(path: Path, clock: ManualClock) -> None:
    crashed = SqliteJournal(path, clock)
    key = (await begin(crashed)).idempotency_key  # the process "dies" here, before any outcome
    second = SqliteJournal(path, clock)
    entry = await second.find_by_key(key)
    assert entry is not None and entry.status == "sending"  # within the grace, it may still be in flight
    assert await second.recover() == 1
    entry = await second.find_by_key(key)
    assert entry is not None and entry.status == "unknown" and entry.error_code == "OUTCOME_UNKNOWN"
    assert await second.recover() == 0
    again = await begin(second)
    assert again.idempotency_key == key and again.reused_key
    crashed.close()
    second.close()


async def test_recover_on_open_settles_the_previous_process_sends(path: Path, clock: ManualClock) -> None:
    async with SqliteJournal(path, clock) as crashed:
        key = (await begin(crashed)).idempotency_key
    async with SqliteJournal(path, clock, recover_on_open=True) as restarted:
        entry = await restarted.find_by_key(key)
        assert entry is not None and entry.status == "unknown" and entry.error_code == "OUTCOME_UNKNOWN"


async def test_recover_on_open_never_waits_for_a_lock_and_runs_at_the_first_write(
    path: Path, clock: ManualClock, write_lock: sqlite3.Connection
) -> None:
    async with SqliteJournal(path, clock) as crashed:
        key = (await begin(crashed)).idempotency_key
    write_lock.execute("BEGIN IMMEDIATE")
    async with SqliteJournal(path, clock, recover_on_open=True) as restarted:
        entry = await restarted.find_by_key(key)  # opened and read although another process holds the lock
        assert entry is not None and entry.status == "sending"
        write_lock.execute("ROLLBACK")
        other = await begin(restarted, make_body("another post"))  # the first write settles it first
        entry = await restarted.find_by_key(key)
        assert entry is not None and entry.status == "unknown" and entry.error_code == "OUTCOME_UNKNOWN"
        assert (await restarted.find_by_key(other.idempotency_key)) is not None
        assert await restarted.recover() == 1  # only the new send is still "sending"


# -- concurrency ------------------------------------------------------------------------------------


async def test_tasks_share_one_journal(journal: SqliteJournal, path: Path) -> None:
    keys = {i.idempotency_key for i in await asyncio.gather(*(begin(journal) for _ in range(8)))}
    assert len(keys) == 1
    assert count_rows(path) == 1


def _begin_in_child(path: str, rounds: int, start: Any, out: Any, wait_before_open: bool = False) -> None:
    async def run() -> list[str]:
        async with SqliteJournal(Path(path)) as j:
            if not wait_before_open:
                start.wait()
            return [(await begin(j, make_body(f"p{n}"))).idempotency_key for n in range(rounds)]

    if wait_before_open:
        start.wait()
    out.put(asyncio.run(run()))


async def test_two_processes_get_one_key_and_one_row(path: Path) -> None:
    async with SqliteJournal(path):  # create the schema once; the children race on the intents
        pass
    ctx = multiprocessing.get_context("spawn")
    start = ctx.Barrier(3)
    out = ctx.Queue()
    rounds = 15
    children = [ctx.Process(target=_begin_in_child, args=(str(path), rounds, start, out)) for _ in range(3)]
    for child in children:
        child.start()
    for child in children:
        await anyio.to_thread.run_sync(child.join, 30)
        assert child.exitcode == 0
    results = [out.get(timeout=5) for _ in children]
    assert results[0] == results[1] == results[2]
    assert len(set(results[0])) == rounds
    assert count_rows(path) == rounds


async def test_two_processes_open_a_fresh_file(tmp_path: Path) -> None:
    # Both children find no schema and migrate at the same time: one wins, the other sees it done.
    path = tmp_path / "fresh" / "journal.sqlite3"
    ctx = multiprocessing.get_context("spawn")
    start = ctx.Barrier(2)
    out = ctx.Queue()
    children = [ctx.Process(target=_begin_in_child, args=(str(path), 3, start, out, True)) for _ in range(2)]
    for child in children:
        child.start()
    for child in children:
        await anyio.to_thread.run_sync(child.join, 30)
        assert child.exitcode == 0
    results = [out.get(timeout=5) for _ in children]
    assert results[0] == results[1]
    assert count_rows(path) == 3


async def test_version_1_file_is_migrated_keeping_its_entries(path: Path, clock: ManualClock) -> None:
    path.parent.mkdir(parents=True)
    with sqlite3.connect(path) as conn:
        conn.executescript(sqlite_schema.MIGRATIONS[0] + "PRAGMA user_version = 1;")
        conn.execute(
            "INSERT INTO publishes (digest, workspace_id, idempotency_key, api_version, body, targets, status, "
            "publish_id, created_at, updated_at) VALUES (?, ?, 'old-key', 'v2', '{}', '[]', 'accepted', 'pub-old', "
            "?, ?)",
            (DIGEST, WS, *[clock.now().isoformat()] * 2),
        )
        conn.execute("INSERT INTO uploads VALUES (?, 'ab', 1, 'content-old', ?)", (WS, clock.now().isoformat()))
    async with SqliteJournal(path, clock) as j:
        entry = await j.find_by_key("old-key")
        assert entry is not None and entry.publish_id == "pub-old" and entry.identity == ""
        assert (await begin(j)).replay
        assert await j.lookup_upload(WS, "ab", 1) == "content-old"


# -- a locked journal (issue 12.5, 12.7) ------------------------------------------------------------


@pytest.fixture
def patient(monkeypatch: pytest.MonkeyPatch) -> threading.Event:
    """A busy timeout long enough that only the test's own release ends the wait (never the clock), and an
    event set when a begin_publish reaches the file."""
    monkeypatch.setattr(backend, "BUSY_TIMEOUT_MS", 120_000)
    reached = threading.Event()
    real = backend._Store.begin_publish

    def spy(self: backend._Store, *args: Any) -> PublishIntent:
        reached.set()
        return real(self, *args)

    monkeypatch.setattr(backend._Store, "begin_publish", spy)
    return reached


async def test_a_locked_file_never_blocks_the_event_loop(
    patient: threading.Event, journal: SqliteJournal, write_lock: sqlite3.Connection
) -> None:
    await journal.open()
    await journal.remember_upload(WS, "ab", 1, "content-1")
    write_lock.execute("BEGIN IMMEDIATE")
    async with anyio.create_task_group() as tg:
        done: list[PublishIntent] = []

        async def publish() -> None:
            done.append(await begin(journal))

        tg.start_soon(publish)
        await anyio.to_thread.run_sync(patient.wait)
        for _ in range(20):  # the loop keeps running other tasks, and reads are answered, while the write waits
            await anyio.lowlevel.checkpoint()
        assert await journal.lookup_upload(WS, "ab", 1) == "content-1"
        assert await journal.list_entries() == [] and done == []
        write_lock.execute("ROLLBACK")
    [intent] = done
    assert intent.status == "sending" and count_rows(journal.path) == 1


async def _tool(client: Client, name: str, **args: Any) -> mt.CallToolResult:
    return await client.call_tool(name, args)


def _text(result: mt.CallToolResult) -> str:
    block = result.content[0]
    assert isinstance(block, mt.TextContent)
    return block.text


def _live(sb: Sandbox) -> list[Any]:
    return [e for e in sb.requests("publish") if e.idempotency_key is not None]


async def _planned(client: Client, sb: Sandbox, media_dir: Path, caption: str = "locked journal") -> dict[str, Any]:
    up = await _tool(client, "upload_media", path=str(media_dir / "video.mp4"))
    assert isinstance(up.structured_content, dict), up.content
    target = {"platform": "tiktok", "account_id": sb.tiktok_public_id, "intent": "draft", "caption": caption}
    args = {"content_ids": [up.structured_content["content"]["id"]], "targets": [target]}
    dry = await _tool(client, "publish_content", **args)
    assert not dry.is_error and dry.structured_content and dry.structured_content["valid"], dry.content
    return args


@pytest.fixture
async def mcp_client(settings: Settings, sandbox: Sandbox, clock: ManualClock) -> AsyncIterator[Client]:
    async with make_client(settings, sandbox, clock, mode="legacy") as client:  # ping is a legacy request
        yield client


@pytest.fixture
def state_journal(settings: Settings) -> Path:
    return Path(settings.state_dir) / "sandbox" / "journal.sqlite3"  # the embedded simulator's own folder


def lock_file(path: Path) -> sqlite3.Connection:
    """Another connection takes the file's write lock (as another process mid-write would)."""
    assert path.is_file()  # the server's own journal, opened by the dry run
    lock = sqlite3.connect(path, isolation_level=None)
    lock.execute("BEGIN IMMEDIATE")
    return lock


async def test_ping_and_reads_are_answered_while_a_publish_waits_for_the_lock(
    mcp_client: Client, sandbox: Sandbox, media_dir: Path, state_journal: Path, patient: threading.Event
) -> None:
    args = await _planned(mcp_client, sandbox, media_dir)
    lock = lock_file(state_journal)
    outcome: list[mt.CallToolResult] = []
    async with anyio.create_task_group() as tg:

        async def publish() -> None:
            outcome.append(await _tool(mcp_client, "publish_content", **args, dry_run=False))

        tg.start_soon(publish)
        await anyio.to_thread.run_sync(patient.wait)
        await mcp_client.send_ping()
        listing = await _tool(mcp_client, "list_publish_journal")
        assert not listing.is_error and listing.structured_content == {"entries": []}
        assert outcome == [] and not _live(sandbox)  # the publish is still waiting for the journal
        lock.execute("ROLLBACK")
        lock.close()
    [live] = outcome
    assert not live.is_error, live.content
    assert len(_live(sandbox)) == 1 and len(sandbox.publish_requests) == 1


async def test_repeat_of_an_accepted_publish_is_recognised_while_the_journal_is_locked(
    mcp_client: Client, sandbox: Sandbox, media_dir: Path, state_journal: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(backend, "BUSY_TIMEOUT_MS", 50)  # the lock outlasts it: every write fails
    args = await _planned(mcp_client, sandbox, media_dir)
    first = await _tool(mcp_client, "publish_content", **args, dry_run=False)
    assert not first.is_error and isinstance(first.structured_content, dict), first.content
    lock = lock_file(state_journal)
    try:
        again = await _tool(mcp_client, "publish_content", **args, dry_run=False)
    finally:
        lock.execute("ROLLBACK")
        lock.close()
    assert not again.is_error, again.content
    assert isinstance(again.structured_content, dict)
    assert again.structured_content["publish_id"] == first.structured_content["publish_id"]
    assert again.structured_content["replayed"] is True
    assert len(_live(sandbox)) == 1 and len(sandbox.publish_requests) == 1


async def test_locked_journal_advice_cannot_lead_to_a_second_post(
    mcp_client: Client, sandbox: Sandbox, media_dir: Path, state_journal: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(backend, "BUSY_TIMEOUT_MS", 50)
    args = await _planned(mcp_client, sandbox, media_dir)
    sandbox.inject("drop_after_commit", route="publish", times=3)  # the post exists, its answer is lost
    unknown = await _tool(mcp_client, "publish_content", **args, dry_run=False)
    assert unknown.is_error and "OUTCOME_UNKNOWN" in _text(unknown)
    lock = lock_file(state_journal)
    try:
        refused = await _tool(mcp_client, "publish_content", **args, dry_run=False)
    finally:
        lock.execute("ROLLBACK")
        lock.close()
    text = _text(refused)
    assert refused.is_error and "JOURNAL_UNAVAILABLE" in text and "not sent" in text
    assert "'unknown'" in text and "may already be posted" in text  # the earlier attempt is named
    assert "list_publish_requests" in text and "never point POSTQUED_STATE_DIR" in text
    assert "point it at a writable folder" not in text
    attempts = len(_live(sandbox))
    # following the advice: keep the journal, repeat the same call once it is free: still one post
    again = await _tool(mcp_client, "publish_content", **args, dry_run=False)
    assert not again.is_error, again.content
    assert len(_live(sandbox)) == attempts + 1 and len(sandbox.publish_requests) == 1

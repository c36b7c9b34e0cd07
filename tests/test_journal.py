"""The publish journal: intents before sends, one key per request for 24 h, outcomes, crash recovery."""

from __future__ import annotations

import multiprocessing
import os
import sqlite3
import stat
import threading
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from postqued.clock import ManualClock
from postqued.digest import plan_digest
from postqued.errors import JournalError, LocalError
from postqued.journal import SCHEMA_VERSION, Journal, PublishIntent

WS = "ws-1"


def make_body(caption: str = "hello") -> dict[str, Any]:
    return {
        "workspaceId": WS,
        "contentIds": ["c-1"],
        "targets": [
            {
                "platform": "tiktok",
                "accountId": "a-1",
                "intent": "publish",
                "caption": caption,
                "dispatchAt": None,
                "options": {"privacyLevel": "SELF_ONLY"},
            }
        ],
    }


BODY = make_body()
DIGEST = plan_digest(BODY)
TARGETS = [{"account_id": "a-1", "username": "@me"}]


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "state" / "journal.sqlite3"


@pytest.fixture
def journal(path: Path, clock: ManualClock) -> Iterator[Journal]:
    with Journal(path, clock) as j:
        yield j


def begin(journal: Journal, body: dict[str, Any] = BODY, key: str | None = None, workspace: str = WS) -> PublishIntent:
    return journal.begin_publish(plan_digest(body), workspace, body, TARGETS, key, "v2")


def count_rows(path: Path) -> int:
    with sqlite3.connect(path) as conn:
        return int(conn.execute("SELECT count(*) FROM publishes").fetchone()[0])


# -- opening the file --------------------------------------------------------------------------------


def test_open_creates_private_files_in_wal_mode(journal: Journal, path: Path) -> None:
    assert journal.path == path
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    begin(journal)
    wal = path.with_name(path.name + "-wal")
    assert wal.exists()
    assert stat.S_IMODE(wal.stat().st_mode) == 0o600
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    assert journal._connection().execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL


def test_existing_loose_permissions_are_tightened(tmp_path: Path) -> None:
    path = tmp_path / "j.sqlite3"
    path.touch()
    path.chmod(0o644)
    Journal(path).close()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_reopen_keeps_data_and_close_is_idempotent(path: Path, clock: ManualClock) -> None:
    with Journal(path, clock) as first:
        key = begin(first).idempotency_key
    first.close()
    with Journal(path, clock) as second:
        entry = second.find_by_key(key)
        assert entry is not None and entry.digest == DIGEST


def test_closed_journal_raises_journal_error(path: Path) -> None:
    j = Journal(path)
    j.close()
    with pytest.raises(JournalError):
        j.list_entries()


def test_parent_is_a_regular_file(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(JournalError) as info:
        Journal(blocker / "state" / "journal.sqlite3")
    assert info.value.code == "JOURNAL_UNAVAILABLE"
    assert str(blocker) in info.value.message


def test_path_is_a_directory(tmp_path: Path) -> None:
    with pytest.raises(JournalError):
        Journal(tmp_path)


def test_not_a_database(tmp_path: Path) -> None:
    path = tmp_path / "junk.sqlite3"
    path.write_bytes(b"this is not sqlite at all" * 100)
    with pytest.raises(JournalError, match="not a database"):
        Journal(path)


def test_schema_from_the_future_is_refused(path: Path) -> None:
    Journal(path).close()
    with sqlite3.connect(path) as conn:
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    with pytest.raises(JournalError, match="newer"):
        Journal(path)


def test_unversioned_file_is_migrated(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite3"
    sqlite3.connect(path).close()
    with Journal(path) as j:
        assert j.list_entries() == []
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION


def test_unwritable_journal_blocks_begin_publish(journal: Journal) -> None:
    # Running as root, chmod cannot make a file read-only; a query-only connection refuses writes for real.
    journal._connection().execute("PRAGMA query_only = ON")
    with pytest.raises(JournalError, match="begin_publish") as info:
        begin(journal)
    assert "readonly" in info.value.message
    for call in (
        lambda: journal.record_plan(DIGEST, WS, {}),
        lambda: journal.remember_upload(WS, "ab", 1, "c"),
        lambda: journal.recover(),
    ):
        with pytest.raises(JournalError):
            call()
    assert journal.list_entries() == []  # reads still work; nothing half-written


# -- plans -----------------------------------------------------------------------------------------


def test_plan_freshness(journal: Journal, clock: ManualClock) -> None:
    assert not journal.plan_is_fresh(DIGEST)
    journal.record_plan(DIGEST, WS, {"targets": 1})
    assert journal.plan_is_fresh(DIGEST)
    assert journal.plan_is_fresh(DIGEST, workspace_id=WS)
    assert not journal.plan_is_fresh(DIGEST, workspace_id="other")
    assert not journal.plan_is_fresh(plan_digest(make_body("other")))
    clock.advance(29 * 60 + 59)
    assert journal.plan_is_fresh(DIGEST)
    clock.advance(2)
    assert not journal.plan_is_fresh(DIGEST)
    assert journal.plan_is_fresh(DIGEST, within=timedelta(hours=1))
    journal.record_plan(DIGEST, WS, {"targets": 1})  # a new dry run refreshes it
    assert journal.plan_is_fresh(DIGEST)


# -- begin_publish ---------------------------------------------------------------------------------


def test_new_intent_is_committed_before_return(journal: Journal, path: Path, clock: ManualClock) -> None:
    intent = begin(journal)
    assert (intent.status, intent.attempts, intent.replay, intent.reused_key, intent.key_overridden) == (
        "sending",
        1,
        False,
        False,
        False,
    )
    assert uuid.UUID(intent.idempotency_key)
    assert intent.body == BODY and intent.targets == TARGETS and intent.publish_id is None
    assert intent.created_at == intent.updated_at == clock.now()
    # another connection (as after a crash) sees the row already
    with sqlite3.connect(path) as conn:
        row = conn.execute("SELECT idempotency_key, status FROM publishes").fetchone()
    assert row == (intent.idempotency_key, "sending")


def test_caller_key_is_used(journal: Journal) -> None:
    assert begin(journal, key="my-key-1").idempotency_key == "my-key-1"


@pytest.mark.parametrize("bad", ["", "has space", "x" * 256, "new\nline", "é"])
def test_malformed_caller_key(journal: Journal, bad: str) -> None:
    with pytest.raises(LocalError):
        begin(journal, key=bad)
    assert journal.list_entries() == []


def test_body_key_order_is_preserved(journal: Journal) -> None:
    body = {"targets": [], "contentIds": ["x"], "workspaceId": WS}
    assert list(begin(journal, body).body) == ["targets", "contentIds", "workspaceId"]


def test_same_digest_reuses_key_after_unknown(journal: Journal, clock: ManualClock) -> None:
    first = begin(journal)
    journal.record_unknown(first.idempotency_key, "read timeout")
    clock.advance(60)
    second = begin(journal)
    assert second.idempotency_key == first.idempotency_key
    assert (second.reused_key, second.replay, second.status, second.attempts) == (True, False, "sending", 2)
    assert second.error_code == "OUTCOME_UNKNOWN"  # why the last attempt did not settle it
    assert second.created_at == first.created_at and second.updated_at == clock.now()


def test_same_digest_reuses_key_after_failure(journal: Journal) -> None:
    first = begin(journal)
    failed = journal.record_failed(first.idempotency_key, "INVALID_REQUEST", "caption too long")
    assert (failed.status, failed.error_code, failed.error_message) == ("failed", "INVALID_REQUEST", "caption too long")
    again = begin(journal)
    assert again.idempotency_key == first.idempotency_key and again.reused_key and again.attempts == 2
    assert journal.list_entries()[0].status == "sending"


def test_same_digest_while_still_sending_reuses_key(journal: Journal) -> None:
    first = begin(journal)
    assert begin(journal).idempotency_key == first.idempotency_key


def test_replay_after_success(journal: Journal, path: Path) -> None:
    first = begin(journal)
    journal.record_accepted(first.idempotency_key, "pub-1", "pending", [{"id": "t-1", "status": "queued"}])
    again = begin(journal)
    assert again.replay and not again.reused_key
    assert again.publish_id == "pub-1" and again.status == "accepted" and again.remote_status == "pending"
    assert again.targets == [{"id": "t-1", "status": "queued"}]
    assert again.attempts == 1  # nothing new was sent
    assert count_rows(path) == 1


def test_replay_ignores_an_explicit_key(journal: Journal) -> None:
    first = begin(journal)
    journal.record_accepted(DIGEST, "pub-1", "completed", [])
    again = begin(journal, key="another-key")
    assert again.replay and again.key_overridden and again.idempotency_key == first.idempotency_key


def test_explicit_key_never_changes_for_a_digest(journal: Journal) -> None:
    begin(journal, key="key-a")
    again = begin(journal, key="key-b")
    assert again.idempotency_key == "key-a" and again.key_overridden and again.reused_key
    assert journal.find_by_key("key-b") is None
    same = begin(journal, key="key-a")
    assert not same.key_overridden


def test_key_reused_for_a_different_digest_is_refused(journal: Journal, path: Path) -> None:
    begin(journal, key="key-a")
    with pytest.raises(LocalError) as info:
        begin(journal, make_body("different"), key="key-a")
    assert info.value.code == "IDEMPOTENCY_KEY_REUSED"
    assert "omit idempotency_key" in info.value.next_step.lower()
    assert count_rows(path) == 1


def test_key_reused_for_another_workspace_is_refused(journal: Journal) -> None:
    begin(journal, key="key-a")
    with pytest.raises(LocalError, match="IDEMPOTENCY_KEY_REUSED"):
        begin(journal, key="key-a", workspace="ws-2")


def test_workspaces_are_separate(journal: Journal) -> None:
    assert begin(journal).idempotency_key != begin(journal, workspace="ws-2").idempotency_key


def test_new_key_after_24_hours(journal: Journal, clock: ManualClock, path: Path) -> None:
    first = begin(journal)
    journal.record_unknown(first.idempotency_key, "timeout")
    clock.advance(24 * 3600 - 1)
    assert begin(journal).idempotency_key == first.idempotency_key
    clock.advance(1)
    fresh = begin(journal)
    assert fresh.idempotency_key != first.idempotency_key
    assert (fresh.reused_key, fresh.attempts, fresh.status) == (False, 1, "sending")
    assert count_rows(path) == 2


def test_success_is_replayed_only_within_24_hours(journal: Journal, clock: ManualClock) -> None:
    first = begin(journal)
    journal.record_accepted(first.idempotency_key, "pub-1", "completed", [])
    clock.advance(24 * 3600 - 1)
    assert begin(journal).replay
    clock.advance(1)
    later = begin(journal)
    assert not later.replay and later.idempotency_key != first.idempotency_key


def test_expired_explicit_key_for_the_same_request_gets_a_new_one(journal: Journal, clock: ManualClock) -> None:
    begin(journal, key="key-a")
    clock.advance(25 * 3600)
    later = begin(journal, key="key-a")
    assert later.idempotency_key != "key-a" and later.key_overridden


# -- outcomes ---------------------------------------------------------------------------------------


def test_record_accepted_by_digest_or_key(journal: Journal) -> None:
    first = begin(journal)
    entry = journal.record_accepted(DIGEST, "pub-1", "pending", [{"id": "t"}])
    assert (entry.status, entry.publish_id, entry.remote_status, entry.terminal) == (
        "accepted",
        "pub-1",
        "pending",
        False,
    )
    other = begin(journal, make_body("two"))
    entry = journal.record_accepted(other.idempotency_key, "pub-2", "completed", [])
    assert entry.terminal and entry.digest == other.digest
    assert journal.find_by_key(first.idempotency_key) == journal.find_by_publish_id("pub-1")


def test_accepted_clears_the_last_error(journal: Journal) -> None:
    key = begin(journal).idempotency_key
    journal.record_unknown(key, "timeout")
    begin(journal)
    entry = journal.record_accepted(key, "pub-1", "pending", [])
    assert entry.error_code is None and entry.error_message is None


def test_outcome_for_unknown_request(journal: Journal) -> None:
    with pytest.raises(JournalError) as info:
        journal.record_accepted("nope", "pub", "pending", [])
    assert info.value.code == "JOURNAL_ENTRY_NOT_FOUND"
    with pytest.raises(JournalError):
        journal.record_failed("nope", "X", "y")
    with pytest.raises(JournalError):
        journal.record_unknown("nope", "y")
    with pytest.raises(ValueError):
        journal.record_accepted(begin(journal).idempotency_key, "", "pending", [])


def test_late_failure_or_timeout_never_downgrades_a_success(journal: Journal) -> None:
    key = begin(journal).idempotency_key
    journal.record_accepted(key, "pub-1", "pending", [])
    assert journal.record_unknown(key, "timeout").status == "accepted"
    assert journal.record_failed(key, "SERVER_ERROR", "boom").status == "accepted"


def test_error_messages_are_redacted(journal: Journal) -> None:
    key = begin(journal).idempotency_key
    entry = journal.record_failed(
        key, "UNAUTHORIZED", "bad key pq_live_abcdef123456 at https://s3.example/x?X-Amz-Signature=zz"
    )
    assert entry.error_message is not None
    assert "pq_live_abcdef" not in entry.error_message and "zz" not in entry.error_message
    long = journal.record_failed(key, "X", "x" * 10_000)
    assert long.error_message is not None and len(long.error_message) <= 500


def test_record_status(journal: Journal) -> None:
    key = begin(journal).idempotency_key
    journal.record_accepted(key, "pub-1", "pending", [])
    entry = journal.record_status("pub-1", "partial_failed", [{"id": "t", "status": "failed"}], terminal=True)
    assert entry is not None
    assert (entry.status, entry.remote_status, entry.terminal, entry.targets) == (
        "accepted",
        "partial_failed",
        True,
        [{"id": "t", "status": "failed"}],
    )
    assert journal.record_status("not-mine", "completed", [], terminal=True) is None


def test_record_status_resolves_unknown(journal: Journal, path: Path) -> None:
    key = begin(journal).idempotency_key
    journal.record_accepted(key, "pub-1", "pending", [])
    with sqlite3.connect(path) as conn:  # e.g. an older build marked it unknown
        conn.execute("UPDATE publishes SET status = 'unknown'")
    entry = journal.record_status("pub-1", "processing", [], terminal=False)
    assert entry is not None and entry.status == "accepted" and not entry.terminal


# -- crash recovery --------------------------------------------------------------------------------


def test_stale_sending_reads_as_unknown(journal: Journal, clock: ManualClock) -> None:
    key = begin(journal).idempotency_key
    assert journal.list_entries(status="sending")[0].idempotency_key == key
    clock.advance(121)
    entry = journal.find_by_key(key)
    assert entry is not None and entry.status == "unknown"
    assert journal.list_entries(status="sending") == []
    assert [e.idempotency_key for e in journal.list_entries(status="unknown")] == [key]
    again = begin(journal)  # a retry reuses the key and is "sending" again
    assert again.idempotency_key == key and again.status == "sending"


def test_recover_after_crash(path: Path, clock: ManualClock) -> None:
    crashed = Journal(path, clock)
    key = begin(crashed).idempotency_key  # the process "dies" here, before any outcome
    second = Journal(path, clock)
    entry = second.find_by_key(key)
    assert entry is not None and entry.status == "sending"  # within the grace, it may still be in flight
    assert second.recover() == 1
    entry = second.find_by_key(key)
    assert entry is not None and entry.status == "unknown" and entry.error_code == "OUTCOME_UNKNOWN"
    assert second.recover() == 0
    again = second.begin_publish(DIGEST, WS, BODY, TARGETS, None, "v2")
    assert again.idempotency_key == key and again.reused_key
    crashed.close()
    second.close()


# -- reads -----------------------------------------------------------------------------------------


def test_list_entries(journal: Journal, clock: ManualClock) -> None:
    keys = []
    for n in range(5):
        keys.append(begin(journal, make_body(f"post {n}")).idempotency_key)
        clock.advance(1)
    journal.record_accepted(keys[0], "pub-0", "completed", [])
    journal.record_failed(keys[1], "INVALID_REQUEST", "no")
    journal.record_unknown(keys[2], "timeout")
    journal.record_accepted(keys[3], "pub-3", "failed", [])
    entries = journal.list_entries()
    assert [e.idempotency_key for e in entries] == keys[::-1]
    assert [e.idempotency_key for e in journal.list_entries(limit=2)] == [keys[4], keys[3]]
    assert len(journal.list_entries(limit=0)) == 1
    assert [e.idempotency_key for e in journal.list_entries(status="accepted")] == [keys[3], keys[0]]
    # "failed": refused locally, or accepted and then failed at PostQued
    assert [e.idempotency_key for e in journal.list_entries(status="failed")] == [keys[3], keys[1]]
    assert [e.idempotency_key for e in journal.list_entries(status="unknown")] == [keys[2]]
    assert [e.idempotency_key for e in journal.list_entries(status="completed")] == [keys[0]]
    assert [e.idempotency_key for e in journal.list_entries(status="sending")] == [keys[4]]
    journal.record_status("pub-0", "unknown", [], terminal=False)  # a remote status never reads as local
    assert [e.idempotency_key for e in journal.list_entries(status="unknown")] == [keys[2]]


def test_entry_to_dict_is_json_ready(journal: Journal) -> None:
    import json

    key = begin(journal).idempotency_key
    entry = journal.find_by_key(key)
    assert entry is not None
    data = entry.to_dict()
    assert json.loads(json.dumps(data)) == data
    assert data["body"] == BODY and data["created_at"].endswith("+00:00")
    assert journal.find_by_key("missing") is None and journal.find_by_publish_id("missing") is None


# -- uploads ---------------------------------------------------------------------------------------


def test_upload_dedup(journal: Journal) -> None:
    sha = "AB" * 32
    assert journal.lookup_upload(WS, sha, 10) is None
    journal.remember_upload(WS, sha, 10, "content-1")
    assert journal.lookup_upload(WS, sha.lower(), 10) == "content-1"
    assert journal.lookup_upload(WS, sha, 11) is None
    assert journal.lookup_upload("ws-2", sha, 10) is None
    journal.remember_upload(WS, sha, 10, "content-2")  # uploaded again (force): the newest wins
    assert journal.lookup_upload(WS, sha, 10) == "content-2"
    journal.remember_upload("ws-2", sha, 10, "content-2")
    assert journal.forget_upload("content-2") == 2
    assert journal.lookup_upload(WS, sha, 10) is None
    assert journal.forget_upload("content-2") == 0


# -- concurrency -----------------------------------------------------------------------------------


def test_threads_share_one_journal(journal: Journal, path: Path) -> None:
    start = threading.Barrier(8)

    def go(_: int) -> str:
        start.wait()
        return begin(journal).idempotency_key

    with ThreadPoolExecutor(8) as pool:
        keys = set(pool.map(go, range(8)))
    assert len(keys) == 1
    assert count_rows(path) == 1


def _begin_in_child(path: str, rounds: int, start: Any, out: Any, wait_before_open: bool = False) -> None:
    if wait_before_open:
        start.wait()
    with Journal(Path(path)) as j:
        if not wait_before_open:
            start.wait()
        out.put(
            [
                j.begin_publish(plan_digest(make_body(f"p{n}")), WS, make_body(f"p{n}"), [], None, "v2").idempotency_key
                for n in range(rounds)
            ]
        )


def test_two_processes_get_one_key_and_one_row(path: Path) -> None:
    Journal(path).close()  # create the schema once; the children race on the intents
    ctx = multiprocessing.get_context("spawn")
    start = ctx.Barrier(3)
    out = ctx.Queue()
    rounds = 15
    children = [ctx.Process(target=_begin_in_child, args=(str(path), rounds, start, out)) for _ in range(3)]
    for child in children:
        child.start()
    for child in children:
        child.join(timeout=30)
        assert child.exitcode == 0
    results = [out.get(timeout=5) for _ in children]
    assert results[0] == results[1] == results[2]
    assert len(set(results[0])) == rounds
    assert count_rows(path) == rounds


def test_two_processes_open_a_fresh_file(tmp_path: Path) -> None:
    # Both children find no schema and migrate at the same time: one wins, the other sees it done.
    path = tmp_path / "fresh" / "journal.sqlite3"
    ctx = multiprocessing.get_context("spawn")
    start = ctx.Barrier(2)
    out = ctx.Queue()
    children = [ctx.Process(target=_begin_in_child, args=(str(path), 3, start, out, True)) for _ in range(2)]
    for child in children:
        child.start()
    for child in children:
        child.join(timeout=30)
        assert child.exitcode == 0
    results = [out.get(timeout=5) for _ in children]
    assert results[0] == results[1]
    assert os.path.exists(path)

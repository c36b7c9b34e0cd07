"""The journal's contract, run against every backend: intents before sends, one key per request for 24 h,
outcomes, identities kept apart, upload de-duplication. Backend-specific behaviour (files, locks, schema
migrations, processes) has its own modules."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest

from postqued.clock import ManualClock
from postqued.digest import plan_digest
from postqued.errors import JournalError, LocalError
from postqued.journal import Journal, PublishIntent
from tests.journalkit import BACKENDS, JournalFactory, journal_factory

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


@pytest.fixture(params=BACKENDS)
async def reopen(request: pytest.FixtureRequest, clock: ManualClock, tmp_path: Any) -> AsyncIterator[JournalFactory]:
    """Opens journal objects on one fresh store of the backend (each a separate connection, like a restart)."""
    async with journal_factory(str(request.param), clock, tmp_path) as factory:
        yield factory


@pytest.fixture
async def journal(reopen: JournalFactory) -> Journal:
    return await reopen()


async def begin(
    journal: Journal, body: dict[str, Any] = BODY, key: str | None = None, workspace: str = WS
) -> PublishIntent:
    return await journal.begin_publish(plan_digest(body), workspace, body, TARGETS, key, "v2")


async def count(journal: Journal) -> int:
    return len(await journal.list_entries(limit=500))


# -- plans -----------------------------------------------------------------------------------------


async def test_plan_freshness(journal: Journal, clock: ManualClock) -> None:
    assert not await journal.plan_is_fresh(DIGEST)
    await journal.record_plan(DIGEST, WS, {"targets": 1})
    assert await journal.plan_is_fresh(DIGEST)
    assert await journal.plan_is_fresh(DIGEST, workspace_id=WS)
    assert not await journal.plan_is_fresh(DIGEST, workspace_id="other")
    assert not await journal.plan_is_fresh(plan_digest(make_body("other")))
    clock.advance(29 * 60 + 59)
    assert await journal.plan_is_fresh(DIGEST)
    clock.advance(2)
    assert not await journal.plan_is_fresh(DIGEST)
    assert await journal.plan_is_fresh(DIGEST, within=timedelta(hours=1))
    await journal.record_plan(DIGEST, WS, {"targets": 1})  # a new dry run refreshes it
    assert await journal.plan_is_fresh(DIGEST)


# -- begin_publish ---------------------------------------------------------------------------------


async def test_new_intent_is_committed_before_return(
    journal: Journal, reopen: JournalFactory, clock: ManualClock
) -> None:
    intent = await begin(journal)
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
    seen = await (await reopen()).find_by_key(intent.idempotency_key)
    assert seen is not None and seen.status == "sending" and seen.body == BODY


async def test_caller_key_is_used(journal: Journal) -> None:
    assert (await begin(journal, key="my-key-1")).idempotency_key == "my-key-1"


@pytest.mark.parametrize("bad", ["", "has space", "x" * 256, "new\nline", "é"])
async def test_malformed_caller_key(journal: Journal, bad: str) -> None:
    with pytest.raises(LocalError):
        await begin(journal, key=bad)
    assert await journal.list_entries() == []


async def test_body_key_order_is_preserved(journal: Journal) -> None:
    body = {"targets": [], "contentIds": ["x"], "workspaceId": WS}
    assert list((await begin(journal, body)).body) == ["targets", "contentIds", "workspaceId"]


async def test_same_digest_reuses_key_after_unknown(journal: Journal, clock: ManualClock) -> None:
    first = await begin(journal)
    await journal.record_unknown(first.idempotency_key, "read timeout")
    clock.advance(60)
    second = await begin(journal)
    assert second.idempotency_key == first.idempotency_key
    assert (second.reused_key, second.replay, second.status, second.attempts) == (True, False, "sending", 2)
    assert second.error_code == "OUTCOME_UNKNOWN"  # why the last attempt did not settle it
    assert second.created_at == first.created_at and second.updated_at == clock.now()


async def test_same_digest_reuses_key_after_failure(journal: Journal) -> None:
    first = await begin(journal)
    failed = await journal.record_failed(first.idempotency_key, "INVALID_REQUEST", "caption too long")
    assert (failed.status, failed.error_code, failed.error_message) == ("failed", "INVALID_REQUEST", "caption too long")
    again = await begin(journal)
    assert again.idempotency_key == first.idempotency_key and again.reused_key and again.attempts == 2
    assert (await journal.list_entries())[0].status == "sending"


async def test_same_digest_while_still_sending_reuses_key(journal: Journal) -> None:
    first = await begin(journal)
    assert (await begin(journal)).idempotency_key == first.idempotency_key


async def test_replay_after_success(journal: Journal) -> None:
    first = await begin(journal)
    await journal.record_accepted(first.idempotency_key, "pub-1", "pending", [{"id": "t-1", "status": "queued"}])
    again = await begin(journal)
    assert again.replay and not again.reused_key
    assert again.publish_id == "pub-1" and again.status == "accepted" and again.remote_status == "pending"
    assert again.targets == [{"id": "t-1", "status": "queued"}]
    assert again.attempts == 1  # nothing new was sent
    assert await count(journal) == 1


async def test_replay_ignores_an_explicit_key(journal: Journal) -> None:
    first = await begin(journal)
    await journal.record_accepted(DIGEST, "pub-1", "completed", [])
    again = await begin(journal, key="another-key")
    assert again.replay and again.key_overridden and again.idempotency_key == first.idempotency_key


async def test_explicit_key_never_changes_for_a_digest(journal: Journal) -> None:
    await begin(journal, key="key-a")
    again = await begin(journal, key="key-b")
    assert again.idempotency_key == "key-a" and again.key_overridden and again.reused_key
    assert await journal.find_by_key("key-b") is None
    same = await begin(journal, key="key-a")
    assert not same.key_overridden


async def test_key_reused_for_a_different_digest_is_refused(journal: Journal) -> None:
    await begin(journal, key="key-a")
    with pytest.raises(LocalError) as info:
        await begin(journal, make_body("different"), key="key-a")
    assert info.value.code == "IDEMPOTENCY_KEY_REUSED"
    assert "omit idempotency_key" in info.value.next_step.lower()
    assert await count(journal) == 1


async def test_key_reused_for_another_workspace_is_refused(journal: Journal) -> None:
    await begin(journal, key="key-a")
    with pytest.raises(LocalError, match="IDEMPOTENCY_KEY_REUSED"):
        await begin(journal, key="key-a", workspace="ws-2")


async def test_workspaces_are_separate(journal: Journal) -> None:
    assert (await begin(journal)).idempotency_key != (await begin(journal, workspace="ws-2")).idempotency_key


async def test_new_key_after_24_hours(journal: Journal, clock: ManualClock) -> None:
    first = await begin(journal)
    await journal.record_unknown(first.idempotency_key, "timeout")
    clock.advance(24 * 3600 - 1)
    assert (await begin(journal)).idempotency_key == first.idempotency_key
    clock.advance(1)
    fresh = await begin(journal)
    assert fresh.idempotency_key != first.idempotency_key
    assert (fresh.reused_key, fresh.attempts, fresh.status) == (False, 1, "sending")
    assert await count(journal) == 2


async def test_success_is_replayed_only_within_24_hours(journal: Journal, clock: ManualClock) -> None:
    first = await begin(journal)
    await journal.record_accepted(first.idempotency_key, "pub-1", "completed", [])
    clock.advance(24 * 3600 - 1)
    assert (await begin(journal)).replay
    clock.advance(1)
    later = await begin(journal)
    assert not later.replay and later.idempotency_key != first.idempotency_key


async def test_expired_explicit_key_for_the_same_request_gets_a_new_one(journal: Journal, clock: ManualClock) -> None:
    await begin(journal, key="key-a")
    clock.advance(25 * 3600)
    later = await begin(journal, key="key-a")
    assert later.idempotency_key != "key-a" and later.key_overridden


# -- outcomes ---------------------------------------------------------------------------------------


async def test_record_accepted_by_digest_or_key(journal: Journal) -> None:
    first = await begin(journal)
    entry = await journal.record_accepted(DIGEST, "pub-1", "pending", [{"id": "t"}])
    assert (entry.status, entry.publish_id, entry.remote_status, entry.terminal) == (
        "accepted",
        "pub-1",
        "pending",
        False,
    )
    other = await begin(journal, make_body("two"))
    entry = await journal.record_accepted(other.idempotency_key, "pub-2", "completed", [])
    assert entry.terminal and entry.digest == other.digest
    assert await journal.find_by_key(first.idempotency_key) == await journal.find_by_publish_id("pub-1")


async def test_accepted_clears_the_last_error(journal: Journal) -> None:
    key = (await begin(journal)).idempotency_key
    await journal.record_unknown(key, "timeout")
    await begin(journal)
    entry = await journal.record_accepted(key, "pub-1", "pending", [])
    assert entry.error_code is None and entry.error_message is None


async def test_outcome_for_unknown_request(journal: Journal) -> None:
    with pytest.raises(JournalError) as info:
        await journal.record_accepted("nope", "pub", "pending", [])
    assert info.value.code == "JOURNAL_ENTRY_NOT_FOUND"
    with pytest.raises(JournalError):
        await journal.record_failed("nope", "X", "y")
    with pytest.raises(JournalError):
        await journal.record_unknown("nope", "y")
    with pytest.raises(ValueError):
        await journal.record_accepted((await begin(journal)).idempotency_key, "", "pending", [])


async def test_late_failure_or_timeout_never_downgrades_a_success(journal: Journal) -> None:
    key = (await begin(journal)).idempotency_key
    await journal.record_accepted(key, "pub-1", "pending", [])
    assert (await journal.record_unknown(key, "timeout")).status == "accepted"
    assert (await journal.record_failed(key, "SERVER_ERROR", "boom")).status == "accepted"


async def test_error_messages_are_redacted(journal: Journal) -> None:
    key = (await begin(journal)).idempotency_key
    entry = await journal.record_failed(
        key, "UNAUTHORIZED", "bad key pq_live_abcdef123456 at https://s3.example/x?X-Amz-Signature=zz"
    )
    assert entry.error_message is not None
    assert "pq_live_abcdef" not in entry.error_message and "zz" not in entry.error_message
    long = await journal.record_failed(key, "X", "x" * 10_000)
    assert long.error_message is not None and len(long.error_message) <= 500


async def test_record_status(journal: Journal) -> None:
    key = (await begin(journal)).idempotency_key
    await journal.record_accepted(key, "pub-1", "pending", [])
    entry = await journal.record_status("pub-1", "partial_failed", [{"id": "t", "status": "failed"}], terminal=True)
    assert entry is not None
    assert (entry.status, entry.remote_status, entry.terminal, entry.targets) == (
        "accepted",
        "partial_failed",
        True,
        [{"id": "t", "status": "failed"}],
    )
    assert await journal.record_status("not-mine", "completed", [], terminal=True) is None


# -- crash recovery --------------------------------------------------------------------------------


async def test_stale_sending_reads_as_unknown(journal: Journal, clock: ManualClock) -> None:
    key = (await begin(journal)).idempotency_key
    assert (await journal.list_entries(status="sending"))[0].idempotency_key == key
    clock.advance(121)
    entry = await journal.find_by_key(key)
    assert entry is not None and entry.status == "unknown"
    assert await journal.list_entries(status="sending") == []
    assert [e.idempotency_key for e in await journal.list_entries(status="unknown")] == [key]
    again = await begin(journal)  # a retry reuses the key and is "sending" again
    assert again.idempotency_key == key and again.status == "sending"


# -- reads -----------------------------------------------------------------------------------------


async def test_list_entries(journal: Journal, clock: ManualClock) -> None:
    keys = []
    for n in range(5):
        keys.append((await begin(journal, make_body(f"post {n}"))).idempotency_key)
        clock.advance(1)
    await journal.record_accepted(keys[0], "pub-0", "completed", [])
    await journal.record_failed(keys[1], "INVALID_REQUEST", "no")
    await journal.record_unknown(keys[2], "timeout")
    await journal.record_accepted(keys[3], "pub-3", "failed", [])
    entries = await journal.list_entries()
    assert [e.idempotency_key for e in entries] == keys[::-1]
    assert [e.idempotency_key for e in await journal.list_entries(limit=2)] == [keys[4], keys[3]]
    assert len(await journal.list_entries(limit=0)) == 1
    assert [e.idempotency_key for e in await journal.list_entries(status="accepted")] == [keys[3], keys[0]]
    # "failed": refused locally, or accepted and then failed at PostQued
    assert [e.idempotency_key for e in await journal.list_entries(status="failed")] == [keys[3], keys[1]]
    assert [e.idempotency_key for e in await journal.list_entries(status="unknown")] == [keys[2]]
    assert [e.idempotency_key for e in await journal.list_entries(status="completed")] == [keys[0]]
    assert [e.idempotency_key for e in await journal.list_entries(status="sending")] == [keys[4]]
    await journal.record_status("pub-0", "unknown", [], terminal=False)  # a remote status never reads as local
    assert [e.idempotency_key for e in await journal.list_entries(status="unknown")] == [keys[2]]


async def test_entry_to_dict_is_json_ready(journal: Journal) -> None:
    key = (await begin(journal)).idempotency_key
    entry = await journal.find_by_key(key)
    assert entry is not None
    data = entry.to_dict()
    assert json.loads(json.dumps(data)) == data
    assert data["body"] == BODY and data["created_at"].endswith("+00:00")
    assert await journal.find_by_key("missing") is None and await journal.find_by_publish_id("missing") is None


# -- uploads ---------------------------------------------------------------------------------------


async def test_identities_never_see_each_other(journal: Journal) -> None:
    alice, bob = journal.for_identity("alice"), journal.for_identity("bob")
    assert (alice.identity, bob.identity, journal.identity) == ("alice", "bob", "")
    first = await begin(alice, key="alice-key")
    await alice.record_accepted(first.idempotency_key, "pub-a", "pending", [])
    await alice.record_plan(DIGEST, WS, {})
    await alice.remember_upload(WS, "ab" * 32, 10, "content-a")
    for other in (bob, journal):
        assert await other.list_entries() == []
        assert await other.find_by_key("alice-key") is None
        assert await other.find_by_publish_id("pub-a") is None
        assert await other.find_recent(DIGEST, WS) is None
        assert not await other.plan_is_fresh(DIGEST)
        assert await other.lookup_upload(WS, "ab" * 32, 10) is None
        assert not await other.has_upload_of_size(WS, 10)
        assert await other.forget_upload("content-a") == 0
        assert await other.record_status("pub-a", "completed", [], terminal=True) is None
        with pytest.raises(JournalError, match="no entry"):
            await other.record_accepted("alice-key", "pub-x", "pending", [])
    # the same request from bob is bob's own (new key); alice's key is refused without naming her request
    assert (await begin(bob)).idempotency_key != "alice-key"
    with pytest.raises(LocalError) as info:
        await begin(bob, make_body("bob's other post"), key="alice-key")
    assert info.value.code == "IDEMPOTENCY_KEY_REUSED" and first.digest not in info.value.message
    [entry] = await alice.list_entries()
    assert (entry.identity, entry.publish_id, entry.to_dict()["identity"]) == ("alice", "pub-a", "alice")
    assert await alice.lookup_upload(WS, "ab" * 32, 10) == "content-a"


async def test_upload_dedup(journal: Journal) -> None:
    sha = "AB" * 32
    assert await journal.lookup_upload(WS, sha, 10) is None
    await journal.remember_upload(WS, sha, 10, "content-1")
    assert await journal.lookup_upload(WS, sha.lower(), 10) == "content-1"
    assert await journal.lookup_upload(WS, sha, 11) is None
    assert await journal.lookup_upload("ws-2", sha, 10) is None
    await journal.remember_upload(WS, sha, 10, "content-2")  # uploaded again (force): the newest wins
    assert await journal.lookup_upload(WS, sha, 10) == "content-2"
    await journal.remember_upload("ws-2", sha, 10, "content-2")
    assert await journal.forget_upload("content-2") == 2
    assert await journal.lookup_upload(WS, sha, 10) is None
    assert await journal.forget_upload("content-2") == 0

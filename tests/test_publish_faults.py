"""Live publishing under injected faults, through the real MCP tools against the sandbox.

Every test proves that its fault really happened (the sandbox ledger records the fault on the request it
hit) and checks what PostQued saw: how many live attempts, with which ``Idempotency-Key`` and body, and
how many publish requests exist in the end. A live attempt is a ``publish`` ledger entry that carries an
``Idempotency-Key`` (a dry run carries none).
"""

from __future__ import annotations

import json
import re
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

import mcp.types as mt
import pytest
from mcp import Client

from postqued.clock import ManualClock
from postqued.sandbox import LedgerEntry, Sandbox
from postqued.settings import Settings
from tests.conftest import make_client
from tests.mcpkit import call, call_error

CAPTION = "Fault drill #sandbox"


def live_attempts(sb: Sandbox) -> list[LedgerEntry]:
    return [e for e in sb.requests("publish") if e.idempotency_key is not None]


def draft(account_id: str, **extra: Any) -> dict[str, Any]:
    target = {
        "platform": "tiktok",
        "account_id": account_id,
        "intent": "draft",
        "caption": CAPTION,
        "options": {"privacy_level": "SELF_ONLY"},
    }
    return {**target, **extra}


async def planned(client: Client, sb: Sandbox, media_dir: Path, **target: Any) -> dict[str, Any]:
    """Upload the video, dry-run a draft to the public TikTok account; the arguments of the live call."""
    up = await call(client, "upload_media", path=str(media_dir / "video.mp4"))
    args = {"content_ids": [up["content"]["id"]], "targets": [draft(sb.tiktok_public_id, **target)]}
    plan = await call(client, "publish_content", **args)
    assert plan["valid"] is True
    assert not live_attempts(sb) and not sb.publish_requests
    return args


async def journal(client: Client) -> list[dict[str, Any]]:
    """The ``postqued://journal`` resource (entries with their bodies), newest first."""
    read = await client.read_resource("postqued://journal")
    content = read.contents[0]
    assert isinstance(content, mt.TextResourceContents)
    entries: list[dict[str, Any]] = json.loads(content.text)
    return entries


def assert_one_request(sb: Sandbox, key: str, publish_id: str | None = None) -> None:
    """Every live attempt had ``key`` and one byte-identical body; exactly one publish request exists."""
    attempts = live_attempts(sb)
    assert attempts and {e.idempotency_key for e in attempts} == {key}
    assert len({e.body for e in attempts}) == 1
    assert len(sb.publish_requests) == 1
    if publish_id is not None:
        assert list(sb.publish_requests) == [publish_id]
        assert sb.publish_requests[publish_id].idempotency_key == key


# --- the connection drops after PostQued committed ---------------------------------------------------


@pytest.mark.parametrize("drops", [1, 2])
async def test_drop_after_commit_retries_with_the_same_key_and_body(
    mcp: Client, sandbox: Sandbox, media_dir: Path, drops: int
) -> None:
    args = await planned(mcp, sandbox, media_dir)
    sandbox.inject("drop_after_commit", route="publish", times=drops)

    live = await call(mcp, "publish_content", **args, dry_run=False)

    attempts = live_attempts(sandbox)
    assert [e.faults for e in attempts] == [["drop_after_commit"]] * drops + [[]]
    assert [e.status for e in attempts] == [None] * drops + [200]  # no answer, then the replayed one
    assert_one_request(sandbox, live["idempotency_key"], live["publish_id"])
    assert live["replayed"] is False and live["status"] == "pending"
    [entry] = await journal(mcp)
    assert (entry["status"], entry["publish_id"], entry["idempotency_key"]) == (
        "accepted",
        live["publish_id"],
        live["idempotency_key"],
    )
    assert entry["body"] == json.loads(attempts[0].body)  # the journal held the exact bytes before the send


async def test_every_attempt_dropped_is_unknown_and_the_same_call_resolves_it(
    mcp: Client, sandbox: Sandbox, media_dir: Path
) -> None:
    args = await planned(mcp, sandbox, media_dir)
    sandbox.inject("drop_after_commit", route="publish", times=3)

    error = await call_error(mcp, "publish_content", **args, dry_run=False)
    assert "OUTCOME_UNKNOWN" in error and "Do not publish again with a new key" in error
    assert [e.faults for e in live_attempts(sandbox)] == [["drop_after_commit"]] * 3
    assert len(sandbox.publish_requests) == 1  # it was created by the first attempt, we just never heard
    unknown = await call(mcp, "list_publish_journal", status="unknown")
    [entry] = unknown["entries"]
    assert entry["publish_id"] is None and entry["error_code"] == "OUTCOME_UNKNOWN"

    again = await call(mcp, "publish_content", **args, dry_run=False)
    assert again["idempotency_key"] == entry["idempotency_key"]
    assert_one_request(sandbox, entry["idempotency_key"], again["publish_id"])
    assert len(live_attempts(sandbox)) == 4 and live_attempts(sandbox)[-1].status == 200
    [resolved] = (await call(mcp, "list_publish_journal"))["entries"]
    assert (resolved["status"], resolved["publish_id"], resolved["attempts"]) == ("accepted", again["publish_id"], 2)
    assert not (await call(mcp, "list_publish_journal", status="unknown"))["entries"]


# --- 409: the key belongs to another request ------------------------------------------------------


async def test_idempotency_conflict_is_one_attempt_and_a_clear_error(
    mcp: Client, sandbox: Sandbox, media_dir: Path, settings: Settings, clock: ManualClock, tmp_path: Path
) -> None:
    args = await planned(mcp, sandbox, media_dir)
    key = "4f0c6a55-0d7e-4c2b-9a8e-2d3f1b7c9e10"
    # Another machine (its own journal) already used this key for a different post.
    other_settings = settings.model_copy(update={"state_dir": tmp_path / "other-machine"})
    async with make_client(other_settings, sandbox, clock) as other:
        other_args = {**args, "targets": [draft(sandbox.tiktok_public_id, caption="Someone else's post")]}
        await call(other, "publish_content", **other_args)
        theirs = await call(other, "publish_content", **other_args, dry_run=False, idempotency_key=key)
    assert list(sandbox.publish_requests) == [theirs["publish_id"]]
    before = len(live_attempts(sandbox))

    error = await call_error(mcp, "publish_content", **args, dry_run=False, idempotency_key=key)

    assert "IDEMPOTENCY_CONFLICT (HTTP 409)" in error and "different request" in error
    ours = live_attempts(sandbox)[before:]
    assert [(e.idempotency_key, e.status) for e in ours] == [(key, 409)]  # one attempt, never retried
    assert list(sandbox.publish_requests) == [theirs["publish_id"]]  # nothing of ours was created
    [entry] = (await call(mcp, "list_publish_journal"))["entries"]
    assert (entry["status"], entry["error_code"], entry["publish_id"]) == ("failed", "IDEMPOTENCY_CONFLICT", None)

    # As the error says: omit the key. The burned key is not reused; a fresh one posts exactly once.
    live = await call(mcp, "publish_content", **args, dry_run=False)
    assert live["idempotency_key"] != key and live["publish_id"] != theirs["publish_id"]
    assert len(sandbox.publish_requests) == 2
    assert sandbox.publish_requests[live["publish_id"]].idempotency_key == live["idempotency_key"]


# --- 429 storms ------------------------------------------------------------------------------------


async def test_429_storm_honours_retry_after_and_keeps_the_key(
    mcp: Client, sandbox: Sandbox, media_dir: Path, clock: ManualClock
) -> None:
    args = await planned(mcp, sandbox, media_dir)
    sandbox.inject("status", route="publish", times=2, status=429, retry_after=7)
    clock.sleeps.clear()

    live = await call(mcp, "publish_content", **args, dry_run=False)

    attempts = live_attempts(sandbox)
    assert [(e.status, e.faults) for e in attempts] == [(429, ["status"]), (429, ["status"]), (200, [])]
    assert clock.sleeps == [7.0, 7.0]  # exactly what Retry-After asked, nothing more
    assert attempts[2].time - attempts[0].time == timedelta(seconds=14)
    assert_one_request(sandbox, live["idempotency_key"], live["publish_id"])


async def test_429_storm_longer_than_the_retries_fails_cleanly_then_succeeds(
    mcp: Client, sandbox: Sandbox, media_dir: Path, clock: ManualClock
) -> None:
    args = await planned(mcp, sandbox, media_dir)
    sandbox.inject("status", route="publish", times=3, status=429, retry_after=5)

    error = await call_error(mcp, "publish_content", **args, dry_run=False)

    assert "RATE_LIMITED (HTTP 429)" in error and "Retry at" in error
    assert [e.status for e in live_attempts(sandbox)] == [429, 429, 429]
    assert not sandbox.publish_requests  # a 429 is refused before anything is created
    [entry] = (await call(mcp, "list_publish_journal"))["entries"]
    assert (entry["status"], entry["error_code"]) == ("failed", "RATE_LIMITED")
    clock.advance(5)
    live = await call(mcp, "publish_content", **args, dry_run=False)
    assert live["idempotency_key"] == entry["idempotency_key"]
    assert_one_request(sandbox, entry["idempotency_key"], live["publish_id"])


async def test_retry_after_beyond_the_cap_answers_with_an_absolute_time(
    mcp: Client, sandbox: Sandbox, media_dir: Path, clock: ManualClock
) -> None:
    args = await planned(mcp, sandbox, media_dir)
    sandbox.inject("status", route="publish", times=1, status=429, retry_after=600)
    clock.sleeps.clear()

    error = await call_error(mcp, "publish_content", **args, dry_run=False)

    assert "RATE_LIMITED (HTTP 429)" in error
    assert f"Retry at {(clock.now() + timedelta(seconds=600)).isoformat()}" in error
    assert [e.status for e in live_attempts(sandbox)] == [429] and clock.sleeps == []  # not waited out
    assert not sandbox.publish_requests


# --- 5xx bursts ------------------------------------------------------------------------------------


@pytest.mark.parametrize("status", [500, 502, 503])
async def test_5xx_burst_is_retried_with_the_same_key_and_body(
    mcp: Client, sandbox: Sandbox, media_dir: Path, clock: ManualClock, status: int
) -> None:
    args = await planned(mcp, sandbox, media_dir)
    sandbox.inject("status", route="publish", times=2, status=status)
    clock.sleeps.clear()

    live = await call(mcp, "publish_content", **args, dry_run=False)

    attempts = live_attempts(sandbox)
    assert [(e.status, e.faults) for e in attempts] == [(status, ["status"])] * 2 + [(200, [])]
    assert len(clock.sleeps) == 2 and all(0 <= s <= 8 for s in clock.sleeps)  # capped, jittered backoff
    assert_one_request(sandbox, live["idempotency_key"], live["publish_id"])


async def test_5xx_burst_longer_than_the_retries_is_unknown_never_failed(
    mcp: Client, sandbox: Sandbox, media_dir: Path
) -> None:
    args = await planned(mcp, sandbox, media_dir)
    sandbox.inject("status", route="publish", times=3, status=503)

    error = await call_error(mcp, "publish_content", **args, dry_run=False)

    assert "OUTCOME_UNKNOWN" in error and "HTTP 503" in error
    assert [e.status for e in live_attempts(sandbox)] == [503, 503, 503]
    [entry] = (await call(mcp, "list_publish_journal", status="unknown"))["entries"]
    assert not sandbox.publish_requests  # (this time nothing was created; the client cannot know that)
    live = await call(mcp, "publish_content", **args, dry_run=False)
    assert live["idempotency_key"] == entry["idempotency_key"]
    assert_one_request(sandbox, entry["idempotency_key"], live["publish_id"])


async def test_5xx_on_the_dry_run_is_not_reported_as_a_lost_publish(
    mcp: Client, sandbox: Sandbox, media_dir: Path
) -> None:
    up = await call(mcp, "upload_media", path=str(media_dir / "video.mp4"))
    sandbox.inject("status", route="publish", times=3, status=503)
    error = await call_error(
        mcp, "publish_content", content_ids=[up["content"]["id"]], targets=[draft(sandbox.tiktok_public_id)]
    )
    assert "OUTCOME_UNKNOWN" not in error and "dry run" in error.lower() and "Next step" in error
    assert [e.status for e in sandbox.requests("publish")] == [503, 503, 503]
    assert not live_attempts(sandbox) and not sandbox.publish_requests
    assert not (await call(mcp, "list_publish_journal"))["entries"]


# --- a 2xx whose body is cut off ---------------------------------------------------------------------


async def test_truncated_answer_once_is_resolved_by_the_retry(mcp: Client, sandbox: Sandbox, media_dir: Path) -> None:
    args = await planned(mcp, sandbox, media_dir)
    sandbox.inject("truncate_body", route="publish", times=1)

    live = await call(mcp, "publish_content", **args, dry_run=False)

    attempts = live_attempts(sandbox)
    assert [(e.status, e.faults) for e in attempts] == [(200, ["truncate_body"]), (200, [])]
    assert_one_request(sandbox, live["idempotency_key"], live["publish_id"])
    assert (await journal(mcp))[0]["status"] == "accepted"


async def test_truncated_answer_is_unknown_then_resolved_by_a_status_read(
    mcp: Client, sandbox: Sandbox, media_dir: Path
) -> None:
    args = await planned(mcp, sandbox, media_dir)
    sandbox.inject("truncate_body", route="publish", times=3)

    error = await call_error(mcp, "publish_content", **args, dry_run=False)

    assert "OUTCOME_UNKNOWN" in error and "BAD_RESPONSE" in error
    assert [e.faults for e in live_attempts(sandbox)] == [["truncate_body"]] * 3
    [entry] = await journal(mcp)
    assert (entry["status"], entry["publish_id"]) == ("unknown", None)
    assert_one_request(sandbox, entry["idempotency_key"])

    # The agent follows the advice: read the state first. The calendar shows the request ...
    [listed] = (await call(mcp, "list_publish_requests"))["requests"]
    status = await call(mcp, "get_publish_status", publish_id=listed["publish_id"])
    assert status["publish_id"] == listed["publish_id"]
    # ... and the status read settles the journal entry: it was accepted, under our key.
    [resolved] = await journal(mcp)
    assert (resolved["status"], resolved["publish_id"], resolved["idempotency_key"]) == (
        "accepted",
        listed["publish_id"],
        entry["idempotency_key"],
    )
    again = await call(mcp, "publish_content", **args, dry_run=False)
    assert again["replayed"] is True and again["publish_id"] == listed["publish_id"]
    assert len(live_attempts(sandbox)) == 3  # the repeat sent nothing
    assert_one_request(sandbox, entry["idempotency_key"], listed["publish_id"])


async def test_truncated_answer_is_unknown_then_resolved_by_the_same_call(
    mcp: Client, sandbox: Sandbox, media_dir: Path
) -> None:
    args = await planned(mcp, sandbox, media_dir)
    sandbox.inject("truncate_body", route="publish", times=3)
    assert "OUTCOME_UNKNOWN" in await call_error(mcp, "publish_content", **args, dry_run=False)
    [entry] = await journal(mcp)
    assert entry["status"] == "unknown"

    again = await call(mcp, "publish_content", **args, dry_run=False)

    assert again["idempotency_key"] == entry["idempotency_key"]
    attempts = live_attempts(sandbox)
    assert len(attempts) == 4 and (attempts[-1].status, attempts[-1].faults) == (200, [])  # PostQued replayed
    assert_one_request(sandbox, entry["idempotency_key"], again["publish_id"])
    [resolved] = await journal(mcp)
    assert (resolved["status"], resolved["publish_id"]) == ("accepted", again["publish_id"])


async def test_a_repeat_that_postqued_replays_is_reported_as_replayed(
    mcp: Client, sandbox: Sandbox, media_dir: Path
) -> None:
    args = await planned(mcp, sandbox, media_dir)
    sandbox.inject("drop_after_commit", route="publish", times=3)
    await call_error(mcp, "publish_content", **args, dry_run=False)
    again = await call(mcp, "publish_content", **args, dry_run=False)
    assert len(sandbox.publish_requests) == 1  # nothing new was created ...
    assert again["replayed"] is True  # ... and the result should say so


async def test_unrelated_status_read_does_not_claim_an_unknown_entry(
    mcp: Client, sandbox: Sandbox, media_dir: Path, settings: Settings, clock: ManualClock, tmp_path: Path
) -> None:
    """A status read links an ``unknown`` entry only to a request with exactly its content and targets."""
    args = await planned(mcp, sandbox, media_dir)
    sandbox.inject("drop_before_commit", route="publish", times=3)
    assert "OUTCOME_UNKNOWN" in await call_error(mcp, "publish_content", **args, dry_run=False)
    assert not sandbox.publish_requests  # this time nothing arrived
    other_settings = settings.model_copy(update={"state_dir": tmp_path / "other-machine"})
    async with make_client(other_settings, sandbox, clock) as other:
        other_args = {**args, "targets": [draft(sandbox.tiktok_public_id, caption="A different caption")]}
        await call(other, "publish_content", **other_args)
        theirs = await call(other, "publish_content", **other_args, dry_run=False)

    await call(mcp, "get_publish_status", publish_id=theirs["publish_id"])

    [entry] = await journal(mcp)
    assert (entry["status"], entry["publish_id"]) == ("unknown", None)


# --- waiting, the journal, and a journal that cannot be written ---------------------------------------


async def test_wait_for_publish_reports_progress_per_target(mcp: Client, sandbox: Sandbox, media_dir: Path) -> None:
    up = await call(mcp, "upload_media", path=str(media_dir / "video.mp4"))
    insta = {"platform": "instagram", "account_id": sandbox.instagram_id, "intent": "draft", "caption": CAPTION}
    args = {"content_ids": [up["content"]["id"]], "targets": [draft(sandbox.tiktok_public_id), insta]}
    await call(mcp, "publish_content", **args)
    live = await call(mcp, "publish_content", **args, dry_run=False)
    updates: list[tuple[float, float | None, str | None]] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        updates.append((progress, total, message))

    result = await mcp.call_tool(
        "wait_for_publish", {"publish_id": live["publish_id"], "timeout_seconds": 60}, progress_callback=on_progress
    )

    assert not result.is_error and isinstance(result.structured_content, dict)
    done = result.structured_content
    assert done["terminal"] is True and done["status"] == "completed"
    assert len(updates) >= 2, updates
    assert all(total == 60 for _, total, _ in updates)
    assert [p for p, _, _ in updates] == sorted(p for p, _, _ in updates)
    # the request's state, then each target's platform, account and state
    tiktok_id, insta_id = re.escape(sandbox.tiktok_public_id), re.escape(sandbox.instagram_id)
    pattern = re.compile(rf"^(\w+): tiktok {tiktok_id}: (\w+), instagram {insta_id}: (\w+)$")
    states = [pattern.match(message or "") for _, _, message in updates]
    assert all(states), updates
    assert states[0] and states[0].groups() == ("pending", "queued", "queued")
    assert states[-1] and states[-1].groups() == ("completed", "sent", "sent")
    assert any(s and "processing" in s.groups() for s in states)


async def test_journal_resource_and_tool_show_every_outcome(mcp: Client, sandbox: Sandbox, media_dir: Path) -> None:
    args = await planned(mcp, sandbox, media_dir)
    ok = await call(mcp, "publish_content", **args, dry_run=False)
    lost = {**args, "targets": [draft(sandbox.tiktok_public_id, caption="This answer gets lost")]}
    await call(mcp, "publish_content", **lost)
    sandbox.inject("drop_after_commit", route="publish", times=3)
    await call_error(mcp, "publish_content", **lost, dry_run=False)

    resources = {str(r.uri) for r in (await mcp.list_resources()).resources}
    assert "postqued://journal" in resources
    entries = await journal(mcp)
    assert [(e["status"], e["publish_id"]) for e in entries] == [("unknown", None), ("accepted", ok["publish_id"])]
    assert entries[0]["body"]["targets"][0]["caption"] == "This answer gets lost"
    assert all(e["workspace_id"] == sandbox.workspace_id for e in entries)
    text = json.dumps(entries)
    assert "pq_sandbox" not in text and "Bearer" not in text  # no secret in the journal
    listed = await call(mcp, "list_publish_journal", status="accepted")
    assert [e["publish_id"] for e in listed["entries"]] == [ok["publish_id"]]


async def test_unwritable_journal_blocks_live_publishing(
    settings: Settings, sandbox: Sandbox, clock: ManualClock, media_dir: Path, tmp_path: Path, mode: str
) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a regular file where the state folder should be")
    broken = settings.model_copy(update={"state_dir": blocker / "state"})
    async with make_client(broken, sandbox, clock, mode=mode) as client:
        up = await call(client, "upload_media", path=str(media_dir / "video.mp4"))
        args = {"content_ids": [up["content"]["id"]], "targets": [draft(sandbox.tiktok_public_id)]}
        dry = await call_error(client, "publish_content", **args)
        live = await call_error(client, "publish_content", **args, dry_run=False)
        live_confirmed = await call_error(client, "publish_content", **args, dry_run=False, confirm=True)
        listing = await call_error(client, "list_publish_journal")

    for text in (dry, live, live_confirmed, listing):
        assert "JOURNAL_UNAVAILABLE" in text and "POSTQUED_STATE_DIR" in text
    assert not live_attempts(sandbox) and not sandbox.publish_requests


async def test_unknown_outcome_past_the_key_window_is_not_resent_blindly(
    mcp: Client, sandbox: Sandbox, media_dir: Path, clock: ManualClock
) -> None:
    """After 24 h the key has expired: a new key could post twice, so only an explicit one sends again."""
    args = await planned(mcp, sandbox, media_dir)
    sandbox.inject("drop_after_commit", route="publish", times=3)
    assert "OUTCOME_UNKNOWN" in await call_error(mcp, "publish_content", **args, dry_run=False)
    attempts = len(live_attempts(sandbox))

    clock.advance(25 * 3600)
    await call(mcp, "publish_content", **args)  # a fresh dry run: the plan itself is fine
    error = await call_error(mcp, "publish_content", **args, dry_run=False)
    assert "OUTCOME_UNKNOWN_EXPIRED" in error and "list_publish_requests" in error
    assert len(live_attempts(sandbox)) == attempts and len(sandbox.publish_requests) == 1

    again = await call(mcp, "publish_content", **args, dry_run=False, idempotency_key=str(uuid.uuid4()))
    assert again["publish_id"] and len(sandbox.publish_requests) == 2  # the user checked and chose to send

"""Who approves a live publish, and when a dry run is fresh enough, through the real MCP protocol.

Direct posts ask the user through elicitation when the client can be asked (``confirm=true`` does not skip
the question); a client without elicitation needs ``confirm=true``; drafts need nothing; POSTQUED_CONFIRM
(``direct``, ``all``, ``never``) changes which live calls ask. A live call needs a dry run of exactly the
same request in the last 30 minutes. Every refusal sends no live publish request.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, timedelta, timezone
from pathlib import Path
from typing import Any, Literal

import mcp.types as mt
import pytest
from mcp import Client

from postqued.clock import ManualClock
from postqued.sandbox import LedgerEntry, Sandbox
from postqued.settings import Settings
from tests.conftest import make_client
from tests.mcpkit import call, call_error

CAPTION = "Launch day! #sandbox"


@dataclass
class User:
    """An elicitation callback that answers like a user and remembers every question."""

    action: Literal["accept", "decline", "cancel"] = "accept"
    approve: bool = True
    asked: list[mt.ElicitRequestParams] = field(default_factory=list)

    async def __call__(self, context: Any, params: mt.ElicitRequestParams) -> mt.ElicitResult:
        self.asked.append(params)
        content = {"confirm": self.approve} if self.action == "accept" else None
        return mt.ElicitResult(action=self.action, content=content)

    @property
    def messages(self) -> list[str]:
        return [p.message for p in self.asked]


def live_attempts(sb: Sandbox) -> list[LedgerEntry]:
    return [e for e in sb.requests("publish") if e.idempotency_key is not None]


def post(account_id: str, intent: str = "publish", **extra: Any) -> dict[str, Any]:
    return {
        "platform": "tiktok",
        "account_id": account_id,
        "intent": intent,
        "caption": CAPTION,
        "options": {"privacy_level": "PUBLIC_TO_EVERYONE" if intent == "publish" else "SELF_ONLY"},
        **extra,
    }


async def dry_run(client: Client, media_dir: Path, *targets: dict[str, Any]) -> dict[str, Any]:
    up = await call(client, "upload_media", path=str(media_dir / "video.mp4"))
    args = {"content_ids": [up["content"]["id"]], "targets": list(targets)}
    assert (await call(client, "publish_content", **args))["valid"] is True
    return args


@pytest.fixture
def setup(
    settings: Settings, sandbox: Sandbox, clock: ManualClock, mode: str
) -> Any:  # (user or None, confirm mode) -> Client
    def open_client(user: User | None = None, confirm: str = "direct") -> Client:
        chosen = settings.model_copy(update={"confirm": confirm})
        if user is None:
            return make_client(chosen, sandbox, clock, mode=mode)
        return make_client(chosen, sandbox, clock, mode=mode, elicitation_callback=user)

    return open_client


# --- elicitation --------------------------------------------------------------------------------------


async def test_accepted_question_publishes_exactly_what_it_showed(
    setup: Any, sandbox: Sandbox, media_dir: Path, clock: ManualClock
) -> None:
    user = User()
    when = clock.now() + timedelta(hours=3)
    async with setup(user) as client:
        args = await dry_run(client, media_dir, post(sandbox.tiktok_public_id, dispatch_at=when.isoformat()))
        assert not user.asked  # a dry run never asks
        live = await call(client, "publish_content", **args, dry_run=False)

    assert live["confirmation"] == "approved by the user" and live["publish_id"]
    [question] = user.messages
    for shown in ("@sandbox_creator", "direct post", "PUBLIC_TO_EVERYONE", CAPTION, "video.mp4", when.isoformat()):
        assert shown in question, (shown, question)
    assert "pq_sandbox" not in question
    [attempt] = live_attempts(sandbox)
    assert list(sandbox.publish_requests) == [live["publish_id"]] and attempt.idempotency_key == live["idempotency_key"]


@pytest.mark.parametrize(
    ("action", "approve"),
    [("decline", True), ("cancel", True), ("accept", False)],
    ids=["declined", "cancelled", "accepted_but_not_approved"],
)
async def test_refused_question_sends_nothing(
    setup: Any, sandbox: Sandbox, media_dir: Path, action: Literal["accept", "decline", "cancel"], approve: bool
) -> None:
    user = User(action=action, approve=approve)
    async with setup(user) as client:
        args = await dry_run(client, media_dir, post(sandbox.tiktok_public_id))
        error = await call_error(client, "publish_content", **args, dry_run=False)
        journal = await call(client, "list_publish_journal")

    assert "CONFIRMATION_DECLINED" in error and "nothing was sent" in error
    assert len(user.asked) == 1
    assert not live_attempts(sandbox) and not sandbox.publish_requests
    assert journal["entries"] == []  # refused before the intent was even journaled


async def test_confirm_true_does_not_skip_the_question(setup: Any, sandbox: Sandbox, media_dir: Path) -> None:
    user = User(action="decline")
    async with setup(user) as client:
        args = await dry_run(client, media_dir, post(sandbox.tiktok_public_id))
        error = await call_error(client, "publish_content", **args, dry_run=False, confirm=True)
    assert "CONFIRMATION_DECLINED" in error and len(user.asked) == 1
    assert not live_attempts(sandbox)


async def test_multi_target_question_lists_every_target(setup: Any, sandbox: Sandbox, media_dir: Path) -> None:
    user = User()
    private = post(sandbox.tiktok_private_id, options={"privacy_level": "FOLLOWER_OF_CREATOR"})
    async with setup(user) as client:
        args = await dry_run(client, media_dir, post(sandbox.tiktok_public_id), private)
        live = await call(client, "publish_content", **args, dry_run=False)
    [question] = user.messages
    assert '1. tiktok "@sandbox_creator": direct post, privacy PUBLIC_TO_EVERYONE, at now' in question
    assert '2. tiktok "@sandbox_private": direct post, privacy FOLLOWER_OF_CREATOR, at now' in question
    assert question.count("video.mp4") == 2 and question.count(CAPTION) == 2
    assert len(live["targets"]) == 2 and len(sandbox.publish_requests) == 1


async def test_a_repeat_after_success_is_replayed_without_asking_again(
    setup: Any, sandbox: Sandbox, media_dir: Path
) -> None:
    user = User()
    async with setup(user) as client:
        args = await dry_run(client, media_dir, post(sandbox.tiktok_public_id))
        first = await call(client, "publish_content", **args, dry_run=False)
        again = await call(client, "publish_content", **args, dry_run=False)
    assert len(user.asked) == 1
    assert again["replayed"] is True and again["publish_id"] == first["publish_id"]
    assert len(live_attempts(sandbox)) == 1 and len(sandbox.publish_requests) == 1


# --- clients that cannot be asked ----------------------------------------------------------------------


async def test_without_elicitation_a_direct_post_needs_confirm(setup: Any, sandbox: Sandbox, media_dir: Path) -> None:
    async with setup() as client:
        args = await dry_run(client, media_dir, post(sandbox.tiktok_public_id))
        error = await call_error(client, "publish_content", **args, dry_run=False)
        assert "CONFIRMATION_REQUIRED" in error and "confirm=true" in error
        assert not live_attempts(sandbox) and not sandbox.publish_requests

        live = await call(client, "publish_content", **args, dry_run=False, confirm=True)

    assert live["confirmation"] == "confirm=true" and live["replayed"] is False
    assert [e.idempotency_key for e in live_attempts(sandbox)] == [live["idempotency_key"]]
    assert list(sandbox.publish_requests) == [live["publish_id"]]


# --- drafts and POSTQUED_CONFIRM --------------------------------------------------------------------------


@pytest.mark.parametrize("can_ask", [True, False], ids=["elicitation", "no_elicitation"])
async def test_drafts_need_no_confirmation(setup: Any, sandbox: Sandbox, media_dir: Path, can_ask: bool) -> None:
    user = User(action="decline")
    async with setup(user if can_ask else None) as client:
        args = await dry_run(client, media_dir, post(sandbox.tiktok_public_id, intent="draft"))
        live = await call(client, "publish_content", **args, dry_run=False)
    assert live["confirmation"] == "not required" and not user.asked
    assert len(sandbox.publish_requests) == 1


async def test_confirm_all_asks_even_for_drafts(setup: Any, sandbox: Sandbox, media_dir: Path) -> None:
    user = User()
    async with setup(user, confirm="all") as client:
        args = await dry_run(client, media_dir, post(sandbox.tiktok_public_id, intent="draft"))
        live = await call(client, "publish_content", **args, dry_run=False)
    [question] = user.messages
    assert "draft to the inbox" in question and "SELF_ONLY" in question
    assert live["confirmation"] == "approved by the user"

    async with setup(None, confirm="all") as client:  # and a client that cannot ask needs confirm=true
        args = await dry_run(client, media_dir, post(sandbox.tiktok_private_id, intent="draft"))
        error = await call_error(client, "publish_content", **args, dry_run=False)
        assert "CONFIRMATION_REQUIRED" in error and len(sandbox.publish_requests) == 1
        confirmed = await call(client, "publish_content", **args, dry_run=False, confirm=True)
    assert confirmed["confirmation"] == "confirm=true" and len(sandbox.publish_requests) == 2


@pytest.mark.parametrize("can_ask", [True, False], ids=["elicitation", "no_elicitation"])
async def test_confirm_never_publishes_directly_without_asking(
    setup: Any, sandbox: Sandbox, media_dir: Path, can_ask: bool
) -> None:
    user = User(action="decline")
    async with setup(user if can_ask else None, confirm="never") as client:
        args = await dry_run(client, media_dir, post(sandbox.tiktok_public_id))
        live = await call(client, "publish_content", **args, dry_run=False)
    assert live["confirmation"] == "not required" and not user.asked
    assert list(sandbox.publish_requests) == [live["publish_id"]]


def test_postqued_confirm_is_read_from_the_environment() -> None:
    for value in ("direct", "all", "never"):
        assert Settings.from_env({"POSTQUED_CONFIRM": value.upper()}, env_file=None).confirm == value
    assert Settings.from_env({}, env_file=None).confirm == "direct"


# --- the dry run must be recent and of exactly this request --------------------------------------------------


async def test_a_dry_run_older_than_30_minutes_is_not_enough(
    setup: Any, sandbox: Sandbox, media_dir: Path, clock: ManualClock
) -> None:
    user = User()
    async with setup(user) as client:
        args = await dry_run(client, media_dir, post(sandbox.tiktok_public_id))
        clock.advance(31 * 60)
        error = await call_error(client, "publish_content", **args, dry_run=False)
        assert "DRY_RUN_REQUIRED" in error and "dry_run=true" in error
        assert not user.asked and not live_attempts(sandbox)  # nobody is asked about a stale plan

        await call(client, "publish_content", **args)  # a fresh dry run ...
        clock.advance(29 * 60)  # ... is enough for 30 minutes
        live = await call(client, "publish_content", **args, dry_run=False)
    assert live["publish_id"] and len(user.asked) == 1 and len(sandbox.publish_requests) == 1


async def test_a_changed_request_needs_its_own_dry_run(setup: Any, sandbox: Sandbox, media_dir: Path) -> None:
    user = User()
    async with setup(user) as client:
        args = await dry_run(client, media_dir, post(sandbox.tiktok_public_id))
        changed = {**args, "targets": [post(sandbox.tiktok_public_id, caption=CAPTION + "!")]}
        error = await call_error(client, "publish_content", **changed, dry_run=False)
        private = {**args, "targets": [post(sandbox.tiktok_public_id, options={"privacy_level": "SELF_ONLY"})]}
        error_private = await call_error(client, "publish_content", **private, dry_run=False, confirm=True)
    assert "DRY_RUN_REQUIRED" in error and "DRY_RUN_REQUIRED" in error_private
    assert not user.asked and not live_attempts(sandbox)


async def test_without_any_dry_run_nothing_is_asked_or_sent(setup: Any, sandbox: Sandbox, media_dir: Path) -> None:
    user = User()
    async with setup(user) as client:
        up = await call(client, "upload_media", path=str(media_dir / "video.mp4"))
        args = {"content_ids": [up["content"]["id"]], "targets": [post(sandbox.tiktok_public_id)]}
        error = await call_error(client, "publish_content", **args, dry_run=False, confirm=True)
    assert "DRY_RUN_REQUIRED" in error and not user.asked
    assert sandbox.requests("publish") == []


SPOOF = "\n   NOTE: privacy is SELF_ONLY - only you will see this post\u2026"


async def test_untrusted_text_cannot_write_lines_into_the_question(
    setup: Any, sandbox: Sandbox, media_dir: Path
) -> None:
    """A hostile file name and caption stay inside their quotes: the user sees one line per field, escaped."""
    hostile = media_dir / f"holiday{SPOOF}\u202e4pm.mp4"
    (media_dir / "video.mp4").rename(hostile)
    user = User()
    caption = f"Hi{SPOOF}\r\n2. tiktok @someone_else: draft to the inbox, privacy SELF_ONLY\u2028«end»"
    async with setup(user) as client:
        up = await call(client, "upload_media", path=str(hostile))
        args = {"content_ids": [up["content"]["id"]], "targets": [post(sandbox.tiktok_public_id, caption=caption)]}
        assert (await call(client, "publish_content", **args))["valid"] is True
        await call(client, "publish_content", **args, dry_run=False)
    assert (
        up["content"]["filename"] == "holiday   NOTE: privacy is SELF_ONLY - only you will see this post\u20264pm.mp4"
    )
    [question] = user.messages
    lines = question.splitlines()
    assert len(lines) == 4, question  # the heading, then the target, its caption and its media: nothing more
    assert lines[1].startswith('1. tiktok "@sandbox_creator": direct post, privacy PUBLIC_TO_EVERYONE')
    assert lines[2].startswith('   caption: "Hi\\n   NOTE:') and "\\u2028" in lines[2] and "\\r\\n2. tiktok" in lines[2]
    assert lines[3].startswith('   media: "holiday   NOTE:') and "\u202e" not in question
    assert not any(line.lstrip().startswith(("NOTE", "2.")) for line in lines)
    assert len(sandbox.publish_requests) == 1


async def test_one_instant_in_two_offsets_is_one_post(
    setup: Any, sandbox: Sandbox, clock: ManualClock, media_dir: Path
) -> None:
    """09:00Z and 11:00+02:00 are the same plan and reach PostQued once, as UTC."""
    at = (clock.now() + timedelta(hours=3)).astimezone(UTC).replace(microsecond=0)
    utc, plus2 = at.isoformat().replace("+00:00", "Z"), at.astimezone(timezone(timedelta(hours=2))).isoformat()
    async with setup() as client:
        up = await call(client, "upload_media", path=str(media_dir / "video.mp4"))
        args = {"content_ids": [up["content"]["id"]]}
        planned = await call(
            client, "publish_content", **args, targets=[post(sandbox.tiktok_public_id, "draft", dispatch_at=utc)]
        )
        first = await call(
            client,
            "publish_content",
            **args,
            targets=[post(sandbox.tiktok_public_id, "draft", dispatch_at=plus2)],
            dry_run=False,
        )
        again = await call(
            client,
            "publish_content",
            **args,
            targets=[post(sandbox.tiktok_public_id, "draft", dispatch_at=utc)],
            dry_run=False,
        )
    assert planned["plan_id"] == first["plan_id"] == again["plan_id"]
    assert again["replayed"] is True and again["publish_id"] == first["publish_id"]
    [sent] = [e for e in sandbox.requests("publish") if e.idempotency_key is not None]
    assert len(sandbox.publish_requests) == 1
    assert json.loads(sent.body)["targets"][0]["dispatchAt"] == utc

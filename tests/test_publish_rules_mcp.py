"""Every local publishing rule, through the ``publish_content`` tool against the sandbox.

A request that breaks a *static* rule (the request and the time alone decide it) is refused before any
request of any kind reaches the sandbox. A request that breaks a *live* rule (it needs PostQued's account,
content or TikTok creator facts) may read those facts, but no publish request, dry run or live, is sent.
Each case runs as a dry run (an answer with ``valid: false`` and the issue) and as a live call (an error
naming the issue); unit tests of the rules themselves are in test_rules.py. No question is ever asked
here, so one handshake (the legacy one current hosts speak) is enough; the confirmation and fault suites
run both.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import mcp.types as mt
import pytest
from mcp import Client

from postqued.clock import ManualClock
from postqued.sandbox import Sandbox
from postqued.settings import Settings
from tests.conftest import make_client
from tests.mcpkit import call, call_error

NOW = ManualClock().now()  # the fixtures' clock starts here and tests below do not move it
FAKE_ID = "00000000-0000-4000-8000-000000000000"  # never looked up: static rules stop the request first


@pytest.fixture
def mode() -> str:
    return "legacy"


def tiktok(account_id: str, **options: Any) -> dict[str, Any]:
    return {
        "platform": "tiktok",
        "account_id": account_id,
        "intent": "publish",
        "caption": "Rule check #sandbox",
        "options": {"privacy_level": "PUBLIC_TO_EVERYONE", **options},
    }


def with_(target: dict[str, Any], **fields: Any) -> dict[str, Any]:
    return {**target, **fields}


async def refused(client: Client, content_ids: list[str], targets: list[dict[str, Any]]) -> tuple[set[str], str]:
    """Dry run and live call of one bad request: (issue codes of the dry run, text of the live error)."""
    dry = await call(client, "publish_content", content_ids=content_ids, targets=targets)
    assert dry["valid"] is False and dry["issues"] and dry["publish_id"] is None, dry
    assert "nothing was sent" in dry["next_step"]
    live = await call_error(client, "publish_content", content_ids=content_ids, targets=targets, dry_run=False)
    assert "Next step" in live
    return {i["code"] for i in dry["issues"]}, live


async def refused_by_schema(client: Client, arguments: dict[str, Any]) -> str:
    """A request the tool's input schema refuses (dry run and live alike)."""
    for dry_run in (True, False):
        result = await client.call_tool("publish_content", {**arguments, "dry_run": dry_run})
        assert result.is_error, result.structured_content
    text = result.content[0]
    assert isinstance(text, mt.TextContent)
    return text.text


# --- static rules: zero requests of any kind -------------------------------------------------------

Case = Callable[[Sandbox], tuple[list[str], list[dict[str, Any]]]]

STATIC: dict[str, tuple[Case, str]] = {
    # TikTok counts UTF-16 units: 1100 emoji + 1 letter is 1101 characters but 2201 units
    "tiktok_caption_utf16": (
        lambda sb: ([FAKE_ID], [with_(tiktok(sb.tiktok_public_id), caption="😀" * 1100 + "a")]),
        "CAPTION_TOO_LONG",
    ),
    "privacy_required_for_direct_post": (
        lambda sb: ([FAKE_ID], [with_(tiktok(sb.tiktok_public_id), options={})]),
        "PRIVACY_LEVEL_REQUIRED",
    ),
    "branded_content_self_only": (
        lambda sb: (
            [FAKE_ID],
            [
                tiktok(
                    sb.tiktok_public_id, privacy_level="SELF_ONLY", commercial_content=True, brand_content_toggle=True
                )
            ],
        ),
        "BRANDED_CONTENT_PRIVATE",
    ),
    "commercial_content_without_toggle": (
        lambda sb: ([FAKE_ID], [tiktok(sb.tiktok_public_id, commercial_content=True)]),
        "COMMERCIAL_CONTENT_TYPE_REQUIRED",
    ),
    "tiktok_without_media": (lambda sb: ([], [tiktok(sb.tiktok_public_id)]), "CONTENT_REQUIRED"),
    "reddit_subreddit_required": (
        lambda sb: ([], [{"platform": "reddit", "account_id": FAKE_ID, "intent": "publish", "caption": "Hi"}]),
        "OPTION_REQUIRED",
    ),
    "pinterest_board_required": (
        lambda sb: (
            [FAKE_ID],
            [{"platform": "pinterest", "account_id": FAKE_ID, "intent": "publish", "caption": "Hi"}],
        ),
        "OPTION_REQUIRED",
    ),
    "dispatch_at_in_the_past": (
        lambda sb: (
            [FAKE_ID],
            [with_(tiktok(sb.tiktok_public_id), dispatch_at=(NOW - timedelta(hours=1)).isoformat())],
        ),
        "DISPATCH_AT_PAST",
    ),
    "dispatch_at_too_soon": (
        lambda sb: (
            [FAKE_ID],
            [with_(tiktok(sb.tiktok_public_id), dispatch_at=(NOW + timedelta(seconds=30)).isoformat())],
        ),
        "DISPATCH_AT_TOO_SOON",
    ),
    "same_account_twice": (
        lambda sb: ([FAKE_ID], [tiktok(sb.tiktok_public_id), tiktok(sb.tiktok_public_id)]),
        "DUPLICATE_TARGET",
    ),
    "same_content_twice": (lambda sb: ([FAKE_ID, FAKE_ID], [tiktok(sb.tiktok_public_id)]), "DUPLICATE_CONTENT"),
    "unknown_option": (
        lambda sb: ([FAKE_ID], [with_(tiktok(sb.tiktok_public_id), options={"privacy": "SELF_ONLY"})]),
        "INVALID_OPTIONS",
    ),
}


@pytest.mark.parametrize("case", sorted(STATIC))
async def test_static_rule_is_refused_before_any_request(mcp: Client, sandbox: Sandbox, case: str) -> None:
    build, code = STATIC[case]
    content_ids, targets = build(sandbox)

    codes, live = await refused(mcp, content_ids, targets)

    assert code in codes, codes
    assert code in live
    assert sandbox.ledger == []  # not even the workspace was resolved


async def test_dispatch_at_without_offset_is_refused_before_any_request(mcp: Client, sandbox: Sandbox) -> None:
    target = with_(tiktok(sandbox.tiktok_public_id), dispatch_at="2026-12-01T09:00:00")
    codes, live = await refused(mcp, [FAKE_ID], [target])
    assert codes == {"INVALID_FIELD"}
    assert "PUBLISH_REQUEST_INVALID" in live and "dispatch_at must carry a UTC offset" in live
    assert sandbox.ledger == []


@pytest.mark.parametrize(
    ("case", "arguments", "fragment"),
    [
        ("no_targets", {"content_ids": [], "targets": []}, "targets"),
        ("eleven_targets", {"content_ids": [], "targets": "eleven"}, "targets"),
        ("thirty_six_items", {"content_ids": [f"c{i}" for i in range(36)], "targets": "one"}, "content_ids"),
        ("caption_over_the_api_maximum", {"content_ids": [], "targets": "facebook"}, "caption"),
    ],
)
async def test_counts_and_lengths_are_refused_by_the_schema_before_any_request(
    mcp: Client, sandbox: Sandbox, case: str, arguments: dict[str, Any], fragment: str
) -> None:
    target = tiktok(sandbox.tiktok_public_id, privacy_level="SELF_ONLY")
    facebook = {"platform": "facebook", "account_id": FAKE_ID, "intent": "publish", "caption": "x" * 63207}
    expand = {"eleven": [with_(target, account_id=str(uuid.uuid4())) for _ in range(11)], "one": [target]}
    expand["facebook"] = [facebook]
    if isinstance(arguments["targets"], str):
        arguments = {**arguments, "targets": expand[arguments["targets"]]}

    text = await refused_by_schema(mcp, arguments)

    assert fragment in text, text
    assert sandbox.ledger == []


# --- live rules: facts may be read, nothing is published ----------------------------------------------


@dataclasses.dataclass
class Media:
    video: str
    video2: str
    image: str


@pytest.fixture
async def media(mcp: Client, media_dir: Path) -> Media:
    ids = [
        (await call(mcp, "upload_media", path=str(media_dir / name)))["content"]["id"]
        for name in ("video.mp4", "rotated.mp4", "image.png")
    ]
    return Media(*ids)


def account(sb: Sandbox, account_id: str, **changes: Any) -> None:
    """Change what the sandbox says about a seeded account (its TikTok creator info)."""
    sb.world.accounts[account_id] = dataclasses.replace(sb.world.accounts[account_id], **changes)


def comments_off(sb: Sandbox, m: Media) -> tuple[list[str], list[dict[str, Any]]]:
    account(sb, sb.tiktok_public_id, comment_disabled=True)
    return [m.video], [tiktok(sb.tiktok_public_id, disable_comment=False)]


def short_limit(sb: Sandbox, m: Media) -> tuple[list[str], list[dict[str, Any]]]:
    account(sb, sb.tiktok_public_id, max_video_post_duration_sec=1)  # the fixture video lasts 2 s
    return [m.video], [tiktok(sb.tiktok_public_id)]


LiveCase = Callable[[Sandbox, Media], tuple[list[str], list[dict[str, Any]]]]

LIVE: dict[str, tuple[LiveCase, str]] = {
    "privacy_not_offered_by_the_creator": (
        lambda sb, m: ([m.video], [tiktok(sb.tiktok_private_id)]),  # a private account: no PUBLIC_TO_EVERYONE
        "PRIVACY_LEVEL_NOT_OFFERED",
    ),
    "duet_disabled_by_the_creator": (
        lambda sb, m: ([m.video], [tiktok(sb.tiktok_private_id, privacy_level="SELF_ONLY", disable_duet=False)]),
        "INTERACTION_DISABLED",
    ),
    "stitch_disabled_by_the_creator": (
        lambda sb, m: ([m.video], [tiktok(sb.tiktok_private_id, privacy_level="SELF_ONLY", disable_stitch=False)]),
        "INTERACTION_DISABLED",
    ),
    "comment_disabled_by_the_creator": (comments_off, "INTERACTION_DISABLED"),
    "video_longer_than_the_creator_may_post": (short_limit, "VIDEO_TOO_LONG"),
    "photo_caption_over_90": (
        lambda sb, m: ([m.image], [with_(tiktok(sb.tiktok_public_id), caption="p" * 91)]),
        "CAPTION_TOO_LONG",
    ),
    "mixed_video_and_photo": (lambda sb, m: ([m.video, m.image], [tiktok(sb.tiktok_public_id)]), "MIXED_MEDIA"),
    "two_videos": (lambda sb, m: ([m.video, m.video2], [tiktok(sb.tiktok_public_id)]), "TOO_MANY_VIDEOS"),
    "video_option_on_a_photo_post": (
        lambda sb, m: ([m.image], [tiktok(sb.tiktok_public_id, disable_duet=True)]),
        "OPTION_NOT_APPLICABLE",
    ),
    "content_not_in_the_workspace": (lambda sb, m: ([FAKE_ID], [tiktok(sb.tiktok_public_id)]), "CONTENT_NOT_FOUND"),
    "account_not_in_the_workspace": (lambda sb, m: ([m.video], [tiktok(str(uuid.uuid4()))]), "ACCOUNT_NOT_FOUND"),
    "account_of_another_platform": (
        lambda sb, m: ([m.video], [tiktok(sb.instagram_id)]),
        "ACCOUNT_PLATFORM_MISMATCH",
    ),
}


@pytest.mark.parametrize("case", sorted(LIVE))
async def test_live_rule_is_refused_without_a_publish_request(
    mcp: Client, sandbox: Sandbox, media: Media, case: str
) -> None:
    build, code = LIVE[case]
    content_ids, targets = build(sandbox, media)

    codes, live = await refused(mcp, content_ids, targets)

    assert code in codes, codes
    assert code in live
    assert sandbox.requests("publish") == [] and sandbox.publish_requests == {}
    assert sandbox.requests("integrations")  # the facts were read


async def test_content_that_is_not_ready_is_refused(mcp: Client, sandbox: Sandbox) -> None:
    started = await call(mcp, "start_content_upload", filename="clip.mp4", content_type="video/mp4", file_size=1234)
    codes, live = await refused(mcp, [started["content_id"]], [tiktok(sandbox.tiktok_public_id)])
    assert codes == {"CONTENT_NOT_FOUND"}  # PostQued hides an unfinished upload (404), so it reads as not found
    assert started["content_id"] in live
    assert sandbox.requests("publish") == [] and sandbox.publish_requests == {}


async def test_deleted_content_is_refused(mcp: Client, sandbox: Sandbox, media: Media) -> None:
    await call(mcp, "delete_content", content_id=media.image)
    codes, _ = await refused(mcp, [media.image], [tiktok(sandbox.tiktok_public_id)])
    assert codes == {"CONTENT_NOT_FOUND"}
    assert sandbox.requests("publish") == []


async def test_several_broken_rules_are_reported_together(mcp: Client, sandbox: Sandbox, media: Media) -> None:
    targets = [
        tiktok(sandbox.tiktok_private_id, disable_duet=False),
        tiktok(sandbox.instagram_id, privacy_level="SELF_ONLY"),
    ]
    codes, live = await refused(mcp, [media.video], targets)
    assert codes == {"PRIVACY_LEVEL_NOT_OFFERED", "INTERACTION_DISABLED", "ACCOUNT_PLATFORM_MISMATCH"}
    assert "PUBLISH_REQUEST_INVALID" in live and all(f"[{c}]" in live for c in codes)
    assert sandbox.requests("publish") == []


async def test_a_request_that_passes_every_rule_does_reach_the_sandbox(
    mcp: Client, sandbox: Sandbox, media: Media
) -> None:
    """The control case: the same shapes as above, with every rule kept, are dry-run by PostQued."""
    when = (NOW + timedelta(hours=2)).isoformat()
    targets = [
        tiktok(sandbox.tiktok_private_id, privacy_level="SELF_ONLY", disable_duet=True, disable_comment=False),
        with_(tiktok(sandbox.tiktok_public_id), dispatch_at=when, caption="😀" * 1100),  # exactly 2200 units
    ]
    plan = await call(mcp, "publish_content", content_ids=[media.video], targets=targets)
    assert plan["valid"] is True and plan["issues"] == []
    assert len(sandbox.requests("publish")) == 1 and sandbox.publish_requests == {}  # the API's own dry run


async def test_account_of_another_workspace_is_refused(
    settings: Settings, clock: ManualClock, media_dir: Path, mode: str
) -> None:
    with Sandbox(clock=clock, extra_workspace=True) as sb:
        async with make_client(settings, sb, clock, mode=mode) as client:
            ws = sb.workspace_id
            up = await call(client, "upload_media", path=str(media_dir / "video.mp4"), workspace_id=ws)
            elsewhere = next(a.id for a in sb.accounts if a.workspace_id != ws)  # the client workspace's creator
            args = {"content_ids": [up["content"]["id"]], "targets": [tiktok(elsewhere)], "workspace_id": ws}
            dry = await call(client, "publish_content", **args)
            live = await call_error(client, "publish_content", **args, dry_run=False)
        assert {i["code"] for i in dry["issues"]} == {"ACCOUNT_NOT_FOUND"} and "ACCOUNT_NOT_FOUND" in live
        assert sb.requests("publish") == [] and sb.publish_requests == {}

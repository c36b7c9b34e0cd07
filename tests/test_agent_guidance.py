"""What an agent reads and gets back leads it right the first time (issue 14).

Through the real MCP protocol against the sandbox, with a host that cannot ask the user (no elicitation):

- ``next_step`` after a live call fits the intent and the time: a draft is followed until ``sent``, a
  direct post until ``published``, a post scheduled for later is not waited for (the time to look again is
  given instead);
- a host without elicitation goes live in one call when the user already approved the plan
  (``confirm=true`` with ``dry_run=false``; ``confirm`` is not part of the plan);
- the error text hosts show is the SDK's ``Error executing tool <name>: CODE ...: message Next step: ...``;
- no connected account for a platform means "connect it in PostQued", never another account;
- result fields agree: ``publish_id``/``target_id`` on actions, waiting fields only on waits, no
  ``published_at`` on a draft, caption/account/media on status and calendar entries;
- the default tool list a model reads (names, descriptions, input schemas) stays within 12,000
  characters, and every description says what to call next.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import mcp.types as mt
import pytest
from mcp import Client

from bench.toolslist import MODEL_VISIBLE_CAP, model_visible_chars
from postqued.clock import ManualClock
from postqued.sandbox import Sandbox
from postqued.settings import Settings
from tests.conftest import make_client

SKILL_MD = Path(__file__).resolve().parents[1] / "SKILL.md"
ERROR_SHAPE = re.compile(r"^Error executing tool (\w+): ([A-Z][A-Z0-9_]+)( \(HTTP \d{3}\))?: .+ Next step: .+$", re.S)


@pytest.fixture
async def host(settings: Settings, sandbox: Sandbox, clock: ManualClock) -> AsyncIterator[Client]:
    """A chat host without elicitation: it cannot put a question to the user."""
    async with make_client(settings, sandbox, clock) as client:
        yield client


async def ok(client: Client, tool: str, **args: Any) -> dict[str, Any]:
    result = await client.call_tool(tool, args)
    assert not result.is_error, result.content
    assert isinstance(result.structured_content, dict)
    return dict(result.structured_content)


async def error_text(client: Client, tool: str, **args: Any) -> str:
    result = await client.call_tool(tool, args)
    assert result.is_error, result.structured_content
    text = result.content[0]
    assert isinstance(text, mt.TextContent)
    return text.text


def target(account_id: str, intent: str = "draft", **extra: Any) -> dict[str, Any]:
    privacy = "PUBLIC_TO_EVERYONE" if intent == "publish" else "SELF_ONLY"
    return {
        "platform": "tiktok",
        "account_id": account_id,
        "intent": intent,
        "caption": "Kiln opening #pottery",
        "options": {"privacy_level": privacy},
        **extra,
    }


async def go_live(client: Client, media_dir: Path, *targets: dict[str, Any]) -> dict[str, Any]:
    """Upload, dry-run, then the one live call a host without elicitation makes after the user's yes.

    The live result is returned with the uploaded ``content_id`` added (the plan lists media by file name).
    """
    up = await ok(client, "upload_media", path=str(media_dir / "video.mp4"))
    args = {"content_ids": [up["content"]["id"]], "targets": list(targets)}
    plan = await ok(client, "publish_content", **args)
    assert plan["valid"] is True, plan["issues"]
    live = await ok(client, "publish_content", **args, dry_run=False, confirm=True)
    assert live["plan_id"] == plan["plan_id"]
    return {**live, "content_id": up["content"]["id"]}


# --- next_step fits the intent and the time --------------------------------------------------------------


async def test_a_draft_is_followed_until_sent_never_published(host: Client, sandbox: Sandbox, media_dir: Path) -> None:
    live = await go_live(host, media_dir, target(sandbox.tiktok_public_id, "draft"))
    assert "wait_for_publish" in live["next_step"] and "ends sent" in live["next_step"]
    assert "never becomes published" in live["next_step"]
    done = await ok(host, "wait_for_publish", publish_id=live["publish_id"], timeout_seconds=300)
    assert done["terminal"] is True and done["targets"][0]["status"] == "sent"
    assert done["targets"][0]["published_at"] is None  # a draft reached the inbox; it was not published
    assert done["next_step"].startswith("Final:")


async def test_the_publish_resource_reads_like_get_publish_status(
    host: Client, sandbox: Sandbox, media_dir: Path
) -> None:
    live = await go_live(host, media_dir, target(sandbox.tiktok_public_id, "draft"))
    await ok(host, "wait_for_publish", publish_id=live["publish_id"], timeout_seconds=300)
    read = await host.read_resource(f"postqued://publish/{live['publish_id']}")
    text = read.contents[0]
    assert isinstance(text, mt.TextResourceContents)
    resource = json.loads(text.text)
    status = await ok(host, "get_publish_status", publish_id=live["publish_id"])
    assert resource == {k: v for k, v in status.items() if k not in ("next_step", "sandbox")}
    assert resource["targets"][0]["status"] == "sent" and resource["targets"][0]["published_at"] is None


async def test_the_prompt_follows_next_step_and_never_substitutes_an_account(host: Client) -> None:
    prompt = await host.get_prompt("publish_video", {"path": "/media/clip.mp4"})
    content = prompt.messages[0].content
    assert isinstance(content, mt.TextContent)
    assert "Do what next_step says" in content.text and "never use another account" in content.text


async def test_a_direct_post_is_followed_until_published(host: Client, sandbox: Sandbox, media_dir: Path) -> None:
    live = await go_live(host, media_dir, target(sandbox.tiktok_public_id, "publish"))
    assert live["confirmation"] == "confirm=true"
    assert "wait_for_publish" in live["next_step"] and "published for a direct post" in live["next_step"]
    done = await ok(host, "wait_for_publish", publish_id=live["publish_id"], timeout_seconds=300)
    assert done["targets"][0]["status"] == "published" and done["targets"][0]["published_at"] is not None


async def test_a_post_scheduled_for_later_is_not_waited_for(
    host: Client, sandbox: Sandbox, media_dir: Path, clock: ManualClock
) -> None:
    when = (clock.now() + timedelta(days=1)).replace(microsecond=0)
    live = await go_live(host, media_dir, target(sandbox.tiktok_public_id, "publish", dispatch_at=when.isoformat()))
    step = live["next_step"]
    assert "wait_for_publish" not in step and "do not wait" in step
    assert when.isoformat() in step and "get_publish_status" in step
    status = await ok(host, "get_publish_status", publish_id=live["publish_id"])
    assert status["status"] == "pending" and status["targets"][0]["status"] == "scheduled"
    assert "nothing to wait for now" in status["next_step"] and when.isoformat() in status["next_step"]

    reads, started = len(sandbox.requests("publish_get")), clock.now()
    waited = await ok(host, "wait_for_publish", publish_id=live["publish_id"], timeout_seconds=300)
    assert waited["timed_out"] is True and waited["poll_after"] == when.isoformat().replace("+00:00", "Z")
    assert len(sandbox.requests("publish_get")) - reads == 1 and clock.now() == started  # no 300 s of polling


async def test_now_and_later_in_one_request_gets_both_steps(
    host: Client, sandbox: Sandbox, media_dir: Path, clock: ManualClock
) -> None:
    when = (clock.now() + timedelta(hours=3)).replace(microsecond=0)
    live = await go_live(
        host,
        media_dir,
        target(sandbox.tiktok_public_id, "draft"),
        target(sandbox.tiktok_private_id, "draft", dispatch_at=when.isoformat()),
    )
    assert "wait_for_publish" in live["next_step"]
    assert f"The scheduled targets go out at {when.isoformat()}" in live["next_step"]
    waited = await ok(host, "wait_for_publish", publish_id=live["publish_id"], timeout_seconds=300)
    assert [t["status"] for t in waited["targets"]] == ["sent", "scheduled"]  # waits for the draft, not for later
    assert waited["timed_out"] is True and f"goes out at {when.isoformat()}" in waited["next_step"]


# --- confirmation without elicitation, and the error text hosts show ---------------------------------------


async def test_confirm_is_not_part_of_the_plan_so_an_approved_plan_goes_live_in_one_call(
    host: Client, sandbox: Sandbox, media_dir: Path
) -> None:
    up = await ok(host, "upload_media", path=str(media_dir / "video.mp4"))
    args = {"content_ids": [up["content"]["id"]], "targets": [target(sandbox.tiktok_public_id, "publish")]}
    without = await ok(host, "publish_content", **args)
    with_confirm = await ok(host, "publish_content", **args, confirm=True)
    assert with_confirm["plan_id"] == without["plan_id"] and with_confirm["dry_run"] is True
    assert not [e for e in sandbox.requests("publish") if e.idempotency_key is not None]  # a dry run stays one
    live = await ok(host, "publish_content", **args, dry_run=False, confirm=True)
    assert live["publish_id"] and len([e for e in sandbox.requests("publish") if e.idempotency_key]) == 1


async def test_the_dry_run_says_how_this_host_gets_the_approval(
    host: Client, settings: Settings, sandbox: Sandbox, clock: ManualClock, media_dir: Path
) -> None:
    up = await ok(host, "upload_media", path=str(media_dir / "video.mp4"))
    direct = {"content_ids": [up["content"]["id"]], "targets": [target(sandbox.tiktok_public_id, "publish")]}
    draft = {"content_ids": [up["content"]["id"]], "targets": [target(sandbox.tiktok_public_id, "draft")]}
    assert (await ok(host, "publish_content", **direct))["next_step"].endswith(
        "dry_run=false and confirm=true (this host cannot ask them; confirm is not part of the plan)."
    )
    assert (await ok(host, "publish_content", **draft))["next_step"].endswith("the same arguments and dry_run=false.")

    async def answer(context: Any, params: mt.ElicitRequestParams) -> mt.ElicitResult:
        return mt.ElicitResult(action="decline")

    async with make_client(settings, sandbox, clock, elicitation_callback=answer) as asking:
        step = (await ok(asking, "publish_content", **direct))["next_step"]
    assert step.endswith("dry_run=false; the server then asks them to confirm.") and "confirm=true" not in step


async def test_errors_read_as_the_sdk_shows_them_and_the_skill_documents_that(
    host: Client, sandbox: Sandbox, media_dir: Path
) -> None:
    up = await ok(host, "upload_media", path=str(media_dir / "video.mp4"))
    args = {"content_ids": [up["content"]["id"]], "targets": [target(sandbox.tiktok_public_id, "publish")]}
    await ok(host, "publish_content", **args)
    refused = await error_text(host, "publish_content", **args, dry_run=False)
    missing = await error_text(host, "get_publish_status", publish_id="00000000-0000-4000-8000-000000000000")
    shapes = [ERROR_SHAPE.match(text) for text in (refused, missing)]
    assert shapes[0] and shapes[0].group(1, 2) == ("publish_content", "CONFIRMATION_REQUIRED"), refused
    assert shapes[1] and shapes[1].group(1, 2, 3) == ("get_publish_status", "NOT_FOUND", " (HTTP 404)"), missing
    skill = SKILL_MD.read_text(encoding="utf-8")
    assert "Error executing tool publish_content: CONFIRMATION_REQUIRED: " in skill
    assert "Error executing tool <name>: CODE (HTTP status): message Next step: " in skill


# --- accounts --------------------------------------------------------------------------------------------


async def test_no_connected_account_means_connect_it_never_another(host: Client) -> None:
    none = await ok(host, "list_accounts", platform="youtube")
    assert none["accounts"] == []
    assert "connect it in the PostQued app" in none["next_step"]
    assert "Never post to another account" in none["next_step"]
    several = await ok(host, "list_accounts", platform="tiktok")
    assert len(several["accounts"]) > 1 and "ask the user which one" in several["next_step"]
    one = await ok(host, "list_accounts", platform="instagram")
    assert len(one["accounts"]) == 1 and "get_creator_info" not in one["next_step"]


async def test_a_target_without_its_account_says_connect_it_never_substitute(
    host: Client, sandbox: Sandbox, media_dir: Path
) -> None:
    up = await ok(host, "upload_media", path=str(media_dir / "image.jpg"))
    elsewhere = {**target(sandbox.instagram_id), "platform": "youtube", "options": {}}  # an Instagram id
    unknown = {**target("00000000-0000-4000-8000-00000000abcd"), "options": {}}
    plan = await ok(host, "publish_content", content_ids=[up["content"]["id"]], targets=[elsewhere, unknown])
    issues = {i["code"]: i["message"] for i in plan["issues"]}
    assert plan["valid"] is False and set(issues) == {"ACCOUNT_PLATFORM_MISMATCH", "ACCOUNT_NOT_FOUND"}
    for message in issues.values():
        assert "connect" in message and "PostQued app" in message and "never post to another" in message
        assert "set platform" not in message
    assert not sandbox.requests("publish")


# --- result fields agree ---------------------------------------------------------------------------------


async def test_status_and_calendar_say_which_post_it_is(
    host: Client, sandbox: Sandbox, media_dir: Path, clock: ManualClock
) -> None:
    when = (clock.now() + timedelta(days=2)).replace(microsecond=0).isoformat()
    live = await go_live(host, media_dir, target(sandbox.tiktok_public_id, "draft", dispatch_at=when))
    status = await ok(host, "get_publish_status", publish_id=live["publish_id"])
    listed = await ok(host, "list_publish_requests")
    for view in (status, listed["requests"][0]):
        assert view["publish_id"] == live["publish_id"]
        assert view["content_ids"] == [live["content_id"]]
        shown = view["targets"][0]
        assert (shown["caption"], shown["account_username"]) == ("Kiln opening #pottery", "@sandbox_creator")
    assert "timed_out" not in status and "poll_after" not in status  # those belong to waiting
    assert "cancel_publish_target" in listed["next_step"]

    canceled = await ok(host, "cancel_publish", publish_id=live["publish_id"])
    assert canceled["publish_id"] == live["publish_id"] and "id" not in canceled and canceled["status"] == "canceled"
    waited = await ok(host, "wait_for_publish", publish_id=live["publish_id"], timeout_seconds=1)
    assert waited["timed_out"] is False and waited["poll_after"] is None and waited["terminal"] is True


async def test_target_actions_name_the_target(
    host: Client, sandbox: Sandbox, media_dir: Path, clock: ManualClock
) -> None:
    when = (clock.now() + timedelta(hours=2)).replace(microsecond=0).isoformat()
    live = await go_live(host, media_dir, target(sandbox.tiktok_public_id, "draft", dispatch_at=when))
    target_id = live["targets"][0]["id"]
    later = (clock.now() + timedelta(hours=5)).replace(microsecond=0)
    moved = await ok(host, "reschedule_publish_target", target_id=target_id, dispatch_at=later.isoformat())
    assert moved["target_id"] == target_id and moved["publish_id"] is None and later.isoformat() in moved["next_step"]
    canceled = await ok(host, "cancel_publish_target", target_id=target_id)
    assert canceled["target_id"] == target_id and "id" not in canceled
    deleted = await ok(host, "delete_publish_request", publish_id=live["publish_id"])
    assert deleted["publish_id"] == live["publish_id"] and "id" not in deleted


async def test_waiting_fields_only_on_waits(host: Client) -> None:
    tools = {t.name: t for t in (await host.list_tools()).tools}
    for name in ("get_publish_status", "list_publish_requests"):
        blob = json.dumps(tools[name].output_schema)
        assert "timed_out" not in blob and "poll_after" not in blob, name
    wait = (tools["wait_for_publish"].output_schema or {}).get("properties", {})
    assert {"timed_out", "poll_after", "next_step"} <= set(wait)
    for name in ("cancel_publish", "cancel_publish_target", "reschedule_publish_target", "delete_publish_request"):
        props = (tools[name].output_schema or {}).get("properties", {})
        assert "id" not in props and {"publish_id", "target_id", "next_step"} <= set(props), name


# --- what the model reads --------------------------------------------------------------------------------


async def test_caption_is_required_on_every_target_drafts_too(host: Client, sandbox: Sandbox) -> None:
    tools = {t.name: t for t in (await host.list_tools()).tools}
    schema = tools["publish_content"].input_schema["properties"]["targets"]["items"]  # inlined: no $ref
    assert "caption" in schema["required"] and "drafts too" in schema["properties"]["caption"]["description"]
    draft = {k: v for k, v in target(sandbox.tiktok_public_id, "draft").items() if k != "caption"}
    text = await error_text(host, "publish_content", content_ids=[], targets=[draft])
    assert text.startswith("Error executing tool publish_content:") and "caption" in text
    assert not sandbox.requests("publish")


async def test_start_content_upload_says_how_the_bytes_move(host: Client) -> None:
    tools = {t.name: t for t in (await host.list_tools()).tools}
    description = tools["start_content_upload"].description or ""
    assert "see the note" not in description
    assert "upload_media" in description and "POST /v2/content/upload" in description
    assert "complete_content_upload" in description


async def test_the_default_tool_list_a_model_reads_is_small_and_says_what_next(host: Client) -> None:
    tools = [t.model_dump(mode="json", by_alias=True, exclude_none=True) for t in (await host.list_tools()).tools]
    size = model_visible_chars(tools)
    assert size <= MODEL_VISIBLE_CAP, f"names + descriptions + input schemas are {size:,} characters"
    vague = [t["name"] for t in tools if "Next:" not in t.get("description", "")]
    assert not vague, f"descriptions that do not say what to call next: {vague}"

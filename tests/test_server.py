"""The MCP server through a real in-memory client, in both handshake modes, against the sandbox."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import mcp.types as mt
import pytest
from mcp import Client

from postqued.clock import ManualClock
from postqued.errors import ConfigError
from postqued.sandbox import Sandbox
from postqued.settings import Settings
from postqued_mcp.tools import TOOLSETS
from postqued_mcp.tools.discovery import NAMES as DISCOVERY
from tests.conftest import make_client
from tests.mcpkit import PUBLISHING_TOOLS, call, call_error, draft_target

WRITE_TOOLS = {
    "upload_media", "start_content_upload", "complete_content_upload", "update_content", "delete_content",
    "publish_content", "cancel_publish", "cancel_publish_target", "reschedule_publish_target",
    "delete_publish_request",
}  # fmt: skip


# --- catalogue -----------------------------------------------------------------------------------


async def test_tools_list_is_the_publishing_surface(mcp: Client) -> None:
    tools = {t.name: t for t in (await mcp.list_tools()).tools}
    assert set(tools) == PUBLISHING_TOOLS | DISCOVERY  # the default start (dynamic): publishing + the discovery pair
    tools = {name: tool for name, tool in tools.items() if name not in DISCOVERY}  # tests/test_toolsets.py
    for tool in tools.values():
        assert tool.description and len(tool.description) > 40, tool.name
        assert tool.output_schema is not None, tool.name
        assert tool.annotations is not None and tool.title, tool.name
        assert tool.annotations.read_only_hint is (tool.name not in WRITE_TOOLS), tool.name
        for prop in tool.input_schema.get("properties", {}):
            assert prop == prop.lower(), f"{tool.name}.{prop} is not snake_case"
    assert tools["delete_content"].annotations.destructive_hint is True  # type: ignore[union-attr]
    assert tools["publish_content"].annotations.destructive_hint is False  # type: ignore[union-attr]
    assert tools["list_publish_journal"].annotations.open_world_hint is False  # type: ignore[union-attr]
    publish_args = tools["publish_content"].input_schema["properties"]
    assert {"content_ids", "targets", "dry_run", "confirm", "idempotency_key", "workspace_id"} <= set(publish_args)
    assert "plan" not in publish_args and "approval" not in publish_args  # resolved server-side, never by the model
    assert publish_args["dry_run"]["default"] is True


async def test_read_only_registers_no_write_tool(settings: Settings, sandbox: Sandbox, clock: ManualClock) -> None:
    async with make_client(settings.model_copy(update={"read_only": True}), sandbox, clock) as client:
        names = {t.name for t in (await client.list_tools()).tools}
    assert names == (PUBLISHING_TOOLS - WRITE_TOOLS) | DISCOVERY


async def test_v1_registers_only_tools_with_v1_routes(settings: Settings, sandbox: Sandbox, clock: ManualClock) -> None:
    async with make_client(settings.model_copy(update={"api_version": "v1"}), sandbox, clock) as client:
        names = {t.name for t in (await client.list_tools()).tools}
    assert names == {
        "list_workspaces", "list_accounts", "upload_media", "start_content_upload", "complete_content_upload",
        "publish_content", "get_publish_status", "wait_for_publish", "list_publish_journal", *DISCOVERY,
    }  # fmt: skip


def test_unknown_toolset_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="POSTQUED_TOOLSETS"):
        Settings.from_env({"POSTQUED_TOOLSETS": "publishing,nope"}, env_file=None)
    assert "publishing" in TOOLSETS


async def test_resources_and_prompt(mcp: Client, sandbox: Sandbox) -> None:
    resources = {str(r.uri) for r in (await mcp.list_resources()).resources}
    assert {"postqued://accounts", "postqued://journal"} <= resources
    templates = {t.uri_template for t in (await mcp.list_resource_templates()).resource_templates}
    assert "postqued://publish/{publish_id}" in templates
    accounts = await mcp.read_resource("postqued://accounts")
    text = accounts.contents[0]
    assert isinstance(text, mt.TextResourceContents) and sandbox.tiktok_public_id in text.text
    prompt = await mcp.get_prompt("publish_video", {"path": "clip.mp4"})
    assert "dry_run=true" in str(prompt.messages[0].content)


# --- the chain -----------------------------------------------------------------------------------


async def test_full_chain_draft(mcp: Client, sandbox: Sandbox, media_dir: Path) -> None:
    ws = await call(mcp, "list_workspaces")
    assert ws["default_workspace_id"] == sandbox.workspace_id and ws["sandbox"] is True

    up = await call(mcp, "upload_media", path=str(media_dir / "video.mp4"))
    content = up["content"]
    assert up["deduplicated"] is False and content["status"] == "ready"
    assert (content["mime_type"], content["width"], content["height"]) == ("video/mp4", 320, 240)

    again = await call(mcp, "upload_media", path=str(media_dir / "video.mp4"))
    assert again["deduplicated"] is True and again["content"]["id"] == content["id"]
    assert len(sandbox.requests("content_upload")) == 1

    accounts = await call(mcp, "list_accounts", platform="tiktok")
    assert {a["username"] for a in accounts["accounts"]} == {"@sandbox_creator", "@sandbox_private"}
    info = await call(mcp, "get_creator_info", account_id=sandbox.tiktok_public_id)
    assert "PUBLIC_TO_EVERYONE" in info["privacy_level_options"]

    args = {"content_ids": [content["id"]], "targets": [draft_target(sandbox.tiktok_public_id)]}
    plan = await call(mcp, "publish_content", **args)
    assert plan["dry_run"] is True and plan["valid"] is True and plan["plan_id"].startswith("sha256:")
    assert plan["targets"][0]["account_username"] == "@sandbox_creator"
    assert not sandbox.publish_requests  # a dry run creates nothing

    live = await call(mcp, "publish_content", **args, dry_run=False)
    assert live["dry_run"] is False and live["publish_id"] and live["plan_id"] == plan["plan_id"]
    assert live["confirmation"] == "not required" and live["replayed"] is False
    assert len(sandbox.publish_requests) == 1

    done = await call(mcp, "wait_for_publish", publish_id=live["publish_id"], timeout_seconds=60)
    assert done["terminal"] is True and done["timed_out"] is False
    assert done["status"] == "completed" and done["targets"][0]["status"] == "sent"

    replay = await call(mcp, "publish_content", **args, dry_run=False)
    assert replay["replayed"] is True and replay["publish_id"] == live["publish_id"]
    assert len(sandbox.publish_requests) == 1 and len(sandbox.requests("publish")) == 2  # dry run + one live

    journal = await call(mcp, "list_publish_journal")
    assert journal["entries"][0]["publish_id"] == live["publish_id"]
    assert journal["entries"][0]["remote_status"] == "completed"
    listed = await call(mcp, "list_publish_requests")
    assert [r["publish_id"] for r in listed["requests"]] == [live["publish_id"]]


async def test_live_without_dry_run_is_refused(mcp: Client, sandbox: Sandbox, media_dir: Path) -> None:
    up = await call(mcp, "upload_media", path=str(media_dir / "image.png"))
    text = await call_error(
        mcp, "publish_content", content_ids=[up["content"]["id"]],
        targets=[draft_target(sandbox.tiktok_public_id)], dry_run=False,
    )  # fmt: skip
    assert "DRY_RUN_REQUIRED" in text and "Next step" in text
    assert not sandbox.requests("publish")


async def test_dry_run_reports_rule_issues_without_sending(mcp: Client, sandbox: Sandbox) -> None:
    target = draft_target(sandbox.tiktok_public_id, intent="publish", options={})
    result = await call(mcp, "publish_content", content_ids=[], targets=[target])
    assert result["valid"] is False
    codes = {i["code"] for i in result["issues"]}
    assert {"PRIVACY_LEVEL_REQUIRED", "CONTENT_REQUIRED"} <= codes
    assert not sandbox.requests("publish") and not sandbox.requests("integrations")


async def test_unknown_option_key_is_a_clear_issue(mcp: Client, sandbox: Sandbox) -> None:
    target = draft_target(sandbox.tiktok_public_id, options={"privacy": "SELF_ONLY"})
    result = await call(mcp, "publish_content", content_ids=[], targets=[target])
    assert result["valid"] is False and result["issues"][0]["code"] == "INVALID_OPTIONS"
    assert "privacy_level" in result["issues"][0]["message"] or "privacy" in result["issues"][0]["message"]


async def test_cancel_reschedule_delete(mcp: Client, sandbox: Sandbox, media_dir: Path, clock: ManualClock) -> None:
    up = await call(mcp, "upload_media", path=str(media_dir / "video.mp4"))
    when = (clock.now() + timedelta(hours=2)).isoformat()
    targets = [draft_target(sandbox.tiktok_public_id, dispatch_at=when)]
    args = {"content_ids": [up["content"]["id"]], "targets": targets}
    await call(mcp, "publish_content", **args)
    live = await call(mcp, "publish_content", **args, dry_run=False)
    status = await call(mcp, "get_publish_status", publish_id=live["publish_id"])
    assert status["targets"][0]["status"] == "scheduled" and status["terminal"] is False
    target_id = status["targets"][0]["id"]

    later = (clock.now() + timedelta(hours=5)).isoformat()
    await call(mcp, "reschedule_publish_target", target_id=target_id, dispatch_at=later)
    past = (clock.now() - timedelta(hours=1)).isoformat()
    assert "INVALID_DISPATCH_AT" in await call_error(
        mcp, "reschedule_publish_target", target_id=target_id, dispatch_at=past
    )

    canceled = await call(mcp, "cancel_publish", publish_id=live["publish_id"])
    assert canceled["status"] == "canceled" and canceled["terminal"] is True
    error = await call_error(mcp, "cancel_publish_target", target_id=target_id)
    assert "HTTP 409" in error
    await call(mcp, "delete_publish_request", publish_id=live["publish_id"])
    assert "HTTP 404" in await call_error(mcp, "get_publish_status", publish_id=live["publish_id"])


async def test_wait_times_out_honestly(mcp: Client, sandbox: Sandbox, media_dir: Path, clock: ManualClock) -> None:
    up = await call(mcp, "upload_media", path=str(media_dir / "video.mp4"))
    when = (clock.now() + timedelta(days=1)).isoformat()
    args = {"content_ids": [up["content"]["id"]], "targets": [draft_target(sandbox.tiktok_public_id, dispatch_at=when)]}
    await call(mcp, "publish_content", **args)
    live = await call(mcp, "publish_content", **args, dry_run=False)
    waited = await call(mcp, "wait_for_publish", publish_id=live["publish_id"], timeout_seconds=5)
    assert waited["timed_out"] is True and waited["terminal"] is False and waited["poll_after"]


# --- content tools -------------------------------------------------------------------------------


async def test_content_tools(mcp: Client, sandbox: Sandbox, media_dir: Path) -> None:
    up = await call(mcp, "upload_media", path=str(media_dir / "image.jpg"), alt_text="a test card")
    cid = up["content"]["id"]
    assert up["content"]["alt"] == "a test card"
    listed = await call(mcp, "list_content", media_type="image")
    assert [c["id"] for c in listed["content"]] == [cid] and listed["total"] == 1
    got = await call(mcp, "get_content", content_id=cid)
    assert got["content"]["mime_type"] == "image/jpeg"
    renamed = await call(mcp, "update_content", content_id=cid, filename="card.jpg")
    assert renamed["content"]["filename"] == "card.jpg"
    assert "EMPTY_UPDATE" in await call_error(mcp, "update_content", content_id=cid)
    deleted = await call(mcp, "delete_content", content_id=cid)
    assert deleted["deleted"] is True
    error = await call_error(mcp, "get_content", content_id=cid)
    assert "NOT_FOUND (HTTP 404)" in error and "Next step" in error


async def test_raw_upload_steps_never_reveal_the_presigned_url(mcp: Client, sandbox: Sandbox) -> None:
    started = await call(mcp, "start_content_upload", filename="clip.mp4", content_type="video/mp4", file_size=1234)
    assert started["content_id"] and started["key"]
    text = str(started)
    assert "signature" not in text and "expires" not in text and "?" not in started["upload_target"]
    error = await call_error(
        mcp, "complete_content_upload", content_id=started["content_id"], key=started["key"],
        filename="clip.mp4", content_type="video/mp4",
    )  # fmt: skip
    assert "HTTP 404" in error  # nothing was PUT yet


async def test_bad_id_is_refused_locally(mcp: Client, sandbox: Sandbox) -> None:
    before = len(sandbox.ledger)
    error = await call_error(mcp, "get_content", content_id="../../v2/me")
    assert "content_id" in error and "must be a UUID" in error and len(sandbox.ledger) == before


async def test_missing_key_is_a_clear_error_not_a_crash(tmp_path: Path, media_dir: Path) -> None:
    settings = Settings.build(state_dir=tmp_path / "s", media_dirs=(media_dir,), api_key=None)
    from postqued_mcp.app import build_server

    async with Client(build_server(settings)) as client:
        assert len((await client.list_tools()).tools) == len(PUBLISHING_TOOLS | DISCOVERY)  # works without a key
        error = await call_error(client, "list_accounts")
    assert "MISSING_API_KEY" in error and "POSTQUED_API_KEY" in error


async def test_unexpected_exception_is_not_disguised(mcp: Client, monkeypatch: pytest.MonkeyPatch) -> None:
    from postqued.client import PostQuedClient

    async def boom(*_: Any, **__: Any) -> Any:
        raise RuntimeError("internal detail")

    monkeypatch.setattr(PostQuedClient, "list_accounts", boom)
    result = await mcp.call_tool("list_accounts", {})
    assert result.is_error
    text = result.content[0]
    assert isinstance(text, mt.TextContent)
    assert "internal detail" not in text.text and "Next step" not in text.text

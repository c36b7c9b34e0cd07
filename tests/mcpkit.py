"""Shared helpers for the suites that drive the MCP server through a client: calls, targets, the chain."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import mcp.types as mt
from mcp import Client

from postqued.sandbox import Sandbox
from postqued.settings import TOOLSETS as TOOLSET_NAMES
from postqued.settings import Settings

PUBLISHING_TOOLS = {
    "list_workspaces", "list_accounts", "get_creator_info", "upload_media", "start_content_upload",
    "complete_content_upload", "list_content", "get_content", "update_content", "delete_content",
    "publish_content", "get_publish_status", "wait_for_publish", "list_publish_requests", "cancel_publish",
    "cancel_publish_target", "reschedule_publish_target", "delete_publish_request", "list_publish_journal",
}  # fmt: skip


async def call(client: Client, tool: str, **args: Any) -> dict[str, Any]:
    result = await client.call_tool(tool, args)
    assert not result.is_error, result.content
    assert isinstance(result.structured_content, dict)
    return dict(result.structured_content)


async def call_error(client: Client, tool: str, **args: Any) -> str:
    result = await client.call_tool(tool, args)
    assert result.is_error, result.structured_content
    text = result.content[0]
    assert isinstance(text, mt.TextContent)
    return text.text


def draft_target(account_id: str, **extra: Any) -> dict[str, Any]:
    return {
        "platform": "tiktok",
        "account_id": account_id,
        "intent": "draft",
        "caption": "hello #sandbox",
        "options": {"privacy_level": "SELF_ONLY"},
        **extra,
    }


async def chain(client: Client, media_dir: Path) -> dict[str, Any]:
    """upload -> accounts -> creator info -> dry run -> live draft -> wait; returns the final status."""
    up = await call(client, "upload_media", path=str(media_dir / "video.mp4"))
    accounts = (await call(client, "list_accounts", platform="tiktok"))["accounts"]
    account = next(a for a in accounts if a["username"] == "@sandbox_creator")
    info = await call(client, "get_creator_info", account_id=account["id"])
    assert "SELF_ONLY" in info["privacy_level_options"]
    args = {"content_ids": [up["content"]["id"]], "targets": [draft_target(account["id"])]}
    assert (await call(client, "publish_content", **args))["valid"] is True
    live = await call(client, "publish_content", **args, dry_run=False)
    return await call(client, "wait_for_publish", publish_id=live["publish_id"], timeout_seconds=30)


def all_settings(settings: Settings, **update: Any) -> Settings:
    return settings.model_copy(update={"toolsets": frozenset(TOOLSET_NAMES), **update})


def sent(sb: Sandbox, route: str) -> int:
    return len(sb.requests(route))

"""Resources the agent can re-read without a tool call, and the guided ``publish_video`` prompt."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from mcp.server.mcpserver import Context, MCPServer

from .common import ServerState, state
from .publish import PublishView, account_usernames


def register_resources(server: MCPServer[Any], current: Callable[[], ServerState]) -> None:
    """``current`` returns the running server's state (static resources get no request context)."""

    @server.resource(
        "postqued://accounts",
        name="accounts",
        mime_type="application/json",
        description="Connected accounts of the default workspace.",
    )
    async def accounts_resource() -> str:
        accounts = await current().client.list_accounts()
        return json.dumps(
            [
                a.model_dump(mode="json", include={"id", "platform", "username", "display_name", "account_status"})
                for a in accounts
            ]
        )

    @server.resource(
        "postqued://journal",
        name="journal",
        mime_type="application/json",
        description="The 50 newest entries of the local publish journal.",
    )
    async def journal_resource() -> str:
        entries = await current().journal().list_entries(limit=50)
        return json.dumps([e.to_dict() for e in entries])

    @server.resource(
        "postqued://publish/{publish_id}",
        name="publish",
        mime_type="application/json",
        description="Status of one publish request and its targets.",
    )
    async def publish_resource(publish_id: str, ctx: Context[Any, Any]) -> str:
        status = await state(ctx).publisher.read_status(publish_id)
        return PublishView.of(status, await account_usernames(ctx, None)).model_dump_json()  # as get_publish_status

    @server.prompt(name="publish_video", description="Upload a local video and post it, step by step, safely.")
    def publish_video(path: str, platform: str = "tiktok", caption: str = "") -> str:
        return (
            f"Post the video at {path!r} to {platform}.\n"
            "1. upload_media with that path; keep the content id.\n"
            f"2. list_accounts(platform={platform!r}); if several, ask the user which account; if none, the user "
            "connects one in the PostQued app (never use another account).\n"
            "3. For TikTok: get_creator_info; ask the user for the privacy level (only from "
            "privacy_level_options; there is no default) and whether comments/duet/stitch stay on.\n"
            f"4. publish_content with dry_run=true, caption {caption!r} (ask if empty), intent 'draft' unless the "
            "user asked to post directly; show the user the plan.\n"
            "5. Only after the user approves: the same call with dry_run=false (with confirm=true if this host "
            "cannot ask the user).\n"
            "6. Do what next_step says (wait_for_publish for a post that goes out now; a scheduled one is checked "
            "after its time); report each target's final status. Never publish again after a timeout: check "
            "get_publish_status or list_publish_journal instead."
        )

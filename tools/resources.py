"""Resources the agent can re-read without a tool call, and the guided ``publish_video`` prompt.

Protocol errors carry JSON-RPC codes, never a traceback in the log: an unknown prompt or a missing
required prompt argument is -32602 (invalid params, checked by ``PromptArguments`` before the SDK renders
the prompt); an unknown resource or publish id is -32602 too (``ResourceNotFoundError``), and a PostQued
failure behind a resource is -32603 with the error's code, HTTP status and next step.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, ParamSpec

from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ResourceError, ResourceNotFoundError
from mcp.shared.exceptions import MCPError
from mcp_types import INVALID_PARAMS
from pydantic import TypeAdapter, ValidationError

from postqued.errors import PostQuedError

from .common import ServerState, UuidId, state
from .publish import PublishView, account_usernames

if TYPE_CHECKING:
    from mcp.server.context import CallNext, HandlerResult, ServerRequestContext

P = ParamSpec("P")
_PUBLISH_ID: TypeAdapter[str] = TypeAdapter(UuidId)


def _resource_errors(fn: Callable[P, Awaitable[str]]) -> Callable[P, Awaitable[str]]:
    """PostQued errors become resource errors (404: not found, -32602; others -32603) that name code and next step."""

    @functools.wraps(fn)
    async def wrapper(*args: P.args, **kwargs: P.kwargs) -> str:
        try:
            return await fn(*args, **kwargs)
        except PostQuedError as exc:
            error = ResourceNotFoundError if exc.status == 404 else ResourceError
            raise error(exc.describe()) from None

    return wrapper


class PromptArguments:
    """Server middleware: ``prompts/get`` for an unknown prompt or without a required argument is -32602."""

    def __init__(self, server: MCPServer[Any]) -> None:
        self.server = server

    async def __call__(self, ctx: ServerRequestContext[Any, Any], call_next: CallNext) -> HandlerResult:
        if ctx.method == "prompts/get" and ctx.params is not None:
            name = ctx.params.get("name")
            prompts = {p.name: p for p in await self.server.list_prompts()}
            prompt = prompts.get(name) if isinstance(name, str) else None
            if prompt is None:
                shown = repr(name[:100]) if isinstance(name, str) else "(none)"
                known = ", ".join(sorted(prompts))
                raise MCPError(INVALID_PARAMS, f"Unknown prompt {shown}; this server has: {known}.")
            given = ctx.params.get("arguments") or {}
            missing = [a.name for a in prompt.arguments or () if a.required and a.name not in given]
            if missing and isinstance(given, dict):
                raise MCPError(INVALID_PARAMS, f"Prompt {name!r} needs the argument(s): {', '.join(missing)}.")
        return await call_next(ctx)


def register_resources(server: MCPServer[Any], current: Callable[[], ServerState]) -> None:
    """``current`` returns the running server's state (static resources get no request context)."""
    server.middleware.append(PromptArguments(server))

    @server.resource(
        "postqued://accounts",
        name="accounts",
        mime_type="application/json",
        description="Connected accounts of the default workspace.",
    )
    @_resource_errors
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
    @_resource_errors
    async def journal_resource() -> str:
        entries = await current().journal().list_entries(limit=50)
        return json.dumps([e.to_dict() for e in entries])

    @server.resource(
        "postqued://publish/{publish_id}",
        name="publish",
        mime_type="application/json",
        description="Status of one publish request and its targets.",
    )
    @_resource_errors
    async def publish_resource(publish_id: str, ctx: Context[Any, Any]) -> str:
        try:
            _PUBLISH_ID.validate_python(publish_id)
        except ValidationError:
            raise ResourceNotFoundError(f"No publish request {publish_id[:100]!r}: the id is a UUID.") from None
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

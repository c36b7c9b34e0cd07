"""On-demand toolsets: ``list_toolsets`` and ``enable_toolset`` (``POSTQUED_TOOLSETS=dynamic``, the default).

Starting with the publishing tools alone keeps what a model reads small (``bench/toolslist.py``); any other
toolset is registered when the agent asks for it, through the same ``Toolset.register`` as at start, so
read-only mode and the confirmation rules apply unchanged. The server declares ``tools.listChanged`` and
tells the calling session with ``notifications/tools/list_changed`` (on the 2026-07-28 protocol: a
``subscriptions/listen`` event). Several hosts ignore it and keep the list they loaded at start (Claude
Desktop and Cursor when this was written); for them every result names the exact start setting.
In HTTP mode the tools are added for every session of the process; only the calling one is notified.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Literal

from mcp.server.lowlevel.server import NotificationOptions
from mcp.server.mcpserver import Context, MCPServer
from mcp.types import ToolAnnotations
from mcp_types.version import MODERN_PROTOCOL_VERSIONS
from pydantic import BaseModel, Field

from postqued.settings import DYNAMIC, TOOLSETS, Settings

from .schemas import advertise

if TYPE_CHECKING:
    from .common import Toolset

NAMES = frozenset({"list_toolsets", "enable_toolset"})  # the discovery pair
# the toolsets enable_toolset can add (publishing is always on with dynamic)
OnDemand = Literal["analytics", "engagement", "approvals", "team", "providers", "admin"]
PURPOSES: dict[str, str] = {
    "publishing": "Upload media, publish or schedule posts, follow them until live.",
    "analytics": "Account analytics and TikTok video statistics.",
    "engagement": "Comments: read, reply, comment, hide, like, delete.",
    "approvals": "Review workflow: draft posts for approval, revisions, suggestions, approve, schedule.",
    "team": "Collaborators, post reviewers and client reviews.",
    "providers": "Helpers: Instagram audio, Reddit subreddits and rules, LinkedIn companies, Pinterest boards.",
    "admin": "Workspaces, capabilities, billing, disconnecting an account.",
}


class ToolsetInfo(BaseModel):
    name: str
    purpose: str
    enabled: bool
    writes: bool = Field(description="Whether its tools here can change data in PostQued (never in read-only mode).")
    tools: list[str] = Field(description="The tools it has with this server's API version and read-only setting.")


class ToolsetList(BaseModel):
    toolsets: list[ToolsetInfo]
    start_setting: str = Field(description="The setting that starts the server with the toolsets on now.")


class ToolsetEnabled(BaseModel):
    name: str
    added: list[str] = Field(description="Tools added now (empty when the toolset was already on).")
    notified: bool = Field(description="Whether notifications/tools/list_changed was sent to this host.")
    start_setting: str = Field(description="The setting that starts the server with this toolset already on.")
    next_step: str


def start_setting(enabled: set[str]) -> str:
    names = [DYNAMIC, *(name for name in TOOLSETS if name in enabled and name != "publishing")]
    return f"POSTQUED_TOOLSETS={','.join(names)}"


def register_discovery(
    server: MCPServer[Any], settings: Settings, toolsets: Mapping[str, list[Toolset]], enabled: set[str]
) -> list[str]:
    """Register the discovery pair on ``server`` and declare ``tools.listChanged``; ``enabled`` is updated in place."""

    def selected(name: str) -> list[str]:
        return [spec.name for group in toolsets[name] for spec in group.selected(settings)]

    async def list_toolsets() -> ToolsetList:
        """Toolsets beyond publishing (analytics, comments, approvals, team, provider helpers, admin): their tools
        and state. Next: enable_toolset."""
        infos = []
        for name in TOOLSETS:
            specs = [spec for group in toolsets[name] for spec in group.selected(settings)]
            infos.append(
                ToolsetInfo(
                    name=name,
                    purpose=PURPOSES[name],
                    enabled=name in enabled,
                    writes=any(not spec.read_only for spec in specs),
                    tools=[spec.name for spec in specs],
                )
            )
        return ToolsetList(toolsets=infos, start_setting=start_setting(enabled))

    async def enable_toolset(ctx: Context[Any, Any], name: OnDemand) -> ToolsetEnabled:
        """Adds a toolset's tools. Next: call them; if absent, give the user the result's start_setting."""
        added: list[str] = []
        if name not in enabled:
            for group in toolsets[name]:
                added.extend(group.register(server, settings))
            enabled.add(name)
        notified = False
        if added:
            request = ctx.request_context
            if request.protocol_version in MODERN_PROTOCOL_VERSIONS:
                await ctx.notify_tools_changed()
            else:
                await request.session.send_tool_list_changed()
            notified = True
        setting = start_setting(enabled)
        tools_now = added or selected(name)
        if not tools_now:
            mode = " in read-only mode" if settings.read_only else ""
            next_step = f"{name} has no tools with PostQued API {settings.api_version}{mode}: nothing to call."
        else:
            next_step = (
                f"Call {tools_now[0]} and the others now. If this host does not list them (Claude Desktop and "
                f"Cursor keep the tools they loaded at start), tell the user to set {setting} (Claude Desktop "
                "extension: the Toolsets field) and restart the server."
            )
        return ToolsetEnabled(name=name, added=added, notified=notified, start_setting=setting, next_step=next_step)

    local = ToolAnnotations(readOnlyHint=True, openWorldHint=False)
    server.add_tool(list_toolsets, title="List toolsets", annotations=local, structured_output=True)
    changes_tools = ToolAnnotations(readOnlyHint=False, destructiveHint=False, idempotentHint=True, openWorldHint=False)
    server.add_tool(enable_toolset, title="Enable a toolset", annotations=changes_tools, structured_output=True)
    for tool_name in ("list_toolsets", "enable_toolset"):
        advertise(server, tool_name)
    _declare_list_changed(server)
    return sorted(NAMES)


def _declare_list_changed(server: MCPServer[Any]) -> None:
    """Declare ``tools.listChanged`` on the handshake (the SDK derives it from options nobody passes)."""
    lowlevel = server._lowlevel_server
    original = lowlevel.create_initialization_options

    def with_list_changed(notification_options: NotificationOptions | None = None, *args: Any, **kwargs: Any) -> Any:
        return original(notification_options or NotificationOptions(tools_changed=True), *args, **kwargs)

    lowlevel.create_initialization_options = with_list_changed  # type: ignore[method-assign]

"""Server middleware for a team's tokens file: each identity sees and calls only what it may.

A request the HTTP transport authenticated as a team identity (see ``common.request_identity``) lists only
the tools of that identity's toolsets (read tools only when it is read-only); a call to any other tool is
refused before it runs. The ``postqued://journal`` resource shows the identity's own entries; resources
that would read with the server's own key (accounts, a publish request) are refused for identities, whose
tools read with their own key. Requests without an identity pass through unchanged.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import mcp.types as mt
from mcp.shared.exceptions import MCPError
from mcp_types import INVALID_PARAMS

from postqued.settings import Settings

from .common import ServerState, request_identity

if TYPE_CHECKING:
    from mcp.server.context import CallNext, HandlerResult, ServerRequestContext

    from .common import Toolset


class IdentityPolicy:
    def __init__(self, toolsets: dict[str, list[Toolset]]) -> None:
        self._tools = {
            spec.name: (name, spec.read_only) for name, groups in toolsets.items() for g in groups for spec in g.specs
        }

    def allows(self, settings: Settings, tool: str) -> bool:
        toolset, read_only = self._tools.get(tool, ("", False))
        return toolset in settings.toolsets and (read_only or not settings.read_only)

    async def __call__(self, ctx: ServerRequestContext[Any, Any], call_next: CallNext) -> HandlerResult:
        name = request_identity(ctx.request)
        server_state = ctx.lifespan_context
        if name is None or not isinstance(server_state, ServerState):
            return await call_next(ctx)
        st = server_state.for_identity(name)
        params = ctx.params or {}
        if ctx.method == "tools/call" and not self.allows(st.settings, str(params.get("name"))):
            text = (
                f"FORBIDDEN_FOR_IDENTITY: identity {name!r} may not use {params.get('name')!r}; nothing was done. "
                "Next step: use a tool from tools/list, or ask the server's operator for access."
            )
            return mt.CallToolResult(content=[mt.TextContent(type="text", text=text)], is_error=True)
        if ctx.method == "resources/read":
            uri = str(params.get("uri"))
            if uri != "postqued://journal":
                raise MCPError(INVALID_PARAMS, f"{uri[:100]} is not served to team identities; use the matching tool.")
            entries = await st.journal().list_entries(limit=50)
            text = json.dumps([e.to_dict() for e in entries])
            return mt.ReadResourceResult(
                contents=[mt.TextResourceContents(uri=uri, mime_type="application/json", text=text)]
            )
        result = await call_next(ctx)
        if ctx.method == "tools/list" and isinstance(result, dict) and isinstance(result.get("tools"), list):
            tools = [t for t in result["tools"] if isinstance(t, dict) and self.allows(st.settings, str(t.get("name")))]
            return {**result, "tools": tools}  # the wire form: the handler's answer is already serialised
        return result

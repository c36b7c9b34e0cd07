"""MCP tools, one module per resource; toolsets group them. Each tool is a thin, typed adapter over ``postqued``.

``register_tools`` registers the read tools of every enabled toolset, then the write tools unless the
server is read-only, skipping tools whose API route the configured API version lacks.
"""

from __future__ import annotations

from typing import Any

from mcp.server.mcpserver import MCPServer

from postqued.settings import Settings
from tools import accounts, content, publish
from tools.common import Toolset

TOOLSETS: dict[str, list[Toolset]] = {
    "publishing": [accounts.TOOLS, content.TOOLS, publish.TOOLS],
}


def register_tools(server: MCPServer[Any], settings: Settings) -> list[str]:
    names: list[str] = []
    for toolset_name, groups in TOOLSETS.items():
        if toolset_name not in settings.toolsets:
            continue
        for group in groups:
            names.extend(group.register(server, settings))
    return names

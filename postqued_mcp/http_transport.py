"""Streamable HTTP: a bearer token on every request, Host and Origin checks, and the uvicorn server."""

from __future__ import annotations

import hmac
from typing import TYPE_CHECKING, Any

from postqued.errors import PostQuedError
from postqued.settings import Settings, is_loopback_host

if TYPE_CHECKING:
    from mcp.server.mcpserver import MCPServer
    from starlette.types import ASGIApp, Receive, Scope, Send


class BearerAuth:
    """ASGI middleware: every request needs ``Authorization: Bearer <POSTQUED_MCP_TOKEN>`` (constant-time)."""

    def __init__(self, app: ASGIApp, token: str) -> None:
        self.app = app
        self.token = token.encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket":  # never served; refused before the app sees it, token or not
            await send({"type": "websocket.close", "code": 1008})
            return
        if scope["type"] == "http":
            header = dict(scope.get("headers") or []).get(b"authorization", b"")
            scheme, _, supplied = header.partition(b" ")
            if scheme.lower() != b"bearer" or not hmac.compare_digest(supplied.strip(), self.token):
                from starlette.responses import JSONResponse

                response = JSONResponse(
                    {"error": "missing or wrong bearer token", "code": "UNAUTHORIZED"},
                    status_code=401,
                    headers={"WWW-Authenticate": "Bearer"},
                )
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


def http_app(server: MCPServer[Any], settings: Settings, host: str, port: int) -> ASGIApp:
    from mcp.server.transport_security import TransportSecuritySettings

    if settings.mcp_token is None:
        raise PostQuedError(
            "POSTQUED_MCP_TOKEN is not set; the HTTP transport refuses to run without a bearer token.",
            code="MISSING_MCP_TOKEN",
            next_step="Set POSTQUED_MCP_TOKEN to a long random string and give it to your MCP client.",
        )
    hosts = [f"{h}:{port}" for h in ("127.0.0.1", "localhost", "[::1]")] + ["127.0.0.1", "localhost"]
    if not is_loopback_host(host):
        hosts += [host, f"{host}:{port}"]
    origins = [f"http://{h}" for h in hosts]
    security = TransportSecuritySettings(allowed_hosts=hosts, allowed_origins=origins)
    app = server.streamable_http_app(transport_security=security, host=host, max_request_body_size=1024 * 1024)
    return BearerAuth(app, settings.mcp_token.get_secret_value())


def run_http(server: MCPServer[Any], settings: Settings, host: str, port: int) -> int:
    import uvicorn

    app = http_app(server, settings, host, port)
    uvicorn.run(app, host=host, port=port, log_level="warning")
    return 0

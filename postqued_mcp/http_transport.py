"""Streamable HTTP: a bearer token on every request, Host and Origin checks, and the uvicorn server."""

from __future__ import annotations

import hmac
from typing import TYPE_CHECKING, Any

from postqued.errors import PostQuedError
from postqued.settings import Settings, is_loopback_host
from postqued_mcp.http_limits import Limits

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


def http_app(server: MCPServer[Any], settings: Settings, host: str, port: int, limits: Limits | None = None) -> ASGIApp:
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
    body = (limits or Limits()).max_body_bytes
    app = server.streamable_http_app(transport_security=security, host=host, max_request_body_size=body)
    return BearerAuth(app, settings.mcp_token.get_secret_value())


def run_http(server: MCPServer[Any], settings: Settings, host: str, port: int, limits: Limits | None = None) -> int:
    """Serve until interrupted, with the connection limits of ``postqued_mcp.http_limits``."""
    import uvicorn

    from postqued_mcp.http_limits import uvicorn_options

    limits = limits or Limits()
    app = http_app(server, settings, host, port, limits)
    uvicorn.run(app, host=host, port=port, log_level="warning", **uvicorn_options(limits))
    return 0

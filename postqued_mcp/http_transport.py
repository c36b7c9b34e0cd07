"""Streamable HTTP: a bearer token on every request, Host and Origin checks, and the uvicorn server."""

from __future__ import annotations

import hmac
from typing import TYPE_CHECKING, Any

from postqued.errors import PostQuedError
from postqued.identities import Identity, match_token
from postqued.settings import Settings, is_loopback_host
from postqued_mcp.http_limits import Limits
from postqued_mcp.tools.common import IDENTITY_SCOPE_KEY

if TYPE_CHECKING:
    from mcp.server.mcpserver import MCPServer
    from starlette.types import ASGIApp, Receive, Scope, Send


class BearerAuth:
    """ASGI middleware: every request needs ``Authorization: Bearer <token>`` (constant-time): the server's
    ``POSTQUED_MCP_TOKEN``, or a token of ``POSTQUED_MCP_TOKENS_FILE``, whose identity the request then
    carries in its scope (``IDENTITY_SCOPE_KEY``) for the tools."""

    def __init__(self, app: ASGIApp, token: str | None, identities: tuple[Identity, ...] = ()) -> None:
        self.app = app
        self.token = token.encode() if token else None
        self.identities = identities

    def _identity(self, supplied: bytes) -> str | None:
        """``""`` for the server's own token, an identity's name, or None (refused)."""
        found = match_token(self.identities, supplied)
        if self.token is not None and hmac.compare_digest(supplied, self.token):
            return ""
        return None if found is None else found.name

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket":  # never served; refused before the app sees it, token or not
            await send({"type": "websocket.close", "code": 1008})
            return
        if scope["type"] == "http":
            header = dict(scope.get("headers") or []).get(b"authorization", b"")
            scheme, _, supplied = header.partition(b" ")
            identity = self._identity(supplied.strip()) if scheme.lower() == b"bearer" else None
            if identity is None:
                from starlette.responses import JSONResponse

                response = JSONResponse(
                    {"error": "missing or wrong bearer token", "code": "UNAUTHORIZED"},
                    status_code=401,
                    headers={"WWW-Authenticate": "Bearer"},
                )
                await response(scope, receive, send)
                return
            if identity:
                scope = {**scope, IDENTITY_SCOPE_KEY: identity}
        await self.app(scope, receive, send)


def http_app(server: MCPServer[Any], settings: Settings, host: str, port: int, limits: Limits | None = None) -> ASGIApp:
    from mcp.server.transport_security import TransportSecuritySettings

    if settings.mcp_token is None and not settings.identities:
        raise PostQuedError(
            "POSTQUED_MCP_TOKEN is not set; the HTTP transport refuses to run without a bearer token.",
            code="MISSING_MCP_TOKEN",
            next_step="Set POSTQUED_MCP_TOKEN to a long random string and give it to your MCP client "
            "(or POSTQUED_MCP_TOKENS_FILE for one identity per token).",
        )
    hosts = [f"{h}:{port}" for h in ("127.0.0.1", "localhost", "[::1]")] + ["127.0.0.1", "localhost"]
    if not is_loopback_host(host):
        hosts += [host, f"{host}:{port}"]
    origins = [f"http://{h}" for h in hosts]
    security = TransportSecuritySettings(allowed_hosts=hosts, allowed_origins=origins)
    body = (limits or Limits()).max_body_bytes
    app = server.streamable_http_app(
        transport_security=security,
        host=host,
        max_request_body_size=body,
        stateless_http=settings.http_stateless,  # no session to lose: elicitation falls back to confirm=true
    )
    token = settings.mcp_token.get_secret_value() if settings.mcp_token is not None else None
    return BearerAuth(app, token, settings.identities)


def run_http(server: MCPServer[Any], settings: Settings, host: str, port: int, limits: Limits | None = None) -> int:
    """Serve until interrupted, with the connection limits of ``postqued_mcp.http_limits``."""
    import uvicorn

    from postqued_mcp.http_limits import uvicorn_options

    limits = limits or Limits()
    app = http_app(server, settings, host, port, limits)
    uvicorn.run(app, host=host, port=port, log_level="warning", **uvicorn_options(limits))
    return 0

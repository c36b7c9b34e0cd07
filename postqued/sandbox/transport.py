"""Serving the sandbox in-process: ``httpx.ASGITransport`` whose dropped connections look like a real socket's."""

from __future__ import annotations

import httpx
from starlette.types import ASGIApp

from postqued.sandbox.faults import ConnectionDropped, ConnectionReset


class SandboxTransport(httpx.AsyncBaseTransport):
    """``httpx.ASGITransport`` whose dropped connections surface the way a real socket's do."""

    def __init__(self, app: ASGIApp) -> None:
        self._inner = httpx.ASGITransport(app=app, client=("127.0.0.1", 40000))

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        try:
            return await self._inner.handle_async_request(request)
        except ConnectionDropped:
            raise httpx.RemoteProtocolError(
                "Server disconnected without sending a response.", request=request
            ) from None
        except ConnectionReset:
            raise httpx.ReadError("[Errno 104] Connection reset by peer", request=request) from None

    async def aclose(self) -> None:
        await self._inner.aclose()

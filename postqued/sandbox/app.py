"""The sandbox's ASGI app: routing, the request ledger, faults, auth, rate limits, then the route's handler.

Requests are parsed with Starlette's ``Request``; answers are written by hand so the app controls exactly
what reaches the wire (a cut body with a matching ``Content-Length``, or no answer at all). Every answer
carries ``X-PostQued-Sandbox: 1``.

Order of processing for one request: ledger entry -> ``slow`` -> ``drop_before_commit`` -> ``status`` ->
auth -> rate limit -> handler (state commits here) -> ``drop_after_commit`` -> ``truncate_body`` -> answer.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
from typing import Any

import anyio
from starlette.requests import ClientDisconnect, Request
from starlette.types import Receive, Scope, Send

from postqued.sandbox.common import ApiFail
from postqued.sandbox.faults import ConnectionDropped, ConnectionReset, FaultBook
from postqued.sandbox.handlers import all_handlers
from postqued.sandbox.http import Ctx, Drop, Reply, error_reply
from postqued.sandbox.ledger import LedgerEntry
from postqued.sandbox.limits import RateLimiter
from postqued.sandbox.router import ROUTE_NAMES, match_route
from postqued.sandbox.storage import Storage
from postqued.sandbox.world import World

SANDBOX_HEADER = (b"x-postqued-sandbox", b"1")
_STATUS_CODES = {
    429: "RATE_LIMITED",
    500: "INTERNAL_ERROR",
    502: "BAD_GATEWAY",
    503: "SERVICE_UNAVAILABLE",
    504: "GATEWAY_TIMEOUT",
}


def _server_transport(send: Send) -> Any:
    """The socket transport behind uvicorn's ``send``, when there is one (so a drop can abort it)."""
    owner = getattr(send, "__self__", None)
    transport = getattr(owner, "transport", None)
    return transport if callable(getattr(transport, "abort", None)) else None


class SandboxApp:
    """The ASGI callable. Holds no state of its own: the world, storage, faults, limiter and ledger are given."""

    def __init__(
        self,
        *,
        world: World,
        storage: Storage,
        faults: FaultBook,
        limiter: RateLimiter,
        ledger: list[LedgerEntry],
        api_key: str,
    ) -> None:
        self.world, self.storage, self.faults = world, storage, faults
        self.limiter, self.ledger, self.api_key = limiter, ledger, api_key
        self.clock = world.clock
        self._handlers = all_handlers()
        if self._handlers.keys() != ROUTE_NAMES:
            missing, extra = ROUTE_NAMES - self._handlers.keys(), self._handlers.keys() - ROUTE_NAMES
            raise RuntimeError(
                f"routes without a handler: {sorted(missing)}; handlers without a route: {sorted(extra)}"
            )

    # -- ASGI entry -------------------------------------------------------------------------------------

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["type"] != "http":
            return
        await self._http(scope, receive, send)

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive)
        method = request.method
        spec, params, path_known = match_route(method, scope["path"])
        entry = LedgerEntry(
            method=method,
            path=scope["path"],
            route=spec.name if spec else "unknown",
            query={k: ("***" if k == "signature" else v) for k, v in request.query_params.items()},
            time=self.clock.now(),
            has_auth="authorization" in request.headers,
            idempotency_key=request.headers.get("idempotency-key"),
            workspace_id=request.query_params.get("workspaceId"),
        )
        self.ledger.append(entry)

        if spec is None:
            fail = (
                ApiFail(405, "METHOD_NOT_ALLOWED", f"{method} is not allowed on {scope['path']}")
                if path_known
                else ApiFail(404, "NOT_FOUND", f"No route for {method} {scope['path']}")
            )
            await self._answer(send, entry, error_reply(fail), method)
            return

        body = b""
        if spec.name != "storage_put":
            try:
                body = await request.body()
            except ClientDisconnect:
                return
            entry.body = body
            entry.body_size = len(body)
            if entry.workspace_id is None and body[:1] == b"{":
                with contextlib.suppress(ValueError, UnicodeDecodeError):
                    data = json.loads(body)
                    if isinstance(data, dict) and isinstance(data.get("workspaceId"), str):
                        entry.workspace_id = data["workspaceId"]

        ctx = Ctx(
            request,
            spec,
            params,
            entry,
            body,
            world=self.world,
            storage=self.storage,
            faults=self.faults,
            api_key=self.api_key,
        )
        try:
            try:
                reply = await self._process(ctx)
            except ApiFail as fail:
                reply = error_reply(fail)
            if self.faults.take("drop_after_commit", spec.name):
                entry.faults.append("drop_after_commit")
                raise Drop()
        except Drop as drop:
            await self._drop(send, reset=drop.reset)
            return
        except ClientDisconnect:
            return
        if 200 <= reply.status < 300 and reply.file is None and self.faults.take("truncate_body", spec.name):
            entry.faults.append("truncate_body")
            reply.body = reply.body[: len(reply.body) // 2]
        await self._answer(send, entry, reply, method)

    async def _process(self, ctx: Ctx) -> Reply:
        spec, entry, faults = ctx.spec, ctx.entry, self.faults
        slow = faults.take("slow", spec.name)
        if slow is not None:
            entry.faults.append("slow")
            await self.clock.sleep(float(slow.params["seconds"]))
        if faults.take("drop_before_commit", spec.name):
            entry.faults.append("drop_before_commit")
            raise Drop()
        injected = faults.take("status", spec.name)
        if injected is not None:
            entry.faults.append("status")
            status = int(injected.params["status"])
            headers: dict[str, str] = {}
            if injected.params.get("retry_after") is not None:
                headers["Retry-After"] = str(math.ceil(float(injected.params["retry_after"])))
            code = str(injected.params.get("code") or _STATUS_CODES.get(status, "SANDBOX_INJECTED_ERROR"))
            message = str(injected.params.get("error") or f"Injected sandbox failure (HTTP {status})")
            raise ApiFail(status, code, message, headers=headers)

        if spec.auth:
            token = self._authenticate(ctx.request)
            wait = self.limiter.check(token, spec.bucket)
            if wait is not None:
                raise ApiFail(
                    429,
                    "RATE_LIMITED",
                    f"Rate limit exceeded for the {spec.bucket} bucket; retry after {wait} s",
                    headers={"Retry-After": str(wait)},
                )
        self.world.advance()
        return await self._handlers[spec.name](ctx)

    def _authenticate(self, request: Request) -> str:
        header = request.headers.get("authorization")
        if not header:
            raise ApiFail(401, "UNAUTHORIZED", "Missing API key: send Authorization: Bearer <key>")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or token.strip() != self.api_key:
            raise ApiFail(401, "UNAUTHORIZED", "Invalid or revoked API key")
        return token.strip()

    async def _drop(self, send: Send, *, reset: bool) -> None:
        transport = _server_transport(send)
        if transport is None:  # in-process: the sandbox transport turns these into httpx errors
            raise ConnectionReset() if reset else ConnectionDropped()
        transport.abort()
        for _ in range(3):  # let the server notice the lost connection before the app returns
            await asyncio.sleep(0)

    async def _answer(self, send: Send, entry: LedgerEntry, reply: Reply, method: str) -> None:
        entry.status = reply.status
        headers: list[tuple[bytes, bytes]] = [SANDBOX_HEADER]
        size = reply.file.stat().st_size if reply.file is not None else len(reply.body)
        headers.append((b"content-length", str(size).encode()))
        if reply.media_type is not None:
            headers.append((b"content-type", reply.media_type.encode()))
        headers.extend((k.lower().encode(), v.encode()) for k, v in reply.headers.items())
        await send({"type": "http.response.start", "status": reply.status, "headers": headers})
        if method == "HEAD":
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        elif reply.file is not None:
            async with await anyio.open_file(reply.file, "rb") as fh:
                while chunk := await fh.read(1024 * 1024):
                    await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        else:
            await send({"type": "http.response.body", "body": reply.body, "more_body": False})

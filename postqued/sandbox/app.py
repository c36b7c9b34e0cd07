"""The sandbox's ASGI app: routing, the request ledger, faults, auth, rate limits and the route handlers.

Requests are parsed with Starlette's ``Request``; answers are written by hand so the app controls exactly
what reaches the wire (a cut body with a matching ``Content-Length``, or no answer at all). Every answer
carries ``X-PostQued-Sandbox: 1``.

Order of processing for one request: ledger entry -> ``slow`` -> ``drop_before_commit`` -> ``status`` ->
auth -> rate limit -> handler (state commits here) -> ``drop_after_commit`` -> ``truncate_body`` -> answer.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import math
import re
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio
from starlette.datastructures import UploadFile
from starlette.requests import ClientDisconnect, Request
from starlette.types import Receive, Scope, Send

from postqued.sandbox.extras import EXTRA_ROUTES, ExtrasHandlers
from postqued.sandbox.faults import ConnectionDropped, ConnectionReset
from postqued.sandbox.ledger import LedgerEntry
from postqued.sandbox.limits import ROUTE_BUCKETS
from postqued.sandbox.state import (
    ALT_MAX,
    IDEMPOTENCY_TTL,
    IMAGE_MAX_BYTES,
    IMAGE_MAX_SIDE,
    MIME_TYPES,
    UPLOAD_URL_TTL_SECONDS,
    VIDEO_MAX_BYTES,
    ApiFail,
    ContentAsset,
    IdempotencyRecord,
    PublishRequest,
    Workspace,
    iso,
    parse_time,
    stable_id,
)
from postqued.sandbox.storage import image_dimensions, same_family, sniff_mime
from postqued.sandbox.validation import parse_publish

if TYPE_CHECKING:
    from postqued.sandbox.core import Sandbox

SANDBOX_API_KEY = "pq_sandbox_0123456789abcdef"
SANDBOX_HEADER = (b"x-postqued-sandbox", b"1")
_STATUS_CODES = {
    429: "RATE_LIMITED",
    500: "INTERNAL_ERROR",
    502: "BAD_GATEWAY",
    503: "SERVICE_UNAVAILABLE",
    504: "GATEWAY_TIMEOUT",
}


@dataclass
class Reply:
    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    media_type: str | None = "application/json"
    file: Path | None = None  # streamed from disk instead of ``body``


def json_reply(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> Reply:
    body = json.dumps(data, separators=(",", ":"), ensure_ascii=False).encode()
    return Reply(status, body, dict(headers or {}))


def error_reply(fail: ApiFail) -> Reply:
    return json_reply(fail.body(), fail.status, fail.headers)


class _Drop(Exception):
    def __init__(self, *, reset: bool = False) -> None:
        super().__init__("drop")
        self.reset = reset


@dataclass(frozen=True)
class RouteSpec:
    name: str
    method: str
    pattern: re.Pattern[str]
    auth: bool
    version: str  # "v1" | "v2" | "storage"


def _route(name: str, method: str, template: str, *, auth: bool = True) -> RouteSpec:
    regex = re.sub(r"\{(\w+):path\}", r"(?P<\1>.+)", template)
    regex = re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", regex)
    version = "storage" if template.startswith("/_storage") else template.split("/")[1]
    return RouteSpec(name, method, re.compile(f"^{regex}$"), auth, version)


ROUTES: tuple[RouteSpec, ...] = (
    _route("ping", "GET", "/v2/ping", auth=False),
    _route("context", "GET", "/v2/mcp/context"),
    _route("integrations", "GET", "/v2/integrations"),
    _route("creator_info", "GET", "/v2/integrations/{id}/creator-info"),
    _route("content_upload", "POST", "/v2/content/upload"),
    _route("content_complete", "POST", "/v2/content/upload/complete"),
    _route("content_list", "GET", "/v2/content"),
    _route("content_file", "GET", "/v2/content/{id}/file"),
    _route("content_get", "GET", "/v2/content/{id}"),
    _route("content_update", "PATCH", "/v2/content/{id}"),
    _route("content_delete", "DELETE", "/v2/content/{id}"),
    _route("publish", "POST", "/v2/publish"),
    _route("publish_list", "GET", "/v2/publish"),
    _route("target_cancel", "POST", "/v2/publish/target/{id}/cancel"),
    _route("target_reschedule", "PATCH", "/v2/publish/target/{id}"),
    _route("publish_cancel", "POST", "/v2/publish/{id}/cancel"),
    _route("publish_get", "GET", "/v2/publish/{id}"),
    _route("publish_delete", "DELETE", "/v2/publish/{id}"),
    _route("storage_put", "PUT", "/_storage/{key:path}", auth=False),
    _route("v1_content_upload", "POST", "/v1/content/upload"),
    _route("v1_content_complete", "POST", "/v1/content/upload/complete"),
    _route("v1_upload_image", "POST", "/v1/content/upload-image"),
    _route("v1_platform_accounts", "GET", "/v1/platform-accounts"),
    _route("v1_publish", "POST", "/v1/content/publish"),
    _route("v1_publish_get", "GET", "/v1/content/publish/{id}"),
    # analytics, engagement, approvals, team, providers, admin: postqued/sandbox/extras.py
    *(_route(name, method, template) for name, method, template, _bucket in EXTRA_ROUTES),
)
assert {r.name for r in ROUTES} == set(ROUTE_BUCKETS), "every route needs a rate-limit bucket entry"

# Routes whose workspaceId travels in the query even though they are POSTs.
_QUERY_SCOPED_POSTS = {"publish_cancel", "target_cancel"}


def match_route(method: str, path: str) -> tuple[RouteSpec | None, dict[str, str], bool]:
    """(route, path params, path_known). ``path_known`` with no route means a wrong method (405)."""
    path_known = False
    for spec in ROUTES:
        found = spec.pattern.match(path)
        if found is None:
            continue
        if spec.method == method:
            return spec, found.groupdict(), True
        path_known = True
    return None, {}, path_known


class Ctx:
    """One request as the handlers see it."""

    def __init__(self, request: Request, spec: RouteSpec, params: dict[str, str], entry: LedgerEntry, body: bytes):
        self.request = request
        self.spec = spec
        self.params = params
        self.entry = entry
        self.body = body
        self._json: dict[str, Any] | None = None

    @property
    def base_url(self) -> str:
        return str(self.request.base_url).rstrip("/")

    def query(self, name: str) -> str | None:
        return self.request.query_params.get(name)

    def json(self) -> dict[str, Any]:
        if self._json is None:
            try:
                data = json.loads(self.body or b"null")
            except (ValueError, UnicodeDecodeError):
                raise ApiFail(400, "INVALID_JSON", "The request body is not valid JSON") from None
            if not isinstance(data, dict):
                raise ApiFail(400, "VALIDATION_ERROR", "The request body must be a JSON object")
            self._json = data
        return self._json


def _server_transport(send: Send) -> Any:
    """The socket transport behind uvicorn's ``send``, when there is one (so a drop can abort it)."""
    owner = getattr(send, "__self__", None)
    transport = getattr(owner, "transport", None)
    return transport if callable(getattr(transport, "abort", None)) else None


def _canonical_digest(body: dict[str, Any]) -> str:
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


def _require_str(body: dict[str, Any], name: str) -> str:
    value = body.get(name)
    if not isinstance(value, str) or not value:
        raise ApiFail(
            400,
            "VALIDATION_ERROR",
            f"{name}: is required (a non-empty string)",
            issues=[{"path": name, "message": "is required"}],
        )
    return value


def _optional_int(body: dict[str, Any], name: str) -> int | None:
    value = body.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ApiFail(
            400,
            "VALIDATION_ERROR",
            f"{name}: must be a non-negative integer",
            issues=[{"path": name, "message": "must be a non-negative integer"}],
        )
    return value


class SandboxApp(ExtrasHandlers):
    """The ASGI callable. Holds no state of its own beyond the locks; everything lives on the Sandbox."""

    def __init__(self, sandbox: Sandbox) -> None:
        self.sb = sandbox
        self._locks: dict[tuple[int, str, str, str], asyncio.Lock] = {}
        self._handlers: dict[str, Callable[[Ctx], Awaitable[Reply]]] = {
            spec.name: getattr(self, f"_h_{spec.name}") for spec in ROUTES
        }

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
            time=self.sb.clock.now(),
            has_auth="authorization" in request.headers,
            idempotency_key=request.headers.get("idempotency-key"),
            workspace_id=request.query_params.get("workspaceId"),
        )
        self.sb.ledger.append(entry)

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

        ctx = Ctx(request, spec, params, entry, body)
        try:
            try:
                reply = await self._process(ctx)
            except ApiFail as fail:
                reply = error_reply(fail)
            if self.sb.faults.take("drop_after_commit", spec.name):
                entry.faults.append("drop_after_commit")
                raise _Drop()
        except _Drop as drop:
            await self._drop(send, reset=drop.reset)
            return
        except ClientDisconnect:
            return
        if 200 <= reply.status < 300 and reply.file is None and self.sb.faults.take("truncate_body", spec.name):
            entry.faults.append("truncate_body")
            reply.body = reply.body[: len(reply.body) // 2]
        await self._answer(send, entry, reply, method)

    async def _process(self, ctx: Ctx) -> Reply:
        spec, entry, faults = ctx.spec, ctx.entry, self.sb.faults
        slow = faults.take("slow", spec.name)
        if slow is not None:
            entry.faults.append("slow")
            await self.sb.clock.sleep(float(slow.params["seconds"]))
        if faults.take("drop_before_commit", spec.name):
            entry.faults.append("drop_before_commit")
            raise _Drop()
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
            wait = self.sb.limiter.check(token, ROUTE_BUCKETS[spec.name])
            if wait is not None:
                bucket = ROUTE_BUCKETS[spec.name]
                raise ApiFail(
                    429,
                    "RATE_LIMITED",
                    f"Rate limit exceeded for the {bucket} bucket; retry after {wait} s",
                    headers={"Retry-After": str(wait)},
                )
        self.sb.world.advance()
        return await self._handlers[spec.name](ctx)

    @staticmethod
    def _authenticate(request: Request) -> str:
        header = request.headers.get("authorization")
        if not header:
            raise ApiFail(401, "UNAUTHORIZED", "Missing API key: send Authorization: Bearer <key>")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or token.strip() != SANDBOX_API_KEY:
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

    # -- scope ------------------------------------------------------------------------------------------

    def _workspace(self, ctx: Ctx) -> Workspace:
        """v2: the explicit workspaceId (body for POST/PATCH with a body, else query); v1: the default."""
        world = self.sb.world
        if ctx.spec.version == "v1":
            return world.default_workspace
        wid: Any = None
        if ctx.request.method in ("POST", "PATCH") and ctx.spec.name not in _QUERY_SCOPED_POSTS:
            wid = ctx.json().get("workspaceId")
        if wid is None:
            wid = ctx.query("workspaceId")
        if not wid:
            raise ApiFail(
                400,
                "MISSING_WORKSPACE_SCOPE",
                "Missing explicit machine scope: pass workspaceId (see GET /v2/mcp/context)",
            )
        workspace = world.workspaces.get(wid) if isinstance(wid, str) else None
        if workspace is None:
            raise ApiFail(403, "FORBIDDEN", "Workspace access denied")
        return workspace

    # -- system and accounts ----------------------------------------------------------------------------

    async def _h_ping(self, ctx: Ctx) -> Reply:
        return json_reply({"pong": "it worked!"})

    async def _h_context(self, ctx: Ctx) -> Reply:
        world = self.sb.world
        org = world.organization
        return json_reply(
            {
                "principal": {
                    "type": "api_key",
                    "id": stable_id("api-key"),
                    "name": "Sandbox key",
                    "keyPrefix": SANDBOX_API_KEY[:11],
                    "organizationId": org.id,
                },
                "organizations": [
                    {
                        "id": org.id,
                        "name": org.name,
                        "workspaces": [{"id": w.id, "name": w.name, "role": w.role} for w in world.workspaces.values()],
                    }
                ],
            }
        )

    async def _h_integrations(self, ctx: Ctx) -> Reply:
        workspace = self._workspace(ctx)
        accounts = self.sb.world.accounts_in(workspace.id, ctx.query("platform"))
        return json_reply({"accounts": [a.to_api() for a in accounts]})

    async def _h_creator_info(self, ctx: Ctx) -> Reply:
        workspace = self._workspace(ctx)
        account = self.sb.world.account_in(workspace.id, ctx.params["id"])
        if account.platform != "tiktok":
            raise ApiFail(
                400, "UNSUPPORTED_PLATFORM", f"Creator info exists for TikTok accounts only, not {account.platform}"
            )
        return json_reply({"creatorInfo": account.creator_info()})

    async def _h_v1_platform_accounts(self, ctx: Ctx) -> Reply:
        workspace = self._workspace(ctx)
        accounts = self.sb.world.accounts_in(workspace.id, ctx.query("platform"))
        # exactly as the original skill documents it: {"accounts": [{"id", "username"}]}, no platform
        return json_reply({"accounts": [{"id": a.id, "username": a.username} for a in accounts]})

    # -- uploads ----------------------------------------------------------------------------------------

    async def _h_content_upload(self, ctx: Ctx) -> Reply:
        return self._start_upload(ctx, self._workspace(ctx))

    async def _h_v1_content_upload(self, ctx: Ctx) -> Reply:
        return self._start_upload(ctx, self._workspace(ctx))

    def _start_upload(self, ctx: Ctx, workspace: Workspace) -> Reply:
        body = ctx.json()
        filename = _require_str(body, "filename")
        content_type = _require_str(body, "contentType")
        if content_type not in MIME_TYPES:
            raise ApiFail(
                400,
                "UNSUPPORTED_MEDIA_TYPE",
                f"contentType {content_type!r} is not supported; allowed: {', '.join(MIME_TYPES)}",
            )
        file_size = _optional_int(body, "fileSize")
        media_type, extension = MIME_TYPES[content_type]
        limit = VIDEO_MAX_BYTES if media_type == "video" else IMAGE_MAX_BYTES
        if file_size is not None and file_size > limit:
            raise ApiFail(
                400, "FILE_TOO_LARGE", f"fileSize {file_size} exceeds the {media_type} limit of {limit} bytes"
            )

        now = self.sb.clock.now()
        content_id = str(uuid.uuid4())
        key = f"content/{workspace.id}/{content_id}{extension}"
        expires = int(now.timestamp()) + UPLOAD_URL_TTL_SECONDS
        if self.sb.faults.take("expire_upload_url", ctx.spec.name):
            ctx.entry.faults.append("expire_upload_url")
            expires = int(now.timestamp()) - 1
        self.sb.world.contents[content_id] = ContentAsset(
            id=content_id,
            workspace_id=workspace.id,
            key=key,
            filename=filename,
            mime_type=content_type,
            declared_size=file_size,
            created_at=now,
        )
        url = self.sb.storage.presigned_url(ctx.base_url, key, content_type, expires)
        upload: dict[str, Any] = {"url": url, "method": "PUT", "headers": {"Content-Type": content_type}}
        if ctx.spec.version == "v2":  # v1 answers exactly as the original skill documents it: no key, no expiry
            upload.update(key=key, expiresAt=iso(datetime.fromtimestamp(expires, UTC)))
        return json_reply({"contentId": content_id, "upload": upload})

    async def _h_storage_put(self, ctx: Ctx) -> Reply:
        request, entry = ctx.request, ctx.entry
        key = ctx.params["key"]
        if "authorization" in request.headers:
            raise ApiFail(
                403,
                "AUTH_HEADER_NOT_ALLOWED",
                "Presigned storage URLs must not receive an Authorization header (the API key leaked)",
            )
        content_type = request.headers.get("content-type", "")
        try:
            expires = int(ctx.query("expires") or "")
        except ValueError:
            expires = -1
        signature = ctx.query("signature") or ""
        if expires < 0 or not self.sb.storage.verify(key, content_type, expires, signature):
            raise ApiFail(
                403,
                "SIGNATURE_MISMATCH",
                "The request signature does not match (URL altered, or Content-Type differs from the signed one)",
            )
        if self.sb.clock.now().timestamp() > expires:
            raise ApiFail(403, "EXPIRED", "The presigned URL has expired; start a new upload")
        length_header = request.headers.get("content-length")
        if length_header is None:
            raise ApiFail(411, "LENGTH_REQUIRED", "Content-Length is required")
        try:
            expected = int(length_header)
        except ValueError:
            raise ApiFail(400, "INVALID_CONTENT_LENGTH", "Content-Length is not a number") from None

        reset = self.sb.faults.take("reset_put", "storage_put")
        reset_at = int(reset.params["after_bytes"]) if reset is not None else None
        if reset_at is not None and reset_at <= 0:
            entry.faults.append("reset_put")
            raise _Drop(reset=True)
        writer = self.sb.storage.writer(key, content_type)
        try:
            async for chunk in request.stream():
                if reset_at is not None and writer.size + len(chunk) >= reset_at:
                    writer.write(chunk[: reset_at - writer.size])
                    entry.body_size = writer.size
                    entry.faults.append("reset_put")
                    raise _Drop(reset=True)
                writer.write(chunk)
                if writer.size > expected:
                    break
        except BaseException:
            writer.abort()
            raise
        entry.body_size = writer.size
        if writer.size != expected:
            writer.abort()
            raise ApiFail(400, "INCOMPLETE_BODY", f"Received {writer.size} bytes but Content-Length said {expected}")
        stored = writer.commit()
        return Reply(200, b"", {"ETag": f'"{stored.sha256[:32]}"'}, media_type=None)

    async def _h_content_complete(self, ctx: Ctx) -> Reply:
        return self._complete_upload(ctx, self._workspace(ctx))

    async def _h_v1_content_complete(self, ctx: Ctx) -> Reply:
        return self._complete_upload(ctx, self._workspace(ctx))

    def _complete_upload(self, ctx: Ctx, workspace: Workspace) -> Reply:
        body = ctx.json()
        content_id = _require_str(body, "contentId")
        key = _require_str(body, "key")
        filename = _require_str(body, "filename")
        content_type = _require_str(body, "contentType")
        size = _optional_int(body, "size")
        width = _optional_int(body, "width")
        height = _optional_int(body, "height")
        duration_ms = _optional_int(body, "durationMs")

        asset = self.sb.world.contents.get(content_id)
        if asset is None or asset.workspace_id != workspace.id or asset.status == "deleted":
            raise ApiFail(404, "NOT_FOUND", "Content not found")
        if key != asset.key:
            raise ApiFail(400, "KEY_MISMATCH", "key does not belong to this contentId")
        if content_type != asset.mime_type:
            raise ApiFail(
                400, "TYPE_MISMATCH", f"contentType {content_type} differs from the upload's {asset.mime_type}"
            )
        if asset.status == "ready":  # a repeated complete returns the same ready asset
            return json_reply({"content": asset.to_api(ctx.base_url)})
        stored = self.sb.storage.get(key)
        if stored is None:
            raise ApiFail(404, "FILE_NOT_FOUND", "Uploaded file not found: PUT the bytes to upload.url first")
        sniffed = sniff_mime(stored.head)
        if not same_family(asset.mime_type, sniffed):
            raise ApiFail(
                400,
                "TYPE_MISMATCH",
                f"The stored bytes are {sniffed or 'not a supported media type'}, not {asset.mime_type}",
            )
        if size is not None and size != stored.size:
            raise ApiFail(400, "SIZE_MISMATCH", f"size {size} differs from the {stored.size} bytes stored")
        limit = VIDEO_MAX_BYTES if asset.media_type == "video" else IMAGE_MAX_BYTES
        if stored.size > limit:
            raise ApiFail(
                400, "FILE_TOO_LARGE", f"The stored file exceeds the {asset.media_type} limit of {limit} bytes"
            )
        if asset.media_type == "image":
            measured = image_dimensions(stored.path, asset.mime_type)
            if measured is not None:
                width, height = measured
            if max(width or 0, height or 0) > IMAGE_MAX_SIDE:
                raise ApiFail(
                    400,
                    "DIMENSIONS_TOO_LARGE",
                    f"Image is {width}x{height} px; at most {IMAGE_MAX_SIDE} px on a side",
                )
            duration_ms = None
        asset.status = "ready"
        asset.filename = filename
        asset.size = stored.size
        asset.width, asset.height, asset.duration_ms = width, height, duration_ms
        return json_reply({"content": asset.to_api(ctx.base_url)})

    async def _h_v1_upload_image(self, ctx: Ctx) -> Reply:
        workspace = self._workspace(ctx)
        try:
            form = await ctx.request.form()
        except Exception:  # malformed multipart: python-multipart raises several types
            raise ApiFail(400, "VALIDATION_ERROR", "The body must be multipart/form-data with a 'file' field") from None
        try:
            upload = form.get("file")
            if not isinstance(upload, UploadFile):
                raise ApiFail(400, "VALIDATION_ERROR", "file: the multipart field 'file' is required")
            source = upload.file
            head = source.read(64)
            source.seek(0, 2)
            size = source.tell()
            source.seek(0)
            mime = sniff_mime(head)
            if mime is None or MIME_TYPES[mime][0] != "image":
                raise ApiFail(
                    400, "UNSUPPORTED_MEDIA_TYPE", "file: only JPEG, PNG, WebP or GIF images can be uploaded here"
                )
            if size > IMAGE_MAX_BYTES:
                raise ApiFail(400, "FILE_TOO_LARGE", f"file: {size} bytes exceeds the image limit of {IMAGE_MAX_BYTES}")
            content_id = str(uuid.uuid4())
            key = f"content/{workspace.id}/{content_id}{MIME_TYPES[mime][1]}"
            stored = self.sb.storage.put_file(key, mime, source)
        finally:
            await form.close()
        dims = image_dimensions(stored.path, mime)
        if dims is not None and max(dims) > IMAGE_MAX_SIDE:
            raise ApiFail(400, "DIMENSIONS_TOO_LARGE", f"Image is {dims[0]}x{dims[1]} px; at most {IMAGE_MAX_SIDE} px")
        asset = ContentAsset(
            id=content_id,
            workspace_id=workspace.id,
            key=key,
            filename=upload.filename or f"image{MIME_TYPES[mime][1]}",
            mime_type=mime,
            declared_size=size,
            created_at=self.sb.clock.now(),
            status="ready",
            size=stored.size,
            width=dims[0] if dims else None,
            height=dims[1] if dims else None,
        )
        self.sb.world.contents[content_id] = asset
        return json_reply({"contentId": content_id, "content": asset.to_api(ctx.base_url)})

    # -- content library --------------------------------------------------------------------------------

    async def _h_content_list(self, ctx: Ctx) -> Reply:
        workspace = self._workspace(ctx)

        def number(name: str, default: int, low: int, high: int) -> int:
            raw = ctx.query(name)
            if raw is None:
                return default
            try:
                value = int(raw)
            except ValueError:
                value = low - 1
            if not low <= value <= high:
                raise ApiFail(400, "VALIDATION_ERROR", f"{name}: must be an integer from {low} to {high}")
            return value

        page = number("page", 1, 1, 1_000_000)
        per_page = number("perPage", 24, 1, 60)
        media_type = ctx.query("mediaType") or "all"
        if media_type not in ("all", "image", "video"):
            raise ApiFail(400, "VALIDATION_ERROR", "mediaType: must be all, image or video")
        search = (ctx.query("search") or "").lower()
        items = [
            a
            for a in self.sb.world.contents.values()
            if a.workspace_id == workspace.id
            and a.status == "ready"
            and (media_type == "all" or a.media_type == media_type)
            and search in a.filename.lower()
        ]
        items.sort(key=lambda a: (a.created_at, a.id), reverse=True)
        total = len(items)
        window = items[(page - 1) * per_page : page * per_page]
        return json_reply(
            {
                "content": [a.to_api(ctx.base_url) for a in window],
                "pagination": {
                    "page": page,
                    "perPage": per_page,
                    "total": total,
                    "pages": math.ceil(total / per_page),
                },
            }
        )

    async def _h_content_get(self, ctx: Ctx) -> Reply:
        workspace = self._workspace(ctx)
        asset = self.sb.world.content_in(workspace.id, ctx.params["id"])
        return json_reply({"content": asset.to_api(ctx.base_url)})

    async def _h_content_file(self, ctx: Ctx) -> Reply:
        workspace = self._workspace(ctx)
        asset = self.sb.world.content_in(workspace.id, ctx.params["id"])
        stored = self.sb.storage.get(asset.key)
        if stored is None:
            raise ApiFail(404, "FILE_NOT_FOUND", "Content file not found")
        return Reply(200, media_type="application/octet-stream", file=stored.path)

    async def _h_content_update(self, ctx: Ctx) -> Reply:
        workspace = self._workspace(ctx)
        body = ctx.json()
        asset = self.sb.world.content_in(workspace.id, ctx.params["id"])
        filename, alt = body.get("filename"), body.get("alt")
        if filename is None and alt is None:
            raise ApiFail(400, "EMPTY_UPDATE", "Nothing to update: give filename and/or alt")
        if filename is not None and (not isinstance(filename, str) or not filename.strip()):
            raise ApiFail(400, "VALIDATION_ERROR", "filename: must be a non-empty string")
        if alt is not None and (not isinstance(alt, str) or len(alt) > ALT_MAX):
            raise ApiFail(400, "VALIDATION_ERROR", f"alt: must be a string of at most {ALT_MAX} characters")
        if isinstance(filename, str):
            asset.filename = filename
        if isinstance(alt, str):
            asset.alt = alt
        return json_reply({"content": asset.to_api(ctx.base_url)})

    async def _h_content_delete(self, ctx: Ctx) -> Reply:
        workspace = self._workspace(ctx)
        asset = self.sb.world.content_in(workspace.id, ctx.params["id"], ready_only=False)
        asset.status = "deleted"
        return json_reply({"success": True})

    # -- publishing -------------------------------------------------------------------------------------

    async def _h_publish(self, ctx: Ctx) -> Reply:
        return await self._publish(ctx, self._workspace(ctx), "v2")

    async def _h_v1_publish(self, ctx: Ctx) -> Reply:
        return await self._publish(ctx, self._workspace(ctx), "v1")

    async def _publish(self, ctx: Ctx, workspace: Workspace, version: str) -> Reply:
        world = self.sb.world
        if not world.subscription_active:
            raise ApiFail(402, "SUBSCRIPTION_REQUIRED", "This workspace's plan does not include API publishing")
        body = ctx.json()
        if version == "v2" and body.get("dryRun") is True:
            parsed = parse_publish(
                body, world=world, workspace_id=workspace.id, now=self.sb.clock.now(), api_version=version
            )
            return json_reply(
                {
                    "dryRun": True,
                    "valid": True,
                    "targets": [
                        {
                            "platform": t.platform,
                            "accountId": t.account_id,
                            "intent": t.intent,
                            "dispatchAt": iso(t.dispatch_at),
                            "valid": True,
                        }
                        for t in parsed.targets
                    ],
                }
            )
        key = ctx.request.headers.get("idempotency-key")
        if not key:
            raise ApiFail(400, "MISSING_IDEMPOTENCY_KEY", "A live publish needs an Idempotency-Key header")
        scope = (world.organization.id, version, key)
        lock_key = (id(asyncio.get_running_loop()), *scope)
        lock = self._locks.setdefault(lock_key, asyncio.Lock())
        async with lock:
            now = self.sb.clock.now()
            digest = _canonical_digest(body)
            record = world.idempotency.get(scope)
            if record is not None and now - record.created_at < IDEMPOTENCY_TTL:
                if record.digest != digest:
                    raise ApiFail(
                        409,
                        "IDEMPOTENCY_CONFLICT",
                        "This Idempotency-Key was already used with a different request body",
                    )
                return Reply(record.status, record.body, {"Idempotent-Replayed": "true"})
            parsed = parse_publish(body, world=world, workspace_id=workspace.id, now=now, api_version=version)
            # A storage round trip would sit here; without the lock a same-key request could slip in.
            await asyncio.sleep(0)
            request = world.create_publish(
                workspace_id=workspace.id,
                api_version=version,
                content_ids=parsed.content_ids,
                targets=parsed.targets,
                idempotency_key=key,
                body=body,
            )
            reply = json_reply(world.render_created(request, now))
            world.idempotency[scope] = IdempotencyRecord(digest, now, reply.status, reply.body, request.id)
            return reply

    async def _h_publish_list(self, ctx: Ctx) -> Reply:
        workspace = self._workspace(ctx)
        start_raw, end_raw = ctx.query("startDate"), ctx.query("endDate")
        start = end = None
        if (start_raw is None) != (end_raw is None):
            raise ApiFail(400, "INVALID_DATE_RANGE", "startDate and endDate must be given together")
        if start_raw is not None and end_raw is not None:
            start, end = parse_time(start_raw), parse_time(end_raw)
            if start is None or end is None:
                raise ApiFail(
                    400, "INVALID_DATE_RANGE", "startDate and endDate must be ISO 8601 date-times with offset"
                )
            if start > end:
                raise ApiFail(400, "INVALID_DATE_RANGE", "startDate must not be after endDate")
        world, now = self.sb.world, self.sb.clock.now()

        def in_range(request: PublishRequest) -> bool:
            if start is None or end is None:
                return True
            times = [t.dispatch_at or request.created_at for t in request.targets]
            return any(start <= moment <= end for moment in times)

        requests = [
            r
            for r in world.publish_requests.values()
            if r.workspace_id == workspace.id and r.deleted_at is None and in_range(r)
        ]
        requests.sort(key=lambda r: r.created_at, reverse=True)
        return json_reply({"publishRequests": [world.render_request(r, now) for r in requests]})

    async def _h_publish_get(self, ctx: Ctx) -> Reply:
        workspace = self._workspace(ctx)
        request = self.sb.world.request_in(workspace.id, ctx.params["id"])
        return json_reply({"publish": self.sb.world.render_request(request, self.sb.clock.now())})

    async def _h_v1_publish_get(self, ctx: Ctx) -> Reply:
        workspace = self._workspace(ctx)
        world, now = self.sb.world, self.sb.clock.now()
        request = world.request_in(workspace.id, ctx.params["id"])
        rendered = world.render_request(request, now)
        return json_reply(
            {
                "publishId": request.id,
                "status": rendered["status"],
                "createdAt": rendered["createdAt"],
                "targets": rendered["targets"],
            }
        )

    async def _h_publish_cancel(self, ctx: Ctx) -> Reply:
        workspace = self._workspace(ctx)
        world = self.sb.world
        request = world.request_in(workspace.id, ctx.params["id"])
        canceled = world.cancel_request(request)
        return json_reply(
            {
                "success": True,
                "canceledTargetIds": canceled,
                "publish": world.render_request(request, self.sb.clock.now()),
            }
        )

    async def _h_target_cancel(self, ctx: Ctx) -> Reply:
        workspace = self._workspace(ctx)
        world = self.sb.world
        _request, target = world.target_in(workspace.id, ctx.params["id"])
        world.cancel_target(target)
        return json_reply({"success": True, "target": world.render_target(target, self.sb.clock.now())})

    async def _h_target_reschedule(self, ctx: Ctx) -> Reply:
        workspace = self._workspace(ctx)
        body = ctx.json()
        world, now = self.sb.world, self.sb.clock.now()
        _request, target = world.target_in(workspace.id, ctx.params["id"])
        if "dispatchAt" not in body:
            raise ApiFail(400, "INVALID_DISPATCH_AT", "dispatchAt is required: a future ISO 8601 time, or null")
        raw = body["dispatchAt"]
        dispatch_at = None
        if raw is not None:
            dispatch_at = parse_time(raw)
            if dispatch_at is None:
                raise ApiFail(400, "INVALID_DISPATCH_AT", "dispatchAt must be an ISO 8601 time with an offset, or null")
            if dispatch_at <= now:
                raise ApiFail(400, "INVALID_DISPATCH_AT", "dispatchAt must be in the future (or null for now)")
        world.reschedule_target(target, dispatch_at)
        return json_reply({"success": True, "target": world.render_target(target, now)})

    async def _h_publish_delete(self, ctx: Ctx) -> Reply:
        workspace = self._workspace(ctx)
        world = self.sb.world
        request = world.request_in(workspace.id, ctx.params["id"])
        world.delete_request(request)
        return json_reply({"success": True})

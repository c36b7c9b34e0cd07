"""The async PostQued client: auth, the operations table, retries, rate limits, errors.

Two ``httpx.AsyncClient``s: one for the API (carries the bearer key, never follows redirects) and one
for presigned storage (no auth header at all, never follows redirects). Every call names an operation of
``postqued/api/operations.py`` and goes through ``call``, which owns the one retry policy, the local token
buckets and the mapping to typed errors.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import httpx

from postqued import __version__
from postqued.api.fields import items, obj
from postqued.api.operations import Operation, endpoints, operation
from postqued.api.retry import (
    BucketStore as BucketStore,  # re-exported: the journal's shared buckets implement it
)
from postqued.api.retry import (
    RateLimiter,
    RetryPolicy,
    calculate_retry_timeout,
    retry_after_seconds,
    should_retry,
)
from postqued.api.shape import Found, Unverified, check, read_model
from postqued.clock import Clock, SystemClock
from postqued.errors import (
    APIError,
    BadResponseError,
    LocalError,
    OutcomeUnknownError,
    PostQuedError,
    RateLimitedError,
    ServerError,
    TransportError,
    WriteOutcomeUnknownError,
    api_error,
)
from postqued.models import (
    ContentAsset,
    ContentPage,
    ContentUpdate,
    CreatorInfo,
    PlatformAccount,
    PublishRequest,
    PublishStatus,
    RequestModel,
    UploadComplete,
    UploadSession,
    UploadStart,
    Workspace,
    parse_content,
    parse_creator_info,
    parse_publish,
    parse_publish_list,
    parse_upload_session,
    parse_workspaces,
    utc_iso,
)
from postqued.settings import Settings

log = logging.getLogger("postqued.client")

# The TikTok options the original v1 skill documents (api-facts.md section 2); v1 is sent no other.
V1_TIKTOK_OPTIONS = frozenset(
    {
        "privacyLevel", "disableDuet", "disableStitch", "disableComment", "videoCoverTimestampMs", "autoAddMusic",
        "brandContentToggle", "brandOrganicToggle",
    }
)  # fmt: skip


@dataclass
class Response:
    status: int
    body: Any
    headers: httpx.Headers
    attempts: int = 1  # how many attempts this call took (1 = the first answer was used)
    unverified: Unverified | None = None  # the answer lacked a field the operation expects


class PostQuedClient:
    """Async client for PostQued v2 (default) or v1. Use as ``async with PostQuedClient(settings):``."""

    def __init__(
        self,
        settings: Settings,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        clock: Clock | None = None,
        retry: RetryPolicy | None = None,
    ) -> None:
        self.settings = settings
        self.api_version = settings.api_version
        self.routes = endpoints(settings.api_version)  # the operations this API version has, by name
        self.clock = clock or SystemClock()
        self.retry = retry or RetryPolicy(max_retries=settings.max_retries, max_retry_wait=settings.max_retry_wait)
        self.limiter = RateLimiter(settings.rate_limits, self.clock)
        self._transport = transport
        self._api: httpx.AsyncClient | None = None
        self._storage: httpx.AsyncClient | None = None
        self._workspaces: list[Workspace] | None = None

    # --- lifecycle -------------------------------------------------------------------------------

    async def __aenter__(self) -> PostQuedClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        for client in (self._api, self._storage):
            if client is not None:
                await client.aclose()
        self._api = self._storage = None

    def _timeout(self) -> httpx.Timeout:
        return httpx.Timeout(self.settings.timeout, connect=min(10.0, self.settings.timeout))

    @property
    def api(self) -> httpx.AsyncClient:
        if self._api is None:
            key = self.settings.require_api_key()  # ConfigError at the first call that needs it
            self._api = httpx.AsyncClient(
                base_url=self.settings.origin,
                headers={"Authorization": f"Bearer {key}", "User-Agent": f"postqued-mcp/{__version__}"},
                timeout=self._timeout(),
                transport=self._transport,
                follow_redirects=False,
            )
        return self._api

    @property
    def storage(self) -> httpx.AsyncClient:
        """The presigned-storage client: no PostQued credential, no redirects, long write timeout."""
        if self._storage is None:
            self._storage = httpx.AsyncClient(
                headers={"User-Agent": f"postqued-mcp/{__version__}"},
                timeout=httpx.Timeout(self.settings.timeout, write=max(120.0, self.settings.timeout)),
                transport=self._transport,
                follow_redirects=False,
            )
        return self._storage

    # --- the one request path --------------------------------------------------------------------

    def operation(self, name: str) -> tuple[Operation, str]:
        """The operation called ``name`` and its path in this client's API version."""
        op = operation(name)
        route = op.route(self.api_version)
        if route is None:
            raise LocalError(
                f"PostQued {self.api_version} has no route for {name!r}.",
                code="UNSUPPORTED_IN_API_VERSION",
                next_step="Set POSTQUED_API_VERSION=v2 to use this operation.",
            )
        return op, route.path

    @property
    def transport(self) -> httpx.AsyncBaseTransport | None:
        """The transport this client was given (tests, the embedded sandbox), for a sibling client."""
        return self._transport

    async def scope(self, workspace_id: str | None = None) -> dict[str, str]:
        """``{"workspaceId": ...}`` with the workspace resolved (v2), or ``{}`` (v1 has no workspaces)."""
        ws = await self.resolve_workspace(workspace_id)
        return {"workspaceId": ws} if ws else {}

    async def call(
        self,
        name: str,
        *ids: str,
        query: Mapping[str, Any] | None = None,
        body: RequestModel | Mapping[str, Any] | None = None,
        files: Mapping[str, tuple[str, bytes, str]] | None = None,
        idempotency_key: str | None = None,
        workspace_id: str | None = None,
        expect: bool = True,
    ) -> Response:
        """Send operation ``name`` (postqued/api/operations.py) with its path ``ids``, query and JSON body.

        The workspace goes where the operation carries it (query or body; a body that already names one is
        sent as it is). ``None`` query values are left out. The one request path: retries, buckets, errors.
        The answer is checked against the fields the operation expects (``expect=False``: an answer of
        another kind, e.g. a dry run's): ``Response.unverified`` says what it lacked.
        """
        op, template = self.operation(name)
        wire = body.wire() if isinstance(body, RequestModel) else dict(body) if body is not None else None
        if op.scope == "query":
            query = {**(query or {}), **(await self.scope(workspace_id))}
        elif op.scope == "body" and (wire is None or "workspaceId" not in wire):
            wire = {**(wire or {}), **(await self.scope(workspace_id))}
        elif op.scope == "body" and wire is not None and wire.get("workspaceId"):
            await self.resolve_workspace(str(wire["workspaceId"]))  # an identity's workspace policy holds too
        path = template.format(**{k: _path_segment(v) for k, v in zip(("id", "sub"), ids, strict=False)})
        if "{" in path:
            raise LocalError(f"{name} needs {template.count('{')} id(s).", code="INVALID_ID")
        response = await self._send(op, path, query, wire, files, idempotency_key)
        route = op.route(self.api_version)
        if expect and route is not None and route.expects:
            response.unverified = check(name, response.body, route.expects)
        return response

    async def _send(
        self,
        op: Operation,
        path: str,
        params: Mapping[str, Any] | None,
        body: Any,
        files: Mapping[str, tuple[str, bytes, str]] | None,
        idempotency_key: str | None,
    ) -> Response:
        name, route = op.name, op
        # a lost answer to a publish or a one-shot write means "unknown", never "failed" (it may have happened)
        keeps_outcome = route.kind in ("publish", "once")
        headers: dict[str, str] = {}
        content: bytes | None = None
        if body is not None:
            # serialised once: every attempt carries byte-identical content
            content = json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()
            headers["Content-Type"] = "application/json"
        if idempotency_key is not None:
            headers["Idempotency-Key"] = idempotency_key
        query = {k: _query_value(v) for k, v in (params or {}).items() if v is not None}
        attempt = 0
        sent_once = False
        while True:
            try:
                await self._wait_for_bucket(route.bucket)  # and takes one send from it
            except RateLimitedError as exc:
                if sent_once and keeps_outcome:  # an earlier attempt may have been processed
                    raise self._unknown(exc, route) from None
                raise
            try:
                response = await self.api.request(
                    route.method, path, params=query, content=content, headers=headers, files=files
                )
                raw = await response.aread()
            except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
                # the request never reached the server: always safe to repeat
                failure: PostQuedError = TransportError(f"Could not reach PostQued ({type(exc).__name__}).")
                arrived = False
            except httpx.HTTPError as exc:  # read timeout, reset, truncated: it may have been processed
                failure = TransportError(f"The connection to PostQued failed mid-request ({type(exc).__name__}).")
                arrived = True
            else:
                log.debug("%s %s -> %s", route.method, name, response.status_code)
                parsed = _decode(raw)
                if response.status_code < 300:  # a redirect is never followed, nor taken for success
                    if parsed is _UNDECODABLE and raw:
                        failure = TransportError(
                            f"PostQued answered HTTP {response.status_code} with a body that is not valid JSON.",
                            code="BAD_RESPONSE",
                        )
                        arrived = True
                    else:
                        return Response(
                            response.status_code,
                            None if parsed is _UNDECODABLE else parsed,
                            response.headers,
                            attempts=attempt + 1,
                        )
                else:
                    error = self._error(response, None if parsed is _UNDECODABLE else parsed)
                    retry = should_retry(route.kind, error, attempt=attempt, limit=self.retry.max_retries, arrived=True)
                    wait = calculate_retry_timeout(self.retry, error, attempt, self.clock.now()) if retry else None
                    if wait is None:
                        # a publish that got a 5xx, or a transient answer after an earlier attempt that may
                        # have been processed, has an unknown outcome (never "failed": it may be live)
                        if keeps_outcome and (isinstance(error, ServerError) or (sent_once and error.retryable)):
                            raise self._unknown(error, route) from None
                        if sent_once and route.kind == "write" and error.status in (404, 409):
                            # e.g. a cancel whose first answer was lost, repeated: "already canceled"
                            error.next_step = (
                                "An earlier attempt of this call may already have done it (its answer was lost): "
                                "read the current state before doing anything else."
                            )
                        raise error
                    if isinstance(error, ServerError):
                        sent_once = True
                    log.info("retrying %s after HTTP %s in %.2fs", name, error.status, wait)
                    attempt += 1
                    await self.clock.sleep(wait)
                    continue
            sent_once = sent_once or arrived
            if not should_retry(route.kind, failure, attempt=attempt, limit=self.retry.max_retries, arrived=arrived):
                raise self._unknown(failure, route) if sent_once and keeps_outcome else failure
            wait = self.retry.backoff(attempt)
            log.info("retrying %s after %s in %.2fs", name, failure.code, wait)
            attempt += 1
            await self.clock.sleep(wait)

    def _unknown(self, cause: PostQuedError, route: Operation) -> OutcomeUnknownError:
        what = "publish request" if route.kind == "publish" else "request"
        cls = OutcomeUnknownError if route.kind == "publish" else WriteOutcomeUnknownError
        return cls(
            f"The {what} was sent but its outcome is unknown ({cause.code}: {cause.message})", status=cause.status
        )

    def _error(self, response: httpx.Response, body: Any) -> APIError:
        if response.status_code < 400:
            return APIError(
                f"PostQued answered with a redirect (HTTP {response.status_code}), which this client never follows.",
                code="UNEXPECTED_REDIRECT",
                status=response.status_code,
                next_step="Check POSTQUED_BASE_URL: it must be the API origin itself, e.g. https://api.postqued.com.",
            )
        retry_at = None
        if response.status_code in (429, 503) or "retry-after" in response.headers:
            after = retry_after_seconds(response.headers.get("retry-after"), self.clock.now())
            retry_at = self.clock.now() + timedelta(seconds=after) if after is not None else None
        error = api_error(response.status_code, body, retry_at=retry_at)
        if response.status_code == 408:
            error.retryable = True
        return error

    async def _wait_for_bucket(self, bucket: str | None) -> None:
        while (delay := await self.limiter.reserve(bucket)) > 0:
            if delay > self.retry.max_retry_wait:
                raise RateLimitedError(
                    f"The local {bucket!r} rate limit is exhausted; nothing was sent.",
                    code="RATE_LIMITED_LOCAL",
                    retry_at=self.clock.now() + timedelta(seconds=delay),
                )
            await self.clock.sleep(delay)

    # --- workspace scope (v2) --------------------------------------------------------------------

    async def list_workspaces(self, *, refresh: bool = False) -> list[Workspace]:
        if self.api_version == "v1":
            return [Workspace(id="default", name="Default (v1 has one implicit workspace)")]
        if self._workspaces is None or refresh:
            found = parse_workspaces((await self.call("context")).body)
            allowed = self.settings.allowed_workspaces  # a team identity sees only its own workspaces
            self._workspaces = found if allowed is None else [w for w in found if w.id in allowed]
        return self._workspaces

    def forget_workspaces(self) -> None:
        """Drop the cached workspace list (after creating a workspace the key sees one more)."""
        self._workspaces = None

    async def resolve_workspace(self, workspace_id: str | None = None) -> str | None:
        """The explicit id, else POSTQUED_WORKSPACE_ID, else the only workspace the key can see."""
        if self.api_version == "v1":
            return None
        allowed = self.settings.allowed_workspaces
        if workspace_id and allowed is not None and workspace_id not in allowed:
            raise LocalError(
                f"Workspace {workspace_id} is not one this identity may use; nothing was sent.",
                code="WORKSPACE_NOT_ALLOWED",
                next_step="Use a workspace list_workspaces shows, or ask the server's operator for access.",
            )
        if workspace_id:
            return workspace_id
        if self.settings.workspace_id:
            return self.settings.workspace_id
        workspaces = await self.list_workspaces()
        if len(workspaces) == 1:
            return workspaces[0].id
        if not workspaces:
            raise LocalError(
                "This API key can see no workspace.",
                code="NO_WORKSPACE",
                next_step="Create a workspace in the PostQued app, or check that the key's organisation has one.",
            )
        listing = ", ".join(f"{w.id} ({w.name!r})" for w in workspaces)
        raise LocalError(
            f"This key can see {len(workspaces)} workspaces: {listing}.",
            code="WORKSPACE_AMBIGUOUS",
            next_step="Ask the user which workspace to use and pass its workspace_id, or set POSTQUED_WORKSPACE_ID.",
        )

    # --- accounts --------------------------------------------------------------------------------

    async def list_accounts(
        self, platform: str | None = None, *, workspace_id: str | None = None
    ) -> Found[PlatformAccount]:
        """Connected accounts. v1 as its docs show it: ``?platform=`` (TikTok, the one platform they name, when
        none is given) answered by ``{accounts: [{id, username}]}``; the platform is the one asked for."""
        asked = (platform or "tiktok") if self.api_version == "v1" else None
        answer = await self.call("integrations", query={"platform": asked}, workspace_id=workspace_id)
        accounts = Found[PlatformAccount](unverified=answer.unverified)
        for raw in items(answer.body, "accounts"):
            if asked is not None:
                raw.setdefault("platform", asked)
            account = read_model(PlatformAccount, raw, "integrations", answer.unverified)
            accounts.unverified = accounts.unverified or account.unverified  # a malformed field is noted too
            if platform is None or account.platform == platform:
                accounts.append(account)
        return accounts

    async def get_creator_info(self, account_id: str, *, workspace_id: str | None = None) -> CreatorInfo:
        answer = await self.call("creator_info", account_id, workspace_id=workspace_id)
        return parse_creator_info(answer.body, answer.unverified)

    # --- content ---------------------------------------------------------------------------------

    async def start_upload(
        self, filename: str, content_type: str, file_size: int | None, *, workspace_id: str | None = None
    ) -> UploadSession:
        ws = await self.resolve_workspace(workspace_id)
        request = UploadStart(filename=filename, content_type=content_type, file_size=file_size, workspace_id=ws)
        body = (await self.call("content_upload", body=request)).body
        try:
            return parse_upload_session(body)
        except ValueError as exc:
            raise BadResponseError(f"PostQued's upload answer cannot be used: {exc}.") from None

    async def complete_upload(self, request: UploadComplete) -> ContentAsset:
        if self.api_version == "v2" and request.workspace_id is None:
            request = request.model_copy(update={"workspace_id": await self.resolve_workspace(None)})
        return _content(await self.call("content_complete", body=request), "content_complete")

    async def upload_image_v1(self, filename: str, content_type: str, data: bytes) -> ContentAsset:
        """v1 only: multipart image upload (answer undocumented; see ``parse_content``)."""
        answer = await self.call("upload_image", files={"file": (filename, data, content_type)})
        return _content(answer, "upload_image")

    async def list_content(
        self,
        *,
        page: int = 1,
        per_page: int = 24,
        search: str | None = None,
        media_type: str | None = None,
        workspace_id: str | None = None,
    ) -> ContentPage:
        query = {"page": page, "perPage": per_page, "search": search, "mediaType": media_type}
        answer = await self.call("content_list", query=query, workspace_id=workspace_id)
        return read_model(ContentPage, obj(answer.body), "content_list", answer.unverified)

    async def get_content(self, content_id: str, *, workspace_id: str | None = None) -> ContentAsset:
        return _content(await self.call("content_get", content_id, workspace_id=workspace_id), "content_get")

    async def update_content(
        self,
        content_id: str,
        *,
        filename: str | None = None,
        alt: str | None = None,
        workspace_id: str | None = None,
    ) -> ContentAsset:
        ws = await self.resolve_workspace(workspace_id)
        request = ContentUpdate(filename=filename, alt=alt, workspace_id=ws)
        return _content(await self.call("content_update", content_id, body=request), "content_update")

    async def delete_content(self, content_id: str, *, workspace_id: str | None = None) -> bool:
        body = (await self.call("content_delete", content_id, workspace_id=workspace_id)).body
        return bool(body.get("success", True)) if isinstance(body, dict) else True

    # --- publishing ------------------------------------------------------------------------------

    async def scoped_request(self, request: PublishRequest) -> PublishRequest:
        """The request with its workspace resolved (v2), as it will be sent. v1 takes only the TikTok options
        its docs list: any other is refused here, before anything is sent."""
        if self.api_version == "v1":
            for i, target in enumerate(request.targets):
                extra = sorted(set(target.options.wire()) - V1_TIKTOK_OPTIONS) if target.platform == "tiktok" else []
                if extra:
                    raise LocalError(
                        f"targets[{i}].options: PostQued v1 documents no {', '.join(map(repr, extra))} option.",
                        code="INVALID_OPTIONS",
                        next_step="Leave it out, or set POSTQUED_API_VERSION=v2, which takes it.",
                    )
            return request.model_copy(update={"workspace_id": None})
        return request.model_copy(update={"workspace_id": await self.resolve_workspace(request.workspace_id)})

    async def dry_run(self, request: PublishRequest) -> Any:
        """The API's own validation (v2). Raises the API's error when the request is invalid."""
        if self.api_version != "v2":  # v1 has no dryRun: the flag would be ignored by a live route
            raise LocalError(
                f"PostQued {self.api_version} has no dry run.",
                code="UNSUPPORTED_IN_API_VERSION",
                next_step="Check the request with the local rules only, or set POSTQUED_API_VERSION=v2.",
            )
        body = (await self.scoped_request(request)).model_copy(update={"dry_run": True}).wire()
        return (await self.call("publish", body=body, expect=False)).body

    async def publish(self, request: PublishRequest, idempotency_key: str) -> PublishStatus:
        """A live publish. ``request`` must already be scoped; it is sent exactly as ``request.wire()``."""
        body = request.model_copy(update={"dry_run": False}).wire()
        response = await self.call("publish", body=body, idempotency_key=idempotency_key)
        status = parse_publish(response.body, "publishId", "publish", response.unverified)
        if status is None:
            raise OutcomeUnknownError("PostQued accepted the publish request but its answer carried no publish id.")
        # A replay on this call's first attempt means an earlier call already sent it (a replay after our
        # own retry is just the answer we lost). PostQued documents no such header; the sandbox sends one.
        replayed = response.attempts == 1 and response.headers.get("idempotent-replayed", "").lower() == "true"
        return status.model_copy(update={"replayed": True}) if replayed else status

    async def get_publish(self, publish_id: str, *, workspace_id: str | None = None) -> PublishStatus:
        answer = await self.call("publish_get", publish_id, workspace_id=workspace_id)
        if self.api_version == "v1":  # assumed: the documented publish answer's shape
            status = parse_publish(answer.body, "publishId", "publish_get", answer.unverified)
        else:  # assumed: the request under ``publish``
            status = parse_publish(obj(answer.body, "publish"), "id", "publish_get", answer.unverified)
        if status is None:
            raise BadResponseError("PostQued's status answer carried no publish id.")
        return status

    async def list_publish(
        self,
        *,
        start_date: datetime | None = None,
        end_date: datetime | None = None,
        workspace_id: str | None = None,
    ) -> Found[PublishStatus]:
        if (start_date is None) != (end_date is None):
            raise LocalError(
                "start_date and end_date go together.",
                code="INVALID_DATE_RANGE",
                next_step="Pass both dates (offset-aware ISO 8601) or neither.",
            )
        if any(d is not None and d.utcoffset() is None for d in (start_date, end_date)):
            raise LocalError(
                "start_date and end_date must carry a UTC offset.",
                code="INVALID_DATE_RANGE",
                next_step="Pass offset-aware ISO 8601 times, e.g. 2026-12-01T00:00:00Z.",
            )
        query = {"startDate": start_date, "endDate": end_date}
        answer = await self.call("publish_list", query=query, workspace_id=workspace_id)
        return Found(parse_publish_list(answer.body, answer.unverified), answer.unverified)

    async def cancel_publish(self, publish_id: str, *, workspace_id: str | None = None) -> Any:
        return (await self.call("publish_cancel", publish_id, workspace_id=workspace_id)).body

    async def cancel_target(self, target_id: str, *, workspace_id: str | None = None) -> Any:
        return (await self.call("target_cancel", target_id, workspace_id=workspace_id)).body

    async def reschedule_target(
        self, target_id: str, dispatch_at: datetime | None, *, workspace_id: str | None = None
    ) -> Any:
        if dispatch_at is not None and dispatch_at.utcoffset() is None:
            raise LocalError(
                "dispatch_at must carry a UTC offset.",
                code="INVALID_DISPATCH_AT",
                next_step="Pass e.g. 2026-12-01T09:00:00Z, or null to dispatch now.",
            )
        body = {"dispatchAt": _query_value(dispatch_at) if dispatch_at else None}
        return (await self.call("target_reschedule", target_id, body=body, workspace_id=workspace_id)).body

    async def delete_publish(self, publish_id: str, *, workspace_id: str | None = None) -> Any:
        return (await self.call("publish_delete", publish_id, workspace_id=workspace_id)).body


# --- helpers -------------------------------------------------------------------------------------

_UNDECODABLE = object()


def _decode(raw: bytes) -> Any:
    if not raw:
        return None
    try:
        return json.loads(raw)
    except ValueError:
        return _UNDECODABLE


def _content(answer: Response, operation: str) -> ContentAsset:
    asset = parse_content(answer.body, operation, answer.unverified)
    if asset is None:
        raise BadResponseError(f"PostQued's answer to {operation} carried no content asset.")
    return asset


def _path_segment(value: str | None) -> str:
    """Ids go into paths; refuse anything that could change the path (slashes, dots, encoded bytes)."""
    if not value or len(value) > 100 or not all(c.isascii() and (c.isalnum() or c in "-_") for c in value):
        raise LocalError(
            f"{value!r} is not a valid id.",
            code="INVALID_ID",
            next_step="Use an id exactly as a list or get tool returned it (letters, digits, '-').",
        )
    return value


def _query_value(value: Any) -> Any:
    if isinstance(value, datetime):
        return utc_iso(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    return value

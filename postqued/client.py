"""The async PostQued client: auth, the operations table, retries, rate limits, errors.

Two ``httpx.AsyncClient``s: one for the API (carries the bearer key, never follows redirects) and one
for presigned storage (no auth header at all, never follows redirects). Every call names an operation of
``postqued/api/operations.py`` and goes through ``call``, which owns the one retry policy, the local token
buckets and the mapping to typed errors.
"""

from __future__ import annotations

import json
import logging
import random
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any, Protocol

import httpx

from postqued import __version__
from postqued.api.operations import Operation, endpoints, operation
from postqued.clock import Clock, SystemClock
from postqued.errors import (
    APIError,
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


@dataclass
class RetryPolicy:
    """One policy for every call class: capped, jittered exponential backoff and a Retry-After cap."""

    max_retries: int = 2
    base_delay: float = 0.5
    max_delay: float = 8.0
    max_retry_wait: float = 30.0
    rng: random.Random = field(default_factory=random.Random)

    def backoff(self, attempt: int) -> float:
        """Full jitter over ``base * 2**attempt`` capped at ``max_delay`` (attempt counts from 0)."""
        return self.rng.uniform(0, min(self.max_delay, self.base_delay * (2**attempt)))


class BucketStore(Protocol):
    """Where the sends of a rate-limit bucket are counted when several processes share one PostQued key
    (e.g. the team journal's database): ``reserve`` records one send now and returns 0 if the bucket has
    room within the window, else records nothing and returns the seconds until it has room."""

    async def reserve(self, bucket: str, limit: int, window: float) -> float: ...


class RateLimiter:
    """Local sliding-window buckets matching PostQued's per-minute limits, so bursts queue, not 429.

    With a ``store`` the buckets are shared by every process that uses the same store (and key)."""

    window = 60.0
    margin = 0.25  # clocks of two machines never agree exactly

    def __init__(self, limits: Mapping[str, int], clock: Clock, store: BucketStore | None = None) -> None:
        self._limits = dict(limits)
        self._clock = clock
        self._sent: dict[str, deque[float]] = {name: deque() for name in limits}
        self.store = store

    async def reserve(self, bucket: str | None) -> float:
        """Take one send from ``bucket`` now (0) or say how long until it has room (nothing taken)."""
        limit = self._limits.get(bucket) if bucket else None
        if self.store is not None and bucket is not None and limit:
            try:
                return await self.store.reserve(bucket, limit, self.window + self.margin)
            except PostQuedError as exc:  # the shared store is down: this process's own count still holds
                log.warning("shared rate-limit bucket %s unavailable (%s); counting locally", bucket, exc.code)
        delay = self.delay(bucket)
        if delay <= 0:
            self.take(bucket)
        return delay

    def delay(self, bucket: str | None) -> float:
        """Seconds until ``bucket`` has room (0 when it has room now)."""
        limit = self._limits.get(bucket) if bucket else None
        if bucket is None or not limit:
            return 0.0
        sent = self._sent[bucket]
        now = self._clock.monotonic()
        while sent and now - sent[0] >= self.window + self.margin:
            sent.popleft()
        if len(sent) < limit:
            return 0.0
        return sent[0] + self.window + self.margin - now

    def take(self, bucket: str | None) -> None:
        if bucket in self._sent:
            self._sent[bucket].append(self._clock.monotonic())


@dataclass
class Response:
    status: int
    body: Any
    headers: httpx.Headers
    attempts: int = 1  # how many attempts this call took (1 = the first answer was used)


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
    ) -> Response:
        """Send operation ``name`` (postqued/api/operations.py) with its path ``ids``, query and JSON body.

        The workspace goes where the operation carries it (query or body; a body that already names one is
        sent as it is). ``None`` query values are left out. The one request path: retries, buckets, errors.
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
        return await self._send(op, path, query, wire, files, idempotency_key)

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
                unknown = sent_once and keeps_outcome
            except httpx.HTTPError as exc:  # read timeout, reset, truncated: it may have been processed
                sent_once = True
                failure = TransportError(f"The connection to PostQued failed mid-request ({type(exc).__name__}).")
                unknown = keeps_outcome
                if route.kind == "once":  # no key to make a second attempt safe
                    raise self._unknown(failure, route) from None
            else:
                log.debug("%s %s -> %s", route.method, name, response.status_code)
                parsed = _decode(raw)
                if response.status_code < 300:  # a redirect is never followed, nor taken for success
                    if parsed is _UNDECODABLE and raw:
                        sent_once = True
                        failure = TransportError(
                            f"PostQued answered HTTP {response.status_code} with a body that is not valid JSON.",
                            code="BAD_RESPONSE",
                        )
                        unknown = keeps_outcome
                        if route.kind == "once":
                            raise self._unknown(failure, route) from None
                    else:
                        return Response(
                            response.status_code,
                            None if parsed is _UNDECODABLE else parsed,
                            response.headers,
                            attempts=attempt + 1,
                        )
                else:
                    error = self._error(response, None if parsed is _UNDECODABLE else parsed)
                    # a one-shot write is repeated only after a 429 (refused, so not processed)
                    repeatable = route.kind != "once" or isinstance(error, RateLimitedError)
                    retry = repeatable and error.retryable and attempt < self.retry.max_retries
                    wait = self._retry_wait(error, attempt) if retry else None
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
            if attempt >= self.retry.max_retries:
                raise self._unknown(failure, route) if unknown else failure
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
            after = _retry_after(response.headers.get("retry-after"), self.clock.now())
            retry_at = self.clock.now() + timedelta(seconds=after) if after is not None else None
        error = api_error(response.status_code, body, retry_at=retry_at)
        if response.status_code == 408:
            error.retryable = True
        return error

    def _retry_wait(self, error: APIError, attempt: int) -> float | None:
        """Seconds to wait before the next attempt, or None when Retry-After exceeds the cap."""
        if error.retry_at is not None:
            wait = max(0.0, (error.retry_at - self.clock.now()).total_seconds())
            return wait if wait <= self.retry.max_retry_wait else None
        return self.retry.backoff(attempt)

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
    ) -> list[PlatformAccount]:
        query = {"platform": platform} if self.api_version == "v1" else {}
        body = (await self.call("integrations", query=query, workspace_id=workspace_id)).body
        raw = body.get("accounts", []) if isinstance(body, dict) else body if isinstance(body, list) else []
        accounts = [PlatformAccount.model_validate(a) for a in raw if isinstance(a, dict) and a.get("id")]
        return [a for a in accounts if platform is None or a.platform == platform]

    async def get_creator_info(self, account_id: str, *, workspace_id: str | None = None) -> CreatorInfo:
        body = (await self.call("creator_info", account_id, workspace_id=workspace_id)).body
        return parse_creator_info(body)

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
            raise APIError(f"Unexpected upload answer: {exc}.", code="BAD_RESPONSE") from None

    async def complete_upload(self, request: UploadComplete) -> ContentAsset:
        if self.api_version == "v2" and request.workspace_id is None:
            request = request.model_copy(update={"workspace_id": await self.resolve_workspace(None)})
        body = (await self.call("content_complete", body=request)).body
        return _content_or_error(body)

    async def upload_image_v1(self, filename: str, content_type: str, data: bytes) -> ContentAsset:
        """v1 only: multipart image upload (answer undocumented: contentId, id or content.id)."""
        body = (await self.call("upload_image", files={"file": (filename, data, content_type)})).body
        return _content_or_error(body)

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
        body = (await self.call("content_list", query=query, workspace_id=workspace_id)).body
        return ContentPage.model_validate(body or {})

    async def get_content(self, content_id: str, *, workspace_id: str | None = None) -> ContentAsset:
        body = (await self.call("content_get", content_id, workspace_id=workspace_id)).body
        return _content_or_error(body)

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
        body = (await self.call("content_update", content_id, body=request)).body
        return _content_or_error(body)

    async def delete_content(self, content_id: str, *, workspace_id: str | None = None) -> bool:
        body = (await self.call("content_delete", content_id, workspace_id=workspace_id)).body
        return bool(body.get("success", True)) if isinstance(body, dict) else True

    # --- publishing ------------------------------------------------------------------------------

    async def scoped_request(self, request: PublishRequest) -> PublishRequest:
        """The request with its workspace resolved (v2), as it will be sent."""
        if self.api_version == "v1":
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
        return (await self.call("publish", body=body)).body

    async def publish(self, request: PublishRequest, idempotency_key: str) -> PublishStatus:
        """A live publish. ``request`` must already be scoped; it is sent exactly as ``request.wire()``."""
        body = request.model_copy(update={"dry_run": False}).wire()
        response = await self.call("publish", body=body, idempotency_key=idempotency_key)
        try:
            status = parse_publish(response.body)
        except ValueError:
            raise OutcomeUnknownError(
                "PostQued accepted the publish request but its answer carried no publish id."
            ) from None
        # A replay on this call's first attempt means an earlier call already sent it (a replay after our
        # own retry is just the answer we lost). PostQued documents no such header; the sandbox sends one.
        replayed = response.attempts == 1 and response.headers.get("idempotent-replayed", "").lower() == "true"
        return status.model_copy(update={"replayed": True}) if replayed else status

    async def get_publish(self, publish_id: str, *, workspace_id: str | None = None) -> PublishStatus:
        body = (await self.call("publish_get", publish_id, workspace_id=workspace_id)).body
        try:
            status = parse_publish(body)
        except ValueError:
            raise APIError("PostQued's status answer carried no publish id.", code="BAD_RESPONSE") from None
        return status if status.id else status.model_copy(update={"id": publish_id})

    async def list_publish(
        self,
        *,
        start_date: datetime | None = None,
        end_date: datetime | None = None,
        workspace_id: str | None = None,
    ) -> list[PublishStatus]:
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
        return parse_publish_list((await self.call("publish_list", query=query, workspace_id=workspace_id)).body)

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


def _content_or_error(body: Any) -> ContentAsset:
    try:
        return parse_content(body)
    except ValueError:
        raise APIError("PostQued's answer carried no content asset.", code="BAD_RESPONSE") from None


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


def _retry_after(raw: str | None, now: datetime) -> float | None:
    if not raw:
        return None
    try:
        return max(0.0, float(raw))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(raw)
    except (TypeError, ValueError):
        return None
    return max(0.0, (when - now).total_seconds())

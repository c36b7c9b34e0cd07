"""The async PostQued client: auth, one route table per API version, retries, rate limits, errors.

Two ``httpx.AsyncClient``s: one for the API (carries the bearer key, never follows redirects) and one
for presigned storage (no auth header at all, never follows redirects). Every call goes through
``_send``, which owns the one retry policy, the local token buckets and the mapping to typed errors.
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
from typing import Any, Literal

import httpx

from postqued import __version__
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

Bucket = Literal["upload", "read", "publish", "delete"]
# How a call may be repeated: reads always; idempotent writes (same effect twice) on any transient
# failure; publish only with the same key and byte-identical body, and a lost answer is "unknown".
# "once": a write that is not idempotent and has no key: repeated only while it cannot have reached PostQued.
CallKind = Literal["read", "write", "publish", "once"]


@dataclass(frozen=True)
class Route:
    method: str
    path: str
    bucket: Bucket | None  # None: not metered locally
    kind: CallKind


ROUTES: dict[str, dict[str, Route]] = {
    "v2": {
        "context": Route("GET", "/v2/mcp/context", "read", "read"),
        "integrations": Route("GET", "/v2/integrations", "read", "read"),
        "creator_info": Route("GET", "/v2/integrations/{id}/creator-info", "read", "read"),
        "content_upload": Route("POST", "/v2/content/upload", "upload", "write"),
        "content_complete": Route("POST", "/v2/content/upload/complete", "upload", "write"),
        "content_list": Route("GET", "/v2/content", "read", "read"),
        "content_get": Route("GET", "/v2/content/{id}", "read", "read"),
        "content_update": Route("PATCH", "/v2/content/{id}", "upload", "write"),
        "content_delete": Route("DELETE", "/v2/content/{id}", "delete", "write"),
        "publish": Route("POST", "/v2/publish", "publish", "publish"),
        "publish_list": Route("GET", "/v2/publish", "read", "read"),
        "publish_get": Route("GET", "/v2/publish/{id}", "read", "read"),
        "publish_cancel": Route("POST", "/v2/publish/{id}/cancel", "publish", "write"),
        "target_cancel": Route("POST", "/v2/publish/target/{id}/cancel", "publish", "write"),
        "target_reschedule": Route("PATCH", "/v2/publish/target/{id}", "publish", "write"),
        "publish_delete": Route("DELETE", "/v2/publish/{id}", "delete", "write"),
        # Toolsets beyond publishing (postqued/extras.py). Their writes carry no idempotency key, so they are
        # "once": repeated only while they cannot have reached PostQued. PostQued documents a bucket for
        # deletes only; other writes are not metered locally (a 429 is still honoured). "{sub}": a 2nd id.
        "workspace_create": Route("POST", "/v2/organizations/{id}/workspaces", None, "once"),
        "billing": Route("GET", "/v2/billing", "read", "read"),
        "billing_capabilities": Route("GET", "/v2/billing/capabilities", "read", "read"),
        "billing_usage": Route("GET", "/v2/billing/usage", "read", "read"),
        "integration_delete": Route("DELETE", "/v2/integrations/{id}", "delete", "once"),
        "instagram_audio": Route("GET", "/v2/integrations/{id}/instagram/audio", "read", "read"),
        "reddit_subreddits": Route("GET", "/v2/integrations/{id}/reddit/subreddits", "read", "read"),
        "reddit_restrictions": Route("GET", "/v2/integrations/{id}/reddit/restrictions", "read", "read"),
        "linkedin_companies": Route("GET", "/v2/integrations/{id}/linkedin/companies", "read", "read"),
        "pinterest_boards": Route("GET", "/v2/integrations/{id}/pinterest/boards", "read", "read"),
        "analytics_posts": Route("GET", "/v2/analytics/posts", "read", "read"),
        "analytics_videos": Route("GET", "/v2/analytics/videos", "read", "read"),
        "engagement": Route("GET", "/v2/engagement", "read", "read"),
        "engagement_reply": Route("POST", "/v2/engagement/comments/reply", None, "once"),
        "engagement_comment": Route("POST", "/v2/engagement/posts/comment", None, "once"),
        "engagement_hide": Route("POST", "/v2/engagement/comments/hide", None, "once"),
        "engagement_like": Route("POST", "/v2/engagement/comments/like", None, "once"),
        "engagement_delete": Route("POST", "/v2/engagement/comments/delete", None, "once"),
        "posts": Route("GET", "/v2/posts", "read", "read"),
        "post_create": Route("POST", "/v2/posts", None, "once"),
        "post_get": Route("GET", "/v2/posts/{id}", "read", "read"),
        "post_revision": Route("POST", "/v2/posts/{id}/revisions", None, "once"),
        "post_suggestion": Route("POST", "/v2/posts/{id}/suggestions", None, "once"),
        "post_suggestion_accept": Route("POST", "/v2/posts/{id}/suggestions/{sub}/accept", None, "once"),
        "post_suggestion_decline": Route("POST", "/v2/posts/{id}/suggestions/{sub}/decline", None, "once"),
        "post_comment": Route("POST", "/v2/posts/{id}/comments", None, "once"),
        "post_submit": Route("POST", "/v2/posts/{id}/submit", None, "once"),
        "post_request_changes": Route("POST", "/v2/posts/{id}/request-changes", None, "once"),
        "post_approve": Route("POST", "/v2/posts/{id}/approve", None, "once"),
        "post_schedule": Route("POST", "/v2/posts/{id}/schedule", None, "once"),
        "post_publish": Route("POST", "/v2/posts/{id}/publish", None, "once"),
        "collaborators": Route("GET", "/v2/workspaces/{id}/collaborators", "read", "read"),
        "invitation_create": Route("POST", "/v2/workspaces/{id}/invitations", None, "once"),
        "invitation_revoke": Route("POST", "/v2/workspaces/{id}/invitations/{sub}/revoke", None, "once"),
        "member_update": Route("PATCH", "/v2/workspaces/{id}/members/{sub}", None, "once"),
        "member_remove": Route("DELETE", "/v2/workspaces/{id}/members/{sub}", "delete", "once"),
        "post_reviewers": Route("GET", "/v2/posts/{id}/reviewers", "read", "read"),
        "reviewer_invite": Route("POST", "/v2/posts/{id}/reviewer-invitations", None, "once"),
        "reviewer_invitation_revoke": Route("POST", "/v2/posts/{id}/reviewer-invitations/{sub}/revoke", None, "once"),
        "reviewer_remove": Route("DELETE", "/v2/posts/{id}/reviewers/{sub}", "delete", "once"),
        "client_reviews": Route("GET", "/v2/client-reviews", "read", "read"),
        "client_review_get": Route("GET", "/v2/client-reviews/{id}", "read", "read"),
        "client_suggestion": Route("POST", "/v2/client-reviews/{id}/suggestions", None, "once"),
        "client_comment": Route("POST", "/v2/client-reviews/{id}/comments", None, "once"),
        "client_request_changes": Route("POST", "/v2/client-reviews/{id}/request-changes", None, "once"),
        "client_approve": Route("POST", "/v2/client-reviews/{id}/approve", None, "once"),
    },
    "v1": {
        "content_upload": Route("POST", "/v1/content/upload", "upload", "write"),
        "content_complete": Route("POST", "/v1/content/upload/complete", "upload", "write"),
        "upload_image": Route("POST", "/v1/content/upload-image", "upload", "write"),
        "integrations": Route("GET", "/v1/platform-accounts", "read", "read"),
        "publish": Route("POST", "/v1/content/publish", "publish", "publish"),
        "publish_get": Route("GET", "/v1/content/publish/{id}", "read", "read"),
    },
}


def supports(api_version: str, route: str) -> bool:
    """Whether ``route`` exists in ``api_version`` (tools without a route are not registered)."""
    return route in ROUTES[api_version]


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


class RateLimiter:
    """Local sliding-window buckets matching PostQued's per-minute limits, so bursts queue, not 429."""

    window = 60.0
    margin = 0.25  # clocks of two machines never agree exactly

    def __init__(self, limits: Mapping[str, int], clock: Clock) -> None:
        self._limits = dict(limits)
        self._clock = clock
        self._sent: dict[str, deque[float]] = {name: deque() for name in limits}

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
        self.routes = ROUTES[settings.api_version]
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

    def route(self, name: str) -> Route:
        try:
            return self.routes[name]
        except KeyError:
            raise LocalError(
                f"PostQued {self.api_version} has no route for {name!r}.",
                code="UNSUPPORTED_IN_API_VERSION",
                next_step="Set POSTQUED_API_VERSION=v2 to use this operation.",
            ) from None

    async def _send(
        self,
        name: str,
        *,
        path_id: str | None = None,
        sub_id: str | None = None,
        params: Mapping[str, Any] | None = None,
        body: Any = None,
        files: Mapping[str, tuple[str, bytes, str]] | None = None,
        idempotency_key: str | None = None,
    ) -> Response:
        route = self.route(name)
        ids = {"id": path_id, "sub": sub_id}
        path = route.path.format(**{k: _path_segment(v) for k, v in ids.items() if "{" + k + "}" in route.path})
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
                await self._wait_for_bucket(route.bucket)
            except RateLimitedError as exc:
                if sent_once and keeps_outcome:  # an earlier attempt may have been processed
                    raise self._unknown(exc, route) from None
                raise
            self.limiter.take(route.bucket)
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
                log.debug("%s %s -> %s", route.method, route.path, response.status_code)
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

    def _unknown(self, cause: PostQuedError, route: Route) -> OutcomeUnknownError:
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
        while (delay := self.limiter.delay(bucket)) > 0:
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
            self._workspaces = parse_workspaces((await self._send("context")).body)
        return self._workspaces

    async def resolve_workspace(self, workspace_id: str | None = None) -> str | None:
        """The explicit id, else POSTQUED_WORKSPACE_ID, else the only workspace the key can see."""
        if self.api_version == "v1":
            return None
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

    async def _scoped(self, workspace_id: str | None) -> dict[str, Any]:
        ws = await self.resolve_workspace(workspace_id)
        return {"workspaceId": ws} if ws else {}

    # --- accounts --------------------------------------------------------------------------------

    async def list_accounts(
        self, platform: str | None = None, *, workspace_id: str | None = None
    ) -> list[PlatformAccount]:
        params: dict[str, Any] = {"platform": platform} if self.api_version == "v1" else {}
        params.update(await self._scoped(workspace_id))
        body = (await self._send("integrations", params=params)).body
        raw = body.get("accounts", []) if isinstance(body, dict) else body if isinstance(body, list) else []
        accounts = [PlatformAccount.model_validate(a) for a in raw if isinstance(a, dict) and a.get("id")]
        return [a for a in accounts if platform is None or a.platform == platform]

    async def get_creator_info(self, account_id: str, *, workspace_id: str | None = None) -> CreatorInfo:
        body = (await self._send("creator_info", path_id=account_id, params=await self._scoped(workspace_id))).body
        return parse_creator_info(body)

    # --- content ---------------------------------------------------------------------------------

    async def start_upload(
        self, filename: str, content_type: str, file_size: int | None, *, workspace_id: str | None = None
    ) -> UploadSession:
        ws = await self.resolve_workspace(workspace_id)
        request = UploadStart(filename=filename, content_type=content_type, file_size=file_size, workspace_id=ws)
        body = (await self._send("content_upload", body=request.wire())).body
        try:
            return parse_upload_session(body)
        except ValueError as exc:
            raise APIError(f"Unexpected upload answer: {exc}.", code="BAD_RESPONSE") from None

    async def complete_upload(self, request: UploadComplete) -> ContentAsset:
        if self.api_version == "v2" and request.workspace_id is None:
            request = request.model_copy(update={"workspace_id": await self.resolve_workspace(None)})
        body = (await self._send("content_complete", body=request.wire())).body
        return _content_or_error(body)

    async def upload_image_v1(self, filename: str, content_type: str, data: bytes) -> ContentAsset:
        """v1 only: multipart image upload (answer undocumented: contentId, id or content.id)."""
        body = (await self._send("upload_image", files={"file": (filename, data, content_type)})).body
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
        params = {"page": page, "perPage": per_page, "search": search, "mediaType": media_type}
        params.update(await self._scoped(workspace_id))
        return ContentPage.model_validate((await self._send("content_list", params=params)).body or {})

    async def get_content(self, content_id: str, *, workspace_id: str | None = None) -> ContentAsset:
        body = (await self._send("content_get", path_id=content_id, params=await self._scoped(workspace_id))).body
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
        body = (await self._send("content_update", path_id=content_id, body=request.wire())).body
        return _content_or_error(body)

    async def delete_content(self, content_id: str, *, workspace_id: str | None = None) -> bool:
        params = await self._scoped(workspace_id)
        body = (await self._send("content_delete", path_id=content_id, params=params)).body
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
        return (await self._send("publish", body=body)).body

    async def publish(self, request: PublishRequest, idempotency_key: str) -> PublishStatus:
        """A live publish. ``request`` must already be scoped; it is sent exactly as ``request.wire()``."""
        body = request.model_copy(update={"dry_run": False}).wire()
        response = await self._send("publish", body=body, idempotency_key=idempotency_key)
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
        params = await self._scoped(workspace_id)
        body = (await self._send("publish_get", path_id=publish_id, params=params)).body
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
        params: dict[str, Any] = {"startDate": start_date, "endDate": end_date}
        params.update(await self._scoped(workspace_id))
        return parse_publish_list((await self._send("publish_list", params=params)).body)

    async def cancel_publish(self, publish_id: str, *, workspace_id: str | None = None) -> Any:
        params = await self._scoped(workspace_id)
        return (await self._send("publish_cancel", path_id=publish_id, params=params)).body

    async def cancel_target(self, target_id: str, *, workspace_id: str | None = None) -> Any:
        params = await self._scoped(workspace_id)
        return (await self._send("target_cancel", path_id=target_id, params=params)).body

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
        body.update(await self._scoped(workspace_id))
        return (await self._send("target_reschedule", path_id=target_id, body=body)).body

    async def delete_publish(self, publish_id: str, *, workspace_id: str | None = None) -> Any:
        params = await self._scoped(workspace_id)
        return (await self._send("publish_delete", path_id=publish_id, params=params)).body


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

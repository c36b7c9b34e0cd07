"""The simulator's in-memory world: tenancy, accounts, content assets, publish requests and their targets.

Nothing here knows about HTTP. Target states are never stored: they are computed from the clock whenever
they are read (see ``World.target_status``), so advancing a ``ManualClock`` drives the whole state machine.
The one thing decided eagerly is a target's provider outcome, fixed when it is dispatched (``World.advance``),
because TikTok's posting caps depend on the order in which targets reach the provider.
"""

from __future__ import annotations

import itertools
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from postqued.clock import Clock

# ---------------------------------------------------------------------------------------------------------
# Constants shared by the app and the validation rules

PLATFORMS: tuple[str, ...] = (
    "tiktok",
    "instagram",
    "facebook",
    "threads",
    "linkedin",
    "youtube",
    "twitter",
    "pinterest",
    "reddit",
    "mastodon",
    "bluesky",
)
PRIVACY_LEVELS: tuple[str, ...] = (
    "PUBLIC_TO_EVERYONE",
    "MUTUAL_FOLLOW_FRIENDS",
    "FOLLOWER_OF_CREATOR",
    "SELF_ONLY",
)
# MIME type -> (media type, storage key extension)
MIME_TYPES: dict[str, tuple[str, str]] = {
    "video/mp4": ("video", ".mp4"),
    "video/webm": ("video", ".webm"),
    "video/quicktime": ("video", ".mov"),
    "image/jpeg": ("image", ".jpg"),
    "image/png": ("image", ".png"),
    "image/webp": ("image", ".webp"),
    "image/gif": ("image", ".gif"),
}
VIDEO_MAX_BYTES = 4 * 1024**3  # "4 GB", read as GiB
IMAGE_MAX_BYTES = 20 * 1024**2  # "20 MB", read as MiB
IMAGE_MAX_SIDE = 4096  # px on either side, measured from the stored file (choice: TikTok's video bound)
UPLOAD_URL_TTL_SECONDS = 3600
IDEMPOTENCY_TTL = timedelta(hours=24)
CAP_WINDOW = timedelta(hours=24)
DIRECT_POST_CAP = 15  # the 16th direct post per creator in 24 h fails
PENDING_DRAFT_CAP = 5  # the 6th pending inbox draft per creator in 24 h fails
TIKTOK_VIDEO_CAPTION_MAX = 2200
CAPTION_MAX = 63206
ALT_MAX = 500

PROVIDER_REASONS: dict[str, str] = {
    "spam_risk_too_many_posts": "The creator reached TikTok's daily limit of direct posts.",
    "spam_risk_too_many_pending_share": "The creator has too many pending drafts in the TikTok inbox.",
    "file_format_check_failed": "TikTok could not process the media file format.",
    "duration_check_failed": "The video duration is outside what TikTok accepts for this creator.",
    "frame_rate_check_failed": "The video frame rate is outside what TikTok accepts.",
    "picture_size_check_failed": "The picture size is outside what TikTok accepts.",
    "spam_risk_user_banned_from_posting": "The creator is banned from posting.",
    "unaudited_client_can_only_post_to_private_accounts": "Unaudited clients can post to private accounts only.",
    "internal": "The provider had an internal error.",
}

_NS = uuid.UUID("5d1c4a8e-51a7-4c43-9f3c-2f7a4f0e6b11")


def stable_id(name: str) -> str:
    """A deterministic UUID string for seeded objects."""
    return str(uuid.uuid5(_NS, name))


def iso(dt: datetime | None) -> str | None:
    """ISO 8601 in UTC with milliseconds and a ``Z`` suffix, the way the API writes times."""
    if dt is None:
        return None
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def parse_time(value: object) -> datetime | None:
    """Parse an offset-aware ISO 8601 string; ``None`` for anything else (naive times included)."""
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    if parsed.tzinfo is None or parsed.utcoffset() is None:
        return None
    return parsed.astimezone(UTC)


class ApiFail(Exception):
    """An error answer: ``{"error": message, "code": code}`` with the given status."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        issues: list[dict[str, str]] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.issues = issues
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        out: dict[str, Any] = {"error": self.message, "code": self.code}
        if self.issues is not None:
            out["issues"] = self.issues
        return out


# ---------------------------------------------------------------------------------------------------------
# Records


@dataclass(frozen=True)
class Organization:
    id: str
    name: str


@dataclass(frozen=True)
class Workspace:
    id: str
    name: str
    role: str
    organization_id: str


@dataclass(frozen=True)
class Account:
    id: str
    platform: str
    username: str  # with the leading "@", as v1 documents it
    display_name: str
    workspace_id: str
    external_id: str
    created_at: datetime
    privacy_level_options: tuple[str, ...] = ()
    comment_disabled: bool = False
    duet_disabled: bool = False
    stitch_disabled: bool = False
    max_video_post_duration_sec: int = 600

    def to_api(self) -> dict[str, Any]:
        """The spec's ``PlatformAccount``."""
        return {
            "id": self.id,
            "platform": self.platform,
            "externalAccountId": self.external_id,
            "username": self.username,
            "displayName": self.display_name,
            "avatarUrl": None,
            "accountStatus": "active",
            "createdAt": iso(self.created_at),
        }

    def creator_info(self) -> dict[str, Any]:
        """TikTok's ``creator_info`` fields, as TikTok names them."""
        handle = self.username.lstrip("@")
        return {
            "creator_username": handle,
            "creator_nickname": self.display_name,
            "creator_avatar_url": f"https://sandbox.postqued.invalid/avatars/{handle}.png",
            "privacy_level_options": list(self.privacy_level_options),
            "comment_disabled": self.comment_disabled,
            "duet_disabled": self.duet_disabled,
            "stitch_disabled": self.stitch_disabled,
            "max_video_post_duration_sec": self.max_video_post_duration_sec,
        }


@dataclass
class ContentAsset:
    id: str
    workspace_id: str
    key: str
    filename: str
    mime_type: str
    declared_size: int | None
    created_at: datetime
    status: str = "processing"  # processing | ready | deleted | failed
    size: int | None = None
    width: int | None = None
    height: int | None = None
    duration_ms: int | None = None
    alt: str | None = None

    @property
    def media_type(self) -> str:
        return MIME_TYPES[self.mime_type][0]

    def to_api(self, base_url: str) -> dict[str, Any]:
        """The spec's ``ContentAsset`` (plus ``alt``)."""
        return {
            "id": self.id,
            "url": f"{base_url}/v2/content/{self.id}/file",
            "mediaType": self.media_type,
            "mimeType": self.mime_type,
            "filename": self.filename,
            "size": self.size,
            "width": self.width,
            "height": self.height,
            "durationMs": self.duration_ms,
            "alt": self.alt,
            "status": self.status,
            "createdAt": iso(self.created_at),
        }


@dataclass
class Target:
    id: str
    request_id: str
    platform: str
    account_id: str
    intent: str  # draft | publish
    caption: str
    options: dict[str, Any]
    dispatch_at: datetime | None  # None: dispatch as soon as possible ("queued")
    queued_at: datetime  # when it entered queued/scheduled (creation or the last reschedule)
    canceled_at: datetime | None = None
    dispatched_at: datetime | None = None  # set by World.advance: the moment it reached the provider
    failure: str | None = None  # the provider's reason, decided at dispatch
    forced_failure: str | None = None  # from Sandbox.set_provider_outcome, bound at creation
    provider_post_id: str | None = None  # decided at dispatch, shown only once published

    @property
    def start_at(self) -> datetime:
        return self.dispatch_at or self.queued_at

    def is_due(self, now: datetime) -> bool:
        # A scheduled target goes at its time; a queued one as soon as any time has passed.
        if self.dispatch_at is not None:
            return now >= self.dispatch_at
        return now > self.queued_at


@dataclass
class PublishRequest:
    id: str
    organization_id: str
    workspace_id: str
    api_version: str  # "v1" | "v2"
    created_at: datetime
    content_ids: list[str]
    targets: list[Target]
    idempotency_key: str | None
    body: dict[str, Any]
    deleted_at: datetime | None = None


@dataclass
class IdempotencyRecord:
    digest: str
    created_at: datetime
    status: int
    body: bytes
    publish_id: str


@dataclass
class _Dispatch:
    at: datetime
    intent: str


# ---------------------------------------------------------------------------------------------------------
# The world


@dataclass
class ParsedTarget:
    platform: str
    account_id: str
    intent: str
    caption: str
    dispatch_at: datetime | None
    options: dict[str, Any]


class World:
    """Everything the simulator remembers, apart from the stored bytes."""

    def __init__(
        self,
        clock: Clock,
        *,
        processing_seconds: float,
        moderation_seconds: float,
        extra_workspace: bool,
        subscription_active: bool,
    ) -> None:
        self.clock = clock
        self.processing = timedelta(seconds=processing_seconds)
        self.moderation = timedelta(seconds=moderation_seconds)
        self.subscription_active = subscription_active
        seeded_at = datetime(2026, 1, 15, 9, 0, tzinfo=UTC)

        self.organization = Organization(stable_id("organization"), "Sandbox Organization")
        main = Workspace(stable_id("workspace/main"), "Sandbox Workspace", "admin", self.organization.id)
        self.workspaces: dict[str, Workspace] = {main.id: main}
        self.default_workspace = main
        self.extra_workspace: Workspace | None = None
        if extra_workspace:
            extra = Workspace(stable_id("workspace/extra"), "Sandbox Client Workspace", "editor", self.organization.id)
            self.workspaces[extra.id] = extra
            self.extra_workspace = extra

        public_options = ("PUBLIC_TO_EVERYONE", "MUTUAL_FOLLOW_FRIENDS", "SELF_ONLY")
        accounts = [
            Account(
                id=stable_id("account/tiktok/public"),
                platform="tiktok",
                username="@sandbox_creator",
                display_name="Sandbox Creator",
                workspace_id=main.id,
                external_id="sandbox-tt-1001",
                created_at=seeded_at,
                privacy_level_options=public_options,
                max_video_post_duration_sec=600,
            ),
            Account(
                id=stable_id("account/tiktok/private"),
                platform="tiktok",
                username="@sandbox_private",
                display_name="Sandbox Private",
                workspace_id=main.id,
                external_id="sandbox-tt-1002",
                created_at=seeded_at,
                privacy_level_options=("FOLLOWER_OF_CREATOR", "MUTUAL_FOLLOW_FRIENDS", "SELF_ONLY"),
                duet_disabled=True,
                stitch_disabled=True,
                max_video_post_duration_sec=180,
            ),
            Account(
                id=stable_id("account/instagram"),
                platform="instagram",
                username="@sandbox_insta",
                display_name="Sandbox Insta",
                workspace_id=main.id,
                external_id="sandbox-ig-2001",
                created_at=seeded_at,
            ),
        ]
        if self.extra_workspace is not None:
            accounts.append(
                Account(
                    id=stable_id("account/tiktok/client"),
                    platform="tiktok",
                    username="@sandbox_client",
                    display_name="Sandbox Client",
                    workspace_id=self.extra_workspace.id,
                    external_id="sandbox-tt-3001",
                    created_at=seeded_at,
                    privacy_level_options=public_options,
                )
            )
        self.accounts: dict[str, Account] = {a.id: a for a in accounts}

        self.contents: dict[str, ContentAsset] = {}
        self.publish_requests: dict[str, PublishRequest] = {}
        self.targets: dict[str, Target] = {}
        self.idempotency: dict[tuple[str, str, str], IdempotencyRecord] = {}
        self._forced: dict[str, list[tuple[str, str]]] = {}
        self._dispatch_log: dict[str, list[_Dispatch]] = {}
        self._post_ids = itertools.count(7_400_000_000_000_000_001)

    # -- lookups ------------------------------------------------------------------------------------------

    def accounts_in(self, workspace_id: str, platform: str | None = None) -> list[Account]:
        return [
            a
            for a in self.accounts.values()
            if a.workspace_id == workspace_id and (platform is None or a.platform == platform)
        ]

    def account_in(self, workspace_id: str, account_id: str) -> Account:
        account = self.accounts.get(account_id)
        if account is None or account.workspace_id != workspace_id:
            raise ApiFail(404, "NOT_FOUND", "Account not found")
        return account

    def content_in(self, workspace_id: str, content_id: str, *, ready_only: bool = True) -> ContentAsset:
        asset = self.contents.get(content_id)
        if asset is None or asset.workspace_id != workspace_id or asset.status == "deleted":
            raise ApiFail(404, "NOT_FOUND", "Content not found")
        if ready_only and asset.status != "ready":
            raise ApiFail(404, "NOT_FOUND", "Content not found")
        return asset

    def request_in(self, workspace_id: str, publish_id: str) -> PublishRequest:
        request = self.publish_requests.get(publish_id)
        if request is None or request.workspace_id != workspace_id or request.deleted_at is not None:
            raise ApiFail(404, "NOT_FOUND", "Publish request not found")
        return request

    def target_in(self, workspace_id: str, target_id: str) -> tuple[PublishRequest, Target]:
        target = self.targets.get(target_id)
        if target is not None:
            request = self.publish_requests[target.request_id]
            if request.workspace_id == workspace_id and request.deleted_at is None:
                return request, target
        raise ApiFail(404, "NOT_FOUND", "Target not found")

    # -- the state machine --------------------------------------------------------------------------------

    def advance(self) -> None:
        """Hand every due target to the simulated provider, in dispatch order, fixing its outcome."""
        now = self.clock.now()
        due = [
            t
            for r in self.publish_requests.values()
            for t in r.targets
            if t.dispatched_at is None and t.canceled_at is None and t.is_due(now)
        ]
        due.sort(key=lambda t: t.start_at)
        for target in due:
            self._dispatch(target)

    def _dispatch(self, target: Target) -> None:
        at = target.start_at
        target.dispatched_at = at
        account = self.accounts[target.account_id]
        forced = self._forced.get(account.id)
        log = self._dispatch_log.setdefault(account.id, [])
        if target.forced_failure is None and forced:
            target.forced_failure = forced.pop(0)[1]
        if target.forced_failure is not None:
            target.failure = target.forced_failure
        elif account.platform == "tiktok":
            recent = sum(1 for d in log if d.intent == target.intent and d.at > at - CAP_WINDOW)
            if target.intent == "publish" and recent >= DIRECT_POST_CAP:
                target.failure = "spam_risk_too_many_posts"
            elif target.intent == "draft" and recent >= PENDING_DRAFT_CAP:
                target.failure = "spam_risk_too_many_pending_share"
        if target.failure is None:
            log.append(_Dispatch(at, target.intent))
            if target.intent == "publish":
                target.provider_post_id = str(next(self._post_ids))

    def force_outcome(self, account_id: str, status: str, reason: str) -> None:
        if account_id not in self.accounts:
            raise ValueError(f"unknown account {account_id!r}")
        if status != "failed":
            raise ValueError("only status='failed' can be forced; success is the default outcome")
        self._forced.setdefault(account_id, []).append((status, reason))

    def finished_at(self, target: Target) -> datetime | None:
        if target.dispatched_at is None:
            return None
        if target.failure is not None or target.intent == "draft":
            return target.dispatched_at + self.processing
        return target.dispatched_at + self.processing + self.moderation

    def target_status(self, target: Target, now: datetime) -> str:
        if target.canceled_at is not None:
            return "canceled"
        if target.dispatched_at is None:
            return "queued" if target.dispatch_at is None else "scheduled"
        finished = self.finished_at(target)
        assert finished is not None
        if now < finished:
            return "processing"
        if target.failure is not None:
            return "failed"
        return "sent" if target.intent == "draft" else "published"

    def request_status(self, request: PublishRequest, now: datetime) -> str:
        statuses = [self.target_status(t, now) for t in request.targets]
        terminal = {"sent", "published", "failed", "canceled"}
        if all(s in terminal for s in statuses):
            if all(s == "canceled" for s in statuses):
                return "canceled"
            failed = statuses.count("failed")
            succeeded = sum(1 for s in statuses if s in ("sent", "published"))
            if failed == 0:
                return "completed"  # mixed canceled + successful counts as completed
            return "failed" if succeeded == 0 else "partial_failed"
        if any(s not in ("queued", "scheduled", "canceled") for s in statuses):
            return "processing"
        return "pending"

    # -- rendering ----------------------------------------------------------------------------------------

    def render_target(self, target: Target, now: datetime) -> dict[str, Any]:
        status = self.target_status(target, now)
        error: dict[str, str] | None = None
        if status == "failed" and target.failure is not None:
            message = PROVIDER_REASONS.get(target.failure, f"The provider rejected the post ({target.failure}).")
            error = {"code": target.failure, "message": message}
        return {
            "id": target.id,
            "platform": target.platform,
            "accountId": target.account_id,
            "intent": target.intent,
            "status": status,
            "caption": target.caption,
            "dispatchAt": iso(target.dispatch_at),
            "publishedAt": iso(self.finished_at(target)) if status in ("sent", "published") else None,
            "providerPostId": target.provider_post_id if status == "published" else None,
            "error": error,
        }

    def render_request(self, request: PublishRequest, now: datetime) -> dict[str, Any]:
        return {
            "id": request.id,
            "status": self.request_status(request, now),
            "workspaceId": request.workspace_id,
            "contentIds": list(request.content_ids),
            "createdAt": iso(request.created_at),
            "targets": [self.render_target(t, now) for t in request.targets],
        }

    def render_created(self, request: PublishRequest, now: datetime) -> dict[str, Any]:
        """The answer to a live publish (v1 documents it; v2 uses the same shape)."""
        return {
            "publishId": request.id,
            "status": self.request_status(request, now),
            "targets": [
                {
                    "id": t.id,
                    "platform": t.platform,
                    "accountId": t.account_id,
                    "status": self.target_status(t, now),
                    "intent": t.intent,
                    "dispatchAt": iso(t.dispatch_at),
                }
                for t in request.targets
            ],
        }

    # -- publish operations -------------------------------------------------------------------------------

    def create_publish(
        self,
        *,
        workspace_id: str,
        api_version: str,
        content_ids: list[str],
        targets: list[ParsedTarget],
        idempotency_key: str | None,
        body: dict[str, Any],
    ) -> PublishRequest:
        now = self.clock.now()
        request_id = str(uuid.uuid4())
        request = PublishRequest(
            id=request_id,
            organization_id=self.organization.id,
            workspace_id=workspace_id,
            api_version=api_version,
            created_at=now,
            content_ids=content_ids,
            targets=[],
            idempotency_key=idempotency_key,
            body=body,
        )
        for parsed in targets:
            target = Target(
                id=str(uuid.uuid4()),
                request_id=request_id,
                platform=parsed.platform,
                account_id=parsed.account_id,
                intent=parsed.intent,
                caption=parsed.caption,
                options=parsed.options,
                dispatch_at=parsed.dispatch_at,
                queued_at=now,
            )
            forced = self._forced.get(parsed.account_id)
            if forced:  # an armed outcome goes to the next target created (or dispatched) for the account
                target.forced_failure = forced.pop(0)[1]
            request.targets.append(target)
            self.targets[target.id] = target
        self.publish_requests[request_id] = request
        return request

    def cancel_request(self, request: PublishRequest) -> list[str]:
        self.advance()
        now = self.clock.now()
        cancelable = [t for t in request.targets if self.target_status(t, now) in ("queued", "scheduled")]
        if not cancelable:
            raise ApiFail(409, "INVALID_STATE", "No target of this publish request can be canceled any more")
        for target in cancelable:
            target.canceled_at = now
        return [t.id for t in cancelable]

    def cancel_target(self, target: Target) -> None:
        self.advance()
        now = self.clock.now()
        status = self.target_status(target, now)
        if status not in ("queued", "scheduled"):
            raise ApiFail(409, "INVALID_STATE", f"Target is {status}; only queued or scheduled targets can be canceled")
        target.canceled_at = now

    def reschedule_target(self, target: Target, dispatch_at: datetime | None) -> None:
        self.advance()
        now = self.clock.now()
        status = self.target_status(target, now)
        if status not in ("queued", "scheduled"):
            raise ApiFail(
                409, "INVALID_STATE", f"Target is {status}; only queued or scheduled targets can be rescheduled"
            )
        target.dispatch_at = dispatch_at
        target.queued_at = now

    def delete_request(self, request: PublishRequest) -> None:
        """Soft delete; targets that have not reached the provider yet are canceled with it."""
        self.advance()
        now = self.clock.now()
        for target in request.targets:
            if target.dispatched_at is None and target.canceled_at is None:
                target.canceled_at = now
        request.deleted_at = now

"""The simulator's records: tenancy, accounts, content, publish requests, and the team/approval/engagement data.

Plain dataclasses; nothing here knows about HTTP or the clock. ``to_api`` renders a record as PostQued shows it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from postqued.api.operations import endpoints
from postqued.sandbox.common import MIME_TYPES, iso

_CONTENT_FILE = endpoints("v2")["content_file"].path  # where an asset's bytes are served


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
            "url": base_url + _CONTENT_FILE.replace("{id}", self.id),
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
class Dispatch:
    """One target that reached the provider (for TikTok's posting caps)."""

    at: datetime
    intent: str


@dataclass
class ParsedTarget:
    platform: str
    account_id: str
    intent: str
    caption: str
    dispatch_at: datetime | None
    options: dict[str, Any]


@dataclass(frozen=True)
class User:
    id: str
    email: str
    name: str


@dataclass
class MemberRec:
    user: User
    role: str
    membership_type: str
    status: str = "active"  # active | suspended

    def to_api(self) -> dict[str, Any]:
        return {
            "userId": self.user.id,
            "email": self.user.email,
            "name": self.user.name,
            "role": self.role,
            "membershipType": self.membership_type,
            "status": self.status,
        }


@dataclass
class InvitationRec:
    id: str
    email: str
    role: str
    membership_type: str
    created_at: datetime
    status: str = "pending"  # pending | revoked | accepted

    def to_api(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "email": self.email,
            "role": self.role,
            "membershipType": self.membership_type,
            "status": self.status,
            "createdAt": iso(self.created_at),
            "expiresAt": iso(self.created_at + timedelta(days=7)),
        }


@dataclass
class CommentRec:
    id: str
    text: str
    author: str
    created_at: datetime
    parent_id: str | None = None
    hidden: bool = False
    liked: bool = False
    deleted: bool = False

    def to_api(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "text": self.text,
            "author": {"username": self.author},
            "createdAt": iso(self.created_at),
            "parentId": self.parent_id,
            "hidden": self.hidden,
            "liked": self.liked,
        }


@dataclass
class RevisionRec:
    id: str
    number: int
    title: str
    brief: str | None
    asset_ids: list[str]
    targets: list[dict[str, Any]]
    created_at: datetime

    def to_api(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "number": self.number,
            "title": self.title,
            "brief": self.brief,
            "assetIds": list(self.asset_ids),
            "targets": [dict(t) for t in self.targets],
            "createdAt": iso(self.created_at),
        }


@dataclass
class SuggestionRec:
    id: str
    revision_id: str
    target_index: int
    platform: str
    start: int
    end: int
    original: str
    replacement: str
    note: str | None
    author: User
    created_at: datetime
    status: str = "open"  # open | accepted | declined

    def to_api(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "status": self.status,
            "revisionId": self.revision_id,
            "targetIndex": self.target_index,
            "platform": self.platform,
            "field": "caption",
            "selectionStart": self.start,
            "selectionEnd": self.end,
            "originalText": self.original,
            "replacementText": self.replacement,
            "note": self.note,
            "author": {"id": self.author.id, "email": self.author.email},
            "createdAt": iso(self.created_at),
        }


@dataclass
class ApprovalPostRec:
    id: str
    workspace_id: str
    created_at: datetime
    revisions: list[RevisionRec]
    status: str = "draft"  # draft | in_review | changes_requested | approved | scheduled | published
    version: int = 1
    updated_at: datetime | None = None
    suggestions: dict[str, SuggestionRec] = field(default_factory=dict)
    feedback: list[dict[str, Any]] = field(default_factory=list)
    reviewers: dict[str, User] = field(default_factory=dict)
    reviewer_invitations: dict[str, InvitationRec] = field(default_factory=dict)
    publish_id: str | None = None
    dispatch_at: datetime | None = None

    @property
    def current(self) -> RevisionRec:
        return self.revisions[-1]


@dataclass
class EngagementPost:
    target_id: str
    publish_id: str
    account_id: str
    caption: str
    published_at: datetime
    provider_post_id: str
    first_comment: str | None = None


def feedback_note(kind: str, comment: str | None, author: User, revision_id: str, at: datetime) -> dict[str, Any]:
    """One entry of an approval post's feedback history."""
    return {
        "kind": kind,
        "comment": comment,
        "author": {"id": author.id, "email": author.email},
        "revisionId": revision_id,
        "createdAt": iso(at),
    }

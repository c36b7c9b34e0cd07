"""Pydantic models of PostQued's resources (parsed tolerantly) and requests (sent exactly).

Python side snake_case, wire side camelCase. Response models accept either spelling and keep unknown
fields (``extra="allow"``); request models serialise with camelCase aliases (``wire()``) and refuse
unknown option keys so a typo is an error instead of a silently ignored setting.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any, Literal, get_args
from urllib.parse import unquote, urlsplit

from pydantic import (
    AliasChoices,
    AliasGenerator,
    BaseModel,
    ConfigDict,
    Field,
    SerializeAsAny,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic.alias_generators import to_camel

from postqued.api.fields import items, obj, text
from postqued.api.shape import Checked, Unverified, read_model
from postqued.errors import LocalError

Platform = Literal[
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
]
PLATFORMS: tuple[str, ...] = get_args(Platform)
Intent = Literal["draft", "publish"]
PrivacyLevel = Literal["PUBLIC_TO_EVERYONE", "MUTUAL_FOLLOW_FRIENDS", "FOLLOWER_OF_CREATOR", "SELF_ONLY"]
PRIVACY_LEVELS: tuple[str, ...] = get_args(PrivacyLevel)
MediaType = Literal["video", "image"]
MimeType = Literal["video/mp4", "video/webm", "video/quicktime", "image/jpeg", "image/png", "image/webp", "image/gif"]
MIME_TYPES: tuple[str, ...] = get_args(MimeType)

REQUEST_TERMINAL = frozenset({"completed", "partial_failed", "failed", "canceled"})
TARGET_TERMINAL = frozenset({"published", "failed", "canceled"})


def _aliases(field: str) -> AliasChoices:
    return AliasChoices(to_camel(field), field)


_WIRE_ALIASES = AliasGenerator(validation_alias=_aliases, serialization_alias=to_camel)


class WireModel(BaseModel):
    """A resource as PostQued sends it: camelCase or snake_case accepted, unknown fields kept."""

    model_config = ConfigDict(alias_generator=_WIRE_ALIASES, validate_by_name=True, extra="allow")


class RequestModel(BaseModel):
    """A request body as PostQued expects it; ``wire()`` gives the exact camelCase JSON object."""

    model_config = ConfigDict(alias_generator=_WIRE_ALIASES, validate_by_name=True, extra="forbid")

    def wire(self) -> dict[str, Any]:
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)


# --- context -------------------------------------------------------------------------------------


class Workspace(WireModel):
    id: str
    name: str | None = None
    organization_id: str | None = None
    organization_name: str | None = None
    role: str | None = None


def parse_workspaces(body: Any) -> list[Workspace]:
    """Workspaces from ``/v2/mcp/context`` (undocumented; assumed: ``organizations[].workspaces[]``, as SPEC's
    ``/v2/organizations/context`` nests them)."""
    unique: dict[str, Workspace] = {}
    for org in items(body, "organizations"):
        for raw in items(org, "workspaces"):
            if text(raw, "id"):
                ws = read_model(Workspace, raw, "context")
                update = {"organization_id": ws.organization_id or text(org, "id")}
                update["organization_name"] = ws.organization_name or text(org, "name")
                unique.setdefault(ws.id, ws.model_copy(update=update))
    return list(unique.values())


# --- accounts ------------------------------------------------------------------------------------


class PlatformAccount(WireModel, Checked):
    id: str
    platform: str
    external_account_id: str | None = None
    username: str | None = None
    display_name: str | None = None
    avatar_url: str | None = None
    account_status: str | None = None
    created_at: datetime | None = None


class CreatorInfo(Checked):
    """TikTok's creator_info under TikTok's own names, as PostQued relays it (assumed: under ``creatorInfo``).
    An answer without it leaves the defaults and says so in ``unverified``."""

    creator_username: str | None = None
    creator_nickname: str | None = None
    creator_avatar_url: str | None = None
    privacy_level_options: list[str] = Field(default_factory=list)
    comment_disabled: bool = False
    duet_disabled: bool = False
    stitch_disabled: bool = False
    max_video_post_duration_sec: int | None = None


def parse_creator_info(body: Any, note: Unverified | None = None) -> CreatorInfo:
    return read_model(CreatorInfo, obj(body, "creatorInfo"), "creator_info", note)


# --- content -------------------------------------------------------------------------------------


class ContentAsset(WireModel, Checked):
    id: str
    url: str | None = None
    media_type: str | None = None
    mime_type: str | None = None
    filename: str | None = None
    size: int | None = None
    width: int | None = None
    height: int | None = None
    duration_ms: int | None = None
    status: str | None = None
    alt: str | None = None
    created_at: datetime | None = None


class Pagination(WireModel):
    page: int = 1
    per_page: int = 24
    total: int = 0
    pages: int = 0


class ContentPage(WireModel, Checked):
    content: list[ContentAsset] = Field(default_factory=list)
    pagination: Pagination = Field(default_factory=Pagination)


class UploadSession(BaseModel):
    """A started upload. ``url`` is a presigned credential: it never leaves the server process."""

    model_config = ConfigDict(frozen=True)

    content_id: str
    url: str = Field(repr=False)
    key: str
    method: str = "PUT"
    headers: dict[str, str] = Field(default_factory=dict)


def parse_upload_session(body: Any) -> UploadSession:
    """``{contentId, upload: {url, key, method, headers}}``. v1 documents no ``upload.key``: it is read from the
    URL, which holds the object key in its documented form ``content/<user-id>/<content-id>.<ext>``."""
    upload = body.get("upload") if isinstance(body, dict) else None
    content_id = body.get("contentId") if isinstance(body, dict) else None
    url = upload.get("url") if isinstance(upload, dict) else None
    if not isinstance(upload, dict) or not isinstance(content_id, str) or not isinstance(url, str) or not url:
        raise ValueError("the upload answer lacks contentId or upload.url")
    key = upload.get("key")
    if not isinstance(key, str) or not key:
        key = v1_object_key(url, content_id)
    if key is None:
        raise ValueError(
            "the upload answer has no upload.key and its URL holds no content/<user-id>/<content-id>.<ext>"
        )
    headers = upload.get("headers")
    method = upload.get("method")
    return UploadSession(
        content_id=content_id,
        url=url,
        key=key,
        method=method if isinstance(method, str) and method else "PUT",
        headers={str(k): str(v) for k, v in headers.items()} if isinstance(headers, dict) else {},
    )


def v1_object_key(url: str, content_id: str) -> str | None:
    """The documented v1 object key ``content/<user-id>/<content-id>.<ext>`` as it stands in ``url``'s path."""
    path = unquote(urlsplit(url).path)
    found = re.search(rf"(?:^|/)(content/[^/]+/{re.escape(content_id)}\.[A-Za-z0-9]+)$", path)
    return found.group(1) if found else None


def parse_content(body: Any, operation: str, note: Unverified | None = None) -> ContentAsset | None:
    """The asset under ``content`` (v2, documented; v1 complete: assumed the same). The v1 image upload's answer
    is undocumented: assumed ``contentId``, as the v1 upload answer names it. None: the answer shows none."""
    data = obj(body, "content")
    if not data and operation == "upload_image" and text(obj(body), "contentId"):
        data = {"id": text(obj(body), "contentId")}
    return read_model(ContentAsset, data, operation, note) if text(data, "id") else None


class UploadStart(RequestModel):
    filename: str
    content_type: str
    file_size: int | None = None
    workspace_id: str | None = None


class UploadComplete(RequestModel):
    content_id: str
    key: str
    filename: str
    content_type: str
    size: int | None = None
    width: int | None = None
    height: int | None = None
    duration_ms: int | None = None
    workspace_id: str | None = None


class ContentUpdate(RequestModel):
    filename: str | None = None
    alt: str | None = Field(default=None, max_length=500)
    workspace_id: str | None = None


# --- per-platform options ------------------------------------------------------------------------


class Options(RequestModel):
    """Base of the per-platform option models: snake_case in, camelCase on the wire."""


class FirstComment(RequestModel):
    text: str = Field(min_length=1)


class TikTokOptions(Options):
    privacy_level: PrivacyLevel | None = None
    disable_comment: bool | None = None
    disable_duet: bool | None = None
    disable_stitch: bool | None = None
    auto_add_music: bool | None = None
    video_cover_timestamp_ms: int | None = Field(default=None, ge=0)
    photo_cover_index: int | None = Field(default=None, ge=0, le=34)
    commercial_content: bool | None = None
    brand_content_toggle: bool | None = None
    brand_organic_toggle: bool | None = None
    authentic_content_confirmed: bool | None = None
    max_video_post_duration_sec: int | None = Field(default=None, ge=1)


class InstagramCrop(RequestModel):
    x: float
    y: float
    width: float | None = None
    height: float | None = None
    zoom: float | None = None
    aspect: float | str | None = None
    focal_point: dict[str, float] | None = None


class InstagramAudio(RequestModel):
    selection_token: str
    type: Literal["music", "original_sound"]
    title: str | None = None
    artist: str | None = None
    duration: float | None = None
    audio_volume: int | None = Field(default=None, ge=0, le=100)
    video_volume: int | None = Field(default=None, ge=0, le=100)


class InstagramOptions(Options):
    post_type: Literal["post", "reel", "story"] | None = None
    collaborators: list[str] | None = Field(default=None, max_length=3)
    trial_reel_graduation_strategy: Literal["MANUAL", "SS_PERFORMANCE"] | None = None
    first_comment: FirstComment | None = None
    crop: InstagramCrop | None = None
    audio: InstagramAudio | None = None


class FacebookOptions(Options):
    post_type: Literal["text", "photo", "video", "reel", "link"] | None = None
    link: str | None = None
    title: str | None = None
    first_comment: FirstComment | None = None


class ThreadsOptions(Options):
    reply_control: Literal["everyone", "accounts_you_follow", "mentioned_only"] | None = None
    first_comment: FirstComment | None = None


class LinkedInOptions(Options):
    post_type: Literal["text", "article", "image", "video"] | None = None
    article_url: str | None = None
    article_title: str | None = None
    article_description: str | None = None
    first_comment: FirstComment | None = None


class YouTubeOptions(Options):
    visibility: Literal["public", "unlisted", "private"] | None = None
    title: str | None = None
    description: str | None = None
    category_id: str | None = None
    tags: list[str] | None = Field(default=None, max_length=30)
    made_for_kids: bool | None = None
    contains_synthetic_media: bool | None = None
    first_comment: FirstComment | None = None


class TwitterOptions(Options):
    reply_settings: Literal["everyone", "mentionedUsers", "following"] | None = None
    first_comment: FirstComment | None = None


class PinterestOptions(Options):
    board_id: str | None = None
    board_section_id: str | None = None
    title: str | None = None
    description: str | None = None
    link: str | None = None
    alt_text: str | None = None
    cover_image_url: str | None = None
    is_standard: bool | None = None


class RedditOptions(Options):
    subreddit: str | None = None
    kind: Literal["self", "link", "image", "video", "videogif"] | None = None
    title: str | None = None
    text: str | None = None
    url: str | None = None
    flair_id: str | None = None
    flair_text: str | None = None
    nsfw: bool | None = None
    spoiler: bool | None = None
    send_replies: bool | None = None
    resubmit: bool | None = None
    video_poster_url: str | None = None


class MastodonOptions(Options):
    visibility: Literal["public", "unlisted", "private", "direct"] | None = None
    sensitive: bool | None = None
    spoiler_text: str | None = None
    language: str | None = None
    first_comment: FirstComment | None = None


class BlueskyOptions(Options):
    pass


OPTIONS_BY_PLATFORM: dict[str, type[Options]] = {
    "tiktok": TikTokOptions,
    "instagram": InstagramOptions,
    "facebook": FacebookOptions,
    "threads": ThreadsOptions,
    "linkedin": LinkedInOptions,
    "youtube": YouTubeOptions,
    "twitter": TwitterOptions,
    "pinterest": PinterestOptions,
    "reddit": RedditOptions,
    "mastodon": MastodonOptions,
    "bluesky": BlueskyOptions,
}


def parse_options(platform: str, raw: dict[str, Any] | None, *, where: str = "options") -> Options:
    """Validate ``raw`` against the platform's option model; a clear LocalError on any bad key or value."""
    model = OPTIONS_BY_PLATFORM[platform]
    try:
        return model.model_validate(raw or {})
    except ValidationError as exc:
        allowed = ", ".join(model.model_fields) or "none (send an empty object)"
        problems = "; ".join(
            f"{where}.{'.'.join(str(p) for p in err['loc'])!r}: {err['msg']}" for err in exc.errors()[:5]
        )
        raise LocalError(
            f"Invalid {platform} options: {problems}.",
            code="INVALID_OPTIONS",
            next_step=f"Use only these {platform} option keys: {allowed}.",
        ) from None


# --- publishing ----------------------------------------------------------------------------------


class PublishTarget(RequestModel):
    platform: Platform
    account_id: str
    intent: Intent
    caption: str = Field(min_length=1, max_length=63206)
    dispatch_at: datetime | None = None
    options: SerializeAsAny[Options] = Field(default_factory=Options)

    @model_validator(mode="before")
    @classmethod
    def _platform_options(cls, data: Any) -> Any:
        if isinstance(data, dict):
            platform = data.get("platform")
            raw = data.get("options")
            if platform in OPTIONS_BY_PLATFORM and not isinstance(raw, Options):
                return {**data, "options": parse_options(platform, raw)}
        return data

    @field_validator("dispatch_at")
    @classmethod
    def _offset_aware(cls, value: datetime | None) -> datetime | None:
        if value is not None and value.utcoffset() is None:
            raise ValueError("dispatch_at must carry a UTC offset, e.g. 2026-12-01T09:00:00Z")
        # One instant, one spelling: 09:00Z and 11:00+02:00 digest and send alike (PostQued asks for UTC).
        return value.astimezone(UTC) if value is not None else None

    def wire(self) -> dict[str, Any]:
        # dispatchAt is required by the spec and always sent (null = now); options always an object.
        body = super().wire()
        body["dispatchAt"] = utc_iso(self.dispatch_at) if self.dispatch_at else None
        body["options"] = self.options.wire()
        return body


class PublishRequest(RequestModel):
    content_ids: list[str] = Field(default_factory=list, max_length=35)
    targets: list[PublishTarget] = Field(min_length=1, max_length=10)
    dry_run: bool = False
    workspace_id: str | None = None

    def wire(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "contentIds": list(self.content_ids),
            "targets": [t.wire() for t in self.targets],
        }
        if self.dry_run:
            body["dryRun"] = True
        if self.workspace_id is not None:
            body["workspaceId"] = self.workspace_id
        return body


def utc_iso(value: datetime) -> str:
    """An offset-aware instant as PostQued wants it: UTC, ``Z`` suffix (``2026-12-01T09:00:00Z``)."""
    if value.utcoffset() is None:
        raise ValueError("a time sent to PostQued must carry a UTC offset")
    return value.astimezone(UTC).isoformat().removesuffix("+00:00") + "Z"


class TargetStatus(WireModel):
    id: str | None = None
    platform: str | None = None
    account_id: str | None = None
    intent: str | None = None
    status: str | None = None
    dispatch_at: datetime | None = None
    published_at: datetime | None = None
    provider_post_id: str | None = None
    error: Any = None

    @property
    def terminal(self) -> bool:
        if self.status in TARGET_TERMINAL:
            return True
        # a draft ends when it reaches the creator's inbox
        return self.status == "sent" and self.intent != "publish"


class PublishStatus(WireModel, Checked):
    """A publish request and its targets, whatever shape the answer had."""

    id: str
    status: str | None = None
    created_at: datetime | None = None
    targets: list[TargetStatus] = Field(default_factory=list)
    replayed: bool = False  # the answer was PostQued's cached response to an earlier send of the same key

    @property
    def terminal(self) -> bool:
        if self.status in REQUEST_TERMINAL:
            return True
        return bool(self.targets) and all(t.terminal for t in self.targets)


def parse_publish(data: Any, id_field: str, operation: str, note: Unverified | None = None) -> PublishStatus | None:
    """A publish request read from ``data`` with its id under ``id_field`` (``publishId`` in the documented v1
    publish answer, assumed for v2 too; ``id`` in the assumed status and list answers). None: no id."""
    pid = text(obj(data), id_field)
    if not pid:
        return None
    return read_model(PublishStatus, {**obj(data), "id": pid}, operation, note)


def parse_publish_list(body: Any, note: Unverified | None = None) -> list[PublishStatus]:
    """``{publishRequests: [...]}`` (undocumented; assumed); a request without an id is left out and noted."""
    found = [parse_publish(raw, "id", "publish_list") for raw in items(body, "publishRequests")]
    return [status.model_copy(update={"unverified": note}) if note else status for status in found if status]

"""Pydantic models of PostQued's resources (parsed tolerantly) and requests (sent exactly).

Python side snake_case, wire side camelCase. Response models accept either spelling and keep unknown
fields (``extra="allow"``); request models serialise with camelCase aliases (``wire()``) and refuse
unknown option keys so a typo is an error instead of a silently ignored setting.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal, get_args

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
    """Workspaces from ``/v2/mcp/context``: at the top level or nested in their organisations."""
    found: list[Workspace] = []
    if not isinstance(body, dict):
        return found
    for raw in body.get("workspaces") or []:
        if isinstance(raw, dict) and raw.get("id"):
            found.append(Workspace.model_validate(raw))
    for org in body.get("organizations") or body.get("organisations") or []:
        if not isinstance(org, dict):
            continue
        for raw in org.get("workspaces") or []:
            if isinstance(raw, dict) and raw.get("id"):
                ws = Workspace.model_validate(raw)
                found.append(
                    ws.model_copy(
                        update={
                            "organization_id": ws.organization_id or org.get("id"),
                            "organization_name": ws.organization_name or org.get("name"),
                        }
                    )
                )
    unique: dict[str, Workspace] = {}
    for ws in found:
        unique.setdefault(ws.id, ws)
    return list(unique.values())


# --- accounts ------------------------------------------------------------------------------------


class PlatformAccount(WireModel):
    id: str
    platform: str
    external_account_id: str | None = None
    username: str | None = None
    display_name: str | None = None
    avatar_url: str | None = None
    account_status: str | None = None
    created_at: datetime | None = None


class CreatorInfo(WireModel):
    """TikTok's creator_info, as PostQued relays it (snake or camel, flat or nested)."""

    creator_username: str | None = None
    creator_nickname: str | None = None
    creator_avatar_url: str | None = None
    privacy_level_options: list[str] = Field(default_factory=list)
    comment_disabled: bool = False
    duet_disabled: bool = False
    stitch_disabled: bool = False
    max_video_post_duration_sec: int | None = None


def parse_creator_info(body: Any) -> CreatorInfo:
    data = body
    for key in ("creatorInfo", "creator_info", "data"):
        if isinstance(data, dict) and isinstance(data.get(key), dict):
            data = data[key]
    return CreatorInfo.model_validate(data if isinstance(data, dict) else {})


# --- content -------------------------------------------------------------------------------------


class ContentAsset(WireModel):
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


class ContentPage(WireModel):
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
    if not isinstance(body, dict) or not isinstance(body.get("upload"), dict):
        raise ValueError("upload session answer has no 'upload' object")
    upload = body["upload"]
    content_id = body.get("contentId") or body.get("content_id") or body.get("id")
    url = upload.get("url")
    if not content_id or not url:
        raise ValueError("upload session answer lacks contentId or upload.url")
    key = upload.get("key")
    if not key:  # v1 documents no key; the object key is the URL's path below the bucket
        from urllib.parse import unquote, urlsplit

        path = unquote(urlsplit(url).path).lstrip("/")
        key = path.split("/", 1)[1] if path.startswith("_storage/") else path
    headers = {str(k): str(v) for k, v in (upload.get("headers") or {}).items()}
    return UploadSession(
        content_id=str(content_id),
        url=str(url),
        key=str(key),
        method=str(upload.get("method") or "PUT"),
        headers=headers,
    )


def parse_content(body: Any) -> ContentAsset:
    """A ContentAsset from ``{content: {...}}``, a bare asset, or the v1 image answer."""
    if isinstance(body, dict):
        if isinstance(body.get("content"), dict):
            return ContentAsset.model_validate(body["content"])
        if body.get("id"):
            return ContentAsset.model_validate(body)
        if body.get("contentId"):
            return ContentAsset.model_validate({**body, "id": body["contentId"]})
    raise ValueError("answer carries no content asset")


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


class PublishStatus(WireModel):
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


def parse_publish(body: Any) -> PublishStatus:
    """``{publishId|id, ...}``, or the same nested under ``publish``/``publishRequest``/``data``."""
    data = body
    for key in ("publish", "publishRequest", "data"):
        if isinstance(data, dict) and isinstance(data.get(key), dict):
            data = data[key]
    if not isinstance(data, dict):
        raise ValueError("publish answer is not an object")
    pid = data.get("publishId") or data.get("publish_id") or data.get("id")
    if not pid:
        raise ValueError("publish answer carries no publish id")
    return PublishStatus.model_validate({**data, "id": str(pid)})


def parse_publish_list(body: Any) -> list[PublishStatus]:
    items: Any = body
    if isinstance(body, dict):
        for key in ("publishRequests", "requests", "publish", "items", "data"):
            if isinstance(body.get(key), list):
                items = body[key]
                break
    if not isinstance(items, list):
        return []
    out: list[PublishStatus] = []
    for raw in items:
        try:
            out.append(parse_publish(raw))
        except ValueError:
            continue
    return out

"""Client calls beyond publishing: admin, provider helpers, analytics, engagement, approvals, team, client review.

Each function takes a ``PostQuedClient`` and one operation's arguments, sends the request, and returns a tolerant
model of the answer. Most of these routes are known only from PostQued's route map (no schemas): requests carry
the documented fields only, and every answer is parsed leniently (unknown fields kept, a malformed optional field
dropped instead of failing). ``references/parity-notes.md`` lists what is uncertain.

Every call goes through ``client._send`` (the one retry policy). The write routes here are of kind "once": a
comment, a reply or an invitation carries no idempotency key, so it is repeated only when it cannot have reached
PostQued (a connection that never opened, a 429), and a lost answer is ``OUTCOME_UNKNOWN`` (read the state
first), never a silent second send.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from postqued.client import PostQuedClient
from postqued.errors import (
    APIError,
    ConflictError,
    RevisionConflictError,
    WorkflowStateError,
    WriteOutcomeUnknownError,
)
from postqued.models import Platform, RequestModel, Workspace, parse_options

AnalyticsRange = Literal["week", "month", "all"]
Role = Literal["admin", "editor", "reviewer", "viewer"]
MembershipType = Literal["team", "external"]


def _conflict(exc: ConflictError, reread: str) -> ConflictError:
    """A 409 on an approval or review mutation, branched on the body's code (state vs revision)."""
    said = exc.message
    if "STATE" in exc.code.upper() or "STATUS" in exc.code.upper():
        return WorkflowStateError(
            f"The post's status does not allow this. {said}",
            code=exc.code,
            status=exc.status,
            next_step=f"Call {reread} to see the post's status, then choose an action that fits it.",
        )
    return RevisionConflictError(
        f"the post changed since you read it. {said}",
        status=exc.status,
        next_step=f"call {reread} and decide again (use its current revision id and version); never retry blindly.",
        details={"server_code": exc.code},
    )


# --- tolerant parsing ------------------------------------------------------------------------------


def unwrap(body: Any, *keys: str) -> dict[str, Any]:
    """The object under the first of ``keys`` (or ``data``) that holds one, else the body itself."""
    data = body
    for key in (*keys, "data"):
        if isinstance(data, dict) and isinstance(data.get(key), dict):
            data = data[key]
            break
    return data if isinstance(data, dict) else {}


def _items(body: Any, *keys: str) -> list[dict[str, Any]]:
    """The list under the first of ``keys`` (or ``items``/``data``/``results``), or the body if it is a list."""
    found: Any = body
    if isinstance(body, dict):
        found = None
        for key in (*keys, "items", "data", "results"):
            value = body.get(key)
            if isinstance(value, list):
                found = value
                break
            if isinstance(value, dict):  # {"data": {"items": [...]}}
                nested = _items(value, *keys)
                if nested:
                    return nested
    return [x for x in found if isinstance(x, dict)] if isinstance(found, list) else []


def _obj(value: Any, fallback: Mapping[str, Any] | None = None) -> Mapping[str, Any]:
    """``value`` when it is an object, else ``fallback`` (or an empty one)."""
    return value if isinstance(value, Mapping) else (fallback if fallback is not None else {})


def _first(data: Mapping[str, Any], *names: str) -> Any:
    for name in names:
        value = data.get(name)
        if value is not None:
            return value
    return None


def _text(data: Mapping[str, Any], *names: str) -> str | None:
    value = _first(data, *names)
    return str(value) if isinstance(value, (str, int, float)) and not isinstance(value, bool) else None


def _numbers(data: Mapping[str, Any], skip: frozenset[str] = frozenset()) -> dict[str, float]:
    """The numeric fields of ``data`` (metrics), as floats, in snake_case."""
    out: dict[str, float] = {}
    for key, value in data.items():
        if key in skip or isinstance(value, bool) or not isinstance(value, (int, float)):
            continue
        out[_snake(key)] = value
    return out


def _snake(name: str) -> str:
    return "".join(f"_{c.lower()}" if c.isupper() else c for c in name).lstrip("_")


# --- the write path --------------------------------------------------------------------------------


async def _read(client: PostQuedClient, name: str, *ids: str, workspace_id: str | None = None, **query: Any) -> Any:
    return (await client.call(name, *ids, query=query, workspace_id=workspace_id)).body


async def _write(
    client: PostQuedClient,
    name: str,
    *ids: str,
    body: Mapping[str, Any] | None = None,
    workspace_id: str | None = None,
) -> Any:
    """One write through the client's single request path (routes of kind "once": never resent blindly)."""
    return (await client.call(name, *ids, body=body, workspace_id=workspace_id)).body


# --- admin -----------------------------------------------------------------------------------------


class Capabilities(BaseModel):
    workspace_id: str | None = None
    plan: str | None = None
    capabilities: dict[str, Any] = Field(default_factory=dict)


class BillingStatus(BaseModel):
    status: str | None = None
    plan: str | None = None
    current_period_end: str | None = None
    details: dict[str, Any] = Field(default_factory=dict)


class BillingUsage(BaseModel):
    period_start: str | None = None
    period_end: str | None = None
    usage: dict[str, Any] = Field(default_factory=dict)


async def create_workspace(client: PostQuedClient, organization_id: str, name: str) -> Workspace:
    body = await _write(client, "workspace_create", organization_id, body={"name": name})
    data = unwrap(body, "workspace")
    client.forget_workspaces()  # the key now sees one more workspace
    wid = _text(data, "id", "workspaceId")
    if not wid:
        raise WriteOutcomeUnknownError("PostQued created the workspace but its answer carried no id.")
    return Workspace(
        id=wid,
        name=_text(data, "name") or name,
        organization_id=_text(data, "organizationId") or organization_id,
        role=_text(data, "role"),
    )


async def get_capabilities(client: PostQuedClient, workspace_id: str | None) -> Capabilities:
    scope = await client.scope(workspace_id)
    data = unwrap(await _read(client, "billing_capabilities", workspace_id=workspace_id), "workspace")
    caps = _obj(data.get("capabilities"), data)
    rest = {k: v for k, v in caps.items() if k not in ("workspaceId", "plan")}
    return Capabilities(
        workspace_id=_text(data, "workspaceId") or scope.get("workspaceId"),
        plan=_text(data, "plan", "planName", "tier"),
        capabilities=rest,
    )


async def get_billing(client: PostQuedClient, workspace_id: str | None) -> BillingStatus:
    data = unwrap(await _read(client, "billing", workspace_id=workspace_id), "subscription", "billing")
    plan = data.get("plan")
    return BillingStatus(
        status=_text(data, "status", "subscriptionStatus"),
        plan=_text(plan, "name", "id") if isinstance(plan, dict) else _text(data, "plan", "planName"),
        current_period_end=_text(data, "currentPeriodEnd", "current_period_end", "renewsAt"),
        details={k: v for k, v in data.items() if k not in ("status", "plan")},
    )


async def get_usage(client: PostQuedClient, workspace_id: str | None) -> BillingUsage:
    data = unwrap(await _read(client, "billing_usage", workspace_id=workspace_id))
    usage = _obj(data.get("usage"), data)
    period = _obj(data.get("period"), data)
    return BillingUsage(
        period_start=_text(period, "periodStart", "start"),
        period_end=_text(period, "periodEnd", "end"),
        usage={k: v for k, v in usage.items() if k not in ("periodStart", "periodEnd", "period", "workspaceId")},
    )


async def disconnect_account(client: PostQuedClient, account_id: str, workspace_id: str | None) -> bool:
    return _success(await _write(client, "integration_delete", account_id, workspace_id=workspace_id))


# --- provider helpers ------------------------------------------------------------------------------


class Entry(BaseModel):
    """One item a provider helper lists (subreddit, company page, board, flair): id, name, the rest."""

    id: str | None = None
    name: str | None = None
    details: dict[str, Any] = Field(default_factory=dict)

    @classmethod
    def of(cls, raw: Mapping[str, Any], id_keys: tuple[str, ...], name_keys: tuple[str, ...]) -> Entry:
        used = set(id_keys) | set(name_keys)
        return cls(
            id=_text(raw, *id_keys),
            name=_text(raw, *name_keys),
            details={k: v for k, v in raw.items() if k not in used},
        )


class AudioTrack(BaseModel):
    selection_token: str | None = None
    type: str | None = None
    title: str | None = None
    artist: str | None = None
    duration_ms: int | None = None


class RedditRestrictions(BaseModel):
    subreddit: str
    post_types: list[str] = Field(default_factory=list)
    flair_required: bool | None = None
    flairs: list[Entry] = Field(default_factory=list)
    details: dict[str, Any] = Field(default_factory=dict)


async def list_instagram_audio(client: PostQuedClient, account_id: str, workspace_id: str | None) -> list[AudioTrack]:
    body = await _read(client, "instagram_audio", account_id, workspace_id=workspace_id)
    out = []
    for raw in _items(body, "audio", "tracks", "options"):
        duration = _first(raw, "durationMs", "duration_ms")
        if duration is None and isinstance(raw.get("duration"), (int, float)):
            duration = raw["duration"] * 1000 if raw["duration"] < 10_000 else raw["duration"]
        out.append(
            AudioTrack(
                selection_token=_text(raw, "selectionToken", "selection_token", "token"),
                type=_text(raw, "type", "kind"),
                title=_text(raw, "title", "name"),
                artist=_text(raw, "artist", "artistName", "author"),
                duration_ms=int(duration) if isinstance(duration, (int, float)) else None,
            )
        )
    return out


async def search_subreddits(
    client: PostQuedClient, account_id: str, query: str | None, limit: int, workspace_id: str | None
) -> list[Entry]:
    body = await _read(client, "reddit_subreddits", account_id, workspace_id=workspace_id, query=query, limit=limit)
    return [
        Entry.of(r, ("id", "name"), ("displayName", "display_name", "name", "title"))
        for r in _items(body, "subreddits")
    ]


async def reddit_restrictions(
    client: PostQuedClient, account_id: str, subreddit: str, workspace_id: str | None
) -> RedditRestrictions:
    body = await _read(client, "reddit_restrictions", account_id, workspace_id=workspace_id, subreddit=subreddit)
    data = unwrap(body, "restrictions")
    types = _first(data, "postTypes", "allowedPostTypes", "post_types", "allowedKinds")
    required = _first(data, "flairRequired", "flair_required", "isFlairRequired")
    flairs = _items(data, "flairs", "flairOptions", "linkFlairs")
    skip = {"postTypes", "allowedPostTypes", "post_types", "allowedKinds", "flairRequired", "flair_required"}
    return RedditRestrictions(
        subreddit=_text(data, "subreddit", "name") or subreddit,
        post_types=[str(t) for t in types] if isinstance(types, list) else [],
        flair_required=required if isinstance(required, bool) else None,
        flairs=[Entry.of(f, ("id", "flairId", "templateId"), ("text", "name", "flairText")) for f in flairs],
        details={
            k: v for k, v in data.items() if k not in skip | {"flairs", "flairOptions", "linkFlairs", "subreddit"}
        },
    )


async def search_linkedin_companies(
    client: PostQuedClient, account_id: str, query: str | None, limit: int, workspace_id: str | None
) -> list[Entry]:
    body = await _read(client, "linkedin_companies", account_id, workspace_id=workspace_id, query=query, limit=limit)
    return [
        Entry.of(r, ("id", "urn", "organizationUrn"), ("name", "localizedName"))
        for r in _items(body, "companies", "organizations")
    ]


async def list_pinterest_boards(
    client: PostQuedClient, account_id: str, limit: int, workspace_id: str | None
) -> list[Entry]:
    body = await _read(client, "pinterest_boards", account_id, workspace_id=workspace_id, limit=limit)
    return [Entry.of(r, ("id", "boardId"), ("name", "title")) for r in _items(body, "boards")]


# --- analytics -------------------------------------------------------------------------------------


class PostMetrics(BaseModel):
    id: str | None = None
    caption: str | None = None
    published_at: str | None = None
    url: str | None = None
    metrics: dict[str, float] = Field(default_factory=dict)


class AccountAnalytics(BaseModel):
    platform: str | None = None
    totals: dict[str, float] = Field(default_factory=dict)
    posts: list[PostMetrics] = Field(default_factory=list)


class VideoPage(BaseModel):
    videos: list[PostMetrics] = Field(default_factory=list)
    next_cursor: str | None = None
    has_more: bool = False


_ID_KEYS = ("id", "postId", "videoId", "providerPostId", "targetId")
_CAPTION_KEYS = ("caption", "title", "description", "videoDescription", "text")
_TIME_KEYS = ("publishedAt", "createTime", "createdAt", "postedAt", "date")
_URL_KEYS = ("url", "shareUrl", "permalink", "link")
_NOT_METRICS = frozenset({*_ID_KEYS, *_TIME_KEYS, "duration", "width", "height"})


def _post_metrics(raw: Mapping[str, Any]) -> PostMetrics:
    nested = raw.get("metrics") or raw.get("stats") or raw.get("insights")
    metrics = _numbers(nested) if isinstance(nested, dict) else {}
    metrics.update(_numbers(raw, _NOT_METRICS))
    when = _first(raw, *_TIME_KEYS)
    if isinstance(when, (int, float)) and not isinstance(when, bool):  # TikTok's create_time is epoch seconds
        when = datetime.fromtimestamp(when, UTC).isoformat().replace("+00:00", "Z")
    return PostMetrics(
        id=_text(raw, *_ID_KEYS),
        caption=_text(raw, *_CAPTION_KEYS),
        published_at=str(when) if when is not None else None,
        url=_text(raw, *_URL_KEYS),
        metrics=metrics,
    )


async def account_analytics(
    client: PostQuedClient, account_id: str, range_: AnalyticsRange, limit: int, workspace_id: str | None
) -> AccountAnalytics:
    query = {"accountId": account_id, "range": range_, "limit": limit}
    body = await _read(client, "analytics_posts", workspace_id=workspace_id, **query)
    data = unwrap(body, "analytics")
    totals = _first(data, "totals", "summary", "aggregate", "overview")
    posts = _items(data, "posts", "videos", "items")
    return AccountAnalytics(
        platform=_text(data, "platform"),
        totals=_numbers(totals) if isinstance(totals, dict) else {},
        posts=[_post_metrics(p) for p in posts],
    )


async def tiktok_videos(
    client: PostQuedClient,
    account_id: str,
    range_: AnalyticsRange,
    cursor: str | None,
    limit: int,
    workspace_id: str | None,
) -> VideoPage:
    query = {"accountId": account_id, "range": range_, "cursor": cursor, "limit": limit}
    data = unwrap(await _read(client, "analytics_videos", workspace_id=workspace_id, **query))
    nxt = _first(data, "nextCursor", "cursor", "next_cursor")
    more = _first(data, "hasMore", "has_more")
    return VideoPage(
        videos=[_post_metrics(v) for v in _items(data, "videos", "items")],
        next_cursor=str(nxt) if nxt is not None else None,
        has_more=bool(more) if more is not None else nxt is not None,
    )


# --- engagement ------------------------------------------------------------------------------------


class Comment(BaseModel):
    id: str | None = None
    text: str | None = None
    author: str | None = None
    created_at: str | None = None
    parent_id: str | None = None
    hidden: bool | None = None
    liked: bool | None = None


class EngagementItem(BaseModel):
    target_id: str | None = None
    platform: str | None = None
    account_id: str | None = None
    caption: str | None = None
    published_at: str | None = None
    url: str | None = None
    first_comment_status: str | None = None
    comments: list[Comment] = Field(default_factory=list)


def parse_comment(raw: Mapping[str, Any]) -> Comment:
    author = raw.get("author")
    hidden, liked = _first(raw, "hidden", "isHidden"), _first(raw, "liked", "isLiked", "likedByMe")
    return Comment(
        id=_text(raw, "id", "commentId"),
        text=_text(raw, "text", "message", "body", "content"),
        author=_text(author, "username", "name", "handle", "id")
        if isinstance(author, dict)
        else _text(raw, "author", "username", "authorName"),
        created_at=_text(raw, "createdAt", "createdTime", "timestamp"),
        parent_id=_text(raw, "parentId", "parentCommentId", "replyToId"),
        hidden=hidden if isinstance(hidden, bool) else None,
        liked=liked if isinstance(liked, bool) else None,
    )


def _engagement_item(raw: Mapping[str, Any]) -> EngagementItem:
    first = raw.get("firstComment")
    status = _text(first, "status") if isinstance(first, dict) else _text(raw, "firstCommentStatus", "firstComment")
    return EngagementItem(
        target_id=_text(raw, "targetId", "id", "publishTargetId"),
        platform=_text(raw, "platform"),
        account_id=_text(raw, "accountId"),
        caption=_text(raw, "caption", "text"),
        published_at=_text(raw, "publishedAt"),
        url=_text(raw, *_URL_KEYS),
        first_comment_status=status,
        comments=[parse_comment(c) for c in _items(raw, "comments", "latestComments")],
    )


async def list_engagement(client: PostQuedClient, limit: int, workspace_id: str | None) -> list[EngagementItem]:
    body = await _read(client, "engagement", workspace_id=workspace_id, limit=limit)
    return [_engagement_item(i) for i in _items(body, "items")]


async def engage(
    client: PostQuedClient, route: str, fields: dict[str, Any], workspace_id: str | None
) -> Comment | None:
    """One engagement write (reply, comment, hide, like, delete); the comment it touched, when the answer has one."""
    body = await _write(client, route, body=fields, workspace_id=workspace_id)
    data = unwrap(body, "comment", "reply")
    return parse_comment(data) if data.get("id") or data.get("commentId") else None


# --- people (members, reviewers, invitations) ------------------------------------------------------


class Member(BaseModel):
    user_id: str | None = None
    email: str | None = None
    name: str | None = None
    role: str | None = None
    membership_type: str | None = None
    status: str | None = None


class Invitation(BaseModel):
    id: str | None = None
    email: str | None = None
    role: str | None = None
    membership_type: str | None = None
    status: str | None = None
    expires_at: str | None = None


def parse_member(raw: Mapping[str, Any]) -> Member:
    user = _obj(raw.get("user"))
    return Member(
        user_id=_text(raw, "userId", "id") or _text(user, "id"),
        email=_text(raw, "email") or _text(user, "email"),
        name=_text(raw, "name", "displayName") or _text(user, "name"),
        role=_text(raw, "role"),
        membership_type=_text(raw, "membershipType", "membership_type", "type"),
        status=_text(raw, "status", "state"),
    )


def parse_invitation(raw: Mapping[str, Any]) -> Invitation:
    return Invitation(
        id=_text(raw, "id", "invitationId"),
        email=_text(raw, "email"),
        role=_text(raw, "role"),
        membership_type=_text(raw, "membershipType", "membership_type"),
        status=_text(raw, "status", "state"),
        expires_at=_text(raw, "expiresAt"),
    )


# --- approvals and client review -------------------------------------------------------------------


class ApprovalTarget(RequestModel):
    platform: Platform
    account_id: str
    caption: str = Field(min_length=1)
    link_url: str | None = None
    options: dict[str, Any] = Field(default_factory=dict)

    def wire(self) -> dict[str, Any]:
        body = super().wire()
        body["options"] = parse_options(self.platform, self.options, where=f"{self.platform}.options").wire()
        return body


class ApprovalDraft(RequestModel):
    """The content of a post or a revision (``title``, ``brief``, ``assetIds``, ``targets``)."""

    title: str = Field(min_length=1)
    brief: str | None = None
    asset_ids: list[str] = Field(default_factory=list, max_length=35)
    targets: list[ApprovalTarget] = Field(min_length=1, max_length=35)

    def wire(self) -> dict[str, Any]:
        body = super().wire()
        body["assetIds"] = list(self.asset_ids)
        body["targets"] = [t.wire() for t in self.targets]
        return body


class Guard(RequestModel):
    """Optimistic concurrency: the revision and version the caller read."""

    expected_revision_id: str
    expected_version: int


class SuggestionInput(RequestModel):
    target_index: int = Field(ge=0)
    platform: Platform
    field: Literal["caption"] = "caption"
    selection_start: int = Field(ge=0)
    selection_end: int = Field(ge=0)
    original_text: str
    replacement_text: str
    note: str | None = None


class ApprovalTargetState(BaseModel):
    platform: str | None = None
    account_id: str | None = None
    caption: str | None = None
    link_url: str | None = None
    options: dict[str, Any] = Field(default_factory=dict)


class Revision(BaseModel):
    id: str | None = None
    number: int | None = None
    title: str | None = None
    brief: str | None = None
    asset_ids: list[str] = Field(default_factory=list)
    targets: list[ApprovalTargetState] = Field(default_factory=list)


class Suggestion(BaseModel):
    id: str | None = None
    status: str | None = None
    target_index: int | None = None
    selection_start: int | None = None
    selection_end: int | None = None
    original_text: str | None = None
    replacement_text: str | None = None
    note: str | None = None
    author: str | None = None


class Feedback(BaseModel):
    kind: str | None = None
    text: str | None = None
    author: str | None = None
    revision_id: str | None = None
    created_at: str | None = None


class ApprovalPost(BaseModel):
    id: str
    title: str | None = None
    status: str | None = None
    version: int | None = Field(default=None, description="Pass as expected_version to the next mutation.")
    current_revision_id: str | None = Field(default=None, description="Pass as expected_revision_id.")
    revision: Revision | None = None
    suggestions: list[Suggestion] = Field(default_factory=list)
    feedback: list[Feedback] = Field(default_factory=list)
    reviewers: list[Member] = Field(default_factory=list)
    delivery: dict[str, Any] | None = Field(default=None, description="publish_id and status once scheduled.")
    updated_at: str | None = None


def _int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, (float, str)):
        try:
            return int(value)
        except ValueError:
            return None
    return None


def _author(raw: Mapping[str, Any]) -> str | None:
    author = raw.get("author") or raw.get("user")
    if isinstance(author, dict):
        return _text(author, "email", "name", "username", "id")
    return _text(raw, "author", "authorEmail", "authorName", "userId")


def _revision(raw: Mapping[str, Any]) -> Revision:
    assets = _first(raw, "assetIds", "contentIds", "asset_ids")
    return Revision(
        id=_text(raw, "id", "revisionId"),
        number=_int(_first(raw, "number", "revisionNumber")),
        title=_text(raw, "title"),
        brief=_text(raw, "brief"),
        asset_ids=[str(a) for a in assets] if isinstance(assets, list) else [],
        targets=[
            ApprovalTargetState(
                platform=_text(t, "platform"),
                account_id=_text(t, "accountId", "account_id"),
                caption=_text(t, "caption"),
                link_url=_text(t, "linkUrl", "link_url"),
                options=t["options"] if isinstance(t.get("options"), dict) else {},
            )
            for t in _items(raw, "targets")
        ],
    )


def _suggestion(raw: Mapping[str, Any]) -> Suggestion:
    selection = _obj(raw.get("selection"), raw)
    return Suggestion(
        id=_text(raw, "id", "suggestionId"),
        status=_text(raw, "status"),
        target_index=_int(_first(raw, "targetIndex", "target_index")),
        selection_start=_int(_first(selection, "selectionStart", "start", "from")),
        selection_end=_int(_first(selection, "selectionEnd", "end", "to")),
        original_text=_text(raw, "originalText", "original", "original_text"),
        replacement_text=_text(raw, "replacementText", "replacement", "replacement_text"),
        note=_text(raw, "note"),
        author=_author(raw),
    )


def _feedback(raw: Mapping[str, Any]) -> Feedback:
    return Feedback(
        kind=_text(raw, "kind", "type", "action"),
        text=_text(raw, "comment", "text", "body", "message"),
        author=_author(raw),
        revision_id=_text(raw, "revisionId"),
        created_at=_text(raw, "createdAt"),
    )


def parse_approval_post(body: Any) -> ApprovalPost | None:
    data = unwrap(body, "post", "review", "clientReview")
    pid = _text(data, "id", "postId")
    if not pid:
        return None
    revision_raw = _first(data, "currentRevision", "revision", "latestRevision")
    revision = _revision(revision_raw) if isinstance(revision_raw, dict) else None
    version = _first(data, "version", "currentVersion", "revisionVersion")
    if version is None and isinstance(revision_raw, dict):
        version = revision_raw.get("version")
    delivery = _first(data, "delivery", "deliveryState", "publish")
    return ApprovalPost(
        id=pid,
        title=_text(data, "title") or (revision.title if revision else None),
        status=_text(data, "status", "approvalStatus", "state"),
        version=_int(version),
        current_revision_id=_text(data, "currentRevisionId", "revisionId") or (revision.id if revision else None),
        revision=revision,
        suggestions=[_suggestion(s) for s in _items(data, "suggestions")],
        feedback=[_feedback(f) for f in _items(data, "feedback", "comments")],
        reviewers=[parse_member(r) for r in _items(data, "reviewers")],
        delivery=delivery if isinstance(delivery, dict) else None,
        updated_at=_text(data, "updatedAt"),
    )


def parse_approval_posts(body: Any) -> list[ApprovalPost]:
    out = []
    for raw in _items(body, "posts", "reviews", "clientReviews"):
        post = parse_approval_post(raw)
        if post is not None:
            out.append(post)
    return out


async def list_approval_posts(client: PostQuedClient, workspace_id: str | None) -> list[ApprovalPost]:
    return parse_approval_posts(await _read(client, "posts", workspace_id=workspace_id))


async def get_approval_post(client: PostQuedClient, post_id: str, workspace_id: str | None) -> ApprovalPost:
    post = parse_approval_post(await _read(client, "post_get", post_id, workspace_id=workspace_id))
    if post is None:
        raise APIError("PostQued's answer carried no post.", code="BAD_RESPONSE")
    return post


async def create_approval_post(client: PostQuedClient, draft: ApprovalDraft, workspace_id: str | None) -> ApprovalPost:
    body = await _write(client, "post_create", body=draft.wire(), workspace_id=workspace_id)
    post = parse_approval_post(body)
    if post is None:
        raise WriteOutcomeUnknownError("PostQued accepted the post but its answer carried no post id.")
    return post


async def mutate(
    client: PostQuedClient,
    route: str,
    post_id: str,
    guard: Guard,
    workspace_id: str | None,
    *,
    sub_id: str | None = None,
    fields: Mapping[str, Any] | None = None,
    reread: str = "get_approval_post",
) -> ApprovalPost | None:
    """One guarded approval or client-review mutation; the post as the answer shows it (None if it does not).

    A 409 becomes REVISION_CONFLICT (or INVALID_STATE when the body's code names a state): re-read, never retry.
    """
    ids = (post_id,) if sub_id is None else (post_id, sub_id)
    body = {**guard.wire(), **(fields or {})}
    try:
        answer = await _write(client, route, *ids, body=body, workspace_id=workspace_id)
    except ConflictError as exc:
        raise _conflict(exc, reread) from None
    return parse_approval_post(answer)


async def create_revision(
    client: PostQuedClient, post_id: str, guard: Guard, draft: ApprovalDraft, workspace_id: str | None
) -> ApprovalPost | None:
    # Documented for revisions: baseRevisionId + expectedVersion (not expectedRevisionId).
    body = {
        "baseRevisionId": guard.expected_revision_id,
        "expectedVersion": guard.expected_version,
        **draft.wire(),
    }
    try:
        answer = await _write(client, "post_revision", post_id, body=body, workspace_id=workspace_id)
    except ConflictError as exc:
        raise _conflict(exc, "get_approval_post") from None
    return parse_approval_post(answer)


async def list_client_reviews(client: PostQuedClient, workspace_id: str | None) -> list[ApprovalPost]:
    return parse_approval_posts(await _read(client, "client_reviews", workspace_id=workspace_id))


async def get_client_review(client: PostQuedClient, post_id: str, workspace_id: str | None) -> ApprovalPost:
    body = await _read(client, "client_review_get", post_id, workspace_id=workspace_id)
    post = parse_approval_post(body)
    if post is None:
        raise APIError("PostQued's answer carried no review.", code="BAD_RESPONSE")
    return post


# --- team ------------------------------------------------------------------------------------------


async def list_collaborators(client: PostQuedClient, workspace_id: str) -> tuple[list[Member], list[Invitation]]:
    body = await _read(client, "collaborators", workspace_id)
    members = _items(body, "members", "collaborators")
    invitations = _items(body, "invitations", "pendingInvitations")
    return [parse_member(m) for m in members], [parse_invitation(i) for i in invitations]


def _success(body: Any) -> bool:
    return bool(body.get("success", True)) if isinstance(body, dict) else True


def _invitation_answer(body: Any, **known: str | None) -> Invitation:
    found = parse_invitation(unwrap(body, "invitation"))
    return found.model_copy(update={k: v for k, v in known.items() if getattr(found, k) is None})


async def invite_collaborator(
    client: PostQuedClient, workspace_id: str, email: str, role: Role, membership_type: MembershipType
) -> Invitation:
    fields = {"email": email, "role": role, "membershipType": membership_type}
    body = await _write(client, "invitation_create", workspace_id, body=fields)
    return _invitation_answer(body, email=email, role=role, membership_type=membership_type)


async def revoke_collaborator_invitation(client: PostQuedClient, workspace_id: str, invitation_id: str) -> bool:
    return _success(await _write(client, "invitation_revoke", workspace_id, invitation_id))


async def update_collaborator(
    client: PostQuedClient, workspace_id: str, user_id: str, role: Role | None, membership_type: MembershipType | None
) -> Member:
    fields = {k: v for k, v in (("role", role), ("membershipType", membership_type)) if v is not None}
    body = await _write(client, "member_update", workspace_id, user_id, body=fields)
    member = parse_member(unwrap(body, "member", "collaborator"))
    known = {"user_id": user_id, "role": role, "membership_type": membership_type}
    return member.model_copy(update={k: v for k, v in known.items() if getattr(member, k) is None})


async def remove_collaborator(client: PostQuedClient, workspace_id: str, user_id: str) -> bool:
    return _success(await _write(client, "member_remove", workspace_id, user_id))


async def invite_post_reviewer(
    client: PostQuedClient, post_id: str, email: str, workspace_id: str | None
) -> Invitation:
    body = await _write(client, "reviewer_invite", post_id, body={"email": email}, workspace_id=workspace_id)
    return _invitation_answer(body, email=email)


async def revoke_post_reviewer_invitation(
    client: PostQuedClient, post_id: str, invitation_id: str, workspace_id: str | None
) -> bool:
    answer = await _write(client, "reviewer_invitation_revoke", post_id, invitation_id, workspace_id=workspace_id)
    return _success(answer)


async def remove_post_reviewer(client: PostQuedClient, post_id: str, user_id: str, workspace_id: str | None) -> bool:
    return _success(await _write(client, "reviewer_remove", post_id, user_id, workspace_id=workspace_id))


async def list_post_reviewers(
    client: PostQuedClient, post_id: str, workspace_id: str | None
) -> tuple[list[Member], list[Invitation]]:
    body = await _read(client, "post_reviewers", post_id, workspace_id=workspace_id)
    return [parse_member(m) for m in _items(body, "reviewers")], [
        parse_invitation(i) for i in _items(body, "invitations")
    ]

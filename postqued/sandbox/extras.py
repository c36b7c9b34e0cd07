"""The simulator beyond publishing: admin, provider helpers, analytics, engagement, approvals, team, client review.

PostQued documents these routes by path only (api-facts 3.2), so their request and answer shapes here are the
simulator's choice, kept to the documented fields and listed in ``references/parity-notes.md``. The rules it
enforces are the documented ones: explicit workspace scope, organisation and workspace access (403), unknown
ids (404), and optimistic concurrency on approval posts: every accepted mutation of a post increments its
``version``; a mutation whose ``expectedRevisionId``/``expectedVersion`` is stale answers **409
REVISION_CONFLICT**, and one the post's status does not allow answers **409 INVALID_STATE**.

Seeded, all deterministic: three workspace members (the key's owner, an editor, an external client), one
approval post in review with the key's owner as its reviewer (so client review has something to show), one
published TikTok post with comments in the engagement inbox, provider data (Instagram audio, subreddits,
LinkedIn pages, Pinterest boards) and analytics whose numbers are derived from ids. The seeded tenant has no
Reddit, LinkedIn or Pinterest account; ``connect_account`` adds one.

``ExtrasHandlers`` is mixed into ``SandboxApp``; its ``_h_<route>`` methods answer ``EXTRA_ROUTES``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import re
import uuid
import weakref
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from postqued.sandbox.state import (
    PLATFORMS,
    Account,
    ApiFail,
    ParsedTarget,
    Workspace,
    World,
    iso,
    parse_time,
    stable_id,
)

if TYPE_CHECKING:
    from postqued.sandbox.app import Ctx, Reply
    from postqued.sandbox.core import Sandbox

# (name, method, path template, rate-limit bucket). Names match postqued.client.ROUTES["v2"].
EXTRA_ROUTES: tuple[tuple[str, str, str, str | None], ...] = (
    ("workspace_create", "POST", "/v2/organizations/{id}/workspaces", None),
    ("billing", "GET", "/v2/billing", "read"),
    ("billing_capabilities", "GET", "/v2/billing/capabilities", "read"),
    ("billing_usage", "GET", "/v2/billing/usage", "read"),
    ("integration_delete", "DELETE", "/v2/integrations/{id}", "delete"),
    ("instagram_audio", "GET", "/v2/integrations/{id}/instagram/audio", "read"),
    ("reddit_subreddits", "GET", "/v2/integrations/{id}/reddit/subreddits", "read"),
    ("reddit_restrictions", "GET", "/v2/integrations/{id}/reddit/restrictions", "read"),
    ("linkedin_companies", "GET", "/v2/integrations/{id}/linkedin/companies", "read"),
    ("pinterest_boards", "GET", "/v2/integrations/{id}/pinterest/boards", "read"),
    ("analytics_posts", "GET", "/v2/analytics/posts", "read"),
    ("analytics_videos", "GET", "/v2/analytics/videos", "read"),
    ("engagement", "GET", "/v2/engagement", "read"),
    ("engagement_reply", "POST", "/v2/engagement/comments/reply", None),
    ("engagement_comment", "POST", "/v2/engagement/posts/comment", None),
    ("engagement_hide", "POST", "/v2/engagement/comments/hide", None),
    ("engagement_like", "POST", "/v2/engagement/comments/like", None),
    ("engagement_delete", "POST", "/v2/engagement/comments/delete", "delete"),
    ("posts", "GET", "/v2/posts", "read"),
    ("post_create", "POST", "/v2/posts", None),
    ("post_get", "GET", "/v2/posts/{id}", "read"),
    ("post_revision", "POST", "/v2/posts/{id}/revisions", None),
    ("post_suggestion", "POST", "/v2/posts/{id}/suggestions", None),
    ("post_suggestion_accept", "POST", "/v2/posts/{id}/suggestions/{sub}/accept", None),
    ("post_suggestion_decline", "POST", "/v2/posts/{id}/suggestions/{sub}/decline", None),
    ("post_comment", "POST", "/v2/posts/{id}/comments", None),
    ("post_submit", "POST", "/v2/posts/{id}/submit", None),
    ("post_request_changes", "POST", "/v2/posts/{id}/request-changes", None),
    ("post_approve", "POST", "/v2/posts/{id}/approve", None),
    ("post_schedule", "POST", "/v2/posts/{id}/schedule", None),
    ("post_publish", "POST", "/v2/posts/{id}/publish", None),
    ("post_reviewers", "GET", "/v2/posts/{id}/reviewers", "read"),
    ("reviewer_invite", "POST", "/v2/posts/{id}/reviewer-invitations", None),
    ("reviewer_invitation_revoke", "POST", "/v2/posts/{id}/reviewer-invitations/{sub}/revoke", None),
    ("reviewer_remove", "DELETE", "/v2/posts/{id}/reviewers/{sub}", "delete"),
    ("collaborators", "GET", "/v2/workspaces/{id}/collaborators", "read"),
    ("invitation_create", "POST", "/v2/workspaces/{id}/invitations", None),
    ("invitation_revoke", "POST", "/v2/workspaces/{id}/invitations/{sub}/revoke", None),
    ("member_update", "PATCH", "/v2/workspaces/{id}/members/{sub}", None),
    ("member_remove", "DELETE", "/v2/workspaces/{id}/members/{sub}", "delete"),
    ("client_reviews", "GET", "/v2/client-reviews", "read"),
    ("client_review_get", "GET", "/v2/client-reviews/{id}", "read"),
    ("client_suggestion", "POST", "/v2/client-reviews/{id}/suggestions", None),
    ("client_comment", "POST", "/v2/client-reviews/{id}/comments", None),
    ("client_request_changes", "POST", "/v2/client-reviews/{id}/request-changes", None),
    ("client_approve", "POST", "/v2/client-reviews/{id}/approve", None),
)
EXTRA_BUCKETS: dict[str, str | None] = {name: bucket for name, _m, _t, bucket in EXTRA_ROUTES}

ROLES = ("admin", "editor", "reviewer", "viewer")
MEMBERSHIP_TYPES = ("team", "external")
ANALYTICS_PLATFORMS = ("tiktok", "facebook", "instagram", "threads", "youtube")
RANGE_POSTS = {"week": 3, "month": 8, "all": 20}
RANGE_VIDEOS = {"week": 4, "month": 12, "all": 30}
RANGE_DAYS = {"week": 7, "month": 30, "all": 365}
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
SUBREDDITS = (
    ("sandbox", "Sandbox testing ground", 12_400, False),
    ("videos", "Videos", 26_800_000, False),
    ("shortfilms", "Short films", 310_000, False),
    ("socialmedia", "Social media marketing", 480_000, False),
    ("pics", "Pictures", 30_100_000, False),
)
COMPANIES = (("1001", "Sandbox Inc", "sandbox-inc"), ("1002", "Sandbox Studio", "sandbox-studio"))
BOARDS = (("Launch ideas", "public"), ("Behind the scenes", "public"), ("Drafts", "secret"))


def _n(seed: str, low: int, high: int) -> int:
    """A deterministic number in [low, high] derived from ``seed``."""
    return low + int(hashlib.sha256(seed.encode()).hexdigest()[:12], 16) % (high - low + 1)


# --- records -----------------------------------------------------------------------------------------------


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


# --- state ---------------------------------------------------------------------------------------------------


class ExtrasState:
    """What the extra routes remember, beside the publishing ``World`` (which it reads and sometimes extends)."""

    def __init__(self, world: World) -> None:
        self.world = world
        seeded = datetime(2026, 1, 15, 9, 0, tzinfo=UTC)
        self.owner = User(stable_id("user/owner"), "owner@sandbox.invalid", "Sandbox Owner")
        editor = User(stable_id("user/editor"), "editor@sandbox.invalid", "Sandbox Editor")
        client = User(stable_id("user/client"), "client@sandbox.invalid", "Sandbox Client")
        self.users: dict[str, User] = {u.id: u for u in (self.owner, editor, client)}
        main = world.default_workspace.id
        self.members: dict[str, dict[str, MemberRec]] = {
            main: {
                self.owner.id: MemberRec(self.owner, "admin", "team"),
                editor.id: MemberRec(editor, "editor", "team"),
                client.id: MemberRec(client, "reviewer", "external"),
            }
        }
        self.invitations: dict[str, dict[str, InvitationRec]] = {}
        self.posts: dict[str, ApprovalPostRec] = {}
        self.comments: dict[str, list[CommentRec]] = {}
        self.engagement_posts: dict[str, EngagementPost] = {}

        tiktok = next(a for a in world.accounts_in(main, "tiktok"))
        post = ApprovalPostRec(
            id=stable_id("approval/spring-teaser"),
            workspace_id=main,
            created_at=seeded,
            updated_at=seeded,
            status="in_review",
            version=2,
            revisions=[
                RevisionRec(
                    id=stable_id("approval/spring-teaser/r1"),
                    number=1,
                    title="Spring launch teaser",
                    brief="Short teaser for the spring launch; client signs off on the caption.",
                    asset_ids=[],
                    targets=[
                        {
                            "platform": "tiktok",
                            "accountId": tiktok.id,
                            "caption": "Spring is coming. Something new drops Friday #launch",
                            "linkUrl": None,
                            "options": {"privacyLevel": "PUBLIC_TO_EVERYONE"},
                        }
                    ],
                    created_at=seeded,
                )
            ],
            reviewers={self.owner.id: self.owner, client.id: client},
        )
        post.feedback.append(self._note("submitted", None, editor, post.current.id, seeded))
        self.posts[post.id] = post

        item = EngagementPost(
            target_id=stable_id("engagement/target/1"),
            publish_id=stable_id("engagement/publish/1"),
            account_id=tiktok.id,
            caption="Behind the scenes of the sandbox shoot #sandbox",
            published_at=seeded + timedelta(days=3),
            provider_post_id="7400000000000000900",
            first_comment="Thanks for watching! More on Friday.",
        )
        self.engagement_posts[item.target_id] = item
        self.comments[item.target_id] = [
            CommentRec(
                stable_id("comment/1"), "Love this! When is the launch?", "@fan_one", seeded + timedelta(days=4)
            ),
            CommentRec(
                stable_id("comment/2"), "The lighting is great", "@fan_two", seeded + timedelta(days=4, hours=2)
            ),
        ]

    @staticmethod
    def _note(kind: str, comment: str | None, author: User, revision_id: str, at: datetime) -> dict[str, Any]:
        return {
            "kind": kind,
            "comment": comment,
            "author": {"id": author.id, "email": author.email},
            "revisionId": revision_id,
            "createdAt": iso(at),
        }

    def members_of(self, workspace_id: str) -> dict[str, MemberRec]:
        return self.members.setdefault(workspace_id, {self.owner.id: MemberRec(self.owner, "admin", "team")})


_STATES: weakref.WeakKeyDictionary[World, ExtrasState] = weakref.WeakKeyDictionary()


def state_of(world: World) -> ExtrasState:
    found = _STATES.get(world)
    if found is None:
        found = _STATES[world] = ExtrasState(world)
    return found


def connect_account(sb: Sandbox, platform: str, username: str, *, workspace_id: str | None = None) -> str:
    """Connect one more account (e.g. Reddit, LinkedIn, Pinterest) to the sandbox; returns its id."""
    if platform not in PLATFORMS:
        raise ValueError(f"unknown platform {platform!r}")
    world = sb.world
    account = Account(
        id=stable_id(f"account/{platform}/{username}"),
        platform=platform,
        username=username if username.startswith("@") else f"@{username}",
        display_name=username.lstrip("@").replace("_", " ").title(),
        workspace_id=workspace_id or world.default_workspace.id,
        external_id=f"sandbox-{platform}-{_n(username, 1000, 9999)}",
        created_at=datetime(2026, 1, 15, 9, 0, tzinfo=UTC),
    )
    world.accounts[account.id] = account
    return account.id


# --- the handlers --------------------------------------------------------------------------------------------


def _reply(data: Any, status: int = 200) -> Reply:
    from postqued.sandbox.app import json_reply  # the app imports this module: resolve at call time

    return json_reply(data, status)


def _invalid(path: str, message: str, code: str = "VALIDATION_ERROR") -> ApiFail:
    return ApiFail(400, code, f"{path}: {message}", issues=[{"path": path, "message": message}])


def _string(body: dict[str, Any], name: str, *, limit: int = 10_000, required: bool = True) -> str | None:
    value = body.get(name)
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value.strip():
        raise _invalid(name, "is required (a non-empty string)")
    if len(value) > limit:
        raise _invalid(name, f"must be at most {limit} characters")
    return value


def _int_query(ctx: Ctx, name: str, default: int, low: int, high: int) -> int:
    raw = ctx.query(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        value = low - 1
    if not low <= value <= high:
        raise _invalid(name, f"must be an integer from {low} to {high}")
    return value


class ExtrasHandlers:
    """Mixed into ``SandboxApp``: one ``_h_<route>`` per ``EXTRA_ROUTES`` entry."""

    sb: Sandbox

    def _workspace(self, ctx: Ctx) -> Workspace:  # provided by SandboxApp
        raise NotImplementedError

    @property
    def _x(self) -> ExtrasState:
        return state_of(self.sb.world)

    def _now(self) -> datetime:
        return self.sb.clock.now()

    def _path_workspace(self, ctx: Ctx) -> Workspace:
        workspace = self.sb.world.workspaces.get(ctx.params["id"])
        if workspace is None:
            raise ApiFail(403, "FORBIDDEN", "Workspace access denied")
        return workspace

    # -- admin ----------------------------------------------------------------------------------------------

    async def _h_workspace_create(self, ctx: Ctx) -> Reply:
        world = self.sb.world
        if ctx.params["id"] != world.organization.id:
            raise ApiFail(403, "FORBIDDEN", "Organization access denied")
        name = _string(ctx.json(), "name", limit=100)
        assert name is not None
        workspace = Workspace(str(uuid.uuid4()), name.strip(), "admin", world.organization.id)
        world.workspaces[workspace.id] = workspace
        data = {
            "id": workspace.id,
            "name": workspace.name,
            "organizationId": workspace.organization_id,
            "role": "admin",
        }
        return _reply({"workspace": data}, 201)

    async def _h_billing(self, ctx: Ctx) -> Reply:
        if ctx.query("workspaceId") is not None:
            self._workspace(ctx)
        active = self.sb.world.subscription_active
        now = self._now()
        return _reply(
            {
                "status": "active" if active else "inactive",
                "plan": {"id": "sandbox_pro", "name": "Sandbox Pro"} if active else None,
                "currentPeriodEnd": iso(now.replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(days=30))
                if active
                else None,
                "cancelAtPeriodEnd": False,
            }
        )

    async def _h_billing_capabilities(self, ctx: Ctx) -> Reply:
        workspace = self._workspace(ctx)
        world, active = self.sb.world, self.sb.world.subscription_active
        members = [m for m in self._x.members_of(workspace.id).values() if m.status == "active"]
        features = ("apiAccess", "publishing", "analytics", "engagement", "approvals", "clientReview")
        capabilities: dict[str, Any] = {name: active for name in features}
        capabilities["collaborators"] = {"limit": 10 if active else 1, "used": len(members)}
        capabilities["workspaces"] = {"limit": 5 if active else 1, "used": len(world.workspaces)}
        return _reply(
            {"workspaceId": workspace.id, "plan": "sandbox_pro" if active else None, "capabilities": capabilities}
        )

    async def _h_billing_usage(self, ctx: Ctx) -> Reply:
        workspace = self._workspace(ctx)
        world, now = self.sb.world, self._now()
        start = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
        requests = [r for r in world.publish_requests.values() if r.workspace_id == workspace.id]
        uploads = [c for c in world.contents.values() if c.workspace_id == workspace.id and c.status == "ready"]
        return _reply(
            {
                "workspaceId": workspace.id,
                "period": {"start": iso(start), "end": iso((start + timedelta(days=32)).replace(day=1))},
                "usage": {
                    "publishRequests": len(requests),
                    "publishTargets": sum(len(r.targets) for r in requests),
                    "uploads": len(uploads),
                    "connectedAccounts": len(world.accounts_in(workspace.id)),
                    "collaborators": len(self._x.members_of(workspace.id)),
                },
            }
        )

    async def _h_integration_delete(self, ctx: Ctx) -> Reply:
        workspace = self._workspace(ctx)
        world = self.sb.world
        account = world.account_in(workspace.id, ctx.params["id"])
        # Detached, not deleted: targets that already reference it still resolve inside the simulator.
        world.accounts[account.id] = dataclasses.replace(account, workspace_id="")
        return _reply({"success": True})

    # -- provider helpers -------------------------------------------------------------------------------------

    def _provider_account(self, ctx: Ctx, platform: str) -> Account:
        workspace = self._workspace(ctx)
        account = self.sb.world.account_in(workspace.id, ctx.params["id"])
        if account.platform != platform:
            raise ApiFail(
                400, "UNSUPPORTED_PLATFORM", f"This helper needs a {platform} account, not {account.platform}"
            )
        return account

    async def _h_instagram_audio(self, ctx: Ctx) -> Reply:
        account = self._provider_account(ctx, "instagram")
        tracks = [
            ("music", "Sunny Loop", "Sandbox Sound Co", 30_000),
            ("music", "Night Drive", "The Placeholders", 45_000),
            ("original_sound", f"Original audio - {account.username.lstrip('@')}", account.username, 15_000),
        ]
        return _reply(
            {
                "audio": [
                    {
                        "selectionToken": f"sbx_audio_{stable_id(f'audio/{account.id}/{i}')[:8]}",
                        "type": kind,
                        "title": title,
                        "artist": artist,
                        "durationMs": duration,
                    }
                    for i, (kind, title, artist, duration) in enumerate(tracks)
                ]
            }
        )

    async def _h_reddit_subreddits(self, ctx: Ctx) -> Reply:
        self._provider_account(ctx, "reddit")
        limit = _int_query(ctx, "limit", 10, 1, 100)
        query = (ctx.query("query") or "").lower().removeprefix("r/")
        found = [s for s in SUBREDDITS if query in s[0] or query in s[1].lower()][:limit]
        return _reply(
            {
                "subreddits": [
                    {"name": name, "title": title, "subscribers": subscribers, "nsfw": nsfw}
                    for name, title, subscribers, nsfw in found
                ]
            }
        )

    async def _h_reddit_restrictions(self, ctx: Ctx) -> Reply:
        self._provider_account(ctx, "reddit")
        name = (ctx.query("subreddit") or "").strip().removeprefix("r/")
        if not name:
            raise ApiFail(400, "MISSING_SUBREDDIT", "subreddit is required")
        if name.lower() not in {s[0] for s in SUBREDDITS}:
            raise ApiFail(404, "NOT_FOUND", f"Subreddit r/{name} not found")
        strict = name.lower() in ("sandbox", "shortfilms")
        return _reply(
            {
                "subreddit": name.lower(),
                "postTypes": ["self", "link", "video"] if strict else ["self", "link", "image", "video", "videogif"],
                "flairRequired": strict,
                "flairs": [
                    {"id": stable_id(f"flair/{name.lower()}/{t}")[:13], "text": t} for t in ("Discussion", "OC", "Meta")
                ],
                "titleMaxLength": 300,
            }
        )

    async def _h_linkedin_companies(self, ctx: Ctx) -> Reply:
        self._provider_account(ctx, "linkedin")
        limit = _int_query(ctx, "limit", 10, 1, 100)
        query = (ctx.query("query") or "").lower()
        found = [c for c in COMPANIES if query in c[1].lower()][:limit]
        return _reply(
            {"companies": [{"id": f"urn:li:organization:{i}", "name": n, "vanityName": v} for i, n, v in found]}
        )

    async def _h_pinterest_boards(self, ctx: Ctx) -> Reply:
        account = self._provider_account(ctx, "pinterest")
        limit = _int_query(ctx, "limit", 50, 1, 250)
        boards = [
            {"id": str(_n(f"board/{account.id}/{name}", 10**17, 10**18 - 1)), "name": name, "privacy": privacy}
            for name, privacy in BOARDS
        ]
        return _reply({"boards": boards[:limit]})

    # -- analytics ----------------------------------------------------------------------------------------------

    def _analytics_args(self, ctx: Ctx, default_range: str) -> tuple[Account, str]:
        workspace = self._workspace(ctx)
        account_id = ctx.query("accountId")
        if not account_id:
            raise _invalid("accountId", "is required")
        range_ = ctx.query("range") or default_range
        if range_ not in RANGE_POSTS:
            raise _invalid("range", "must be week, month or all")
        return self.sb.world.account_in(workspace.id, account_id), range_

    def _metrics(self, seed: str) -> dict[str, int]:
        views = _n(f"{seed}/views", 400, 60_000)
        likes = views * _n(f"{seed}/like-rate", 2, 12) // 100
        return {
            "views": views,
            "likes": likes,
            "comments": likes * _n(f"{seed}/comment-rate", 2, 10) // 100,
            "shares": likes * _n(f"{seed}/share-rate", 1, 8) // 100,
        }

    async def _h_analytics_posts(self, ctx: Ctx) -> Reply:
        account, range_ = self._analytics_args(ctx, "month")
        limit = _int_query(ctx, "limit", 50, 1, 100)
        if account.platform not in ANALYTICS_PLATFORMS:
            raise ApiFail(400, "UNSUPPORTED_PLATFORM", f"Analytics are not available for {account.platform}")
        count = min(RANGE_POSTS[range_], limit)
        spacing = timedelta(days=RANGE_DAYS[range_]) / (RANGE_POSTS[range_] + 1)
        now = self._now().replace(microsecond=0)
        posts: list[dict[str, Any]] = []
        totals = dict.fromkeys(("views", "likes", "comments", "shares"), 0)
        for i in range(count):
            post_id = stable_id(f"analytics/{account.id}/{i}")
            metrics = self._metrics(post_id)
            for key in totals:
                totals[key] += metrics[key]
            posts.append(
                {
                    "id": post_id,
                    "caption": f"Sandbox post {i + 1} #sandbox",
                    "publishedAt": iso(now - spacing * (i + 1)),
                    "url": f"https://sandbox.postqued.invalid/{account.platform}/{post_id[:8]}",
                    **metrics,
                }
            )
        return _reply(
            {
                "accountId": account.id,
                "platform": account.platform,
                "range": range_,
                "totals": {**totals, "posts": len(posts)},
                "posts": posts,
            }
        )

    async def _h_analytics_videos(self, ctx: Ctx) -> Reply:
        account, range_ = self._analytics_args(ctx, "week")
        limit = _int_query(ctx, "limit", 20, 1, 20)
        if account.platform != "tiktok":
            raise ApiFail(400, "UNSUPPORTED_PLATFORM", "Video analytics exist for TikTok accounts only")
        raw_cursor = ctx.query("cursor")
        try:
            offset = int(raw_cursor) if raw_cursor else 0
        except ValueError:
            raise _invalid("cursor", "is not a cursor from an earlier page") from None
        total = RANGE_VIDEOS[range_]
        if not 0 <= offset <= total:
            raise _invalid("cursor", "is not a cursor from an earlier page")
        spacing = timedelta(days=RANGE_DAYS[range_]) / (total + 1)
        now = self._now().replace(microsecond=0)
        videos = []
        for i in range(offset, min(total, offset + limit)):
            video_id = str(_n(f"video/{account.id}/{i}", 7 * 10**18, 8 * 10**18 - 1))
            videos.append(
                {
                    "id": video_id,
                    "title": f"Sandbox video {i + 1}",
                    "createTime": int((now - spacing * (i + 1)).timestamp()),
                    "duration": _n(f"{video_id}/duration", 8, 180),
                    "shareUrl": f"https://sandbox.postqued.invalid/tiktok/video/{video_id}",
                    **self._metrics(video_id),
                }
            )
        end = offset + len(videos)
        more = end < total
        return _reply({"videos": videos, "cursor": str(end) if more else None, "hasMore": more})

    # -- engagement ---------------------------------------------------------------------------------------------

    def _engagement_posts(self, workspace_id: str) -> list[EngagementPost]:
        world, now = self.sb.world, self._now()
        found = [
            p
            for p in self._x.engagement_posts.values()
            if self.sb.world.accounts[p.account_id].workspace_id == workspace_id
        ]
        for request in world.publish_requests.values():
            if request.workspace_id != workspace_id or request.deleted_at is not None:
                continue
            for target in request.targets:
                if world.target_status(target, now) != "published":
                    continue
                finished = world.finished_at(target)
                assert finished is not None
                first = target.options.get("firstComment")
                found.append(
                    EngagementPost(
                        target_id=target.id,
                        publish_id=request.id,
                        account_id=target.account_id,
                        caption=target.caption,
                        published_at=finished,
                        provider_post_id=target.provider_post_id or "",
                        first_comment=first.get("text") if isinstance(first, dict) else None,
                    )
                )
        found.sort(key=lambda p: p.published_at, reverse=True)
        return found

    def _render_engagement(self, post: EngagementPost) -> dict[str, Any]:
        account = self.sb.world.accounts[post.account_id]
        comments = [c for c in self._x.comments.get(post.target_id, []) if not c.deleted]
        comments.sort(key=lambda c: c.created_at, reverse=True)
        return {
            "targetId": post.target_id,
            "publishId": post.publish_id,
            "platform": account.platform,
            "accountId": account.id,
            "caption": post.caption,
            "publishedAt": iso(post.published_at),
            "providerPostId": post.provider_post_id,
            "url": f"https://sandbox.postqued.invalid/{account.platform}/{post.provider_post_id}",
            "firstComment": {"status": "posted", "text": post.first_comment} if post.first_comment else None,
            "comments": [c.to_api() for c in comments[:20]],
        }

    async def _h_engagement(self, ctx: Ctx) -> Reply:
        workspace = self._workspace(ctx)
        limit = _int_query(ctx, "limit", 50, 1, 100)
        items = self._engagement_posts(workspace.id)[:limit]
        return _reply({"items": [self._render_engagement(p) for p in items]})

    def _engagement_target(self, ctx: Ctx) -> tuple[EngagementPost, dict[str, Any]]:
        workspace = self._workspace(ctx)
        body = ctx.json()
        target_id = _string(body, "targetId", limit=100)
        for post in self._engagement_posts(workspace.id):
            if post.target_id == target_id:
                return post, body
        raise ApiFail(404, "NOT_FOUND", "Published post not found in the engagement inbox")

    def _comment(self, post: EngagementPost, body: dict[str, Any]) -> CommentRec:
        comment_id = _string(body, "commentId", limit=200)
        for comment in self._x.comments.get(post.target_id, []):
            if comment.id == comment_id and not comment.deleted:
                return comment
        raise ApiFail(404, "NOT_FOUND", "Comment not found")

    def _add_comment(self, post: EngagementPost, text: str, parent_id: str | None) -> CommentRec:
        author = self.sb.world.accounts[post.account_id].username
        comment = CommentRec(str(uuid.uuid4()), text, author, self._now(), parent_id=parent_id)
        self._x.comments.setdefault(post.target_id, []).append(comment)
        return comment

    async def _h_engagement_reply(self, ctx: Ctx) -> Reply:
        post, body = self._engagement_target(ctx)
        parent = self._comment(post, body)
        text = _string(body, "text")
        assert text is not None
        return _reply({"comment": self._add_comment(post, text, parent.id).to_api()}, 201)

    async def _h_engagement_comment(self, ctx: Ctx) -> Reply:
        post, body = self._engagement_target(ctx)
        text = _string(body, "text")
        assert text is not None
        return _reply({"comment": self._add_comment(post, text, None).to_api()}, 201)

    def _flag(self, ctx: Ctx, name: str) -> Reply:
        post, body = self._engagement_target(ctx)
        comment = self._comment(post, body)
        value = body.get(name)
        if not isinstance(value, bool):
            raise _invalid(name, "must be true or false")
        setattr(comment, name, value)
        return _reply({"comment": comment.to_api()})

    async def _h_engagement_hide(self, ctx: Ctx) -> Reply:
        return self._flag(ctx, "hidden")

    async def _h_engagement_like(self, ctx: Ctx) -> Reply:
        return self._flag(ctx, "liked")

    async def _h_engagement_delete(self, ctx: Ctx) -> Reply:
        post, body = self._engagement_target(ctx)
        self._comment(post, body).deleted = True
        return _reply({"success": True})

    # -- approval posts -----------------------------------------------------------------------------------------

    def _render_post(self, post: ApprovalPostRec) -> dict[str, Any]:
        world = self.sb.world
        delivery = None
        if post.publish_id is not None:
            request = world.publish_requests[post.publish_id]
            delivery = {
                "publishId": request.id,
                "dispatchAt": iso(post.dispatch_at),
                "status": world.request_status(request, self._now()),
            }
        return {
            "id": post.id,
            "workspaceId": post.workspace_id,
            "title": post.current.title,
            "status": post.status,
            "version": post.version,
            "currentRevisionId": post.current.id,
            "currentRevision": post.current.to_api(),
            "suggestions": [s.to_api() for s in post.suggestions.values()],
            "feedback": list(post.feedback),
            "reviewers": [
                {"userId": u.id, "email": u.email, "name": u.name, "status": "active"} for u in post.reviewers.values()
            ],
            "delivery": delivery,
            "createdAt": iso(post.created_at),
            "updatedAt": iso(post.updated_at or post.created_at),
        }

    def _post(self, ctx: Ctx, workspace: Workspace) -> ApprovalPostRec:
        post = self._x.posts.get(ctx.params["id"])
        if post is None or post.workspace_id != workspace.id:
            raise ApiFail(404, "NOT_FOUND", "Post not found")
        return post

    def _draft(
        self, body: dict[str, Any], workspace: Workspace
    ) -> tuple[str, str | None, list[str], list[dict[str, Any]]]:
        world = self.sb.world
        title = _string(body, "title", limit=300)
        brief = _string(body, "brief", limit=5000, required=False)
        assets = body.get("assetIds", [])
        if not isinstance(assets, list) or len(assets) > 35 or not all(isinstance(a, str) for a in assets):
            raise _invalid("assetIds", "must be a list of at most 35 content ids")
        for i, asset in enumerate(assets):
            content = world.contents.get(asset)
            if content is None or content.workspace_id != workspace.id or content.status != "ready":
                raise _invalid(f"assetIds[{i}]", "is not a ready content asset of this workspace")
        raw_targets = body.get("targets")
        if not isinstance(raw_targets, list) or not 1 <= len(raw_targets) <= 35:
            raise _invalid("targets", "must be a list of 1 to 35 targets")
        targets = []
        for i, raw in enumerate(raw_targets):
            where = f"targets[{i}]"
            if not isinstance(raw, dict):
                raise _invalid(where, "must be an object")
            platform = raw.get("platform")
            if platform not in PLATFORMS:
                raise _invalid(f"{where}.platform", f"must be one of {', '.join(PLATFORMS)}")
            account = world.accounts.get(str(raw.get("accountId")))
            if account is None or account.workspace_id != workspace.id or account.platform != platform:
                raise _invalid(f"{where}.accountId", f"is not a connected {platform} account of this workspace")
            caption = raw.get("caption")
            if not isinstance(caption, str) or not caption:
                raise _invalid(f"{where}.caption", "is required")
            options = raw.get("options", {})
            if not isinstance(options, dict):
                raise _invalid(f"{where}.options", "must be an object")
            link = raw.get("linkUrl")
            if link is not None and not isinstance(link, str):
                raise _invalid(f"{where}.linkUrl", "must be a string")
            targets.append(
                {"platform": platform, "accountId": account.id, "caption": caption, "linkUrl": link, "options": options}
            )
        assert title is not None
        return title, brief, list(assets), targets

    def _guard(self, post: ApprovalPostRec, body: dict[str, Any], revision_key: str = "expectedRevisionId") -> None:
        revision, version = body.get(revision_key), body.get("expectedVersion")
        if not isinstance(revision, str) or not revision:
            raise _invalid(revision_key, "is required (the current revision id you read)")
        if isinstance(version, bool) or not isinstance(version, int):
            raise _invalid("expectedVersion", "is required (the version you read)")
        if revision != post.current.id or version != post.version:
            raise ApiFail(
                409,
                "REVISION_CONFLICT",
                f"The post changed: current revision {post.current.id}, version {post.version} "
                f"(you sent {revision}, {version}). Read it again.",
            )

    def _require_status(self, post: ApprovalPostRec, allowed: tuple[str, ...], action: str) -> None:
        if post.status not in allowed:
            raise ApiFail(409, "INVALID_STATE", f"Cannot {action} a post that is {post.status}")

    def _touch(self, post: ApprovalPostRec) -> None:
        post.version += 1
        post.updated_at = self._now()

    def _post_answer(self, post: ApprovalPostRec, key: str = "post", status: int = 200) -> Reply:
        return _reply({key: self._render_post(post)}, status)

    async def _h_posts(self, ctx: Ctx) -> Reply:
        workspace = self._workspace(ctx)
        posts = [p for p in self._x.posts.values() if p.workspace_id == workspace.id]
        posts.sort(key=lambda p: p.updated_at or p.created_at, reverse=True)
        return _reply({"posts": [self._render_post(p) for p in posts]})

    async def _h_post_create(self, ctx: Ctx) -> Reply:
        workspace = self._workspace(ctx)
        title, brief, assets, targets = self._draft(ctx.json(), workspace)
        now = self._now()
        post_id = str(uuid.uuid4())
        revision = RevisionRec(str(uuid.uuid4()), 1, title, brief, assets, targets, now)
        post = ApprovalPostRec(post_id, workspace.id, now, [revision], updated_at=now)
        self._x.posts[post_id] = post
        return self._post_answer(post, status=201)

    async def _h_post_get(self, ctx: Ctx) -> Reply:
        return self._post_answer(self._post(ctx, self._workspace(ctx)))

    async def _h_post_revision(self, ctx: Ctx) -> Reply:
        workspace = self._workspace(ctx)
        post = self._post(ctx, workspace)
        body = ctx.json()
        self._guard(post, body, revision_key="baseRevisionId")
        self._require_status(post, ("draft", "changes_requested", "in_review", "approved"), "revise")
        title, brief, assets, targets = self._draft(body, workspace)
        post.revisions.append(
            RevisionRec(str(uuid.uuid4()), post.current.number + 1, title, brief, assets, targets, self._now())
        )
        post.status = "draft"  # new content needs review again
        self._touch(post)
        return self._post_answer(post, status=201)

    def _suggest(self, post: ApprovalPostRec, body: dict[str, Any], allowed: tuple[str, ...]) -> None:
        self._guard(post, body)
        self._require_status(post, allowed, "suggest an edit to")
        if body.get("field", "caption") != "caption":
            raise _invalid("field", "only caption suggestions are supported")
        index = body.get("targetIndex")
        targets = post.current.targets
        if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < len(targets):
            raise _invalid("targetIndex", f"must be an index into the revision's {len(targets)} target(s)")
        if body.get("platform") != targets[index]["platform"]:
            raise _invalid("platform", f"target {index} is {targets[index]['platform']}")
        start, end = body.get("selectionStart"), body.get("selectionEnd")
        caption = str(targets[index]["caption"])
        if not (isinstance(start, int) and isinstance(end, int) and 0 <= start <= end <= len(caption)):
            raise _invalid("selectionStart", f"selection must lie within the caption (0..{len(caption)})")
        original, replacement = body.get("originalText"), body.get("replacementText")
        if not isinstance(original, str) or caption[start:end] != original:
            raise _invalid("originalText", "does not match the caption at the selection")
        if not isinstance(replacement, str):
            raise _invalid("replacementText", "is required")
        note = _string(body, "note", limit=2000, required=False)
        suggestion = SuggestionRec(
            str(uuid.uuid4()), post.current.id, index, targets[index]["platform"], start, end, original,
            replacement, note, self._x.owner, self._now(),
        )  # fmt: skip
        post.suggestions[suggestion.id] = suggestion
        self._touch(post)

    async def _h_post_suggestion(self, ctx: Ctx) -> Reply:
        post = self._post(ctx, self._workspace(ctx))
        self._suggest(post, ctx.json(), ("draft", "in_review", "changes_requested"))
        return self._post_answer(post, status=201)

    def _open_suggestion(self, ctx: Ctx, post: ApprovalPostRec) -> SuggestionRec:
        suggestion = post.suggestions.get(ctx.params["sub"])
        if suggestion is None:
            raise ApiFail(404, "NOT_FOUND", "Suggestion not found")
        if suggestion.status != "open":
            raise ApiFail(409, "INVALID_STATE", f"The suggestion is already {suggestion.status}")
        return suggestion

    async def _h_post_suggestion_accept(self, ctx: Ctx) -> Reply:
        post = self._post(ctx, self._workspace(ctx))
        self._guard(post, ctx.json())
        self._require_status(post, ("draft", "in_review", "changes_requested"), "edit")
        suggestion = self._open_suggestion(ctx, post)
        if suggestion.revision_id != post.current.id:
            raise ApiFail(409, "SUGGESTION_STALE", "The suggestion was made on an older revision; suggest it again")
        current = post.current
        targets = [dict(t) for t in current.targets]
        caption = str(targets[suggestion.target_index]["caption"])
        targets[suggestion.target_index]["caption"] = (
            caption[: suggestion.start] + suggestion.replacement + caption[suggestion.end :]
        )
        post.revisions.append(
            RevisionRec(
                str(uuid.uuid4()), current.number + 1, current.title, current.brief, list(current.asset_ids),
                targets, self._now(),
            )
        )  # fmt: skip
        suggestion.status = "accepted"
        self._touch(post)
        return self._post_answer(post)

    async def _h_post_suggestion_decline(self, ctx: Ctx) -> Reply:
        post = self._post(ctx, self._workspace(ctx))
        self._guard(post, ctx.json())
        self._open_suggestion(ctx, post).status = "declined"
        self._touch(post)
        return self._post_answer(post)

    def _feedback(self, post: ApprovalPostRec, body: dict[str, Any], kind: str, *, required: bool) -> None:
        comment = _string(body, "comment", limit=5000, required=required)
        post.feedback.append(ExtrasState._note(kind, comment, self._x.owner, post.current.id, self._now()))

    async def _h_post_comment(self, ctx: Ctx) -> Reply:
        post = self._post(ctx, self._workspace(ctx))
        body = ctx.json()
        self._guard(post, body)
        self._feedback(post, body, "comment", required=True)
        self._touch(post)
        return self._post_answer(post, status=201)

    async def _h_post_submit(self, ctx: Ctx) -> Reply:
        post = self._post(ctx, self._workspace(ctx))
        self._guard(post, ctx.json())
        self._require_status(post, ("draft", "changes_requested"), "submit")
        post.status = "in_review"
        post.feedback.append(ExtrasState._note("submitted", None, self._x.owner, post.current.id, self._now()))
        self._touch(post)
        return self._post_answer(post)

    def _review_decision(self, post: ApprovalPostRec, body: dict[str, Any], approve: bool) -> None:
        self._guard(post, body)
        self._require_status(post, ("in_review",), "approve" if approve else "request changes on")
        self._feedback(post, body, "approved" if approve else "changes_requested", required=not approve)
        post.status = "approved" if approve else "changes_requested"
        self._touch(post)

    async def _h_post_request_changes(self, ctx: Ctx) -> Reply:
        post = self._post(ctx, self._workspace(ctx))
        self._review_decision(post, ctx.json(), approve=False)
        return self._post_answer(post)

    async def _h_post_approve(self, ctx: Ctx) -> Reply:
        post = self._post(ctx, self._workspace(ctx))
        self._review_decision(post, ctx.json(), approve=True)
        return self._post_answer(post)

    def _deliver(self, post: ApprovalPostRec, dispatch_at: datetime | None) -> None:
        world = self.sb.world
        for i, target in enumerate(post.current.targets):
            account = world.accounts.get(target["accountId"])
            if account is None or account.workspace_id != post.workspace_id:
                raise ApiFail(409, "INVALID_STATE", f"targets[{i}]: the account is no longer connected")
        request = world.create_publish(
            workspace_id=post.workspace_id,
            api_version="v2",
            content_ids=list(post.current.asset_ids),
            targets=[
                ParsedTarget(t["platform"], t["accountId"], "publish", t["caption"], dispatch_at, dict(t["options"]))
                for t in post.current.targets
            ],
            idempotency_key=None,
            body={"approvalPostId": post.id, "revisionId": post.current.id},
        )
        post.publish_id, post.dispatch_at = request.id, dispatch_at
        post.status = "scheduled" if dispatch_at is not None else "published"
        self._touch(post)

    async def _h_post_schedule(self, ctx: Ctx) -> Reply:
        post = self._post(ctx, self._workspace(ctx))
        body = ctx.json()
        self._guard(post, body)
        self._require_status(post, ("approved",), "schedule")
        when = parse_time(body.get("dispatchAt"))
        if when is None or when <= self._now():
            raise ApiFail(400, "INVALID_DISPATCH_AT", "dispatchAt must be a future ISO 8601 time with an offset")
        self._deliver(post, when)
        return self._post_answer(post)

    async def _h_post_publish(self, ctx: Ctx) -> Reply:
        post = self._post(ctx, self._workspace(ctx))
        self._guard(post, ctx.json())
        self._require_status(post, ("approved",), "publish")
        self._deliver(post, None)
        return self._post_answer(post)

    # -- post reviewers -----------------------------------------------------------------------------------------

    async def _h_post_reviewers(self, ctx: Ctx) -> Reply:
        post = self._post(ctx, self._workspace(ctx))
        return _reply(
            {
                "reviewers": [
                    {"userId": u.id, "email": u.email, "name": u.name, "role": "reviewer", "status": "active"}
                    for u in post.reviewers.values()
                ],
                "invitations": [i.to_api() for i in post.reviewer_invitations.values()],
            }
        )

    async def _h_reviewer_invite(self, ctx: Ctx) -> Reply:
        post = self._post(ctx, self._workspace(ctx))
        email = (_string(ctx.json(), "email", limit=320) or "").strip().lower()
        if not EMAIL.match(email):
            raise _invalid("email", "is not an email address")
        if any(u.email == email for u in post.reviewers.values()):
            raise ApiFail(409, "ALREADY_REVIEWER", f"{email} already reviews this post")
        if any(i.email == email and i.status == "pending" for i in post.reviewer_invitations.values()):
            raise ApiFail(409, "ALREADY_INVITED", f"{email} already has a pending invitation")
        invitation = InvitationRec(str(uuid.uuid4()), email, "reviewer", "external", self._now())
        post.reviewer_invitations[invitation.id] = invitation
        return _reply({"invitation": invitation.to_api()}, 201)

    async def _h_reviewer_invitation_revoke(self, ctx: Ctx) -> Reply:
        post = self._post(ctx, self._workspace(ctx))
        return self._revoke(post.reviewer_invitations.get(ctx.params["sub"]))

    async def _h_reviewer_remove(self, ctx: Ctx) -> Reply:
        post = self._post(ctx, self._workspace(ctx))
        if post.reviewers.pop(ctx.params["sub"], None) is None:
            raise ApiFail(404, "NOT_FOUND", "Reviewer not found on this post")
        return _reply({"success": True})

    def _revoke(self, invitation: InvitationRec | None) -> Reply:
        if invitation is None:
            raise ApiFail(404, "NOT_FOUND", "Invitation not found")
        if invitation.status != "pending":
            raise ApiFail(409, "INVALID_STATE", f"The invitation is already {invitation.status}")
        invitation.status = "revoked"
        return _reply({"success": True, "invitation": invitation.to_api()})

    # -- workspace collaborators ----------------------------------------------------------------------------------

    async def _h_collaborators(self, ctx: Ctx) -> Reply:
        workspace = self._path_workspace(ctx)
        members = self._x.members_of(workspace.id)
        invitations = self._x.invitations.get(workspace.id, {})
        return _reply(
            {
                "members": [m.to_api() for m in members.values()],
                "invitations": [i.to_api() for i in invitations.values()],
            }
        )

    async def _h_invitation_create(self, ctx: Ctx) -> Reply:
        workspace = self._path_workspace(ctx)
        body = ctx.json()
        email = (_string(body, "email", limit=320) or "").strip().lower()
        if not EMAIL.match(email):
            raise _invalid("email", "is not an email address")
        role, kind = body.get("role"), body.get("membershipType")
        if role not in ROLES:
            raise _invalid("role", f"must be one of {', '.join(ROLES)}")
        if kind not in MEMBERSHIP_TYPES:
            raise _invalid("membershipType", "must be team or external")
        members = self._x.members_of(workspace.id)
        if any(m.user.email == email and m.status == "active" for m in members.values()):
            raise ApiFail(409, "ALREADY_MEMBER", f"{email} is already a member of this workspace")
        invitations = self._x.invitations.setdefault(workspace.id, {})
        if any(i.email == email and i.status == "pending" for i in invitations.values()):
            raise ApiFail(409, "ALREADY_INVITED", f"{email} already has a pending invitation")
        invitation = InvitationRec(str(uuid.uuid4()), email, str(role), str(kind), self._now())
        invitations[invitation.id] = invitation
        return _reply({"invitation": invitation.to_api()}, 201)

    async def _h_invitation_revoke(self, ctx: Ctx) -> Reply:
        workspace = self._path_workspace(ctx)
        return self._revoke(self._x.invitations.get(workspace.id, {}).get(ctx.params["sub"]))

    def _member(self, ctx: Ctx) -> MemberRec:
        workspace = self._path_workspace(ctx)
        member = self._x.members_of(workspace.id).get(ctx.params["sub"])
        if member is None or member.status != "active":
            raise ApiFail(404, "NOT_FOUND", "Member not found")
        if member.user.id == self._x.owner.id:
            raise ApiFail(403, "FORBIDDEN", "An API key cannot change its own owner's access")
        return member

    async def _h_member_update(self, ctx: Ctx) -> Reply:
        member = self._member(ctx)
        body = ctx.json()
        role, kind = body.get("role"), body.get("membershipType")
        if role is None and kind is None:
            raise ApiFail(400, "EMPTY_UPDATE", "Nothing to update: give role and/or membershipType")
        if role is not None and role not in ROLES:
            raise _invalid("role", f"must be one of {', '.join(ROLES)}")
        if kind is not None and kind not in MEMBERSHIP_TYPES:
            raise _invalid("membershipType", "must be team or external")
        member.role = str(role or member.role)
        member.membership_type = str(kind or member.membership_type)
        return _reply({"member": member.to_api()})

    async def _h_member_remove(self, ctx: Ctx) -> Reply:
        self._member(ctx).status = "suspended"
        return _reply({"success": True})

    # -- client review (the key's owner as reviewer) ---------------------------------------------------------------

    def _review(self, ctx: Ctx) -> ApprovalPostRec:
        post = self._post(ctx, self._workspace(ctx))
        if self._x.owner.id not in post.reviewers:
            raise ApiFail(404, "NOT_FOUND", "Review not found (you are not a reviewer of this post)")
        return post

    async def _h_client_reviews(self, ctx: Ctx) -> Reply:
        workspace = self._workspace(ctx)
        owner = self._x.owner.id
        posts = [p for p in self._x.posts.values() if p.workspace_id == workspace.id and owner in p.reviewers]
        return _reply({"reviews": [self._render_post(p) for p in posts]})

    async def _h_client_review_get(self, ctx: Ctx) -> Reply:
        return self._post_answer(self._review(ctx), key="review")

    async def _h_client_suggestion(self, ctx: Ctx) -> Reply:
        post = self._review(ctx)
        self._suggest(post, ctx.json(), ("in_review",))
        return self._post_answer(post, key="review", status=201)

    async def _h_client_comment(self, ctx: Ctx) -> Reply:
        post = self._review(ctx)
        body = ctx.json()
        self._guard(post, body)
        self._feedback(post, body, "comment", required=True)
        self._touch(post)
        return self._post_answer(post, key="review", status=201)

    async def _h_client_request_changes(self, ctx: Ctx) -> Reply:
        post = self._review(ctx)
        self._review_decision(post, ctx.json(), approve=False)
        return self._post_answer(post, key="review")

    async def _h_client_approve(self, ctx: Ctx) -> Reply:
        post = self._review(ctx)
        self._review_decision(post, ctx.json(), approve=True)
        return self._post_answer(post, key="review")

"""THE table of PostQued operations: the only place a route path or a rate-limit bucket is written.

The client sends by operation name, the simulator routes and meters from this table, and
``references/tools.md`` is generated from it. Each row says where its facts come from (``source``, per API
version): ``v1-docs`` (the original PostQued skill, api-facts.md section 2), ``openapi`` (openapi-v2.json),
``route-map`` (PostQued's v2 skill endpoint map: the route is known, its schemas are not) or ``assumed``.

``expects`` lists the answer fields the project reads, as paths (``accounts[].id``: the ``id`` of every
item of ``accounts``). They are the documented names where a document shows the answer; otherwise one
assumption each (the row's source says which). An answer without one of them is still used, but marked
unverified (see ``postqued/api/shape.py``); ``postqued-mcp doctor --contract`` reports them for real keys.

Rate-limit buckets, decided once. PostQued documents four per-minute buckets (v1 skill: Upload 20, Read
30, Publish 10, Delete 20) and no assignment of routes to them. Rule: ``read`` = every GET; ``delete`` =
every HTTP DELETE; ``upload`` = the routes that start, complete or carry an upload; ``publish`` = the
publish POST. Every other write is in none of the named buckets and is not metered locally (PostQued's
429 is still honoured). That settles the five rows the client and the simulator used to disagree on:
content update (PATCH: sends no bytes, so not ``upload``), publish cancel, target cancel and target
reschedule (POST/PATCH on a request already made: not a new publish, and a cancel must never queue behind
a burst of publishes), and engagement delete (a POST that deletes a comment, not an HTTP DELETE).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from pydantic import BaseModel

from postqued.api.admin import BillingStatus, BillingUsage, Capabilities
from postqued.api.analytics import AccountAnalytics, VideoPage
from postqued.api.approvals import ApprovalPost
from postqued.api.engagement import Comment, EngagementItem
from postqued.api.providers import AudioTrack, Entry, RedditRestrictions
from postqued.api.team import Invitation, Member
from postqued.models import (
    ContentAsset,
    ContentPage,
    CreatorInfo,
    PlatformAccount,
    PublishStatus,
    UploadSession,
    Workspace,
)

ApiVersion = Literal["v1", "v2"]
Method = Literal["GET", "POST", "PATCH", "DELETE"]
Bucket = Literal["upload", "read", "publish", "delete"]
# How a call may be repeated (postqued/client.py decides with it):
#   read     a read: repeated on any transient failure;
#   write    an idempotent write (same effect twice): repeated on any transient failure;
#   publish  a keyed publish: repeated only with the same Idempotency-Key and byte-identical body,
#            a lost answer is "unknown", never "failed";
#   once     a one-shot write with no key: repeated only while it cannot have reached PostQued.
CallKind = Literal["read", "write", "publish", "once"]
Source = Literal["v1-docs", "openapi", "route-map", "assumed"]
# Where the workspace id travels: the query, the JSON body, the path ("{id}"), or nowhere.
Scope = Literal["query", "body", "path", "none"]


@dataclass(frozen=True)
class Route:
    """One operation in one API version. ``{id}`` and ``{sub}`` are the first and second path ids."""

    path: str
    source: Source
    expects: tuple[str, ...] = ()


@dataclass(frozen=True)
class Operation:
    name: str
    method: Method
    routes: Mapping[ApiVersion, Route]
    bucket: Bucket | None
    kind: CallKind
    scope: Scope = "none"
    answer: type[BaseModel] | None = None  # the model read from the answer (None: only its status/success)
    auth: bool = True
    versions: tuple[ApiVersion, ...] = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "versions", tuple(self.routes))

    def route(self, api_version: str) -> Route | None:
        return next((r for v, r in self.routes.items() if v == api_version), None)


def _op(
    name: str,
    method: Method,
    v2: Route | None,
    bucket: Bucket | None,
    kind: CallKind,
    *,
    scope: Scope = "none",
    answer: type[BaseModel] | None = None,
    v1: Route | None = None,
    auth: bool = True,
) -> Operation:
    routes: dict[ApiVersion, Route] = {}
    if v2 is not None:
        routes["v2"] = v2
    if v1 is not None:
        routes["v1"] = v1
    return Operation(name, method, routes, bucket, kind, scope, answer, auth)


def _v2(path: str, source: Source = "route-map", *expects: str) -> Route:
    return Route(path, source, expects)


def _v1(path: str, *expects: str) -> Route:
    return Route(path, "v1-docs", expects)


_ACCOUNT = ("accounts", "accounts[].id", "accounts[].platform", "accounts[].username")
_ASSET = ("content", "content.id", "content.mediaType", "content.status")
_UPLOAD = ("contentId", "upload", "upload.url", "upload.method", "upload.headers")
# The publish answers are undocumented in v2: v1's documented {publishId, status, targets} is assumed for both.
_PUBLISH = ("publishId", "status", "targets")
# Undocumented; assumed: the request under ``publish``, with its targets.
_REQUEST = ("publish", "publish.id", "publish.status", "publish.targets[].id", "publish.targets[].status")

OPERATIONS: dict[str, Operation] = {
    op.name: op
    for op in (
        # --- context, accounts ---------------------------------------------------------------------
        _op("ping", "GET", _v2("/v2/ping", "openapi", "pong"), None, "read", auth=False),
        # undocumented answer; assumed: organisations with their workspaces (SPEC's organizations/context)
        _op(
            "context", "GET",
            _v2("/v2/mcp/context", "route-map", "organizations", "organizations[].id", "organizations[].workspaces",
                "organizations[].workspaces[].id", "organizations[].workspaces[].name"),
            "read", "read", answer=Workspace,
        ),
        _op(
            "integrations", "GET", _v2("/v2/integrations", "openapi", *_ACCOUNT), "read", "read",
            scope="query", answer=PlatformAccount,
            # v1 documents {accounts: [{id, username}]}: the platform comes from the ``platform`` query
            v1=_v1("/v1/platform-accounts", "accounts", "accounts[].id", "accounts[].username"),
        ),
        # undocumented answer (SPEC: "TikTok creator info"); assumed: TikTok's creator_info fields under creatorInfo
        _op(
            "creator_info", "GET",
            _v2("/v2/integrations/{id}/creator-info", "openapi", "creatorInfo", "creatorInfo.privacy_level_options",
                "creatorInfo.comment_disabled", "creatorInfo.duet_disabled", "creatorInfo.stitch_disabled",
                "creatorInfo.max_video_post_duration_sec"),
            "read", "read", scope="query", answer=CreatorInfo,
        ),
        # --- content -------------------------------------------------------------------------------
        _op(
            "content_upload", "POST", _v2("/v2/content/upload", "openapi", *_UPLOAD, "upload.key"), "upload", "write",
            scope="body", answer=UploadSession,
            v1=_v1("/v1/content/upload", *_UPLOAD),  # v1 documents no upload.key: it is derived
        ),
        _op(
            "content_complete", "POST", _v2("/v2/content/upload/complete", "openapi", *_ASSET), "upload", "write",
            scope="body", answer=ContentAsset,
            v1=Route("/v1/content/upload/complete", "v1-docs"),  # answer undocumented in v1
        ),
        _op(
            "upload_image", "POST", None, "upload", "write", answer=ContentAsset,
            # answer undocumented; assumed: the new asset's contentId, as the v1 upload answer names it
            v1=_v1("/v1/content/upload-image", "contentId"),
        ),
        _op(
            "content_list", "GET",
            _v2("/v2/content", "openapi", "content", "content[].id", "content[].mediaType", "pagination",
                "pagination.total"),
            "read", "read", scope="query", answer=ContentPage,
        ),
        _op("content_get", "GET", _v2("/v2/content/{id}", "openapi", *_ASSET), "read", "read",
            scope="query", answer=ContentAsset),
        _op("content_file", "GET", _v2("/v2/content/{id}/file", "openapi"), "read", "read", scope="query"),
        _op("content_update", "PATCH", _v2("/v2/content/{id}", "openapi", *_ASSET), None, "write",
            scope="body", answer=ContentAsset),
        _op("content_delete", "DELETE", _v2("/v2/content/{id}", "openapi", "success"), "delete", "write",
            scope="query"),
        # --- publishing ----------------------------------------------------------------------------
        _op(
            "publish", "POST", _v2("/v2/publish", "openapi", *_PUBLISH), "publish", "publish",
            scope="body", answer=PublishStatus, v1=_v1("/v1/content/publish", *_PUBLISH),
        ),
        # undocumented answers; assumed: a list of requests under publishRequests, each as publish_get
        _op("publish_list", "GET", _v2("/v2/publish", "openapi", "publishRequests", "publishRequests[].id"), "read",
            "read",
            scope="query", answer=PublishStatus),
        _op(
            "publish_get", "GET", _v2("/v2/publish/{id}", "openapi", *_REQUEST), "read", "read",
            scope="query", answer=PublishStatus,
            # undocumented in v1; assumed: the documented publish answer's fields
            v1=Route("/v1/content/publish/{id}", "assumed", _PUBLISH),
        ),
        _op("publish_cancel", "POST", _v2("/v2/publish/{id}/cancel", "openapi"), None, "write",
            scope="query"),
        _op("target_cancel", "POST", _v2("/v2/publish/target/{id}/cancel", "openapi"), None, "write",
            scope="query"),
        _op("target_reschedule", "PATCH", _v2("/v2/publish/target/{id}", "openapi"), None, "write",
            scope="body"),
        _op("publish_delete", "DELETE", _v2("/v2/publish/{id}", "openapi"), "delete", "write",
            scope="query"),
        # --- admin ---------------------------------------------------------------------------------
        _op("workspace_create", "POST", _v2("/v2/organizations/{id}/workspaces", "openapi", "id"), None, "once",
            answer=Workspace),
        _op("billing", "GET", _v2("/v2/billing", "openapi", "status"), "read", "read",
            scope="query", answer=BillingStatus),
        _op("billing_capabilities", "GET", _v2("/v2/billing/capabilities", "route-map", "capabilities"), "read",
            "read", scope="query", answer=Capabilities),
        _op("billing_usage", "GET", _v2("/v2/billing/usage", "route-map", "usage"), "read", "read",
            scope="query", answer=BillingUsage),
        _op("integration_delete", "DELETE", _v2("/v2/integrations/{id}", "openapi", "success"), "delete", "once",
            scope="query"),
        # --- provider helpers ----------------------------------------------------------------------
        _op("instagram_audio", "GET", _v2("/v2/integrations/{id}/instagram/audio", "route-map", "audio"), "read",
            "read", scope="query", answer=AudioTrack),
        _op("reddit_subreddits", "GET", _v2("/v2/integrations/{id}/reddit/subreddits", "openapi", "subreddits"),
            "read", "read", scope="query", answer=Entry),
        _op("reddit_restrictions", "GET",
            _v2("/v2/integrations/{id}/reddit/restrictions", "openapi", "postTypes", "flairRequired"),
            "read", "read", scope="query", answer=RedditRestrictions),
        _op("linkedin_companies", "GET", _v2("/v2/integrations/{id}/linkedin/companies", "openapi", "companies"),
            "read", "read", scope="query", answer=Entry),
        _op("pinterest_boards", "GET", _v2("/v2/integrations/{id}/pinterest/boards", "openapi", "boards"),
            "read", "read", scope="query", answer=Entry),
        # --- analytics, engagement -----------------------------------------------------------------
        _op("analytics_posts", "GET", _v2("/v2/analytics/posts", "openapi", "posts"), "read", "read",
            scope="query", answer=AccountAnalytics),
        _op("analytics_videos", "GET", _v2("/v2/analytics/videos", "openapi", "videos"), "read", "read",
            scope="query", answer=VideoPage),
        _op("engagement", "GET", _v2("/v2/engagement", "openapi", "items"), "read", "read",
            scope="query", answer=EngagementItem),
        _op("engagement_reply", "POST", _v2("/v2/engagement/comments/reply"), None, "once",
            scope="body", answer=Comment),
        _op("engagement_comment", "POST", _v2("/v2/engagement/posts/comment"), None, "once",
            scope="body", answer=Comment),
        _op("engagement_hide", "POST", _v2("/v2/engagement/comments/hide"), None, "once",
            scope="body", answer=Comment),
        _op("engagement_like", "POST", _v2("/v2/engagement/comments/like"), None, "once",
            scope="body", answer=Comment),
        _op("engagement_delete", "POST", _v2("/v2/engagement/comments/delete"), None, "once",
            scope="body"),
        # --- approvals -----------------------------------------------------------------------------
        _op("posts", "GET", _v2("/v2/posts", "route-map", "posts"), "read", "read",
            scope="query", answer=ApprovalPost),
        _op("post_create", "POST", _v2("/v2/posts", "route-map", "post", "post.id"), None, "once",
            scope="body", answer=ApprovalPost),
        _op("post_get", "GET", _v2("/v2/posts/{id}", "route-map", "post", "post.id", "post.version"), "read",
            "read", scope="query", answer=ApprovalPost),
        _op("post_revision", "POST", _v2("/v2/posts/{id}/revisions"), None, "once",
            scope="body", answer=ApprovalPost),
        _op("post_suggestion", "POST", _v2("/v2/posts/{id}/suggestions"), None, "once",
            scope="body", answer=ApprovalPost),
        _op("post_suggestion_accept", "POST", _v2("/v2/posts/{id}/suggestions/{sub}/accept"), None, "once",
            scope="body", answer=ApprovalPost),
        _op("post_suggestion_decline", "POST", _v2("/v2/posts/{id}/suggestions/{sub}/decline"), None, "once",
            scope="body", answer=ApprovalPost),
        _op("post_comment", "POST", _v2("/v2/posts/{id}/comments"), None, "once",
            scope="body", answer=ApprovalPost),
        _op("post_submit", "POST", _v2("/v2/posts/{id}/submit"), None, "once",
            scope="body", answer=ApprovalPost),
        _op("post_request_changes", "POST", _v2("/v2/posts/{id}/request-changes"), None, "once",
            scope="body", answer=ApprovalPost),
        _op("post_approve", "POST", _v2("/v2/posts/{id}/approve"), None, "once",
            scope="body", answer=ApprovalPost),
        _op("post_schedule", "POST", _v2("/v2/posts/{id}/schedule"), None, "once",
            scope="body", answer=ApprovalPost),
        _op("post_publish", "POST", _v2("/v2/posts/{id}/publish"), None, "once",
            scope="body", answer=ApprovalPost),
        # --- team and client review ----------------------------------------------------------------
        _op("collaborators", "GET", _v2("/v2/workspaces/{id}/collaborators", "route-map", "members"), "read",
            "read", scope="path", answer=Member),
        _op("invitation_create", "POST", _v2("/v2/workspaces/{id}/invitations"), None, "once",
            scope="path", answer=Invitation),
        _op("invitation_revoke", "POST", _v2("/v2/workspaces/{id}/invitations/{sub}/revoke"), None, "once",
            scope="path"),
        _op("member_update", "PATCH", _v2("/v2/workspaces/{id}/members/{sub}"), None, "once",
            scope="path", answer=Member),
        _op("member_remove", "DELETE", _v2("/v2/workspaces/{id}/members/{sub}"), "delete", "once",
            scope="path"),
        _op("post_reviewers", "GET", _v2("/v2/posts/{id}/reviewers", "route-map", "reviewers"), "read", "read",
            scope="query", answer=Member),
        _op("reviewer_invite", "POST", _v2("/v2/posts/{id}/reviewer-invitations"), None, "once",
            scope="body", answer=Invitation),
        _op("reviewer_invitation_revoke", "POST", _v2("/v2/posts/{id}/reviewer-invitations/{sub}/revoke"), None,
            "once", scope="body"),
        _op("reviewer_remove", "DELETE", _v2("/v2/posts/{id}/reviewers/{sub}"), "delete", "once",
            scope="query"),
        _op("client_reviews", "GET", _v2("/v2/client-reviews", "route-map", "reviews"), "read", "read",
            scope="query", answer=ApprovalPost),
        _op("client_review_get", "GET", _v2("/v2/client-reviews/{id}", "route-map", "review", "review.id"),
            "read", "read", scope="query", answer=ApprovalPost),
        _op("client_suggestion", "POST", _v2("/v2/client-reviews/{id}/suggestions"), None, "once",
            scope="body", answer=ApprovalPost),
        _op("client_comment", "POST", _v2("/v2/client-reviews/{id}/comments"), None, "once",
            scope="body", answer=ApprovalPost),
        _op("client_request_changes", "POST", _v2("/v2/client-reviews/{id}/request-changes"), None, "once",
            scope="body", answer=ApprovalPost),
        _op("client_approve", "POST", _v2("/v2/client-reviews/{id}/approve"), None, "once",
            scope="body", answer=ApprovalPost),
    )
}  # fmt: skip


def operation(name: str) -> Operation:
    """The operation called ``name`` (KeyError for a name the table does not have)."""
    return OPERATIONS[name]


def supports(api_version: str, name: str) -> bool:
    """Whether ``name`` exists in ``api_version`` (tools without their operations are not registered)."""
    op = OPERATIONS.get(name)
    return op is not None and op.route(api_version) is not None


@dataclass(frozen=True)
class Endpoint:
    """One operation as one API version serves it (what a router or a generated document needs)."""

    name: str
    method: Method
    path: str
    bucket: Bucket | None
    kind: CallKind
    scope: Scope
    source: Source
    expects: tuple[str, ...]
    auth: bool


def endpoints(api_version: str) -> dict[str, Endpoint]:
    """Every operation ``api_version`` has, by name."""
    out: dict[str, Endpoint] = {}
    for op in OPERATIONS.values():
        route = op.route(api_version)
        if route is not None:
            out[op.name] = Endpoint(
                op.name, op.method, route.path, op.bucket, op.kind, op.scope, route.source, route.expects, op.auth
            )
    return out

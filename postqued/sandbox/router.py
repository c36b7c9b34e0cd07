"""The sandbox's routes: each with its method, path pattern, API version, rate-limit bucket and whether it needs
the API key. ``match`` finds the route for a request; a known path with another method is a 405.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

Bucket = str | None  # None: not rate limited


@dataclass(frozen=True)
class RouteSpec:
    name: str  # the ledger's and the fault switches' name for the route
    method: str
    path: str  # the template, e.g. "/v2/content/{id}"
    pattern: re.Pattern[str]
    version: str  # "v1" | "v2" | "storage"
    bucket: Bucket
    auth: bool = True
    query_scoped: bool = False  # a POST whose workspaceId travels in the query, not the body


def route(name: str, method: str, template: str, bucket: Bucket, *, auth: bool = True) -> RouteSpec:
    regex = re.sub(r"\{(\w+):path\}", r"(?P<\1>.+)", template)
    regex = re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", regex)
    version = "storage" if template.startswith("/_storage") else template.split("/")[1]
    query_scoped = name in ("publish_cancel", "target_cancel")
    return RouteSpec(name, method, template, re.compile(f"^{regex}$"), version, bucket, auth, query_scoped)


ROUTES: tuple[RouteSpec, ...] = (
    route("ping", "GET", "/v2/ping", None, auth=False),
    route("context", "GET", "/v2/mcp/context", "read"),
    route("integrations", "GET", "/v2/integrations", "read"),
    route("creator_info", "GET", "/v2/integrations/{id}/creator-info", "read"),
    route("content_upload", "POST", "/v2/content/upload", "upload"),
    route("content_complete", "POST", "/v2/content/upload/complete", "upload"),
    route("content_list", "GET", "/v2/content", "read"),
    route("content_file", "GET", "/v2/content/{id}/file", "read"),
    route("content_get", "GET", "/v2/content/{id}", "read"),
    route("content_update", "PATCH", "/v2/content/{id}", None),
    route("content_delete", "DELETE", "/v2/content/{id}", "delete"),
    route("publish", "POST", "/v2/publish", "publish"),
    route("publish_list", "GET", "/v2/publish", "read"),
    route("target_cancel", "POST", "/v2/publish/target/{id}/cancel", None),
    route("target_reschedule", "PATCH", "/v2/publish/target/{id}", None),
    route("publish_cancel", "POST", "/v2/publish/{id}/cancel", None),
    route("publish_get", "GET", "/v2/publish/{id}", "read"),
    route("publish_delete", "DELETE", "/v2/publish/{id}", "delete"),
    route("storage_put", "PUT", "/_storage/{key:path}", None, auth=False),
    route("v1_content_upload", "POST", "/v1/content/upload", "upload"),
    route("v1_content_complete", "POST", "/v1/content/upload/complete", "upload"),
    route("v1_upload_image", "POST", "/v1/content/upload-image", "upload"),
    route("v1_platform_accounts", "GET", "/v1/platform-accounts", "read"),
    route("v1_publish", "POST", "/v1/content/publish", "publish"),
    route("v1_publish_get", "GET", "/v1/content/publish/{id}", "read"),
    route("workspace_create", "POST", "/v2/organizations/{id}/workspaces", None),
    route("billing", "GET", "/v2/billing", "read"),
    route("billing_capabilities", "GET", "/v2/billing/capabilities", "read"),
    route("billing_usage", "GET", "/v2/billing/usage", "read"),
    route("integration_delete", "DELETE", "/v2/integrations/{id}", "delete"),
    route("instagram_audio", "GET", "/v2/integrations/{id}/instagram/audio", "read"),
    route("reddit_subreddits", "GET", "/v2/integrations/{id}/reddit/subreddits", "read"),
    route("reddit_restrictions", "GET", "/v2/integrations/{id}/reddit/restrictions", "read"),
    route("linkedin_companies", "GET", "/v2/integrations/{id}/linkedin/companies", "read"),
    route("pinterest_boards", "GET", "/v2/integrations/{id}/pinterest/boards", "read"),
    route("analytics_posts", "GET", "/v2/analytics/posts", "read"),
    route("analytics_videos", "GET", "/v2/analytics/videos", "read"),
    route("engagement", "GET", "/v2/engagement", "read"),
    route("engagement_reply", "POST", "/v2/engagement/comments/reply", None),
    route("engagement_comment", "POST", "/v2/engagement/posts/comment", None),
    route("engagement_hide", "POST", "/v2/engagement/comments/hide", None),
    route("engagement_like", "POST", "/v2/engagement/comments/like", None),
    route(
        "engagement_delete", "POST", "/v2/engagement/comments/delete", None
    ),  # see the bucket rule in api/operations.py
    route("posts", "GET", "/v2/posts", "read"),
    route("post_create", "POST", "/v2/posts", None),
    route("post_get", "GET", "/v2/posts/{id}", "read"),
    route("post_revision", "POST", "/v2/posts/{id}/revisions", None),
    route("post_suggestion", "POST", "/v2/posts/{id}/suggestions", None),
    route("post_suggestion_accept", "POST", "/v2/posts/{id}/suggestions/{sub}/accept", None),
    route("post_suggestion_decline", "POST", "/v2/posts/{id}/suggestions/{sub}/decline", None),
    route("post_comment", "POST", "/v2/posts/{id}/comments", None),
    route("post_submit", "POST", "/v2/posts/{id}/submit", None),
    route("post_request_changes", "POST", "/v2/posts/{id}/request-changes", None),
    route("post_approve", "POST", "/v2/posts/{id}/approve", None),
    route("post_schedule", "POST", "/v2/posts/{id}/schedule", None),
    route("post_publish", "POST", "/v2/posts/{id}/publish", None),
    route("post_reviewers", "GET", "/v2/posts/{id}/reviewers", "read"),
    route("reviewer_invite", "POST", "/v2/posts/{id}/reviewer-invitations", None),
    route("reviewer_invitation_revoke", "POST", "/v2/posts/{id}/reviewer-invitations/{sub}/revoke", None),
    route("reviewer_remove", "DELETE", "/v2/posts/{id}/reviewers/{sub}", "delete"),
    route("collaborators", "GET", "/v2/workspaces/{id}/collaborators", "read"),
    route("invitation_create", "POST", "/v2/workspaces/{id}/invitations", None),
    route("invitation_revoke", "POST", "/v2/workspaces/{id}/invitations/{sub}/revoke", None),
    route("member_update", "PATCH", "/v2/workspaces/{id}/members/{sub}", None),
    route("member_remove", "DELETE", "/v2/workspaces/{id}/members/{sub}", "delete"),
    route("client_reviews", "GET", "/v2/client-reviews", "read"),
    route("client_review_get", "GET", "/v2/client-reviews/{id}", "read"),
    route("client_suggestion", "POST", "/v2/client-reviews/{id}/suggestions", None),
    route("client_comment", "POST", "/v2/client-reviews/{id}/comments", None),
    route("client_request_changes", "POST", "/v2/client-reviews/{id}/request-changes", None),
    route("client_approve", "POST", "/v2/client-reviews/{id}/approve", None),
)
ROUTE_NAMES: frozenset[str] = frozenset(r.name for r in ROUTES)
BY_NAME: dict[str, RouteSpec] = {r.name: r for r in ROUTES}


def match_route(method: str, path: str) -> tuple[RouteSpec | None, dict[str, str], bool]:
    """(route, path params, path_known). ``path_known`` with no route means a wrong method (405)."""
    path_known = False
    for spec in ROUTES:
        found = spec.pattern.match(path)
        if found is None:
            continue
        if spec.method == method:
            return spec, found.groupdict(), True
        path_known = True
    return None, {}, path_known

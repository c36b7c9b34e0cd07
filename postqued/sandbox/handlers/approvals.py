"""Approval posts and client review: revisions, suggestions, feedback, review decisions, delivery.

Every accepted mutation of a post increments its ``version``; a mutation whose
``expectedRevisionId``/``expectedVersion`` is stale answers **409 REVISION_CONFLICT**, and one the post's status
does not allow answers **409 INVALID_STATE**.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from postqued.models import PLATFORMS
from postqued.sandbox.common import ApiFail, iso, parse_time
from postqued.sandbox.http import Ctx, Handler, Reply, by_name, invalid, json_reply, optional_text_field, text_field
from postqued.sandbox.records import (
    ApprovalPostRec,
    ParsedTarget,
    RevisionRec,
    SuggestionRec,
    Workspace,
    feedback_note,
)


def _render_post(ctx: Ctx, post: ApprovalPostRec) -> dict[str, Any]:
    world = ctx.world
    delivery = None
    if post.publish_id is not None:
        request = world.publish_requests[post.publish_id]
        delivery = {
            "publishId": request.id,
            "dispatchAt": iso(post.dispatch_at),
            "status": world.request_status(request, ctx.now()),
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


def find_post(ctx: Ctx, workspace: Workspace) -> ApprovalPostRec:
    post = ctx.world.posts.get(ctx.params["id"])
    if post is None or post.workspace_id != workspace.id:
        raise ApiFail(404, "NOT_FOUND", "Post not found")
    return post


def _draft(
    ctx: Ctx, body: dict[str, Any], workspace: Workspace
) -> tuple[str, str | None, list[str], list[dict[str, Any]]]:
    world = ctx.world
    title = text_field(body, "title", limit=300)
    brief = optional_text_field(body, "brief", limit=5000)
    assets = body.get("assetIds", [])
    if not isinstance(assets, list) or len(assets) > 35 or not all(isinstance(a, str) for a in assets):
        raise invalid("assetIds", "must be a list of at most 35 content ids")
    for i, asset in enumerate(assets):
        content = world.contents.get(asset)
        if content is None or content.workspace_id != workspace.id or content.status != "ready":
            raise invalid(f"assetIds[{i}]", "is not a ready content asset of this workspace")
    raw_targets = body.get("targets")
    if not isinstance(raw_targets, list) or not 1 <= len(raw_targets) <= 35:
        raise invalid("targets", "must be a list of 1 to 35 targets")
    targets = []
    for i, raw in enumerate(raw_targets):
        where = f"targets[{i}]"
        if not isinstance(raw, dict):
            raise invalid(where, "must be an object")
        platform = raw.get("platform")
        if platform not in PLATFORMS:
            raise invalid(f"{where}.platform", f"must be one of {', '.join(PLATFORMS)}")
        account = world.accounts.get(str(raw.get("accountId")))
        if account is None or account.workspace_id != workspace.id or account.platform != platform:
            raise invalid(f"{where}.accountId", f"is not a connected {platform} account of this workspace")
        caption = raw.get("caption")
        if not isinstance(caption, str) or not caption:
            raise invalid(f"{where}.caption", "is required")
        options = raw.get("options", {})
        if not isinstance(options, dict):
            raise invalid(f"{where}.options", "must be an object")
        link = raw.get("linkUrl")
        if link is not None and not isinstance(link, str):
            raise invalid(f"{where}.linkUrl", "must be a string")
        targets.append(
            {"platform": platform, "accountId": account.id, "caption": caption, "linkUrl": link, "options": options}
        )
    return title, brief, list(assets), targets


def _guard(ctx: Ctx, post: ApprovalPostRec, body: dict[str, Any], revision_key: str = "expectedRevisionId") -> None:
    revision, version = body.get(revision_key), body.get("expectedVersion")
    if not isinstance(revision, str) or not revision:
        raise invalid(revision_key, "is required (the current revision id you read)")
    if isinstance(version, bool) or not isinstance(version, int):
        raise invalid("expectedVersion", "is required (the version you read)")
    if revision != post.current.id or version != post.version:
        raise ApiFail(
            409,
            "REVISION_CONFLICT",
            f"The post changed: current revision {post.current.id}, version {post.version} "
            f"(you sent {revision}, {version}). Read it again.",
        )


def _require_status(post: ApprovalPostRec, allowed: tuple[str, ...], action: str) -> None:
    if post.status not in allowed:
        raise ApiFail(409, "INVALID_STATE", f"Cannot {action} a post that is {post.status}")


def _touch(ctx: Ctx, post: ApprovalPostRec) -> None:
    post.version += 1
    post.updated_at = ctx.now()


def _post_answer(ctx: Ctx, post: ApprovalPostRec, key: str = "post", status: int = 200) -> Reply:
    return json_reply({key: _render_post(ctx, post)}, status)


async def posts(ctx: Ctx) -> Reply:
    workspace = ctx.workspace()
    posts = [p for p in ctx.world.posts.values() if p.workspace_id == workspace.id]
    posts.sort(key=lambda p: p.updated_at or p.created_at, reverse=True)
    return json_reply({"posts": [_render_post(ctx, p) for p in posts]})


async def post_create(ctx: Ctx) -> Reply:
    workspace = ctx.workspace()
    title, brief, assets, targets = _draft(ctx, ctx.json(), workspace)
    now = ctx.now()
    post_id = str(uuid.uuid4())
    revision = RevisionRec(str(uuid.uuid4()), 1, title, brief, assets, targets, now)
    post = ApprovalPostRec(post_id, workspace.id, now, [revision], updated_at=now)
    ctx.world.posts[post_id] = post
    return _post_answer(ctx, post, status=201)


async def post_get(ctx: Ctx) -> Reply:
    return _post_answer(ctx, find_post(ctx, ctx.workspace()))


async def post_revision(ctx: Ctx) -> Reply:
    workspace = ctx.workspace()
    post = find_post(ctx, workspace)
    body = ctx.json()
    _guard(ctx, post, body, revision_key="baseRevisionId")
    _require_status(post, ("draft", "changes_requested", "in_review", "approved"), "revise")
    title, brief, assets, targets = _draft(ctx, body, workspace)
    post.revisions.append(
        RevisionRec(str(uuid.uuid4()), post.current.number + 1, title, brief, assets, targets, ctx.now())
    )
    post.status = "draft"  # new content needs review again
    _touch(ctx, post)
    return _post_answer(ctx, post, status=201)


def _suggest(ctx: Ctx, post: ApprovalPostRec, body: dict[str, Any], allowed: tuple[str, ...]) -> None:
    _guard(ctx, post, body)
    _require_status(post, allowed, "suggest an edit to")
    if body.get("field", "caption") != "caption":
        raise invalid("field", "only caption suggestions are supported")
    index = body.get("targetIndex")
    targets = post.current.targets
    if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < len(targets):
        raise invalid("targetIndex", f"must be an index into the revision's {len(targets)} target(s)")
    if body.get("platform") != targets[index]["platform"]:
        raise invalid("platform", f"target {index} is {targets[index]['platform']}")
    start, end = body.get("selectionStart"), body.get("selectionEnd")
    caption = str(targets[index]["caption"])
    if not (isinstance(start, int) and isinstance(end, int) and 0 <= start <= end <= len(caption)):
        raise invalid("selectionStart", f"selection must lie within the caption (0..{len(caption)})")
    original, replacement = body.get("originalText"), body.get("replacementText")
    if not isinstance(original, str) or caption[start:end] != original:
        raise invalid("originalText", "does not match the caption at the selection")
    if not isinstance(replacement, str):
        raise invalid("replacementText", "is required")
    note = optional_text_field(body, "note", limit=2000)
    suggestion = SuggestionRec(
        str(uuid.uuid4()), post.current.id, index, targets[index]["platform"], start, end, original,
        replacement, note, ctx.world.owner, ctx.now(),
    )  # fmt: skip
    post.suggestions[suggestion.id] = suggestion
    _touch(ctx, post)


async def post_suggestion(ctx: Ctx) -> Reply:
    post = find_post(ctx, ctx.workspace())
    _suggest(ctx, post, ctx.json(), ("draft", "in_review", "changes_requested"))
    return _post_answer(ctx, post, status=201)


def _open_suggestion(ctx: Ctx, post: ApprovalPostRec) -> SuggestionRec:
    suggestion = post.suggestions.get(ctx.params["sub"])
    if suggestion is None:
        raise ApiFail(404, "NOT_FOUND", "Suggestion not found")
    if suggestion.status != "open":
        raise ApiFail(409, "INVALID_STATE", f"The suggestion is already {suggestion.status}")
    return suggestion


async def post_suggestion_accept(ctx: Ctx) -> Reply:
    post = find_post(ctx, ctx.workspace())
    _guard(ctx, post, ctx.json())
    _require_status(post, ("draft", "in_review", "changes_requested"), "edit")
    suggestion = _open_suggestion(ctx, post)
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
            targets, ctx.now(),
        )
    )  # fmt: skip
    suggestion.status = "accepted"
    _touch(ctx, post)
    return _post_answer(ctx, post)


async def post_suggestion_decline(ctx: Ctx) -> Reply:
    post = find_post(ctx, ctx.workspace())
    _guard(ctx, post, ctx.json())
    _open_suggestion(ctx, post).status = "declined"
    _touch(ctx, post)
    return _post_answer(ctx, post)


def _feedback(ctx: Ctx, post: ApprovalPostRec, body: dict[str, Any], kind: str, *, required: bool) -> None:
    comment = (text_field if required else optional_text_field)(body, "comment", limit=5000)
    post.feedback.append(feedback_note(kind, comment, ctx.world.owner, post.current.id, ctx.now()))


async def post_comment(ctx: Ctx) -> Reply:
    post = find_post(ctx, ctx.workspace())
    body = ctx.json()
    _guard(ctx, post, body)
    _feedback(ctx, post, body, "comment", required=True)
    _touch(ctx, post)
    return _post_answer(ctx, post, status=201)


async def post_submit(ctx: Ctx) -> Reply:
    post = find_post(ctx, ctx.workspace())
    _guard(ctx, post, ctx.json())
    _require_status(post, ("draft", "changes_requested"), "submit")
    post.status = "in_review"
    post.feedback.append(feedback_note("submitted", None, ctx.world.owner, post.current.id, ctx.now()))
    _touch(ctx, post)
    return _post_answer(ctx, post)


def _review_decision(ctx: Ctx, post: ApprovalPostRec, body: dict[str, Any], approve: bool) -> None:
    _guard(ctx, post, body)
    _require_status(post, ("in_review",), "approve" if approve else "request changes on")
    _feedback(ctx, post, body, "approved" if approve else "changes_requested", required=not approve)
    post.status = "approved" if approve else "changes_requested"
    _touch(ctx, post)


async def post_request_changes(ctx: Ctx) -> Reply:
    post = find_post(ctx, ctx.workspace())
    _review_decision(ctx, post, ctx.json(), approve=False)
    return _post_answer(ctx, post)


async def post_approve(ctx: Ctx) -> Reply:
    post = find_post(ctx, ctx.workspace())
    _review_decision(ctx, post, ctx.json(), approve=True)
    return _post_answer(ctx, post)


def _deliver(ctx: Ctx, post: ApprovalPostRec, dispatch_at: datetime | None) -> None:
    world = ctx.world
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
    _touch(ctx, post)


async def post_schedule(ctx: Ctx) -> Reply:
    post = find_post(ctx, ctx.workspace())
    body = ctx.json()
    _guard(ctx, post, body)
    _require_status(post, ("approved",), "schedule")
    when = parse_time(body.get("dispatchAt"))
    if when is None or when <= ctx.now():
        raise ApiFail(400, "INVALID_DISPATCH_AT", "dispatchAt must be a future ISO 8601 time with an offset")
    _deliver(ctx, post, when)
    return _post_answer(ctx, post)


async def post_publish(ctx: Ctx) -> Reply:
    post = find_post(ctx, ctx.workspace())
    _guard(ctx, post, ctx.json())
    _require_status(post, ("approved",), "publish")
    _deliver(ctx, post, None)
    return _post_answer(ctx, post)


def _review(ctx: Ctx) -> ApprovalPostRec:
    post = find_post(ctx, ctx.workspace())
    if ctx.world.owner.id not in post.reviewers:
        raise ApiFail(404, "NOT_FOUND", "Review not found (you are not a reviewer of this post)")
    return post


async def client_reviews(ctx: Ctx) -> Reply:
    workspace = ctx.workspace()
    owner = ctx.world.owner.id
    posts = [p for p in ctx.world.posts.values() if p.workspace_id == workspace.id and owner in p.reviewers]
    return json_reply({"reviews": [_render_post(ctx, p) for p in posts]})


async def client_review_get(ctx: Ctx) -> Reply:
    return _post_answer(ctx, _review(ctx), key="review")


async def client_suggestion(ctx: Ctx) -> Reply:
    post = _review(ctx)
    _suggest(ctx, post, ctx.json(), ("in_review",))
    return _post_answer(ctx, post, key="review", status=201)


async def client_comment(ctx: Ctx) -> Reply:
    post = _review(ctx)
    body = ctx.json()
    _guard(ctx, post, body)
    _feedback(ctx, post, body, "comment", required=True)
    _touch(ctx, post)
    return _post_answer(ctx, post, key="review", status=201)


async def client_request_changes(ctx: Ctx) -> Reply:
    post = _review(ctx)
    _review_decision(ctx, post, ctx.json(), approve=False)
    return _post_answer(ctx, post, key="review")


async def client_approve(ctx: Ctx) -> Reply:
    post = _review(ctx)
    _review_decision(ctx, post, ctx.json(), approve=True)
    return _post_answer(ctx, post, key="review")


HANDLERS: dict[str, Handler] = by_name(
    posts,
    post_create,
    post_get,
    post_revision,
    post_suggestion,
    post_suggestion_accept,
    post_suggestion_decline,
    post_comment,
    post_submit,
    post_request_changes,
    post_approve,
    post_schedule,
    post_publish,
    client_reviews,
    client_review_get,
    client_suggestion,
    client_comment,
    client_request_changes,
    client_approve,
)

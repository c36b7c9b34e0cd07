"""The engagement inbox: published posts with their comments; reply, comment, hide, like, delete."""

from __future__ import annotations

import uuid
from typing import Any

from postqued.sandbox.common import ApiFail, iso
from postqued.sandbox.http import Ctx, Handler, Reply, by_name, invalid, json_reply, text_field
from postqued.sandbox.records import CommentRec, EngagementPost


def _engagement_posts(ctx: Ctx, workspace_id: str) -> list[EngagementPost]:
    world, now = ctx.world, ctx.now()
    found = [p for p in world.engagement_posts.values() if world.accounts[p.account_id].workspace_id == workspace_id]
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


def _render_engagement(ctx: Ctx, post: EngagementPost) -> dict[str, Any]:
    account = ctx.world.accounts[post.account_id]
    comments = [c for c in ctx.world.comments.get(post.target_id, []) if not c.deleted]
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


async def engagement(ctx: Ctx) -> Reply:
    workspace = ctx.workspace()
    limit = ctx.int_query("limit", 50, 1, 100)
    items = _engagement_posts(ctx, workspace.id)[:limit]
    return json_reply({"items": [_render_engagement(ctx, p) for p in items]})


def _engagement_target(ctx: Ctx) -> tuple[EngagementPost, dict[str, Any]]:
    workspace = ctx.workspace()
    body = ctx.json()
    target_id = text_field(body, "targetId", limit=100)
    for post in _engagement_posts(ctx, workspace.id):
        if post.target_id == target_id:
            return post, body
    raise ApiFail(404, "NOT_FOUND", "Published post not found in the engagement inbox")


def _comment(ctx: Ctx, post: EngagementPost, body: dict[str, Any]) -> CommentRec:
    comment_id = text_field(body, "commentId", limit=200)
    for comment in ctx.world.comments.get(post.target_id, []):
        if comment.id == comment_id and not comment.deleted:
            return comment
    raise ApiFail(404, "NOT_FOUND", "Comment not found")


def _add_comment(ctx: Ctx, post: EngagementPost, text: str, parent_id: str | None) -> CommentRec:
    author = ctx.world.accounts[post.account_id].username
    comment = CommentRec(str(uuid.uuid4()), text, author, ctx.now(), parent_id=parent_id)
    ctx.world.comments.setdefault(post.target_id, []).append(comment)
    return comment


async def engagement_reply(ctx: Ctx) -> Reply:
    post, body = _engagement_target(ctx)
    parent = _comment(ctx, post, body)
    text = text_field(body, "text")
    return json_reply({"comment": _add_comment(ctx, post, text, parent.id).to_api()}, 201)


async def engagement_comment(ctx: Ctx) -> Reply:
    post, body = _engagement_target(ctx)
    text = text_field(body, "text")
    return json_reply({"comment": _add_comment(ctx, post, text, None).to_api()}, 201)


def _flag(ctx: Ctx, name: str) -> Reply:
    post, body = _engagement_target(ctx)
    comment = _comment(ctx, post, body)
    value = body.get(name)
    if not isinstance(value, bool):
        raise invalid(name, "must be true or false")
    setattr(comment, name, value)
    return json_reply({"comment": comment.to_api()})


async def engagement_hide(ctx: Ctx) -> Reply:
    return _flag(ctx, "hidden")


async def engagement_like(ctx: Ctx) -> Reply:
    return _flag(ctx, "liked")


async def engagement_delete(ctx: Ctx) -> Reply:
    post, body = _engagement_target(ctx)
    _comment(ctx, post, body).deleted = True
    return json_reply({"success": True})


HANDLERS: dict[str, Handler] = by_name(
    engagement, engagement_reply, engagement_comment, engagement_hide, engagement_like, engagement_delete
)

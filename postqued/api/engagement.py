"""Engagement: the comment inbox of published posts, replies, comments and moderation.

Answers (route map only, except the list's ``{items: [object]}`` in SPEC; one assumed name per field): an
item ``{targetId, platform, accountId, caption, publishedAt, url, firstComment: {status}, comments}``; a
comment ``{id, text, author: {username}, createdAt, parentId, hidden, liked}``, written ones under ``comment``.
Writes carry no idempotency key: they are sent once (see the ``once`` call kind).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, Field

from postqued.api.fields import flag, items, obj, text
from postqued.api.shape import Listing

if TYPE_CHECKING:
    from postqued.client import PostQuedClient


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
    return Comment(
        id=text(raw, "id"),
        text=text(raw, "text"),
        author=text(obj(raw, "author"), "username"),
        created_at=text(raw, "createdAt"),
        parent_id=text(raw, "parentId"),
        hidden=flag(raw, "hidden"),
        liked=flag(raw, "liked"),
    )


def parse_item(raw: Mapping[str, Any]) -> EngagementItem:
    return EngagementItem(
        target_id=text(raw, "targetId"),
        platform=text(raw, "platform"),
        account_id=text(raw, "accountId"),
        caption=text(raw, "caption"),
        published_at=text(raw, "publishedAt"),
        url=text(raw, "url"),
        first_comment_status=text(obj(raw, "firstComment"), "status"),
        comments=[parse_comment(c) for c in items(raw, "comments")],
    )


async def list_engagement(client: PostQuedClient, limit: int, workspace_id: str | None) -> Listing[EngagementItem]:
    answer = await client.call("engagement", query={"limit": limit}, workspace_id=workspace_id)
    return Listing(items=[parse_item(i) for i in items(answer.body, "items")], unverified=answer.unverified)


async def _write(client: PostQuedClient, name: str, fields: dict[str, Any], workspace_id: str | None) -> Comment | None:
    """One engagement write; the comment it touched, when the answer shows one."""
    answer = await client.call(name, body=fields, workspace_id=workspace_id)
    data = obj(answer.body, "comment")
    return parse_comment(data) if text(data, "id") else None


async def reply(
    client: PostQuedClient, target_id: str, comment_id: str, reply_text: str, workspace_id: str | None
) -> Comment | None:
    fields = {"targetId": target_id, "commentId": comment_id, "text": reply_text}
    return await _write(client, "engagement_reply", fields, workspace_id)


async def comment(
    client: PostQuedClient, target_id: str, comment_text: str, workspace_id: str | None
) -> Comment | None:
    return await _write(client, "engagement_comment", {"targetId": target_id, "text": comment_text}, workspace_id)


async def set_hidden(
    client: PostQuedClient, target_id: str, comment_id: str, hidden: bool, workspace_id: str | None
) -> Comment | None:
    fields = {"targetId": target_id, "commentId": comment_id, "hidden": hidden}
    return await _write(client, "engagement_hide", fields, workspace_id)


async def set_liked(
    client: PostQuedClient, target_id: str, comment_id: str, liked: bool, workspace_id: str | None
) -> Comment | None:
    fields = {"targetId": target_id, "commentId": comment_id, "liked": liked}
    return await _write(client, "engagement_like", fields, workspace_id)


async def delete(client: PostQuedClient, target_id: str, comment_id: str, workspace_id: str | None) -> None:
    await _write(client, "engagement_delete", {"targetId": target_id, "commentId": comment_id}, workspace_id)

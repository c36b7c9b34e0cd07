"""Analytics: post metrics per account and TikTok per-video metrics.

Answers (SPEC names the routes, not their bodies; one assumed name per field): posts
``{platform, totals, posts: [{id, caption, publishedAt, url, <metrics>}]}``; videos (TikTok's own names)
``{videos: [{id, title, createTime (epoch s), shareUrl, <metrics>}], cursor, hasMore}``. Every other
number on a post is a metric.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, Field

from postqued.api.fields import flag, integer, items, numbers, obj, text
from postqued.api.shape import Checked

if TYPE_CHECKING:
    from postqued.client import PostQuedClient

AnalyticsRange = Literal["week", "month", "all"]


class PostMetrics(BaseModel):
    id: str | None = None
    caption: str | None = None
    published_at: str | None = None
    url: str | None = None
    metrics: dict[str, float] = Field(default_factory=dict)


class AccountAnalytics(Checked):
    platform: str | None = None
    totals: dict[str, float] = Field(default_factory=dict)
    posts: list[PostMetrics] = Field(default_factory=list)


class VideoPage(Checked):
    videos: list[PostMetrics] = Field(default_factory=list)
    next_cursor: str | None = None
    has_more: bool = False


_NOT_METRICS = frozenset({"id", "publishedAt", "createTime", "duration", "width", "height"})


def _post(raw: Mapping[str, Any]) -> PostMetrics:
    return PostMetrics(
        id=text(raw, "id"),
        caption=text(raw, "caption"),
        published_at=text(raw, "publishedAt"),
        url=text(raw, "url"),
        metrics=numbers(raw, _NOT_METRICS),
    )


def _video(raw: Mapping[str, Any]) -> PostMetrics:
    created = integer(raw, "createTime")  # TikTok's create_time: epoch seconds
    return PostMetrics(
        id=text(raw, "id"),
        caption=text(raw, "title"),
        published_at=datetime.fromtimestamp(created, UTC).isoformat().replace("+00:00", "Z") if created else None,
        url=text(raw, "shareUrl"),
        metrics=numbers(raw, _NOT_METRICS),
    )


async def account_analytics(
    client: PostQuedClient, account_id: str, range_: AnalyticsRange, limit: int, workspace_id: str | None
) -> AccountAnalytics:
    query = {"accountId": account_id, "range": range_, "limit": limit}
    answer = await client.call("analytics_posts", query=query, workspace_id=workspace_id)
    data = obj(answer.body)
    return AccountAnalytics(
        platform=text(data, "platform"),
        totals=numbers(obj(data, "totals")),
        posts=[_post(p) for p in items(data, "posts")],
        unverified=answer.unverified,
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
    answer = await client.call("analytics_videos", query=query, workspace_id=workspace_id)
    data = obj(answer.body)
    nxt = text(data, "cursor")
    return VideoPage(
        videos=[_video(v) for v in items(data, "videos")],
        next_cursor=nxt,
        has_more=flag(data, "hasMore") or False,
        unverified=answer.unverified,
    )

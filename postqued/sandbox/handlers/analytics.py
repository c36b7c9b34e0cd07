"""Analytics: per-post metrics and TikTok video metrics, numbers derived deterministically from ids."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from postqued.sandbox.common import ApiFail, derived_number, iso, stable_id
from postqued.sandbox.http import Ctx, Handler, Reply, by_name, invalid, json_reply
from postqued.sandbox.records import Account

ANALYTICS_PLATFORMS = ("tiktok", "facebook", "instagram", "threads", "youtube")
RANGE_POSTS = {"week": 3, "month": 8, "all": 20}
RANGE_VIDEOS = {"week": 4, "month": 12, "all": 30}
RANGE_DAYS = {"week": 7, "month": 30, "all": 365}


def _analytics_args(ctx: Ctx, default_range: str) -> tuple[Account, str]:
    workspace = ctx.workspace()
    account_id = ctx.query("accountId")
    if not account_id:
        raise invalid("accountId", "is required")
    range_ = ctx.query("range") or default_range
    if range_ not in RANGE_POSTS:
        raise invalid("range", "must be week, month or all")
    return ctx.world.account_in(workspace.id, account_id), range_


def _metrics(seed: str) -> dict[str, int]:
    views = derived_number(f"{seed}/views", 400, 60_000)
    likes = views * derived_number(f"{seed}/like-rate", 2, 12) // 100
    return {
        "views": views,
        "likes": likes,
        "comments": likes * derived_number(f"{seed}/comment-rate", 2, 10) // 100,
        "shares": likes * derived_number(f"{seed}/share-rate", 1, 8) // 100,
    }


async def analytics_posts(ctx: Ctx) -> Reply:
    account, range_ = _analytics_args(ctx, "month")
    limit = ctx.int_query("limit", 50, 1, 100)
    if account.platform not in ANALYTICS_PLATFORMS:
        raise ApiFail(400, "UNSUPPORTED_PLATFORM", f"Analytics are not available for {account.platform}")
    count = min(RANGE_POSTS[range_], limit)
    spacing = timedelta(days=RANGE_DAYS[range_]) / (RANGE_POSTS[range_] + 1)
    now = ctx.now().replace(microsecond=0)
    posts: list[dict[str, Any]] = []
    totals = dict.fromkeys(("views", "likes", "comments", "shares"), 0)
    for i in range(count):
        post_id = stable_id(f"analytics/{account.id}/{i}")
        metrics = _metrics(post_id)
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
    return json_reply(
        {
            "accountId": account.id,
            "platform": account.platform,
            "range": range_,
            "totals": {**totals, "posts": len(posts)},
            "posts": posts,
        }
    )


async def analytics_videos(ctx: Ctx) -> Reply:
    account, range_ = _analytics_args(ctx, "week")
    limit = ctx.int_query("limit", 20, 1, 20)
    if account.platform != "tiktok":
        raise ApiFail(400, "UNSUPPORTED_PLATFORM", "Video analytics exist for TikTok accounts only")
    raw_cursor = ctx.query("cursor")
    try:
        offset = int(raw_cursor) if raw_cursor else 0
    except ValueError:
        raise invalid("cursor", "is not a cursor from an earlier page") from None
    total = RANGE_VIDEOS[range_]
    if not 0 <= offset <= total:
        raise invalid("cursor", "is not a cursor from an earlier page")
    spacing = timedelta(days=RANGE_DAYS[range_]) / (total + 1)
    now = ctx.now().replace(microsecond=0)
    videos = []
    for i in range(offset, min(total, offset + limit)):
        video_id = str(derived_number(f"video/{account.id}/{i}", 7 * 10**18, 8 * 10**18 - 1))
        videos.append(
            {
                "id": video_id,
                "title": f"Sandbox video {i + 1}",
                "createTime": int((now - spacing * (i + 1)).timestamp()),
                "duration": derived_number(f"{video_id}/duration", 8, 180),
                "shareUrl": f"https://sandbox.postqued.invalid/tiktok/video/{video_id}",
                **_metrics(video_id),
            }
        )
    end = offset + len(videos)
    more = end < total
    return json_reply({"videos": videos, "cursor": str(end) if more else None, "hasMore": more})


HANDLERS: dict[str, Handler] = by_name(analytics_posts, analytics_videos)

"""Toolset ``analytics``: post metrics per account and TikTok per-video metrics (read-only)."""

from __future__ import annotations

from typing import Annotated, Any

from mcp.server.mcpserver import Context
from pydantic import Field

from postqued.api import analytics
from postqued.api.analytics import AnalyticsRange, PostMetrics
from postqued.api.shape import Checked

from .accounts import WorkspaceArg
from .admin import AccountIdArg
from .common import Toolset, state

TOOLS = Toolset("analytics")

RangeArg = Annotated[AnalyticsRange, Field(description="week, month or all (all time).")]


class AnalyticsResult(Checked):
    account_id: str
    range: str
    platform: str | None
    totals: dict[str, float]
    posts: list[PostMetrics]
    sandbox: bool


class VideosResult(Checked):
    account_id: str
    range: str
    videos: list[PostMetrics]
    next_cursor: str | None = Field(description="Pass as cursor for the next page; null at the end.")
    has_more: bool
    sandbox: bool


@TOOLS.tool("read", "Get account analytics", routes=("analytics_posts",))
async def get_account_analytics(
    ctx: Context[Any, Any],
    account_id: AccountIdArg,
    range: RangeArg = "month",
    limit: Annotated[int, Field(ge=1, le=100, description="Most posts to include.")] = 50,
    workspace_id: WorkspaceArg = None,
) -> AnalyticsResult:
    """Post metrics (views, likes, comments, shares...) and totals for one TikTok, Facebook, Instagram, Threads
    or YouTube account. Point-in-time numbers: state the range when you report them."""
    st = state(ctx)
    found = await analytics.account_analytics(st.client, account_id, range, limit, workspace_id)
    return AnalyticsResult(account_id=account_id, range=range, **found.model_dump(), sandbox=st.sandbox)


@TOOLS.tool("read", "Get TikTok video metrics", routes=("analytics_videos",))
async def get_tiktok_videos(
    ctx: Context[Any, Any],
    account_id: AccountIdArg,
    range: RangeArg = "week",
    cursor: Annotated[str | None, Field(description="next_cursor from the previous page.", max_length=500)] = None,
    limit: Annotated[int, Field(ge=1, le=20)] = 20,
    workspace_id: WorkspaceArg = None,
) -> VideosResult:
    """Per-video metrics of a TikTok account, page by page (follow next_cursor while has_more)."""
    st = state(ctx)
    page = await analytics.tiktok_videos(st.client, account_id, range, cursor, limit, workspace_id)
    return VideosResult(account_id=account_id, range=range, **page.model_dump(), sandbox=st.sandbox)

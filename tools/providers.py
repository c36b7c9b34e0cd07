"""Toolset ``providers``: live platform helpers used before composing targets (Instagram, Reddit, LinkedIn,
Pinterest). All read-only; each one asks the social network through PostQued."""

from __future__ import annotations

from typing import Annotated, Any

from mcp.server.mcpserver import Context
from pydantic import Field

from postqued.api import providers
from postqued.api.providers import AudioTrack, Entry
from postqued.api.shape import Checked

from .accounts import WorkspaceArg
from .admin import AccountIdArg
from .common import Toolset, state

TOOLS = Toolset("providers")

QueryArg = Annotated[str | None, Field(description="Search text.", max_length=200)]


class AudioResult(Checked):
    audio: list[AudioTrack] = Field(description="Pass selection_token as options.audio.selection_token.")
    sandbox: bool


class EntriesResult(Checked):
    items: list[Entry]
    sandbox: bool


class RestrictionsResult(Checked):
    subreddit: str
    post_types: list[str] = Field(description="Allowed options.kind values.")
    flair_required: bool | None
    flairs: list[Entry] = Field(description="Use id as options.flair_id.")
    details: dict[str, Any]
    sandbox: bool


@TOOLS.tool("read", "List Instagram audio", routes=("instagram_audio",))
async def list_instagram_audio(
    ctx: Context[Any, Any], account_id: AccountIdArg, workspace_id: WorkspaceArg = None
) -> AudioResult:
    """Music and original sounds an Instagram account can use; put the chosen selection_token in the target's
    options.audio."""
    st = state(ctx)
    found = await providers.list_instagram_audio(st.client, account_id, workspace_id)
    return AudioResult(audio=found.items, unverified=found.unverified, sandbox=st.sandbox)


@TOOLS.tool("read", "Search subreddits", routes=("reddit_subreddits",))
async def search_reddit_subreddits(
    ctx: Context[Any, Any],
    account_id: AccountIdArg,
    query: QueryArg = None,
    limit: Annotated[int, Field(ge=1, le=100)] = 10,
    workspace_id: WorkspaceArg = None,
) -> EntriesResult:
    """Subreddits a Reddit account can post to. Next: get_reddit_restrictions for the chosen one."""
    st = state(ctx)
    found = await providers.search_subreddits(st.client, account_id, query, limit, workspace_id)
    return EntriesResult(**found.model_dump(), sandbox=st.sandbox)


@TOOLS.tool("read", "Get subreddit restrictions", routes=("reddit_restrictions",))
async def get_reddit_restrictions(
    ctx: Context[Any, Any],
    account_id: AccountIdArg,
    subreddit: Annotated[str, Field(description="Name without r/, e.g. sandbox.", min_length=1, max_length=100)],
    workspace_id: WorkspaceArg = None,
) -> RestrictionsResult:
    """A subreddit's allowed post types and flair rules; read before a Reddit target (options.subreddit, kind,
    flair_id)."""
    st = state(ctx)
    found = await providers.reddit_restrictions(st.client, account_id, subreddit.removeprefix("r/"), workspace_id)
    return RestrictionsResult(**found.model_dump(), sandbox=st.sandbox)


@TOOLS.tool("read", "Search LinkedIn companies", routes=("linkedin_companies",))
async def search_linkedin_companies(
    ctx: Context[Any, Any],
    account_id: AccountIdArg,
    query: QueryArg = None,
    limit: Annotated[int, Field(ge=1, le=100)] = 10,
    workspace_id: WorkspaceArg = None,
) -> EntriesResult:
    """LinkedIn organization pages the account can post as."""
    st = state(ctx)
    found = await providers.search_linkedin_companies(st.client, account_id, query, limit, workspace_id)
    return EntriesResult(**found.model_dump(), sandbox=st.sandbox)


@TOOLS.tool("read", "List Pinterest boards", routes=("pinterest_boards",))
async def list_pinterest_boards(
    ctx: Context[Any, Any],
    account_id: AccountIdArg,
    limit: Annotated[int, Field(ge=1, le=250)] = 50,
    workspace_id: WorkspaceArg = None,
) -> EntriesResult:
    """Boards a Pinterest account can pin to; use id as options.board_id."""
    st = state(ctx)
    found = await providers.list_pinterest_boards(st.client, account_id, limit, workspace_id)
    return EntriesResult(**found.model_dump(), sandbox=st.sandbox)

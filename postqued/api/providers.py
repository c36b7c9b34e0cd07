"""Provider helpers: Instagram audio, Reddit subreddits and rules, LinkedIn company pages, Pinterest boards.

Answers (SPEC names the routes, not their bodies; one assumed name per field): ``{audio: [{selectionToken,
type, title, artist, durationMs}]}``, ``{subreddits: [{name, ...}]}``, ``{subreddit, postTypes, flairRequired,
flairs: [{id, text}]}``, ``{companies: [{id, name}]}``, ``{boards: [{id, name}]}``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, Field

from postqued.api.fields import flag, integer, items, obj, rest, strings, text
from postqued.api.shape import Checked, Listing

if TYPE_CHECKING:
    from postqued.client import PostQuedClient


class Entry(BaseModel):
    """One item a provider helper lists (subreddit, company page, board, flair): id, name, the rest."""

    id: str | None = None
    name: str | None = None
    details: dict[str, Any] = Field(default_factory=dict)

    @classmethod
    def of(cls, raw: Mapping[str, Any], id_key: str, name_key: str) -> Entry:
        return cls(id=text(raw, id_key), name=text(raw, name_key), details=rest(raw, id_key, name_key))


class AudioTrack(BaseModel):
    selection_token: str | None = None
    type: str | None = None
    title: str | None = None
    artist: str | None = None
    duration_ms: int | None = None


class RedditRestrictions(Checked):
    subreddit: str
    post_types: list[str] = Field(default_factory=list)
    flair_required: bool | None = None
    flairs: list[Entry] = Field(default_factory=list)
    details: dict[str, Any] = Field(default_factory=dict)


async def list_instagram_audio(
    client: PostQuedClient, account_id: str, workspace_id: str | None
) -> Listing[AudioTrack]:
    answer = await client.call("instagram_audio", account_id, workspace_id=workspace_id)
    tracks = [
        AudioTrack(
            selection_token=text(raw, "selectionToken"),
            type=text(raw, "type"),
            title=text(raw, "title"),
            artist=text(raw, "artist"),
            duration_ms=integer(raw, "durationMs"),
        )
        for raw in items(answer.body, "audio")
    ]
    return Listing(items=tracks, unverified=answer.unverified)


async def _entries(
    client: PostQuedClient, name: str, account_id: str, workspace_id: str | None, key: str, **query: Any
) -> Listing[Entry]:
    answer = await client.call(name, account_id, query=query, workspace_id=workspace_id)
    return Listing(items=[Entry.of(r, "id", "name") for r in items(answer.body, key)], unverified=answer.unverified)


async def search_subreddits(
    client: PostQuedClient, account_id: str, query: str | None, limit: int, workspace_id: str | None
) -> Listing[Entry]:
    answer = await client.call(
        "reddit_subreddits", account_id, query={"query": query, "limit": limit}, workspace_id=workspace_id
    )
    # a subreddit is named, not numbered: its name is its id
    found = [Entry.of(r, "name", "name") for r in items(answer.body, "subreddits")]
    return Listing(items=found, unverified=answer.unverified)


async def reddit_restrictions(
    client: PostQuedClient, account_id: str, subreddit: str, workspace_id: str | None
) -> RedditRestrictions:
    answer = await client.call(
        "reddit_restrictions", account_id, query={"subreddit": subreddit}, workspace_id=workspace_id
    )
    data = obj(answer.body)
    return RedditRestrictions(
        subreddit=text(data, "subreddit") or subreddit,
        post_types=strings(data, "postTypes"),
        flair_required=flag(data, "flairRequired"),
        flairs=[Entry.of(f, "id", "text") for f in items(data, "flairs")],
        details=rest(data, "subreddit", "postTypes", "flairRequired", "flairs"),
        unverified=answer.unverified,
    )


async def search_linkedin_companies(
    client: PostQuedClient, account_id: str, query: str | None, limit: int, workspace_id: str | None
) -> Listing[Entry]:
    return await _entries(client, "linkedin_companies", account_id, workspace_id, "companies", query=query, limit=limit)


async def list_pinterest_boards(
    client: PostQuedClient, account_id: str, limit: int, workspace_id: str | None
) -> Listing[Entry]:
    return await _entries(client, "pinterest_boards", account_id, workspace_id, "boards", limit=limit)

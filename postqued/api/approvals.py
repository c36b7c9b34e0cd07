"""Approvals and client review: posts reviewed before they are scheduled or published.

Every mutation carries the revision and version the caller read (optimistic concurrency, documented in
PostQued's v2 skill); a 409 becomes REVISION_CONFLICT (or INVALID_STATE when the body's code names a state).
Answers (route map only; one assumed name per field): a post under ``post`` (``review`` for client review),
lists under ``posts`` (``reviews``); a post ``{id, title, status, version, currentRevisionId, currentRevision,
suggestions, feedback, reviewers, delivery, updatedAt}``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, Field

from postqued.api.fields import integer, items, obj, strings, text
from postqued.api.shape import Checked, Listing, Unverified
from postqued.api.team import Member, parse_member
from postqued.errors import APIError, ConflictError, RevisionConflictError, WorkflowStateError, WriteOutcomeUnknownError
from postqued.models import Platform, RequestModel, parse_options, utc_iso

if TYPE_CHECKING:
    from postqued.client import PostQuedClient


# --- requests ------------------------------------------------------------------------------------


class ApprovalTarget(RequestModel):
    platform: Platform
    account_id: str
    caption: str = Field(min_length=1)
    link_url: str | None = None
    options: dict[str, Any] = Field(default_factory=dict)

    def wire(self) -> dict[str, Any]:
        body = super().wire()
        body["options"] = parse_options(self.platform, self.options, where=f"{self.platform}.options").wire()
        return body


class ApprovalDraft(RequestModel):
    """The content of a post or a revision (``title``, ``brief``, ``assetIds``, ``targets``)."""

    title: str = Field(min_length=1)
    brief: str | None = None
    asset_ids: list[str] = Field(default_factory=list, max_length=35)
    targets: list[ApprovalTarget] = Field(min_length=1, max_length=35)

    def wire(self) -> dict[str, Any]:
        body = super().wire()
        body["assetIds"] = list(self.asset_ids)
        body["targets"] = [t.wire() for t in self.targets]
        return body


class Guard(RequestModel):
    """Optimistic concurrency: the revision and version the caller read."""

    expected_revision_id: str
    expected_version: int


class SuggestionInput(RequestModel):
    target_index: int = Field(ge=0)
    platform: Platform
    field: Literal["caption"] = "caption"
    selection_start: int = Field(ge=0)
    selection_end: int = Field(ge=0)
    original_text: str
    replacement_text: str
    note: str | None = None


@dataclass(frozen=True)
class Change:
    """What a guarded mutation carries besides the guard (a comment, a time, a suggestion or a revision)."""

    comment: str | None = None
    dispatch_at: datetime | None = None
    suggestion: SuggestionInput | None = None
    revision: ApprovalDraft | None = None


NO_CHANGE = Change()


# --- answers -------------------------------------------------------------------------------------


class ApprovalTargetState(BaseModel):
    platform: str | None = None
    account_id: str | None = None
    caption: str | None = None
    link_url: str | None = None
    options: dict[str, Any] = Field(default_factory=dict)


class Revision(BaseModel):
    id: str | None = None
    number: int | None = None
    title: str | None = None
    brief: str | None = None
    asset_ids: list[str] = Field(default_factory=list)
    targets: list[ApprovalTargetState] = Field(default_factory=list)


class Suggestion(BaseModel):
    id: str | None = None
    status: str | None = None
    target_index: int | None = None
    selection_start: int | None = None
    selection_end: int | None = None
    original_text: str | None = None
    replacement_text: str | None = None
    note: str | None = None
    author: str | None = None


class Feedback(BaseModel):
    kind: str | None = None
    text: str | None = None
    author: str | None = None
    revision_id: str | None = None
    created_at: str | None = None


class ApprovalPost(Checked):
    id: str
    title: str | None = None
    status: str | None = None
    version: int | None = Field(default=None, description="Pass as expected_version to the next mutation.")
    current_revision_id: str | None = Field(default=None, description="Pass as expected_revision_id.")
    revision: Revision | None = None
    suggestions: list[Suggestion] = Field(default_factory=list)
    feedback: list[Feedback] = Field(default_factory=list)
    reviewers: list[Member] = Field(default_factory=list)
    delivery: dict[str, Any] | None = Field(default=None, description="publish_id and status once scheduled.")
    updated_at: str | None = None


def _revision(raw: Mapping[str, Any]) -> Revision:
    return Revision(
        id=text(raw, "id"),
        number=integer(raw, "number"),
        title=text(raw, "title"),
        brief=text(raw, "brief"),
        asset_ids=strings(raw, "assetIds"),
        targets=[
            ApprovalTargetState(
                platform=text(t, "platform"),
                account_id=text(t, "accountId"),
                caption=text(t, "caption"),
                link_url=text(t, "linkUrl"),
                options=obj(t, "options"),
            )
            for t in items(raw, "targets")
        ],
    )


def _suggestion(raw: Mapping[str, Any]) -> Suggestion:
    return Suggestion(
        id=text(raw, "id"),
        status=text(raw, "status"),
        target_index=integer(raw, "targetIndex"),
        selection_start=integer(raw, "selectionStart"),
        selection_end=integer(raw, "selectionEnd"),
        original_text=text(raw, "originalText"),
        replacement_text=text(raw, "replacementText"),
        note=text(raw, "note"),
        author=text(obj(raw, "author"), "email"),
    )


def _feedback(raw: Mapping[str, Any]) -> Feedback:
    return Feedback(
        kind=text(raw, "kind"),
        text=text(raw, "comment"),
        author=text(obj(raw, "author"), "email"),
        revision_id=text(raw, "revisionId"),
        created_at=text(raw, "createdAt"),
    )


def parse_post(data: Mapping[str, Any], unverified: Unverified | None = None) -> ApprovalPost | None:
    """The post an answer shows (None when it shows none)."""
    pid = text(data, "id")
    if not pid:
        return None
    current = obj(data, "currentRevision")
    delivery = data.get("delivery")
    return ApprovalPost(
        id=pid,
        title=text(data, "title"),
        status=text(data, "status"),
        version=integer(data, "version"),
        current_revision_id=text(data, "currentRevisionId"),
        revision=_revision(current) if current else None,
        suggestions=[_suggestion(s) for s in items(data, "suggestions")],
        feedback=[_feedback(f) for f in items(data, "feedback")],
        reviewers=[parse_member(r) for r in items(data, "reviewers")],
        delivery=dict(delivery) if isinstance(delivery, Mapping) else None,
        updated_at=text(data, "updatedAt"),
        unverified=unverified,
    )


def _posts(body: Any, key: str, unverified: Unverified | None) -> Listing[ApprovalPost]:
    found = [p for p in (parse_post(raw) for raw in items(body, key)) if p is not None]
    return Listing(items=found, unverified=unverified)


def _conflict(exc: ConflictError, reread: str) -> ConflictError:
    """A 409 on an approval or review mutation, branched on the body's code (state vs revision)."""
    said = exc.message
    if "STATE" in exc.code.upper() or "STATUS" in exc.code.upper():
        return WorkflowStateError(
            f"The post's status does not allow this. {said}",
            code=exc.code,
            status=exc.status,
            next_step=f"Call {reread} to see the post's status, then choose an action that fits it.",
        )
    return RevisionConflictError(
        f"the post changed since you read it. {said}",
        status=exc.status,
        next_step=f"call {reread} and decide again (use its current revision id and version); never retry blindly.",
        details={"server_code": exc.code},
    )


# --- approval posts ------------------------------------------------------------------------------


async def list_approval_posts(client: PostQuedClient, workspace_id: str | None) -> Listing[ApprovalPost]:
    answer = await client.call("posts", workspace_id=workspace_id)
    return _posts(answer.body, "posts", answer.unverified)


async def _get(client: PostQuedClient, name: str, key: str, post_id: str, workspace_id: str | None) -> ApprovalPost:
    answer = await client.call(name, post_id, workspace_id=workspace_id)
    post = parse_post(obj(answer.body, key), answer.unverified)
    if post is None:
        raise APIError(
            f"PostQued's answer to {name} carried no post id (it was read; nothing was changed).",
            code="BAD_RESPONSE",
            next_step="Run `postqued-mcp doctor --contract` and share its report.",
        )
    return post


async def get_approval_post(client: PostQuedClient, post_id: str, workspace_id: str | None) -> ApprovalPost:
    return await _get(client, "post_get", "post", post_id, workspace_id)


async def create_approval_post(client: PostQuedClient, draft: ApprovalDraft, workspace_id: str | None) -> ApprovalPost:
    answer = await client.call("post_create", body=draft, workspace_id=workspace_id)
    post = parse_post(obj(answer.body, "post"), answer.unverified)
    if post is None:
        raise WriteOutcomeUnknownError("PostQued accepted the post but its answer carried no post id.")
    return post


async def mutate(
    client: PostQuedClient,
    name: str,
    post_id: str,
    guard: Guard,
    workspace_id: str | None,
    *,
    sub_id: str | None = None,
    change: Change = NO_CHANGE,
    review: bool = False,
) -> ApprovalPost | None:
    """One guarded approval or client-review mutation; the post as the answer shows it (None if it does not).

    A 409 becomes REVISION_CONFLICT (or INVALID_STATE when the body's code names a state): re-read, never retry.
    A revision names its base as ``baseRevisionId`` (documented for revisions) instead of ``expectedRevisionId``.
    """
    body: dict[str, Any] = guard.wire()
    if change.revision is not None:
        body = {"baseRevisionId": guard.expected_revision_id, "expectedVersion": guard.expected_version}
        body.update(change.revision.wire())
    if change.comment is not None:
        body["comment"] = change.comment
    if change.dispatch_at is not None:
        body["dispatchAt"] = utc_iso(change.dispatch_at)
    if change.suggestion is not None:
        body.update(change.suggestion.wire())
    ids = (post_id,) if sub_id is None else (post_id, sub_id)
    try:
        answer = await client.call(name, *ids, body=body, workspace_id=workspace_id)
    except ConflictError as exc:
        raise _conflict(exc, "get_client_review" if review else "get_approval_post") from None
    return parse_post(obj(answer.body, "review" if review else "post"), answer.unverified)


# --- client review -------------------------------------------------------------------------------


async def list_client_reviews(client: PostQuedClient, workspace_id: str | None) -> Listing[ApprovalPost]:
    answer = await client.call("client_reviews", workspace_id=workspace_id)
    return _posts(answer.body, "reviews", answer.unverified)


async def get_client_review(client: PostQuedClient, post_id: str, workspace_id: str | None) -> ApprovalPost:
    return await _get(client, "client_review_get", "review", post_id, workspace_id)

"""Toolset ``approvals``: posts that go through review before they are scheduled or published.

Every mutation names the revision and version the agent last read (``expected_revision_id``,
``expected_version``). When someone changed the post in between, PostQued answers 409 and the tool says
REVISION_CONFLICT: re-read with get_approval_post and decide again, never repeat the call blindly.
Publishing or scheduling an approved post makes it public: it asks the user first, like a direct publish.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from mcp.server.mcpserver import Context
from mcp.server.mcpserver.resolve import Resolve
from pydantic import BaseModel, Field

from postqued.api import approvals
from postqued.api.approvals import NO_CHANGE, ApprovalDraft, ApprovalPost, Change, Guard, SuggestionInput
from postqued.api.shape import Checked
from postqued.errors import LocalError
from postqued.models import Platform, utc_iso

from .accounts import WorkspaceArg
from .common import ID_PATTERN, Toolset, state
from .confirm import ConfirmArg, Outcome, Question, ask, require

TOOLS = Toolset("approvals")

PostIdArg = Annotated[str, Field(description="Approval post id.", pattern=ID_PATTERN)]
RevisionArg = Annotated[
    str, Field(description="current_revision_id from the latest read of the post.", pattern=ID_PATTERN)
]
VersionArg = Annotated[int, Field(description="version from the latest read of the post.", ge=0)]
CommentArg = Annotated[str, Field(description="Feedback text.", min_length=1, max_length=5000)]

NEXT_BY_STATUS = {
    "draft": "Edit with create_post_revision if needed, then submit_for_approval.",
    "in_review": "Reviewers answer with approve_post or request_post_changes.",
    "changes_requested": "Apply the feedback with create_post_revision, then submit_for_approval again.",
    "approved": "Ask the user, then schedule_approved_post or publish_approved_post.",
    "scheduled": "Follow delivery.publish_id with get_publish_status.",
    "published": "Follow delivery.publish_id with get_publish_status.",
}


REVIEW_NEXT_BY_STATUS = {
    "in_review": "Answer with approve_client_review or request_client_changes (or suggest an edit).",
    "changes_requested": "Wait for a new revision; get_client_review shows it.",
    "approved": "Nothing more is needed from the reviewer.",
}


def next_step(status: str | None, review: bool = False) -> str:
    if review:
        return REVIEW_NEXT_BY_STATUS.get(status or "", "Read the review with get_client_review before acting.")
    return NEXT_BY_STATUS.get(status or "", "Read the post with get_approval_post before the next action.")


class TargetIn(BaseModel):
    platform: Platform
    account_id: str = Field(description="Account id from list_accounts.", pattern=ID_PATTERN)
    caption: str = Field(min_length=1, max_length=63206)
    link_url: str | None = Field(default=None, max_length=2000)
    options: dict[str, Any] = Field(default_factory=dict, description="Per-platform options, as in publish_content.")


TargetsArg = Annotated[list[TargetIn], Field(description="1-35 platform targets.", min_length=1, max_length=35)]
TitleArg = Annotated[str, Field(description="Internal title of the post.", min_length=1, max_length=300)]
BriefArg = Annotated[str | None, Field(description="Notes for reviewers.", max_length=5000)]
AssetsArg = Annotated[
    list[Annotated[str, Field(pattern=ID_PATTERN)]],
    Field(description="Content ids (0-35) from upload_media or list_content.", max_length=35),
]


def draft(title: str, brief: str | None, asset_ids: list[str], targets: list[TargetIn]) -> ApprovalDraft:
    return ApprovalDraft.model_validate(
        {"title": title, "brief": brief, "asset_ids": asset_ids, "targets": [t.model_dump() for t in targets]}
    )


class PostSummary(BaseModel):
    id: str
    title: str | None
    status: str | None
    version: int | None
    current_revision_id: str | None
    updated_at: str | None

    @classmethod
    def of(cls, p: ApprovalPost) -> PostSummary:
        return cls.model_validate(p.model_dump(include=set(cls.model_fields)))


class PostListResult(Checked):
    posts: list[PostSummary]
    sandbox: bool


class PostResult(BaseModel):
    post: ApprovalPost
    next_step: str
    sandbox: bool


class ActionResult(BaseModel):
    post_id: str
    action: str
    status: str | None
    current_revision_id: str | None = Field(description="Use as expected_revision_id next.")
    version: int | None = Field(description="Use as expected_version next.")
    delivery: dict[str, Any] | None = None
    confirmation: str | None = None
    next_step: str
    sandbox: bool


async def settle(
    ctx: Context[Any, Any],
    post_id: str,
    action: str,
    post: ApprovalPost | None,
    workspace_id: str | None,
    *,
    review: bool = False,
    confirmation: str | None = None,
) -> ActionResult:
    """The result of a mutation; the post is read again when the answer did not show its new version."""
    st = state(ctx)
    if post is None or post.version is None:
        read = approvals.get_client_review if review else approvals.get_approval_post
        post = await read(st.client, post_id, workspace_id)
    return ActionResult(
        post_id=post.id,
        action=action,
        status=post.status,
        current_revision_id=post.current_revision_id,
        version=post.version,
        delivery=post.delivery,
        confirmation=confirmation,
        next_step=next_step(post.status, review),
        sandbox=st.sandbox,
    )


async def guarded(
    ctx: Context[Any, Any],
    route: str,
    action: str,
    post_id: str,
    expected_revision_id: str,
    expected_version: int,
    workspace_id: str | None,
    *,
    sub_id: str | None = None,
    change: Change = NO_CHANGE,
    confirmation: str | None = None,
    review: bool = False,
) -> ActionResult:
    """Send one guarded mutation (409 -> REVISION_CONFLICT) and report the post's new revision and version."""
    st = state(ctx)
    guard = Guard(expected_revision_id=expected_revision_id, expected_version=expected_version)
    post = await approvals.mutate(
        st.client, route, post_id, guard, workspace_id, sub_id=sub_id, change=change, review=review
    )
    return await settle(ctx, post_id, action, post, workspace_id, review=review, confirmation=confirmation)


# --- reads and drafts ----------------------------------------------------------------------------


@TOOLS.tool("read", "List approval posts", routes=("posts",))
async def list_approval_posts(ctx: Context[Any, Any], workspace_id: WorkspaceArg = None) -> PostListResult:
    """Posts of the workspace with their approval status. Next: get_approval_post for one of them."""
    st = state(ctx)
    found = await approvals.list_approval_posts(st.client, workspace_id)
    posts = [PostSummary.of(p) for p in found.items]
    return PostListResult(posts=posts, unverified=found.unverified, sandbox=st.sandbox)


@TOOLS.tool("read", "Get an approval post", routes=("post_get",))
async def get_approval_post(
    ctx: Context[Any, Any], post_id: PostIdArg, workspace_id: WorkspaceArg = None
) -> PostResult:
    """The post's current revision, version, suggestions, feedback, reviewers and delivery. Read it before every
    mutation and pass its current_revision_id and version."""
    st = state(ctx)
    post = await approvals.get_approval_post(st.client, post_id, workspace_id)
    return PostResult(post=post, next_step=next_step(post.status), sandbox=st.sandbox)


@TOOLS.tool("write", "Create an approval post", routes=("post_create",))
async def create_approval_post(
    ctx: Context[Any, Any],
    title: TitleArg,
    targets: TargetsArg,
    asset_ids: AssetsArg = [],  # noqa: B006 (pydantic copies defaults)
    brief: BriefArg = None,
    workspace_id: WorkspaceArg = None,
) -> ActionResult:
    """Create a draft post for review (title, media, platform targets; no time yet). Next: submit_for_approval."""
    st = state(ctx)
    post = await approvals.create_approval_post(st.client, draft(title, brief, asset_ids, targets), workspace_id)
    return await settle(ctx, post.id, "create", post, workspace_id)


@TOOLS.tool("write", "Create a post revision", routes=("post_revision",))
async def create_post_revision(
    ctx: Context[Any, Any],
    post_id: PostIdArg,
    expected_revision_id: RevisionArg,
    expected_version: VersionArg,
    title: TitleArg,
    targets: TargetsArg,
    asset_ids: AssetsArg = [],  # noqa: B006
    brief: BriefArg = None,
    workspace_id: WorkspaceArg = None,
) -> ActionResult:
    """Replace the post's content with a new revision built on the one you read (send the full content)."""
    return await guarded(
        ctx, "post_revision", "revise", post_id, expected_revision_id, expected_version, workspace_id,
        change=Change(revision=draft(title, brief, asset_ids, targets)),
    )  # fmt: skip


# --- suggestions ---------------------------------------------------------------------------------


class SelectionIn(BaseModel):
    """A caption edit bound to a character range of one target's caption in the current revision."""

    target_index: int = Field(ge=0, le=34, description="Index into the revision's targets, from 0.")
    platform: Platform
    selection_start: int = Field(ge=0, description="First character (0-based) of the replaced text.")
    selection_end: int = Field(ge=0, description="One past the last replaced character.")
    original_text: str = Field(max_length=63206, description="The caption text in that range, exactly.")
    replacement_text: str = Field(max_length=63206)
    note: str | None = Field(default=None, max_length=2000)


def suggestion_input(s: SelectionIn) -> SuggestionInput:
    if s.selection_end < s.selection_start:
        raise LocalError("selection_end is before selection_start.", code="INVALID_SELECTION")
    if len(s.original_text) != s.selection_end - s.selection_start:
        raise LocalError(
            "original_text does not have the selection's length.",
            code="INVALID_SELECTION",
            next_step="Copy original_text exactly from caption[selection_start:selection_end].",
        )
    return SuggestionInput.model_validate(s.model_dump())


@TOOLS.tool("write", "Suggest a caption edit", routes=("post_suggestion",))
async def create_post_suggestion(
    ctx: Context[Any, Any],
    post_id: PostIdArg,
    expected_revision_id: RevisionArg,
    expected_version: VersionArg,
    suggestion: SelectionIn,
    workspace_id: WorkspaceArg = None,
) -> ActionResult:
    """Propose replacing part of one target's caption without changing the revision; the owner accepts or
    declines it."""
    return await guarded(
        ctx, "post_suggestion", "suggest", post_id, expected_revision_id, expected_version, workspace_id,
        change=Change(suggestion=suggestion_input(suggestion)),
    )  # fmt: skip


SuggestionArg = Annotated[str, Field(description="Suggestion id from get_approval_post.", pattern=ID_PATTERN)]


@TOOLS.tool("write", "Accept a suggestion", routes=("post_suggestion_accept",))
async def accept_post_suggestion(
    ctx: Context[Any, Any],
    post_id: PostIdArg,
    suggestion_id: SuggestionArg,
    expected_revision_id: RevisionArg,
    expected_version: VersionArg,
    workspace_id: WorkspaceArg = None,
) -> ActionResult:
    """Apply a suggested caption edit (creates a new revision)."""
    return await guarded(
        ctx, "post_suggestion_accept", "accept_suggestion", post_id, expected_revision_id, expected_version,
        workspace_id, sub_id=suggestion_id,
    )  # fmt: skip


@TOOLS.tool("write", "Decline a suggestion", routes=("post_suggestion_decline",))
async def decline_post_suggestion(
    ctx: Context[Any, Any],
    post_id: PostIdArg,
    suggestion_id: SuggestionArg,
    expected_revision_id: RevisionArg,
    expected_version: VersionArg,
    workspace_id: WorkspaceArg = None,
) -> ActionResult:
    """Decline a suggested caption edit; the caption stays as it is."""
    return await guarded(
        ctx, "post_suggestion_decline", "decline_suggestion", post_id, expected_revision_id, expected_version,
        workspace_id, sub_id=suggestion_id,
    )  # fmt: skip


# --- review flow ---------------------------------------------------------------------------------


@TOOLS.tool("write", "Comment on an approval", routes=("post_comment",))
async def comment_on_approval(
    ctx: Context[Any, Any],
    post_id: PostIdArg,
    expected_revision_id: RevisionArg,
    expected_version: VersionArg,
    comment: CommentArg,
    workspace_id: WorkspaceArg = None,
) -> ActionResult:
    """Add feedback bound to the current revision (visible to the team and the post's reviewers)."""
    return await guarded(
        ctx, "post_comment", "comment", post_id, expected_revision_id, expected_version, workspace_id,
        change=Change(comment=comment),
    )  # fmt: skip


@TOOLS.tool("write", "Submit for approval", routes=("post_submit",))
async def submit_for_approval(
    ctx: Context[Any, Any],
    post_id: PostIdArg,
    expected_revision_id: RevisionArg,
    expected_version: VersionArg,
    workspace_id: WorkspaceArg = None,
) -> ActionResult:
    """Move the current revision into review; reviewers are notified."""
    return await guarded(ctx, "post_submit", "submit", post_id, expected_revision_id, expected_version, workspace_id)


@TOOLS.tool("write", "Request changes", routes=("post_request_changes",))
async def request_post_changes(
    ctx: Context[Any, Any],
    post_id: PostIdArg,
    expected_revision_id: RevisionArg,
    expected_version: VersionArg,
    comment: Annotated[str, Field(description="What must change (required).", min_length=1, max_length=5000)],
    workspace_id: WorkspaceArg = None,
) -> ActionResult:
    """Send the post in review back to its author with the changes needed."""
    return await guarded(
        ctx, "post_request_changes", "request_changes", post_id, expected_revision_id, expected_version,
        workspace_id, change=Change(comment=comment),
    )  # fmt: skip


@TOOLS.tool("write", "Approve a post", routes=("post_approve",))
async def approve_post(
    ctx: Context[Any, Any],
    post_id: PostIdArg,
    expected_revision_id: RevisionArg,
    expected_version: VersionArg,
    workspace_id: WorkspaceArg = None,
) -> ActionResult:
    """Approve exactly the revision you read. Next: schedule_approved_post or publish_approved_post."""
    return await guarded(ctx, "post_approve", "approve", post_id, expected_revision_id, expected_version, workspace_id)


# --- delivery (public: asks the user) ------------------------------------------------------------


async def _ask_schedule(
    ctx: Context[Any, Any], post_id: str, expected_revision_id: str, dispatch_at: datetime
) -> Question:
    future = dispatch_at.utcoffset() is not None and dispatch_at > state(ctx).clock.now()
    when = utc_iso(dispatch_at) if dispatch_at.utcoffset() is not None else dispatch_at.isoformat()
    question = f"Schedule approved post {post_id} (revision {expected_revision_id}) to go public at {when}?"
    return ask(ctx, question, valid=future)


async def _ask_publish(ctx: Context[Any, Any], post_id: str, expected_revision_id: str) -> Question:
    return ask(ctx, f"Publish approved post {post_id} (revision {expected_revision_id}) publicly now, on every target?")


@TOOLS.tool("write", "Schedule an approved post", routes=("post_schedule",))
async def schedule_approved_post(
    ctx: Context[Any, Any],
    post_id: PostIdArg,
    expected_revision_id: RevisionArg,
    expected_version: VersionArg,
    dispatch_at: Annotated[
        datetime, Field(description="Future offset-aware ISO 8601 time, e.g. 2026-12-01T09:00:00Z.")
    ],
    approval: Annotated[Outcome, Resolve(_ask_schedule)],
    confirm: ConfirmArg = False,
    workspace_id: WorkspaceArg = None,
) -> ActionResult:
    """Schedule the approved revision on all its targets; asks the user first. Next: get_publish_status with
    delivery.publish_id."""
    st = state(ctx)
    if dispatch_at.utcoffset() is None or dispatch_at <= st.clock.now():
        raise LocalError(
            "dispatch_at must be a future time with a UTC offset.",
            code="INVALID_DISPATCH_AT",
            next_step="Pass e.g. 2026-12-01T09:00:00Z, or use publish_approved_post for now.",
        )
    how = require(approval, confirm, action="schedule the post")
    return await guarded(
        ctx, "post_schedule", "schedule", post_id, expected_revision_id, expected_version, workspace_id,
        change=Change(dispatch_at=dispatch_at), confirmation=how,
    )  # fmt: skip


@TOOLS.tool("write", "Publish an approved post", routes=("post_publish",))
async def publish_approved_post(
    ctx: Context[Any, Any],
    post_id: PostIdArg,
    expected_revision_id: RevisionArg,
    expected_version: VersionArg,
    approval: Annotated[Outcome, Resolve(_ask_publish)],
    confirm: ConfirmArg = False,
    workspace_id: WorkspaceArg = None,
) -> ActionResult:
    """Publish the approved revision now on all its targets; asks the user first. Never repeat after an error
    without reading the post: follow delivery.publish_id with get_publish_status."""
    how = require(approval, confirm, action="publish the post")
    return await guarded(
        ctx, "post_publish", "publish", post_id, expected_revision_id, expected_version, workspace_id,
        confirmation=how,
    )  # fmt: skip

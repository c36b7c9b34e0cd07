"""Toolset ``team``: workspace collaborators, per-post reviewers, and client review (the key owner as reviewer).

Invitations send real email, and removals or revocations take access away: those ask the user first
(tools/confirm.py). Client-review actions carry the revision and version read with get_client_review; a 409
is REVISION_CONFLICT: read again, never retry blindly.
"""

from __future__ import annotations

from typing import Annotated, Any

from mcp.server.mcpserver import Context
from mcp.server.mcpserver.resolve import Resolve
from pydantic import BaseModel, Field

from postqued.api import approvals, team
from postqued.api.approvals import ApprovalPost, Change
from postqued.api.shape import Checked
from postqued.api.team import Invitation, Member, MembershipType, Role
from postqued.errors import LocalError
from postqued.text import shown

from .accounts import WorkspaceArg
from .approvals import (
    ActionResult,
    CommentArg,
    PostIdArg,
    PostListResult,
    PostResult,
    PostSummary,
    RevisionArg,
    SelectionIn,
    VersionArg,
    guarded,
    next_step,
    suggestion_input,
)
from .common import ID_PATTERN, Toolset, state
from .confirm import ConfirmArg, Outcome, Question, ask, require

TOOLS = Toolset("team")

EmailArg = Annotated[
    str, Field(description="The person's email address.", pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$", max_length=320)
]
UserArg = Annotated[
    str, Field(description="user_id from list_collaborators or list_post_reviewers.", pattern=ID_PATTERN)
]
InvitationArg = Annotated[str, Field(description="Invitation id from the matching list tool.", pattern=ID_PATTERN)]
RoleArg = Annotated[Role, Field(description="admin, editor, reviewer or viewer.")]
MembershipArg = Annotated[MembershipType, Field(description="team (staff) or external (client).")]


class PeopleResult(Checked):
    members: list[Member]
    invitations: list[Invitation] = Field(description="Pending and past invitations.")
    sandbox: bool


class InvitationResult(BaseModel):
    invitation: Invitation
    confirmation: str
    next_step: str
    sandbox: bool


class MemberResult(BaseModel):
    member: Member
    confirmation: str
    sandbox: bool


class TeamActionResult(BaseModel):
    id: str
    action: str
    ok: bool
    confirmation: str
    sandbox: bool


async def _workspace(ctx: Context[Any, Any], workspace_id: str | None) -> str:
    ws = await state(ctx).client.resolve_workspace(workspace_id)
    if not ws:
        raise LocalError("This operation needs a v2 workspace.", code="UNSUPPORTED_IN_API_VERSION")
    return ws


# --- workspace collaborators ---------------------------------------------------------------------


@TOOLS.tool("read", "List collaborators", routes=("collaborators",))
async def list_collaborators(ctx: Context[Any, Any], workspace_id: WorkspaceArg = None) -> PeopleResult:
    """Members of the workspace (role, team or external) and its invitations."""
    st = state(ctx)
    people = await team.list_collaborators(st.client, await _workspace(ctx, workspace_id))
    return PeopleResult(**people.model_dump(), sandbox=st.sandbox)


async def _ask_invite(ctx: Context[Any, Any], email: str, role: str, membership_type: str) -> Question:
    return ask(ctx, f"Email a workspace invitation to {shown(email)} as {role} ({membership_type})?")


@TOOLS.tool("write", "Invite a collaborator", routes=("invitation_create",))
async def invite_collaborator(
    ctx: Context[Any, Any],
    email: EmailArg,
    role: RoleArg,
    membership_type: MembershipArg,
    approval: Annotated[Outcome, Resolve(_ask_invite)],
    confirm: ConfirmArg = False,
    workspace_id: WorkspaceArg = None,
) -> InvitationResult:
    """Invite someone to the workspace; PostQued emails them. Asks the user first; check
    get_workspace_capabilities when seats may be limited."""
    st = state(ctx)
    how = require(approval, confirm, action="send the invitation")
    ws = await _workspace(ctx, workspace_id)
    invitation = await team.invite_collaborator(st.client, ws, email, role, membership_type)
    return InvitationResult(
        invitation=invitation,
        confirmation=how,
        next_step="They join after accepting in the PostQued app; list_collaborators shows the invitation.",
        sandbox=st.sandbox,
    )


async def _ask_revoke(ctx: Context[Any, Any], invitation_id: str) -> Question:
    return ask(ctx, f"Revoke workspace invitation {invitation_id}? Its link stops working.")


@TOOLS.tool("destructive", "Revoke a collaborator invitation", routes=("invitation_revoke",))
async def revoke_collaborator_invitation(
    ctx: Context[Any, Any],
    invitation_id: InvitationArg,
    approval: Annotated[Outcome, Resolve(_ask_revoke)],
    confirm: ConfirmArg = False,
    workspace_id: WorkspaceArg = None,
) -> TeamActionResult:
    """Revoke a pending workspace invitation; asks the user first."""
    st = state(ctx)
    how = require(approval, confirm, action="revoke the invitation")
    ws = await _workspace(ctx, workspace_id)
    ok = await team.revoke_collaborator_invitation(st.client, ws, invitation_id)
    return TeamActionResult(id=invitation_id, action="revoke_invitation", ok=ok, confirmation=how, sandbox=st.sandbox)


async def _ask_update(ctx: Context[Any, Any], user_id: str, role: str | None, membership_type: str | None) -> Question:
    change = ", ".join(f"{k} {v}" for k, v in (("role", role), ("membership", membership_type)) if v)
    return ask(ctx, f"Change the workspace access of user {user_id} to {change}?", valid=bool(change))


@TOOLS.tool("idempotent_write", "Update a collaborator", routes=("member_update",))
async def update_collaborator(
    ctx: Context[Any, Any],
    user_id: UserArg,
    approval: Annotated[Outcome, Resolve(_ask_update)],
    role: RoleArg | None = None,
    membership_type: MembershipArg | None = None,
    confirm: ConfirmArg = False,
    workspace_id: WorkspaceArg = None,
) -> MemberResult:
    """Change a member's role and/or membership type (at least one); asks the user first."""
    st = state(ctx)
    if role is None and membership_type is None:
        raise LocalError("Nothing to update.", code="EMPTY_UPDATE", next_step="Pass role and/or membership_type.")
    how = require(approval, confirm, action="change this member's access")
    ws = await _workspace(ctx, workspace_id)
    member = await team.update_collaborator(st.client, ws, user_id, role, membership_type)
    return MemberResult(member=member, confirmation=how, sandbox=st.sandbox)


async def _ask_remove(ctx: Context[Any, Any], user_id: str) -> Question:
    return ask(ctx, f"Remove user {user_id} from the workspace? Their access is suspended.")


@TOOLS.tool("destructive", "Remove a collaborator", routes=("member_remove",))
async def remove_collaborator(
    ctx: Context[Any, Any],
    user_id: UserArg,
    approval: Annotated[Outcome, Resolve(_ask_remove)],
    confirm: ConfirmArg = False,
    workspace_id: WorkspaceArg = None,
) -> TeamActionResult:
    """Suspend a member's access to the workspace; asks the user first."""
    st = state(ctx)
    how = require(approval, confirm, action="remove the member")
    ws = await _workspace(ctx, workspace_id)
    ok = await team.remove_collaborator(st.client, ws, user_id)
    return TeamActionResult(id=user_id, action="remove_member", ok=ok, confirmation=how, sandbox=st.sandbox)


# --- post reviewers ------------------------------------------------------------------------------


@TOOLS.tool("read", "List post reviewers", routes=("post_reviewers",))
async def list_post_reviewers(
    ctx: Context[Any, Any], post_id: PostIdArg, workspace_id: WorkspaceArg = None
) -> PeopleResult:
    """Reviewers of one approval post and their invitations."""
    st = state(ctx)
    people = await team.list_post_reviewers(st.client, post_id, workspace_id)
    return PeopleResult(**people.model_dump(), sandbox=st.sandbox)


async def _ask_reviewer(ctx: Context[Any, Any], post_id: str, email: str) -> Question:
    return ask(ctx, f"Email {shown(email)} an invitation to review post {post_id}?")


@TOOLS.tool("write", "Invite a post reviewer", routes=("reviewer_invite",))
async def invite_post_reviewer(
    ctx: Context[Any, Any],
    post_id: PostIdArg,
    email: EmailArg,
    approval: Annotated[Outcome, Resolve(_ask_reviewer)],
    confirm: ConfirmArg = False,
    workspace_id: WorkspaceArg = None,
) -> InvitationResult:
    """Give someone (usually a client) review access to one post; PostQued emails them. Asks the user first."""
    st = state(ctx)
    how = require(approval, confirm, action="send the reviewer invitation")
    invitation = await team.invite_post_reviewer(st.client, post_id, email, workspace_id)
    return InvitationResult(
        invitation=invitation,
        confirmation=how,
        next_step="They can review after accepting; list_post_reviewers shows the invitation.",
        sandbox=st.sandbox,
    )


async def _ask_reviewer_revoke(ctx: Context[Any, Any], post_id: str, invitation_id: str) -> Question:
    return ask(ctx, f"Revoke reviewer invitation {invitation_id} for post {post_id}?")


@TOOLS.tool("destructive", "Revoke a reviewer invitation", routes=("reviewer_invitation_revoke",))
async def revoke_post_reviewer_invitation(
    ctx: Context[Any, Any],
    post_id: PostIdArg,
    invitation_id: InvitationArg,
    approval: Annotated[Outcome, Resolve(_ask_reviewer_revoke)],
    confirm: ConfirmArg = False,
    workspace_id: WorkspaceArg = None,
) -> TeamActionResult:
    """Revoke a pending reviewer invitation for one post; asks the user first."""
    st = state(ctx)
    how = require(approval, confirm, action="revoke the reviewer invitation")
    ok = await team.revoke_post_reviewer_invitation(st.client, post_id, invitation_id, workspace_id)
    return TeamActionResult(
        id=invitation_id, action="revoke_reviewer_invitation", ok=ok, confirmation=how, sandbox=st.sandbox
    )


async def _ask_reviewer_remove(ctx: Context[Any, Any], post_id: str, user_id: str) -> Question:
    return ask(ctx, f"Remove reviewer {user_id} from post {post_id}? They lose access to it.")


@TOOLS.tool("destructive", "Remove a post reviewer", routes=("reviewer_remove",))
async def remove_post_reviewer(
    ctx: Context[Any, Any],
    post_id: PostIdArg,
    user_id: UserArg,
    approval: Annotated[Outcome, Resolve(_ask_reviewer_remove)],
    confirm: ConfirmArg = False,
    workspace_id: WorkspaceArg = None,
) -> TeamActionResult:
    """Take one reviewer's access to a post away; asks the user first."""
    st = state(ctx)
    how = require(approval, confirm, action="remove the reviewer")
    ok = await team.remove_post_reviewer(st.client, post_id, user_id, workspace_id)
    return TeamActionResult(id=user_id, action="remove_reviewer", ok=ok, confirmation=how, sandbox=st.sandbox)


# --- client review (the key owner as reviewer) ---------------------------------------------------


@TOOLS.tool("read", "List client reviews", routes=("client_reviews",))
async def list_client_reviews(ctx: Context[Any, Any], workspace_id: WorkspaceArg = None) -> PostListResult:
    """Posts this key's owner was asked to review. Next: get_client_review."""
    st = state(ctx)
    found = await approvals.list_client_reviews(st.client, workspace_id)
    posts = [PostSummary.of(p) for p in found.items]
    return PostListResult(posts=posts, unverified=found.unverified, sandbox=st.sandbox)


@TOOLS.tool("read", "Get a client review", routes=("client_review_get",))
async def get_client_review(
    ctx: Context[Any, Any], post_id: PostIdArg, workspace_id: WorkspaceArg = None
) -> PostResult:
    """One assigned review: the revision to judge, its version, suggestions and feedback. Read before acting."""
    st = state(ctx)
    post: ApprovalPost = await approvals.get_client_review(st.client, post_id, workspace_id)
    return PostResult(post=post, next_step=next_step(post.status, review=True), sandbox=st.sandbox)


@TOOLS.tool("write", "Suggest a caption edit (reviewer)", routes=("client_suggestion",))
async def create_client_suggestion(
    ctx: Context[Any, Any],
    post_id: PostIdArg,
    expected_revision_id: RevisionArg,
    expected_version: VersionArg,
    suggestion: SelectionIn,
    workspace_id: WorkspaceArg = None,
) -> ActionResult:
    """As reviewer, propose replacing part of one target's caption."""
    return await guarded(
        ctx, "client_suggestion", "suggest", post_id, expected_revision_id, expected_version, workspace_id,
        change=Change(suggestion=suggestion_input(suggestion)), review=True,
    )  # fmt: skip


@TOOLS.tool("write", "Comment on a client review", routes=("client_comment",))
async def comment_on_client_review(
    ctx: Context[Any, Any],
    post_id: PostIdArg,
    expected_revision_id: RevisionArg,
    expected_version: VersionArg,
    comment: CommentArg,
    workspace_id: WorkspaceArg = None,
) -> ActionResult:
    """As reviewer, add feedback on the revision under review."""
    return await guarded(
        ctx, "client_comment", "comment", post_id, expected_revision_id, expected_version, workspace_id,
        change=Change(comment=comment), review=True,
    )  # fmt: skip


@TOOLS.tool("write", "Request changes (reviewer)", routes=("client_request_changes",))
async def request_client_changes(
    ctx: Context[Any, Any],
    post_id: PostIdArg,
    expected_revision_id: RevisionArg,
    expected_version: VersionArg,
    comment: Annotated[str, Field(description="What must change (required).", min_length=1, max_length=5000)],
    workspace_id: WorkspaceArg = None,
) -> ActionResult:
    """As reviewer, send the revision back with the changes needed."""
    return await guarded(
        ctx, "client_request_changes", "request_changes", post_id, expected_revision_id, expected_version,
        workspace_id, change=Change(comment=comment), review=True,
    )  # fmt: skip


@TOOLS.tool("write", "Approve a client review", routes=("client_approve",))
async def approve_client_review(
    ctx: Context[Any, Any],
    post_id: PostIdArg,
    expected_revision_id: RevisionArg,
    expected_version: VersionArg,
    workspace_id: WorkspaceArg = None,
) -> ActionResult:
    """As reviewer, approve exactly the revision you read."""
    return await guarded(
        ctx, "client_approve", "approve", post_id, expected_revision_id, expected_version, workspace_id, review=True
    )

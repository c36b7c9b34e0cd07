"""Team: workspace collaborators and per-post reviewers, with their invitations.

Answers (route map only; one assumed name per field): a member ``{userId, email, name, role, membershipType,
status}``; an invitation ``{id, email, role, membershipType, status, expiresAt}``; lists under ``members``
(``reviewers`` for a post) and ``invitations``; a written one under ``member`` or ``invitation``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, Field

from postqued.api.fields import items, obj, success, text
from postqued.api.shape import Checked

if TYPE_CHECKING:
    from postqued.client import PostQuedClient

Role = Literal["admin", "editor", "reviewer", "viewer"]
MembershipType = Literal["team", "external"]


class Member(BaseModel):
    user_id: str | None = None
    email: str | None = None
    name: str | None = None
    role: str | None = None
    membership_type: str | None = None
    status: str | None = None


class Invitation(BaseModel):
    id: str | None = None
    email: str | None = None
    role: str | None = None
    membership_type: str | None = None
    status: str | None = None
    expires_at: str | None = None


class People(Checked):
    members: list[Member] = Field(default_factory=list)
    invitations: list[Invitation] = Field(default_factory=list)


def parse_member(raw: Mapping[str, Any]) -> Member:
    return Member(
        user_id=text(raw, "userId"),
        email=text(raw, "email"),
        name=text(raw, "name"),
        role=text(raw, "role"),
        membership_type=text(raw, "membershipType"),
        status=text(raw, "status"),
    )


def parse_invitation(raw: Mapping[str, Any]) -> Invitation:
    return Invitation(
        id=text(raw, "id"),
        email=text(raw, "email"),
        role=text(raw, "role"),
        membership_type=text(raw, "membershipType"),
        status=text(raw, "status"),
        expires_at=text(raw, "expiresAt"),
    )


def _invitation(body: Any, **known: str | None) -> Invitation:
    """The invitation the answer shows; what the request said fills the fields it does not show."""
    found = parse_invitation(obj(body, "invitation"))
    return found.model_copy(update={k: v for k, v in known.items() if getattr(found, k) is None})


async def list_collaborators(client: PostQuedClient, workspace_id: str) -> People:
    answer = await client.call("collaborators", workspace_id)
    return People(
        members=[parse_member(m) for m in items(answer.body, "members")],
        invitations=[parse_invitation(i) for i in items(answer.body, "invitations")],
        unverified=answer.unverified,
    )


async def invite_collaborator(
    client: PostQuedClient, workspace_id: str, email: str, role: Role, membership_type: MembershipType
) -> Invitation:
    body = {"email": email, "role": role, "membershipType": membership_type}
    answer = await client.call("invitation_create", workspace_id, body=body)
    return _invitation(answer.body, email=email, role=role, membership_type=membership_type)


async def revoke_collaborator_invitation(client: PostQuedClient, workspace_id: str, invitation_id: str) -> bool:
    return success((await client.call("invitation_revoke", workspace_id, invitation_id)).body)


async def update_collaborator(
    client: PostQuedClient, workspace_id: str, user_id: str, role: Role | None, membership_type: MembershipType | None
) -> Member:
    body = {k: v for k, v in (("role", role), ("membershipType", membership_type)) if v is not None}
    answer = await client.call("member_update", workspace_id, user_id, body=body)
    member = parse_member(obj(answer.body, "member"))
    known = {"user_id": user_id, "role": role, "membership_type": membership_type}
    return member.model_copy(update={k: v for k, v in known.items() if getattr(member, k) is None})


async def remove_collaborator(client: PostQuedClient, workspace_id: str, user_id: str) -> bool:
    return success((await client.call("member_remove", workspace_id, user_id)).body)


async def list_post_reviewers(client: PostQuedClient, post_id: str, workspace_id: str | None) -> People:
    answer = await client.call("post_reviewers", post_id, workspace_id=workspace_id)
    return People(
        members=[parse_member(m) for m in items(answer.body, "reviewers")],
        invitations=[parse_invitation(i) for i in items(answer.body, "invitations")],
        unverified=answer.unverified,
    )


async def invite_post_reviewer(
    client: PostQuedClient, post_id: str, email: str, workspace_id: str | None
) -> Invitation:
    answer = await client.call("reviewer_invite", post_id, body={"email": email}, workspace_id=workspace_id)
    return _invitation(answer.body, email=email)


async def revoke_post_reviewer_invitation(
    client: PostQuedClient, post_id: str, invitation_id: str, workspace_id: str | None
) -> bool:
    answer = await client.call("reviewer_invitation_revoke", post_id, invitation_id, workspace_id=workspace_id)
    return success(answer.body)


async def remove_post_reviewer(client: PostQuedClient, post_id: str, user_id: str, workspace_id: str | None) -> bool:
    return success((await client.call("reviewer_remove", post_id, user_id, workspace_id=workspace_id)).body)

"""The team: a post's reviewers and their invitations, workspace collaborators, invitations and members."""

from __future__ import annotations

import re
import uuid

from postqued.sandbox.common import ApiFail
from postqued.sandbox.handlers.approvals import find_post
from postqued.sandbox.http import Ctx, Handler, Reply, by_name, invalid, json_reply, text_field
from postqued.sandbox.records import InvitationRec, MemberRec

ROLES = ("admin", "editor", "reviewer", "viewer")
MEMBERSHIP_TYPES = ("team", "external")
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


async def post_reviewers(ctx: Ctx) -> Reply:
    post = find_post(ctx, ctx.workspace())
    return json_reply(
        {
            "reviewers": [
                {"userId": u.id, "email": u.email, "name": u.name, "role": "reviewer", "status": "active"}
                for u in post.reviewers.values()
            ],
            "invitations": [i.to_api() for i in post.reviewer_invitations.values()],
        }
    )


async def reviewer_invite(ctx: Ctx) -> Reply:
    post = find_post(ctx, ctx.workspace())
    email = text_field(ctx.json(), "email", limit=320).strip().lower()
    if not EMAIL.match(email):
        raise invalid("email", "is not an email address")
    if any(u.email == email for u in post.reviewers.values()):
        raise ApiFail(409, "ALREADY_REVIEWER", f"{email} already reviews this post")
    if any(i.email == email and i.status == "pending" for i in post.reviewer_invitations.values()):
        raise ApiFail(409, "ALREADY_INVITED", f"{email} already has a pending invitation")
    invitation = InvitationRec(str(uuid.uuid4()), email, "reviewer", "external", ctx.now())
    post.reviewer_invitations[invitation.id] = invitation
    return json_reply({"invitation": invitation.to_api()}, 201)


async def reviewer_invitation_revoke(ctx: Ctx) -> Reply:
    post = find_post(ctx, ctx.workspace())
    return _revoke(ctx, post.reviewer_invitations.get(ctx.params["sub"]))


async def reviewer_remove(ctx: Ctx) -> Reply:
    post = find_post(ctx, ctx.workspace())
    if post.reviewers.pop(ctx.params["sub"], None) is None:
        raise ApiFail(404, "NOT_FOUND", "Reviewer not found on this post")
    return json_reply({"success": True})


def _revoke(ctx: Ctx, invitation: InvitationRec | None) -> Reply:
    if invitation is None:
        raise ApiFail(404, "NOT_FOUND", "Invitation not found")
    if invitation.status != "pending":
        raise ApiFail(409, "INVALID_STATE", f"The invitation is already {invitation.status}")
    invitation.status = "revoked"
    return json_reply({"success": True, "invitation": invitation.to_api()})


# -- workspace collaborators ----------------------------------------------------------------------------------


async def collaborators(ctx: Ctx) -> Reply:
    workspace = ctx.path_workspace()
    members = ctx.world.members_of(workspace.id)
    invitations = ctx.world.invitations.get(workspace.id, {})
    return json_reply(
        {
            "members": [m.to_api() for m in members.values()],
            "invitations": [i.to_api() for i in invitations.values()],
        }
    )


async def invitation_create(ctx: Ctx) -> Reply:
    workspace = ctx.path_workspace()
    body = ctx.json()
    email = text_field(body, "email", limit=320).strip().lower()
    if not EMAIL.match(email):
        raise invalid("email", "is not an email address")
    role, kind = body.get("role"), body.get("membershipType")
    if role not in ROLES:
        raise invalid("role", f"must be one of {', '.join(ROLES)}")
    if kind not in MEMBERSHIP_TYPES:
        raise invalid("membershipType", "must be team or external")
    members = ctx.world.members_of(workspace.id)
    if any(m.user.email == email and m.status == "active" for m in members.values()):
        raise ApiFail(409, "ALREADY_MEMBER", f"{email} is already a member of this workspace")
    invitations = ctx.world.invitations.setdefault(workspace.id, {})
    if any(i.email == email and i.status == "pending" for i in invitations.values()):
        raise ApiFail(409, "ALREADY_INVITED", f"{email} already has a pending invitation")
    invitation = InvitationRec(str(uuid.uuid4()), email, str(role), str(kind), ctx.now())
    invitations[invitation.id] = invitation
    return json_reply({"invitation": invitation.to_api()}, 201)


async def invitation_revoke(ctx: Ctx) -> Reply:
    workspace = ctx.path_workspace()
    return _revoke(ctx, ctx.world.invitations.get(workspace.id, {}).get(ctx.params["sub"]))


def _member(ctx: Ctx) -> MemberRec:
    workspace = ctx.path_workspace()
    member = ctx.world.members_of(workspace.id).get(ctx.params["sub"])
    if member is None or member.status != "active":
        raise ApiFail(404, "NOT_FOUND", "Member not found")
    if member.user.id == ctx.world.owner.id:
        raise ApiFail(403, "FORBIDDEN", "An API key cannot change its own owner's access")
    return member


async def member_update(ctx: Ctx) -> Reply:
    member = _member(ctx)
    body = ctx.json()
    role, kind = body.get("role"), body.get("membershipType")
    if role is None and kind is None:
        raise ApiFail(400, "EMPTY_UPDATE", "Nothing to update: give role and/or membershipType")
    if role is not None and role not in ROLES:
        raise invalid("role", f"must be one of {', '.join(ROLES)}")
    if kind is not None and kind not in MEMBERSHIP_TYPES:
        raise invalid("membershipType", "must be team or external")
    member.role = str(role or member.role)
    member.membership_type = str(kind or member.membership_type)
    return json_reply({"member": member.to_api()})


async def member_remove(ctx: Ctx) -> Reply:
    _member(ctx).status = "suspended"
    return json_reply({"success": True})


HANDLERS: dict[str, Handler] = by_name(
    post_reviewers,
    reviewer_invite,
    reviewer_invitation_revoke,
    reviewer_remove,
    collaborators,
    invitation_create,
    invitation_revoke,
    member_update,
    member_remove,
)

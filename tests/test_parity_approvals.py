"""Approvals, team and client review through a real in-memory MCP client against the sandbox (both handshakes).

The concurrency rule: every mutation names the revision and version it read; a stale pair is refused with
REVISION_CONFLICT (HTTP 409) and a next step that says to re-read, and nothing is retried. Tools that reach
another person, take access away or publish ask the user (elicitation) or need confirm=true.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Literal

import mcp.types as mt
import pytest
from mcp import Client

from postqued.clock import ManualClock
from postqued.sandbox import Sandbox
from postqued.sandbox.common import stable_id
from postqued.settings import Settings
from tests.conftest import make_client
from tests.mcpkit import all_settings, call, call_error, sent

FOREIGN_WS = "0e9f4d4a-1111-4222-8333-944445555666"  # a well-formed workspace id this key cannot see

SEEDED_POST = stable_id("approval/spring-teaser")
CAPTION = "Hello world, launch on Friday #sandbox"


@pytest.fixture
async def full(settings: Settings, sandbox: Sandbox, clock: ManualClock, mode: str) -> AsyncIterator[Client]:
    async with make_client(all_settings(settings), sandbox, clock, mode=mode) as client:
        yield client


@dataclass
class Person:
    """An elicitation callback answering like the user, remembering each question."""

    action: Literal["accept", "decline", "cancel"] = "accept"
    yes: bool = True
    asked: list[str] = field(default_factory=list)

    async def __call__(self, context: Any, params: mt.ElicitRequestParams) -> mt.ElicitResult:
        self.asked.append(params.message)
        return mt.ElicitResult(action=self.action, content={"confirm": self.yes} if self.action == "accept" else None)


def tiktok_target(sandbox: Sandbox, caption: str = CAPTION) -> dict[str, Any]:
    return {
        "platform": "tiktok",
        "account_id": sandbox.tiktok_public_id,
        "caption": caption,
        "options": {"privacy_level": "PUBLIC_TO_EVERYONE"},
    }


async def new_post(client: Client, sandbox: Sandbox, caption: str = CAPTION) -> dict[str, Any]:
    made = await call(client, "create_approval_post", title="Launch", targets=[tiktok_target(sandbox, caption)])
    assert made["status"] == "draft" and made["version"] == 1 and made["current_revision_id"]
    return made


def guard(state: dict[str, Any]) -> dict[str, Any]:
    return {
        "post_id": state["post_id"],
        "expected_revision_id": state["current_revision_id"],
        "expected_version": state["version"],
    }


def suggestion(start: int, end: int, replacement: str, caption: str = CAPTION) -> dict[str, Any]:
    return {
        "target_index": 0,
        "platform": "tiktok",
        "selection_start": start,
        "selection_end": end,
        "original_text": caption[start:end],
        "replacement_text": replacement,
    }


# --- the whole approval flow ---------------------------------------------------------------------


async def test_approval_flow_to_a_scheduled_publish(full: Client, sandbox: Sandbox, clock: ManualClock) -> None:
    listed = await call(full, "list_approval_posts")
    assert [p["id"] for p in listed["posts"]] == [SEEDED_POST] and listed["posts"][0]["status"] == "in_review"

    made = await new_post(full, sandbox)
    got = await call(full, "get_approval_post", post_id=made["post_id"])
    post = got["post"]
    assert post["revision"]["targets"][0]["caption"] == CAPTION and post["revision"]["number"] == 1
    assert post["revision"]["targets"][0]["options"] == {"privacyLevel": "PUBLIC_TO_EVERYONE"}
    assert "submit_for_approval" in got["next_step"]

    state = await call(full, "create_post_suggestion", **guard(made), suggestion=suggestion(0, 5, "Hi"))
    assert state["version"] == 2 and state["current_revision_id"] == made["current_revision_id"]
    open_one = (await call(full, "get_approval_post", post_id=made["post_id"]))["post"]["suggestions"][0]
    assert (open_one["status"], open_one["original_text"], open_one["replacement_text"]) == ("open", "Hello", "Hi")
    state = await call(full, "accept_post_suggestion", **guard(state), suggestion_id=open_one["id"])
    assert state["version"] == 3 and state["current_revision_id"] != made["current_revision_id"]
    revised = (await call(full, "get_approval_post", post_id=made["post_id"]))["post"]
    assert revised["revision"]["targets"][0]["caption"] == "Hi" + CAPTION[5:] and revised["revision"]["number"] == 2

    caption = "Hi" + CAPTION[5:]
    state = await call(full, "create_post_suggestion", **guard(state), suggestion=suggestion(3, 8, "earth", caption))
    second = [s for s in (await call(full, "get_approval_post", post_id=made["post_id"]))["post"]["suggestions"]]
    state = await call(full, "decline_post_suggestion", **guard(state), suggestion_id=second[-1]["id"])
    assert (await call(full, "get_approval_post", post_id=made["post_id"]))["post"]["suggestions"][-1][
        "status"
    ] == "declined"

    state = await call(full, "comment_on_approval", **guard(state), comment="Looks good to me")
    state = await call(full, "submit_for_approval", **guard(state))
    assert state["status"] == "in_review" and "approve_post" in state["next_step"]
    state = await call(full, "request_post_changes", **guard(state), comment="Add the date")
    assert state["status"] == "changes_requested"
    state = await call(
        full, "create_post_revision", **guard(state), title="Launch",
        targets=[tiktok_target(sandbox, "Hi world, launch on Friday 5 Dec #sandbox")],
    )  # fmt: skip
    assert state["status"] == "draft"
    state = await call(full, "submit_for_approval", **guard(state))
    state = await call(full, "approve_post", **guard(state))
    assert state["status"] == "approved" and "schedule_approved_post" in state["next_step"]

    feedback = (await call(full, "get_approval_post", post_id=made["post_id"]))["post"]["feedback"]
    assert [f["kind"] for f in feedback] == ["comment", "submitted", "changes_requested", "submitted", "approved"]
    assert feedback[2]["text"] == "Add the date"

    when = (clock.now() + timedelta(days=1)).isoformat()
    scheduled = await call(full, "schedule_approved_post", **guard(state), dispatch_at=when, confirm=True)
    assert scheduled["status"] == "scheduled" and scheduled["confirmation"] == "confirm=true"
    publish_id = scheduled["delivery"]["publishId"]
    status = await call(full, "get_publish_status", publish_id=publish_id)
    assert status["targets"][0]["status"] == "scheduled"
    assert status["targets"][0]["account_id"] == sandbox.tiktok_public_id


async def test_publish_approved_post_asks_the_user(
    settings: Settings, sandbox: Sandbox, clock: ManualClock, mode: str
) -> None:
    person = Person()
    async with make_client(all_settings(settings), sandbox, clock, mode=mode, elicitation_callback=person) as client:
        state = await new_post(client, sandbox)
        state = await call(client, "submit_for_approval", **guard(state))
        state = await call(client, "approve_post", **guard(state))
        assert person.asked == []  # approving asks nothing; publishing does
        person.yes = False
        declined = await call_error(client, "publish_approved_post", **guard(state), confirm=True)
        assert "CONFIRMATION_DECLINED" in declined and sent(sandbox, "post_publish") == 0
        assert len(person.asked) == 1 and "publicly now" in person.asked[0] and state["post_id"] in person.asked[0]
        person.yes = True
        published = await call(client, "publish_approved_post", **guard(state))
        assert published["status"] == "published" and published["confirmation"] == "approved by the user"
        clock.advance(60)
        status = await call(client, "get_publish_status", publish_id=published["delivery"]["publishId"])
        assert status["status"] == "completed" and status["targets"][0]["status"] == "published"


# --- concurrency ---------------------------------------------------------------------------------


async def test_a_stale_version_is_a_revision_conflict_never_retried(full: Client, sandbox: Sandbox) -> None:
    state = await new_post(full, sandbox)
    state = await call(full, "submit_for_approval", **guard(state))
    mine = dict(state)
    # someone else comments in between: the version moves on
    await call(full, "comment_on_approval", **guard(state), comment="One more thing")
    error = await call_error(full, "approve_post", **guard(mine))
    assert "REVISION_CONFLICT (HTTP 409): the post changed since you read it" in error
    assert "Next step: call get_approval_post and decide again" in error and "never retry blindly" in error
    assert sent(sandbox, "post_approve") == 1  # refused once, not retried
    fresh = (await call(full, "get_approval_post", post_id=state["post_id"]))["post"]
    assert fresh["status"] == "in_review" and fresh["version"] == mine["version"] + 1
    approved = await call(
        full, "approve_post", post_id=state["post_id"], expected_revision_id=fresh["current_revision_id"],
        expected_version=fresh["version"],
    )  # fmt: skip
    assert approved["status"] == "approved"


async def test_a_stale_revision_is_a_conflict_too(full: Client, sandbox: Sandbox) -> None:
    state = await new_post(full, sandbox)
    stale = {**guard(state), "expected_revision_id": "some-older-revision"}
    error = await call_error(full, "submit_for_approval", **stale)
    assert "REVISION_CONFLICT (HTTP 409)" in error
    revision_error = await call_error(
        full, "create_post_revision", **{**guard(state), "expected_version": 7}, title="T",
        targets=[tiktok_target(sandbox)],
    )  # fmt: skip
    assert "REVISION_CONFLICT (HTTP 409)" in revision_error


async def test_a_wrong_status_is_a_state_error(full: Client, sandbox: Sandbox) -> None:
    state = await new_post(full, sandbox)
    error = await call_error(full, "approve_post", **guard(state))
    assert "INVALID_STATE (HTTP 409)" in error and "get_approval_post" in error
    changes = await call_error(full, "request_post_changes", **guard(state), comment="why")
    assert "INVALID_STATE (HTTP 409)" in changes
    state = await call(full, "submit_for_approval", **guard(state))
    assert "INVALID_STATE" in await call_error(full, "submit_for_approval", **guard(state))
    assert "INVALID_STATE" in await call_error(full, "publish_approved_post", **guard(state), confirm=True)


async def test_suggestion_errors(full: Client, sandbox: Sandbox) -> None:
    state = await new_post(full, sandbox)
    wrong_length = {**suggestion(0, 5, "Hi"), "original_text": "Hell"}
    error = await call_error(full, "create_post_suggestion", **guard(state), suggestion=wrong_length)
    assert "INVALID_SELECTION" in error and sent(sandbox, "post_suggestion") == 0
    mismatch = {**suggestion(0, 5, "Hi"), "original_text": "Jello"}
    assert "VALIDATION_ERROR (HTTP 400)" in await call_error(
        full, "create_post_suggestion", **guard(state), suggestion=mismatch
    )
    state = await call(full, "create_post_suggestion", **guard(state), suggestion=suggestion(0, 5, "Hi"))
    first = (await call(full, "get_approval_post", post_id=state["post_id"]))["post"]["suggestions"][0]["id"]
    state = await call(full, "create_post_suggestion", **guard(state), suggestion=suggestion(6, 11, "earth"))
    second = (await call(full, "get_approval_post", post_id=state["post_id"]))["post"]["suggestions"][1]["id"]
    state = await call(full, "accept_post_suggestion", **guard(state), suggestion_id=first)
    stale = await call_error(full, "accept_post_suggestion", **guard(state), suggestion_id=second)
    assert "REVISION_CONFLICT (HTTP 409)" in stale  # made on the revision before
    assert "INVALID_STATE" in await call_error(full, "decline_post_suggestion", **guard(state), suggestion_id=first)
    unknown = await call_error(full, "decline_post_suggestion", **guard(state), suggestion_id="nope")
    assert "NOT_FOUND (HTTP 404)" in unknown


async def test_approval_input_errors(full: Client, sandbox: Sandbox, clock: ManualClock) -> None:
    wrong = {**tiktok_target(sandbox), "account_id": sandbox.instagram_id}
    error = await call_error(full, "create_approval_post", title="X", targets=[wrong])
    assert "VALIDATION_ERROR (HTTP 400)" in error and "accountId" in error
    typo = {**tiktok_target(sandbox), "options": {"privacy": "SELF_ONLY"}}
    assert "INVALID_OPTIONS" in await call_error(full, "create_approval_post", title="X", targets=[typo])
    assert "NOT_FOUND (HTTP 404)" in await call_error(full, "get_approval_post", post_id="missing-post")
    assert "FORBIDDEN (HTTP 403)" in await call_error(full, "list_approval_posts", workspace_id=FOREIGN_WS)
    state = await new_post(full, sandbox)
    past = (clock.now() - timedelta(hours=1)).isoformat()
    error = await call_error(full, "schedule_approved_post", **guard(state), dispatch_at=past, confirm=True)
    assert "INVALID_DISPATCH_AT" in error and sent(sandbox, "post_schedule") == 0
    later = (clock.now() + timedelta(hours=1)).isoformat()
    assert "CONFIRMATION_REQUIRED" in await call_error(
        full, "schedule_approved_post", **guard(state), dispatch_at=later
    )
    assert "INVALID_STATE" in await call_error(
        full, "schedule_approved_post", **guard(state), dispatch_at=later, confirm=True
    )
    error = await call_error(full, "comment_on_approval", **{**guard(state), "expected_version": 0}, comment="x")
    assert "REVISION_CONFLICT" in error


# --- team: collaborators -------------------------------------------------------------------------


async def test_collaborators(full: Client, sandbox: Sandbox) -> None:
    people = await call(full, "list_collaborators")
    by_email = {m["email"]: m for m in people["members"]}
    assert set(by_email) == {"owner@sandbox.invalid", "editor@sandbox.invalid", "client@sandbox.invalid"}
    assert by_email["client@sandbox.invalid"]["membership_type"] == "external" and people["invitations"] == []
    editor = by_email["editor@sandbox.invalid"]["user_id"]

    args = {"email": "new@sandbox.invalid", "role": "editor", "membership_type": "team"}
    assert "CONFIRMATION_REQUIRED" in await call_error(full, "invite_collaborator", **args)
    assert sent(sandbox, "invitation_create") == 0
    invited = await call(full, "invite_collaborator", **args, confirm=True)
    invitation = invited["invitation"]
    assert (invitation["status"], invitation["role"], invitation["email"]) == ("pending", "editor", args["email"])
    duplicate = await call_error(full, "invite_collaborator", **args, confirm=True)
    assert "ALREADY_INVITED (HTTP 409)" in duplicate
    member = await call_error(full, "invite_collaborator", **{**args, "email": "editor@sandbox.invalid"}, confirm=True)
    assert "ALREADY_MEMBER (HTTP 409)" in member

    assert "CONFIRMATION_REQUIRED" in await call_error(
        full, "revoke_collaborator_invitation", invitation_id=invitation["id"]
    )
    revoked = await call(full, "revoke_collaborator_invitation", invitation_id=invitation["id"], confirm=True)
    assert revoked["ok"] is True
    again = await call_error(full, "revoke_collaborator_invitation", invitation_id=invitation["id"], confirm=True)
    assert "INVALID_STATE (HTTP 409)" in again

    changed = await call(full, "update_collaborator", user_id=editor, role="viewer", confirm=True)
    assert changed["member"]["role"] == "viewer" and changed["member"]["membership_type"] == "team"
    assert "EMPTY_UPDATE" in await call_error(full, "update_collaborator", user_id=editor, confirm=True)
    owner = by_email["owner@sandbox.invalid"]["user_id"]
    own = await call_error(full, "update_collaborator", user_id=owner, role="viewer", confirm=True)
    assert "FORBIDDEN (HTTP 403)" in own

    assert "CONFIRMATION_REQUIRED" in await call_error(full, "remove_collaborator", user_id=editor)
    removed = await call(full, "remove_collaborator", user_id=editor, confirm=True)
    assert removed["ok"] is True
    after = {m["user_id"]: m for m in (await call(full, "list_collaborators"))["members"]}
    assert after[editor]["status"] == "suspended"
    gone = await call_error(full, "remove_collaborator", user_id=editor, confirm=True)
    assert "NOT_FOUND (HTTP 404)" in gone
    assert "FORBIDDEN (HTTP 403)" in await call_error(full, "list_collaborators", workspace_id=FOREIGN_WS)


async def test_an_elicited_invitation_and_a_declined_removal(
    settings: Settings, sandbox: Sandbox, clock: ManualClock, mode: str
) -> None:
    person = Person()
    async with make_client(all_settings(settings), sandbox, clock, mode=mode, elicitation_callback=person) as client:
        invited = await call(
            client, "invite_collaborator", email="pat@sandbox.invalid", role="reviewer", membership_type="external",
            confirm=True,
        )  # fmt: skip
        assert invited["confirmation"] == "approved by the user"  # confirm=true did not skip the question
        assert person.asked == ['Email a workspace invitation to "pat@sandbox.invalid" as reviewer (external)?']
        person.action = "decline"
        editor = sandbox.world.members[sandbox.workspace_id]
        user = next(uid for uid, m in editor.items() if m.role == "editor")
        error = await call_error(client, "remove_collaborator", user_id=user)
        assert "CONFIRMATION_DECLINED" in error and sent(sandbox, "member_remove") == 0
        assert len(person.asked) == 2 and user in person.asked[1]


async def test_no_question_for_a_call_that_cannot_happen(
    settings: Settings, sandbox: Sandbox, clock: ManualClock, mode: str
) -> None:
    person = Person()
    async with make_client(all_settings(settings), sandbox, clock, mode=mode, elicitation_callback=person) as client:
        members = sandbox.world.members[sandbox.workspace_id]
        editor = next(uid for uid, m in members.items() if m.role == "editor")
        assert "EMPTY_UPDATE" in await call_error(client, "update_collaborator", user_id=editor)
        state = await new_post(client, sandbox)
        past = (clock.now() - timedelta(minutes=5)).isoformat()
        error = await call_error(client, "schedule_approved_post", **guard(state), dispatch_at=past)
        assert "INVALID_DISPATCH_AT" in error and person.asked == []
        changed = await call(client, "update_collaborator", user_id=editor, membership_type="external")
        assert changed["member"]["membership_type"] == "external"
        assert person.asked == [f"Change the workspace access of user {editor} to membership external?"]


async def test_confirm_never_asks_nothing(settings: Settings, sandbox: Sandbox, clock: ManualClock) -> None:
    person = Person()
    unattended = all_settings(settings, confirm="never")
    async with make_client(unattended, sandbox, clock, elicitation_callback=person) as client:
        item = (await call(client, "list_engagement"))["items"][0]
        reply = await call(
            client, "reply_to_comment", target_id=item["target_id"], comment_id=item["comments"][0]["id"], text="Ta"
        )
        assert reply["confirmation"] == "not required" and person.asked == []


# --- team: post reviewers ------------------------------------------------------------------------


async def test_post_reviewers(full: Client, sandbox: Sandbox) -> None:
    listed = await call(full, "list_post_reviewers", post_id=SEEDED_POST)
    assert {m["email"] for m in listed["members"]} == {"owner@sandbox.invalid", "client@sandbox.invalid"}
    client_id = next(m["user_id"] for m in listed["members"] if m["email"] == "client@sandbox.invalid")

    assert "CONFIRMATION_REQUIRED" in await call_error(
        full, "invite_post_reviewer", post_id=SEEDED_POST, email="boss@client.invalid"
    )
    invited = await call(full, "invite_post_reviewer", post_id=SEEDED_POST, email="boss@client.invalid", confirm=True)
    assert invited["invitation"]["status"] == "pending" and invited["invitation"]["role"] == "reviewer"
    twice = await call_error(
        full, "invite_post_reviewer", post_id=SEEDED_POST, email="client@sandbox.invalid", confirm=True
    )
    assert "ALREADY_REVIEWER (HTTP 409)" in twice
    bad = await full.call_tool("invite_post_reviewer", {"post_id": SEEDED_POST, "email": "not an email"})
    assert bad.is_error and sent(sandbox, "reviewer_invite") == 2

    invitation_id = invited["invitation"]["id"]
    assert "CONFIRMATION_REQUIRED" in await call_error(
        full, "revoke_post_reviewer_invitation", post_id=SEEDED_POST, invitation_id=invitation_id
    )
    revoked = await call(
        full, "revoke_post_reviewer_invitation", post_id=SEEDED_POST, invitation_id=invitation_id, confirm=True
    )
    assert revoked["ok"] is True
    unknown = await call_error(
        full, "revoke_post_reviewer_invitation", post_id=SEEDED_POST, invitation_id="nope", confirm=True
    )
    assert "NOT_FOUND (HTTP 404)" in unknown

    assert "CONFIRMATION_REQUIRED" in await call_error(
        full, "remove_post_reviewer", post_id=SEEDED_POST, user_id=client_id
    )
    removed = await call(full, "remove_post_reviewer", post_id=SEEDED_POST, user_id=client_id, confirm=True)
    assert removed["ok"] is True
    assert client_id not in {
        m["user_id"] for m in (await call(full, "list_post_reviewers", post_id=SEEDED_POST))["members"]
    }
    again = await call_error(full, "remove_post_reviewer", post_id=SEEDED_POST, user_id=client_id, confirm=True)
    assert "NOT_FOUND (HTTP 404)" in again
    assert "NOT_FOUND (HTTP 404)" in await call_error(full, "list_post_reviewers", post_id="missing-post")


# --- team: client review -------------------------------------------------------------------------


async def review_state(client: Client) -> dict[str, Any]:
    review = (await call(client, "get_client_review", post_id=SEEDED_POST))["post"]
    return {"post_id": review["id"], "current_revision_id": review["current_revision_id"], "version": review["version"]}


async def test_client_review(full: Client, sandbox: Sandbox) -> None:
    listed = await call(full, "list_client_reviews")
    assert [p["id"] for p in listed["posts"]] == [SEEDED_POST]
    got = await call(full, "get_client_review", post_id=SEEDED_POST)
    assert got["post"]["status"] == "in_review" and "approve_client_review" in got["next_step"]
    caption = got["post"]["revision"]["targets"][0]["caption"]

    state = await review_state(full)
    edit = suggestion(0, 6, "Summer", caption)
    suggested = await call(full, "create_client_suggestion", **guard(state), suggestion=edit)
    assert suggested["version"] == state["version"] + 1
    stale = await call_error(full, "comment_on_client_review", **guard(state), comment="Nice")
    assert "REVISION_CONFLICT (HTTP 409)" in stale and "call get_client_review and decide again" in stale
    commented = await call(full, "comment_on_client_review", **guard(suggested), comment="Nice")
    assert commented["status"] == "in_review"
    changes = await call(full, "request_client_changes", **guard(commented), comment="Use the summer wording")
    assert changes["status"] == "changes_requested" and "Wait for a new revision" in changes["next_step"]
    error = await call_error(full, "approve_client_review", **guard(changes))
    assert "INVALID_STATE (HTTP 409)" in error
    suggest_late = await call_error(full, "create_client_suggestion", **guard(changes), suggestion=edit)
    assert "INVALID_STATE" in suggest_late


async def test_client_approves_and_errors(full: Client, sandbox: Sandbox) -> None:
    state = await review_state(full)
    approved = await call(full, "approve_client_review", **guard(state))
    assert approved["status"] == "approved"
    post = await new_post(full, sandbox)  # the key's owner does not review this one
    missing = await call_error(full, "get_client_review", post_id=post["post_id"])
    assert "NOT_FOUND (HTTP 404)" in missing
    assert "NOT_FOUND" in await call_error(full, "request_client_changes", **guard(post), comment="x")
    assert "FORBIDDEN (HTTP 403)" in await call_error(full, "list_client_reviews", workspace_id=FOREIGN_WS)

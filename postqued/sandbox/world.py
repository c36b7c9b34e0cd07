"""The simulator's world: everything it remembers apart from the stored bytes, as plain fields of one object.

Nothing here knows about HTTP. Target states are never stored: they are computed from the clock whenever
they are read (see ``World.target_status``), so advancing a ``ManualClock`` drives the whole state machine.
The one thing decided eagerly is a target's provider outcome, fixed when it is dispatched (``World.advance``),
because TikTok's posting caps depend on the order in which targets reach the provider. ``seed.new_world``
builds the seeded tenant.
"""

from __future__ import annotations

import asyncio
import itertools
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from postqued.clock import Clock
from postqued.sandbox.common import CAP_WINDOW, DIRECT_POST_CAP, PENDING_DRAFT_CAP, PROVIDER_REASONS, ApiFail, iso
from postqued.sandbox.records import (
    Account,
    ApprovalPostRec,
    CommentRec,
    ContentAsset,
    Dispatch,
    EngagementPost,
    IdempotencyRecord,
    InvitationRec,
    MemberRec,
    Organization,
    ParsedTarget,
    PublishRequest,
    Target,
    User,
    Workspace,
)


@dataclass
class World:
    """One simulated tenant. Built (and seeded) by ``seed.new_world``; handlers read and change these fields."""

    clock: Clock
    processing: timedelta  # how long a dispatched target stays "processing"
    moderation: timedelta  # the extra time a direct post takes to be "published"
    subscription_active: bool
    organization: Organization
    default_workspace: Workspace
    owner: User  # the API key's owner
    extra_workspace: Workspace | None = None
    workspaces: dict[str, Workspace] = field(default_factory=dict)
    accounts: dict[str, Account] = field(default_factory=dict)
    # publishing
    contents: dict[str, ContentAsset] = field(default_factory=dict)
    publish_requests: dict[str, PublishRequest] = field(default_factory=dict)
    targets: dict[str, Target] = field(default_factory=dict)
    idempotency: dict[tuple[str, str, str], IdempotencyRecord] = field(default_factory=dict)
    idempotency_locks: dict[tuple[int, str, str, str], asyncio.Lock] = field(default_factory=dict)
    forced: dict[str, list[tuple[str, str]]] = field(default_factory=dict)  # account id -> armed outcomes
    dispatch_log: dict[str, list[Dispatch]] = field(default_factory=dict)  # account id -> successful dispatches
    post_ids: Iterator[int] = field(default_factory=lambda: itertools.count(7_400_000_000_000_000_001))
    # team, approvals, engagement
    users: dict[str, User] = field(default_factory=dict)
    members: dict[str, dict[str, MemberRec]] = field(default_factory=dict)  # workspace id -> user id -> member
    invitations: dict[str, dict[str, InvitationRec]] = field(default_factory=dict)  # workspace id -> id -> inv.
    posts: dict[str, ApprovalPostRec] = field(default_factory=dict)
    comments: dict[str, list[CommentRec]] = field(default_factory=dict)  # engagement target id -> comments
    engagement_posts: dict[str, EngagementPost] = field(default_factory=dict)  # seeded published posts

    # -- lookups ------------------------------------------------------------------------------------------

    def accounts_in(self, workspace_id: str, platform: str | None = None) -> list[Account]:
        return [
            a
            for a in self.accounts.values()
            if a.workspace_id == workspace_id and (platform is None or a.platform == platform)
        ]

    def account_in(self, workspace_id: str, account_id: str) -> Account:
        account = self.accounts.get(account_id)
        if account is None or account.workspace_id != workspace_id:
            raise ApiFail(404, "NOT_FOUND", "Account not found")
        return account

    def content_in(self, workspace_id: str, content_id: str, *, ready_only: bool = True) -> ContentAsset:
        asset = self.contents.get(content_id)
        if asset is None or asset.workspace_id != workspace_id or asset.status == "deleted":
            raise ApiFail(404, "NOT_FOUND", "Content not found")
        if ready_only and asset.status != "ready":
            raise ApiFail(404, "NOT_FOUND", "Content not found")
        return asset

    def request_in(self, workspace_id: str, publish_id: str) -> PublishRequest:
        request = self.publish_requests.get(publish_id)
        if request is None or request.workspace_id != workspace_id or request.deleted_at is not None:
            raise ApiFail(404, "NOT_FOUND", "Publish request not found")
        return request

    def target_in(self, workspace_id: str, target_id: str) -> tuple[PublishRequest, Target]:
        target = self.targets.get(target_id)
        if target is not None:
            request = self.publish_requests[target.request_id]
            if request.workspace_id == workspace_id and request.deleted_at is None:
                return request, target
        raise ApiFail(404, "NOT_FOUND", "Target not found")

    # -- the state machine --------------------------------------------------------------------------------

    def advance(self) -> None:
        """Hand every due target to the simulated provider, in dispatch order, fixing its outcome."""
        now = self.clock.now()
        due = [
            t
            for r in self.publish_requests.values()
            for t in r.targets
            if t.dispatched_at is None and t.canceled_at is None and t.is_due(now)
        ]
        due.sort(key=lambda t: t.start_at)
        for target in due:
            self._dispatch(target)

    def _dispatch(self, target: Target) -> None:
        at = target.start_at
        target.dispatched_at = at
        account = self.accounts[target.account_id]
        forced = self.forced.get(account.id)
        log = self.dispatch_log.setdefault(account.id, [])
        if target.forced_failure is None and forced:
            target.forced_failure = forced.pop(0)[1]
        if target.forced_failure is not None:
            target.failure = target.forced_failure
        elif account.platform == "tiktok":
            recent = sum(1 for d in log if d.intent == target.intent and d.at > at - CAP_WINDOW)
            if target.intent == "publish" and recent >= DIRECT_POST_CAP:
                target.failure = "spam_risk_too_many_posts"
            elif target.intent == "draft" and recent >= PENDING_DRAFT_CAP:
                target.failure = "spam_risk_too_many_pending_share"
        if target.failure is None:
            log.append(Dispatch(at, target.intent))
            if target.intent == "publish":
                target.provider_post_id = str(next(self.post_ids))

    def force_outcome(self, account_id: str, status: str, reason: str) -> None:
        if account_id not in self.accounts:
            raise ValueError(f"unknown account {account_id!r}")
        if status != "failed":
            raise ValueError("only status='failed' can be forced; success is the default outcome")
        self.forced.setdefault(account_id, []).append((status, reason))

    def finished_at(self, target: Target) -> datetime | None:
        if target.dispatched_at is None:
            return None
        if target.failure is not None or target.intent == "draft":
            return target.dispatched_at + self.processing
        return target.dispatched_at + self.processing + self.moderation

    def target_status(self, target: Target, now: datetime) -> str:
        if target.canceled_at is not None:
            return "canceled"
        if target.dispatched_at is None:
            return "queued" if target.dispatch_at is None else "scheduled"
        finished = self.finished_at(target)
        assert finished is not None
        if now < finished:
            return "processing"
        if target.failure is not None:
            return "failed"
        return "sent" if target.intent == "draft" else "published"

    def request_status(self, request: PublishRequest, now: datetime) -> str:
        statuses = [self.target_status(t, now) for t in request.targets]
        terminal = {"sent", "published", "failed", "canceled"}
        if all(s in terminal for s in statuses):
            if all(s == "canceled" for s in statuses):
                return "canceled"
            failed = statuses.count("failed")
            succeeded = sum(1 for s in statuses if s in ("sent", "published"))
            if failed == 0:
                return "completed"  # mixed canceled + successful counts as completed
            return "failed" if succeeded == 0 else "partial_failed"
        if any(s not in ("queued", "scheduled", "canceled") for s in statuses):
            return "processing"
        return "pending"

    # -- rendering ----------------------------------------------------------------------------------------

    def render_target(self, target: Target, now: datetime) -> dict[str, Any]:
        status = self.target_status(target, now)
        error: dict[str, str] | None = None
        if status == "failed" and target.failure is not None:
            message = PROVIDER_REASONS.get(target.failure, f"The provider rejected the post ({target.failure}).")
            error = {"code": target.failure, "message": message}
        return {
            "id": target.id,
            "platform": target.platform,
            "accountId": target.account_id,
            "intent": target.intent,
            "status": status,
            "caption": target.caption,
            "dispatchAt": iso(target.dispatch_at),
            "publishedAt": iso(self.finished_at(target)) if status in ("sent", "published") else None,
            "providerPostId": target.provider_post_id if status == "published" else None,
            "error": error,
        }

    def render_request(self, request: PublishRequest, now: datetime) -> dict[str, Any]:
        return {
            "id": request.id,
            "status": self.request_status(request, now),
            "workspaceId": request.workspace_id,
            "contentIds": list(request.content_ids),
            "createdAt": iso(request.created_at),
            "targets": [self.render_target(t, now) for t in request.targets],
        }

    def render_created(self, request: PublishRequest, now: datetime) -> dict[str, Any]:
        """The answer to a live publish (v1 documents it; v2 uses the same shape)."""
        return {
            "publishId": request.id,
            "status": self.request_status(request, now),
            "targets": [
                {
                    "id": t.id,
                    "platform": t.platform,
                    "accountId": t.account_id,
                    "status": self.target_status(t, now),
                    "intent": t.intent,
                    "dispatchAt": iso(t.dispatch_at),
                }
                for t in request.targets
            ],
        }

    # -- publish operations -------------------------------------------------------------------------------

    def create_publish(
        self,
        *,
        workspace_id: str,
        api_version: str,
        content_ids: list[str],
        targets: list[ParsedTarget],
        idempotency_key: str | None,
        body: dict[str, Any],
    ) -> PublishRequest:
        now = self.clock.now()
        request_id = str(uuid.uuid4())
        request = PublishRequest(
            id=request_id,
            organization_id=self.organization.id,
            workspace_id=workspace_id,
            api_version=api_version,
            created_at=now,
            content_ids=content_ids,
            targets=[],
            idempotency_key=idempotency_key,
            body=body,
        )
        for parsed in targets:
            target = Target(
                id=str(uuid.uuid4()),
                request_id=request_id,
                platform=parsed.platform,
                account_id=parsed.account_id,
                intent=parsed.intent,
                caption=parsed.caption,
                options=parsed.options,
                dispatch_at=parsed.dispatch_at,
                queued_at=now,
            )
            forced = self.forced.get(parsed.account_id)
            if forced:  # an armed outcome goes to the next target created (or dispatched) for the account
                target.forced_failure = forced.pop(0)[1]
            request.targets.append(target)
            self.targets[target.id] = target
        self.publish_requests[request_id] = request
        return request

    def cancel_request(self, request: PublishRequest) -> list[str]:
        self.advance()
        now = self.clock.now()
        cancelable = [t for t in request.targets if self.target_status(t, now) in ("queued", "scheduled")]
        if not cancelable:
            raise ApiFail(409, "INVALID_STATE", "No target of this publish request can be canceled any more")
        for target in cancelable:
            target.canceled_at = now
        return [t.id for t in cancelable]

    def cancel_target(self, target: Target) -> None:
        self.advance()
        now = self.clock.now()
        status = self.target_status(target, now)
        if status not in ("queued", "scheduled"):
            raise ApiFail(409, "INVALID_STATE", f"Target is {status}; only queued or scheduled targets can be canceled")
        target.canceled_at = now

    def reschedule_target(self, target: Target, dispatch_at: datetime | None) -> None:
        self.advance()
        now = self.clock.now()
        status = self.target_status(target, now)
        if status not in ("queued", "scheduled"):
            raise ApiFail(
                409, "INVALID_STATE", f"Target is {status}; only queued or scheduled targets can be rescheduled"
            )
        target.dispatch_at = dispatch_at
        target.queued_at = now

    def delete_request(self, request: PublishRequest) -> None:
        """Soft delete; targets that have not reached the provider yet are canceled with it."""
        self.advance()
        now = self.clock.now()
        for target in request.targets:
            if target.dispatched_at is None and target.canceled_at is None:
                target.canceled_at = now
        request.deleted_at = now

    def members_of(self, workspace_id: str) -> dict[str, MemberRec]:
        """A workspace's members; one created later starts with the key's owner as its admin."""
        return self.members.setdefault(workspace_id, {self.owner.id: MemberRec(self.owner, "admin", "team")})

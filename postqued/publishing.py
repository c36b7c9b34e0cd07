"""Publishing, safely: local rules, dry run, plan freshness, journal-before-send, honest outcomes.

The MCP layer adds only what needs the protocol (asking the user, progress). Everything here is plain
async Python over ``PostQuedClient`` and ``Journal``; see design.md section 5 for the contract.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import anyio

from postqued.client import PostQuedClient
from postqued.clock import Clock
from postqued.digest import plan_digest
from postqued.errors import (
    JOURNAL_SAFE_STEP,
    APIError,
    JournalError,
    LocalError,
    NotFoundError,
    OutcomeUnknownError,
    PostQuedError,
    TransportError,
)
from postqued.journal import KEY_TTL, Journal, JournalEntry, PublishIntent
from postqued.models import ContentAsset, CreatorInfo, PlatformAccount, PublishRequest, PublishStatus
from postqued.rules import LiveFacts, check_live, check_static, refuse
from postqued.settings import Settings

log = logging.getLogger("postqued.publishing")

CREATOR_INFO_TTL = 60.0  # seconds: TikTok wants the latest values when the post is prepared


@dataclass(frozen=True)
class Plan:
    """A checked request, scoped to its workspace, with the facts it was checked against."""

    request: PublishRequest  # as it will be sent (workspace resolved, dryRun false)
    digest: str  # the plan_id: digest of the exact live body
    workspace_key: str  # the journal's workspace (v1 has one implicit workspace)
    accounts: dict[str, PlatformAccount]
    content: dict[str, ContentAsset | None]
    creator_info: dict[str, CreatorInfo]

    @property
    def body(self) -> dict[str, Any]:
        return self.request.wire()

    @property
    def direct(self) -> bool:
        return any(t.intent == "publish" for t in self.request.targets)

    def needs_confirmation(self, mode: str) -> bool:
        return mode == "all" or (mode == "direct" and self.direct)

    def summary(self) -> list[dict[str, Any]]:
        """Per target: what the user is asked to approve (no secrets)."""
        media = [
            (self.content.get(cid).filename if self.content.get(cid) else None) or cid  # type: ignore[union-attr]
            for cid in self.request.content_ids
        ]
        out: list[dict[str, Any]] = []
        for target in self.request.targets:
            account = self.accounts.get(target.account_id)
            out.append(
                {
                    "platform": target.platform,
                    "account_id": target.account_id,
                    "account_username": account.username if account else None,
                    "intent": target.intent,
                    "privacy_level": getattr(target.options, "privacy_level", None),
                    "caption": target.caption,
                    "dispatch_at": target.dispatch_at,
                    "media": media,
                }
            )
        return out


@dataclass
class LiveOutcome:
    status: PublishStatus
    intent: PublishIntent
    replayed: bool


@dataclass
class Publisher:
    client: PostQuedClient
    journal: Callable[[], Journal]
    clock: Clock
    settings: Settings
    _creator_cache: dict[str, tuple[float, CreatorInfo]] = field(default_factory=dict)

    # --- planning --------------------------------------------------------------------------------

    async def plan(self, request: PublishRequest) -> Plan:
        """Local rules first (no request at all), then the live facts, then the live rules."""
        issues = check_static(request, now=self.clock.now())
        if issues:
            raise refuse(issues)
        scoped = await self.client.scoped_request(request.model_copy(update={"dry_run": False}))
        accounts = {a.id: a for a in await self.client.list_accounts(workspace_id=scoped.workspace_id)}
        content = await self._content(scoped)
        creator = await self._creator_info(scoped, accounts)
        issues = check_live(scoped, LiveFacts(accounts=accounts, content=content, creator_info=creator))
        if issues:
            raise refuse(issues)
        return Plan(
            request=scoped,
            digest=plan_digest(scoped.wire()),
            workspace_key=scoped.workspace_id or "default",
            accounts=accounts,
            content=content,
            creator_info=creator,
        )

    async def _content(self, request: PublishRequest) -> dict[str, ContentAsset | None]:
        if not self.client.routes.get("content_get"):
            return {}  # v1 cannot read assets back

        async def one(content_id: str) -> ContentAsset | None:
            try:
                return await self.client.get_content(content_id, workspace_id=request.workspace_id)
            except NotFoundError:
                return None

        found = await asyncio.gather(*(one(cid) for cid in dict.fromkeys(request.content_ids)))
        return dict(zip(dict.fromkeys(request.content_ids), found, strict=True))

    async def _creator_info(
        self, request: PublishRequest, accounts: dict[str, PlatformAccount]
    ) -> dict[str, CreatorInfo]:
        if "creator_info" not in self.client.routes:
            return {}
        wanted = {  # only real TikTok accounts: another platform's account is refused by the rules instead
            t.account_id
            for t in request.targets
            if t.platform == "tiktok"
            and t.account_id in accounts
            and accounts[t.account_id].platform.strip().lower() == "tiktok"
        }
        out: dict[str, CreatorInfo] = {}
        for account_id in sorted(wanted):
            out[account_id] = await self.creator_info(account_id, workspace_id=request.workspace_id)
        return out

    async def creator_info(self, account_id: str, *, workspace_id: str | None = None) -> CreatorInfo:
        """Live creator info, cached for a minute (TikTok wants fresh values at posting time)."""
        now = self.clock.monotonic()
        cached = self._creator_cache.get(account_id)
        if cached and now - cached[0] < CREATOR_INFO_TTL:
            return cached[1]
        info = await self.client.get_creator_info(account_id, workspace_id=workspace_id)
        self._creator_cache[account_id] = (now, info)
        return info

    # --- dry run ---------------------------------------------------------------------------------

    async def dry_run(self, plan: Plan) -> Any:
        """The API's own validation (v2; v1 has none), then remember the plan as fresh."""
        answer: Any = None
        if self.client.api_version == "v2":
            try:
                answer = await self.client.dry_run(plan.request)
            except OutcomeUnknownError as exc:  # the client treats every POST /v2/publish as a publish
                raise TransportError(
                    "PostQued gave no usable answer to the dry run, so the request could not be checked; "
                    "a dry run never creates anything.",
                    code="DRY_RUN_FAILED",
                    status=exc.status,
                    next_step="Run the same dry run again shortly; nothing was published.",
                ) from None
        await self.journal().record_plan(plan.digest, plan.workspace_key, {"targets": _jsonable(plan.summary())})
        return answer

    async def require_fresh_plan(self, plan: Plan) -> None:
        if not await self.journal().plan_is_fresh(plan.digest, workspace_id=plan.workspace_key):
            raise LocalError(
                "No dry run of exactly this request passed in the last 30 minutes.",
                code="DRY_RUN_REQUIRED",
                next_step=(
                    "Call publish_content with the same arguments and dry_run=true, show the user the plan, "
                    "then repeat the call with dry_run=false."
                ),
            )

    async def already_sent(self, plan: Plan) -> bool:
        """True if this exact request already succeeded within 24 h (a live call would only replay it)."""
        entry = await self.journal().find_recent(plan.digest, plan.workspace_key)
        return entry is not None and entry.publish_id is not None

    # --- live ------------------------------------------------------------------------------------

    async def publish(self, plan: Plan, idempotency_key: str | None = None) -> LiveOutcome:
        """Journal the intent, send once (retries reuse key and bytes), journal the outcome."""
        journal = self.journal()
        await self._refuse_expired_unknown(journal, plan, idempotency_key)
        try:
            intent = await journal.begin_publish(
                plan.digest,
                plan.workspace_key,
                plan.body,
                _jsonable(plan.summary()),
                idempotency_key,
                self.client.api_version,
            )
        except JournalError as exc:
            return await self._replay_read_only(journal, plan, exc)
        if intent.replay and intent.publish_id:
            status = await self._status_or_stub(intent)
            return LiveOutcome(status=status, intent=intent, replayed=True)
        try:
            status = await self.client.publish(plan.request, intent.idempotency_key)
        except OutcomeUnknownError as exc:
            await journal.record_unknown(intent.idempotency_key, exc.message)
            raise
        except APIError as exc:
            await journal.record_failed(intent.idempotency_key, exc.code, exc.message)
            raise
        except PostQuedError as exc:  # never left the machine (e.g. local rate limit)
            await journal.record_failed(intent.idempotency_key, exc.code, exc.message)
            raise
        except BaseException:
            with anyio.CancelScope(shield=True):
                await journal.record_unknown(intent.idempotency_key, "interrupted while sending")
            raise
        try:
            await journal.record_accepted(
                intent.idempotency_key, status.id, status.status or "pending", _target_rows(status)
            )
        except JournalError as exc:  # the post exists: report it; a repeat still reuses the journaled key
            log.warning("publish %s accepted but not journaled: %s", status.id, exc.code)
        return LiveOutcome(status=status, intent=intent, replayed=status.replayed)

    async def _replay_read_only(self, journal: Journal, plan: Plan, exc: JournalError) -> LiveOutcome:
        """The intent could not be written (locked, read-only, full disk). A request already accepted is
        still recognised by a read and replayed; anything else is refused, with advice that cannot lead to a
        second post (a new, empty journal would forget the stored keys)."""
        try:
            entry = await journal.find_recent(plan.digest, plan.workspace_key)
        except JournalError:
            entry = None
        if entry is not None and entry.publish_id is not None:
            intent = PublishIntent.of(entry, replay=True, reused_key=False, key_overridden=False)
            return LiveOutcome(status=await self._status_or_stub(intent, record=False), intent=intent, replayed=True)
        earlier = ""
        if entry is not None:
            earlier = (
                f" An earlier attempt of this exact request (idempotency key {entry.idempotency_key}) is "
                f"'{entry.status}': it may already be posted."
            )
        raise JournalError(
            f"{exc.message} This request was not sent.{earlier}",
            code=exc.code,
            next_step=JOURNAL_SAFE_STEP,
        ) from exc

    async def _refuse_expired_unknown(self, journal: Journal, plan: Plan, idempotency_key: str | None) -> None:
        """An outcome still unknown after its key expired (24 h) cannot be settled by a replay any more: a
        new key could post twice, so only an explicit key (the user checked) sends it again."""
        try:
            latest = await journal.find_recent(plan.digest, plan.workspace_key, within=None)
        except JournalError:
            return  # begin_publish meets the same problem and answers it

        if (
            idempotency_key is None
            and latest is not None
            and latest.publish_id is None
            and latest.status in ("unknown", "sending")
            and self.clock.now() - latest.created_at >= KEY_TTL
        ):
            raise OutcomeUnknownError(
                f"This exact request was sent on {latest.created_at.isoformat()} and its outcome was never "
                "learned; its idempotency key has expired, so sending it again could post twice.",
                code="OUTCOME_UNKNOWN_EXPIRED",
                next_step="Check list_publish_requests (or the PostQued app) for that post. Only if it does not "
                "exist, repeat the call with a new idempotency_key (any new UUID) to send it again.",
            )

    async def _status_or_stub(self, intent: PublishIntent, *, record: bool = True) -> PublishStatus:
        assert intent.publish_id is not None
        try:
            if not record:
                return await self.client.get_publish(intent.publish_id, workspace_id=_ws(intent.workspace_id))
            return await self.read_status(intent.publish_id, workspace_id=_ws(intent.workspace_id))
        except PostQuedError:
            return PublishStatus(id=intent.publish_id, status=intent.remote_status, targets=[])

    # --- status ----------------------------------------------------------------------------------

    async def read_status(self, publish_id: str, *, workspace_id: str | None = None) -> PublishStatus:
        """Read status and record it in the journal (this resolves an ``unknown`` entry)."""
        status = await self.client.get_publish(publish_id, workspace_id=workspace_id)
        with contextlib.suppress(PostQuedError):  # a status read must not fail because the journal is unavailable
            journal = self.journal()
            rows = _target_rows(status)
            if await journal.record_status(status.id, status.status or "pending", rows, status.terminal) is None:
                await self._claim_unknown(journal, status, rows)
        return status

    @staticmethod
    async def _claim_unknown(journal: Journal, status: PublishStatus, rows: list[dict[str, Any]]) -> None:
        """Settle the one ``unknown`` entry (answer lost, so no publish id) that this request must be.

        Linked only when exactly one such entry has the same workspace, content ids and targets (platform,
        account, intent, caption, time) and was being sent when PostQued created the request; otherwise
        it stays ``unknown`` and repeating the same publish_content call (same key) settles it.
        """
        matches = [
            e
            for e in await journal.list_entries(limit=500, status="unknown")
            if e.publish_id is None and _same_request(e, status)
        ]
        if len(matches) == 1:
            await journal.record_accepted(matches[0].idempotency_key, status.id, status.status or "pending", rows)

    async def wait(
        self,
        publish_id: str,
        *,
        budget: float,
        workspace_id: str | None = None,
        on_poll: Callable[[PublishStatus, float], Awaitable[None]] | None = None,
    ) -> tuple[PublishStatus, bool, datetime | None]:
        """Poll with backoff until terminal or ``budget`` seconds: (status, timed_out, poll_after)."""
        start = self.clock.monotonic()
        delay = 1.0
        while True:
            status = await self.read_status(publish_id, workspace_id=workspace_id)
            elapsed = self.clock.monotonic() - start
            if on_poll is not None:
                await on_poll(status, elapsed)
            if status.terminal:
                return status, False, None
            remaining = budget - elapsed
            until = scheduled_until(status)
            if until is not None and until >= self.clock.now() + timedelta(seconds=remaining):
                return status, True, until  # nothing can change within the budget: say when to look again
            if remaining < 0.05:  # too little left to wait for: answer now rather than re-poll at once
                return status, True, self.clock.now() + timedelta(seconds=delay)
            await self.clock.sleep(min(delay, remaining))
            delay = min(delay * 1.6, 10.0)


def scheduled_until(status: PublishStatus) -> datetime | None:
    """When the next target goes out, if every unfinished target waits for its ``dispatch_at``; else None."""
    waiting = [t for t in status.targets if not t.terminal]
    if not waiting or any(t.status != "scheduled" or t.dispatch_at is None for t in waiting):
        return None
    return min(t.dispatch_at for t in waiting if t.dispatch_at is not None)


LINK_SKEW = timedelta(minutes=10)  # clocks of this machine and PostQued's may disagree this much


def _same_request(entry: JournalEntry, status: PublishStatus) -> bool:
    """Whether ``status`` (a request PostQued reports) shows exactly what ``entry`` sent."""
    body, extra = entry.body, status.model_extra or {}
    if status.created_at is None or extra.get("contentIds") != body.get("contentIds"):
        return False
    if extra.get("workspaceId") != body.get("workspaceId"):
        return False
    if not entry.created_at - LINK_SKEW <= status.created_at <= entry.updated_at + LINK_SKEW:
        return False
    sent = body.get("targets") or []
    if len(sent) != len(status.targets):
        return False
    for want, got in zip(sent, status.targets, strict=True):
        seen = (got.platform, got.account_id, got.intent, (got.model_extra or {}).get("caption"))
        if seen != (want.get("platform"), want.get("accountId"), want.get("intent"), want.get("caption")):
            return False
        at = _at(want)
        if (at is None) != (got.dispatch_at is None):
            return False
        if at is not None and got.dispatch_at is not None and abs(at - got.dispatch_at) > timedelta(seconds=1):
            return False
    return True


def _at(target: dict[str, Any]) -> datetime | None:
    raw = target.get("dispatchAt")
    if not isinstance(raw, str):
        return None
    try:
        return datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        return None


def _ws(workspace_key: str) -> str | None:
    return None if workspace_key == "default" else workspace_key


def _target_rows(status: PublishStatus) -> list[dict[str, Any]]:
    return [
        {"id": t.id, "platform": t.platform, "account_id": t.account_id, "status": t.status} for t in status.targets
    ]


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    return value

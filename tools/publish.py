"""Publishing: dry run, confirmed live publish, status, waiting, cancel/reschedule/delete, the journal."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Annotated, Any, Literal

from mcp.server.mcpserver import Context
from mcp.server.mcpserver.resolve import Resolve
from pydantic import BaseModel, Field, ValidationError

from postqued.api.shape import Checked
from postqued.errors import BadRequestError, LocalError, PostQuedError
from postqued.journal import JournalEntry
from postqued.models import Intent, Platform, PublishRequest, PublishStatus, TargetStatus
from postqued.publishing import LiveOutcome, Plan, scheduled_until
from postqued.text import shown

from .accounts import WorkspaceArg
from .common import ServerState, Toolset, UuidId, state, tool_errors
from .confirm import ConfirmArg, NoQuestion, Outcome, Question, ask, can_ask, require

TOOLS = Toolset("publish")

PublishIdArg = Annotated[UuidId, Field(description="From publish_content.")]
TargetIdArg = Annotated[UuidId, Field(description="From get_publish_status.")]


class TargetInput(BaseModel):
    platform: Platform
    account_id: UuidId = Field(description="From list_accounts.")
    intent: Intent = Field(
        description="draft: to the TikTok creator's inbox, ends sent (other platforms: publish). "
        "publish: posted, now or at dispatch_at."
    )
    caption: str = Field(min_length=1, max_length=63206, description="Required on every target, drafts too.")
    dispatch_at: datetime | None = Field(
        default=None, description="Offset-aware ISO 8601 time to schedule, e.g. 2026-12-01T09:00:00Z; omit: now."
    )
    options: dict[str, Any] = Field(
        default_factory=dict,
        description=(
            "Per platform, snake_case. TikTok: privacy_level (required to publish; from get_creator_info), "
            "disable_comment, disable_duet, disable_stitch, video_cover_timestamp_ms, auto_add_music, "
            "commercial_content, brand_content_toggle, brand_organic_toggle, photo_cover_index. Reddit: subreddit "
            "(required). Pinterest: board_id. Others: references/platforms.md."
        ),
    )


class Issue(BaseModel):
    path: str
    code: str
    message: str


class PlannedTarget(BaseModel):
    id: str | None = None
    platform: str
    account_id: str
    account_username: str | None = None
    intent: str | None = None
    privacy_level: str | None = None
    caption: str | None = None
    dispatch_at: datetime | None = None
    media: list[str] = Field(default_factory=list)
    status: str | None = None


class PublishResult(BaseModel):
    dry_run: bool
    valid: bool
    plan_id: str | None = Field(default=None, description="Digest of the exact request; the live call must match it.")
    publish_id: str | None = None
    status: str | None = None
    targets: list[PlannedTarget]
    issues: list[Issue] = Field(default_factory=list)
    idempotency_key: str | None = None
    replayed: bool = Field(default=False, description="True when this request had already been sent; nothing new was.")
    confirmation: str | None = Field(default=None, description="How the live call was approved.")
    next_step: str
    sandbox: bool


class TargetView(BaseModel):
    id: str | None = None
    platform: str | None = None
    account_id: str | None = None
    account_username: str | None = Field(default=None, description="null when unknown (account not listed).")
    intent: str | None = None
    caption: str | None = Field(default=None, description="null when PostQued's answer does not carry it.")
    status: str | None = None
    terminal: bool
    dispatch_at: datetime | None = None
    published_at: datetime | None = Field(default=None, description="Set once status is published (never for drafts).")
    provider_post_id: str | None = None
    error: str | dict[str, Any] | None = None  # PostQued's reason, as sent (any other JSON as text)

    @classmethod
    def of(cls, t: TargetStatus, usernames: dict[str, str]) -> TargetView:
        return cls(
            id=t.id,
            platform=t.platform,
            account_id=t.account_id,
            account_username=usernames.get(t.account_id or ""),
            intent=t.intent,
            caption=_extra(t, "caption"),
            status=t.status,
            terminal=t.terminal,
            dispatch_at=t.dispatch_at,
            published_at=t.published_at if t.status == "published" else None,  # a draft is sent, never published
            provider_post_id=t.provider_post_id,
            error=t.error if t.error is None or isinstance(t.error, str | dict) else json.dumps(t.error),
        )


class PublishView(Checked):
    publish_id: str
    status: str | None = Field(description="pending, processing, completed, partial_failed, failed or canceled.")
    terminal: bool = Field(description="True when nothing will change any more.")
    content_ids: list[str] | None = Field(description="The media posted; null when PostQued's answer lacks them.")
    targets: list[TargetView]

    @classmethod
    def of(cls, s: PublishStatus, usernames: dict[str, str]) -> PublishView:
        media = _extra(s, "contentIds", "content_ids")
        return cls(
            publish_id=s.id,
            status=s.status,
            terminal=s.terminal,
            content_ids=[str(c) for c in media] if isinstance(media, list) else None,
            targets=[TargetView.of(t, usernames) for t in s.targets],
            unverified=s.unverified,
        )


class PublishStatusResult(PublishView):
    next_step: str
    sandbox: bool


class WaitResult(PublishStatusResult):
    timed_out: bool = Field(description="The wait ended before the request was terminal; not an error.")
    poll_after: datetime | None = Field(default=None, description="When to check again if not terminal.")


class PublishListResult(Checked):
    requests: list[PublishView]
    next_step: str
    sandbox: bool


class ActionResult(BaseModel):
    publish_id: str | None = None
    target_id: str | None = None
    action: str
    ok: bool
    status: str | None = Field(default=None, description="The request's status afterwards, when it was read.")
    terminal: bool | None = None
    next_step: str


class JournalEntryView(BaseModel):
    publish_id: str | None
    status: str = Field(description="sending, accepted, unknown (answer lost: check status), or failed.")
    remote_status: str | None
    terminal: bool
    idempotency_key: str
    plan_id: str
    workspace_id: str
    attempts: int
    error_code: str | None
    error_message: str | None
    targets: list[dict[str, Any]]
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, e: JournalEntry) -> JournalEntryView:
        return cls(
            publish_id=e.publish_id,
            status=e.status,
            remote_status=e.remote_status,
            terminal=e.terminal,
            idempotency_key=e.idempotency_key,
            plan_id=e.digest,
            workspace_id=e.workspace_id,
            attempts=e.attempts,
            error_code=e.error_code,
            error_message=e.error_message,
            targets=e.targets,
            created_at=e.created_at,
            updated_at=e.updated_at,
        )


class JournalResult(BaseModel):
    entries: list[JournalEntryView]


# --- the plan and the question, resolved before the tool body runs -------------------------------


class Rejected(BaseModel):
    """The request broke a rule; nothing will be sent."""

    issues: list[Issue]
    error: str


@tool_errors
async def prepare_plan(
    ctx: Context[Any, Any],
    content_ids: list[str],
    targets: list[TargetInput],
    workspace_id: str | None,
) -> Plan | Rejected:
    st = state(ctx)
    try:
        request = PublishRequest.model_validate(
            {
                "content_ids": content_ids,
                "targets": [t.model_dump() for t in targets],
                "workspace_id": workspace_id,
            }
        )
    except ValidationError as exc:
        issues = [
            Issue(path=".".join(str(p) for p in e["loc"]), code="INVALID_FIELD", message=e["msg"]) for e in exc.errors()
        ]
        return Rejected(issues=issues, error="; ".join(f"{i.path}: {i.message}" for i in issues))
    except LocalError as exc:  # options that do not fit the platform
        return Rejected(
            issues=[Issue(path="targets.options", code=exc.code, message=exc.message)], error=exc.describe()
        )
    try:
        return await st.publisher.plan(request)
    except LocalError as exc:
        raw = exc.details.get("issues") or [{"path": "", "code": exc.code, "message": exc.message}]
        return Rejected(issues=[Issue.model_validate(i) for i in raw], error=exc.describe())


@tool_errors
async def ask_approval(
    ctx: Context[Any, Any],
    dry_run: bool,
    plan: Annotated[Plan | Rejected, Resolve(prepare_plan)],
) -> Question:
    st = state(ctx)
    if dry_run:
        return NoQuestion(reason="not_needed")
    if isinstance(plan, Rejected) or not await st.journal().plan_is_fresh(plan.digest, workspace_id=plan.workspace_key):
        return NoQuestion(reason="invalid_request")  # the body refuses it; nobody is asked about it
    if not plan.needs_confirmation(st.settings.confirm) or await st.publisher.already_sent(plan):
        return NoQuestion(reason="not_needed")
    return ask(ctx, approval_message(plan))


def approval_message(plan: Plan) -> str:
    lines = ["Approve this post? It goes live exactly as shown."]
    for n, t in enumerate(plan.summary(), 1):
        when = t["dispatch_at"].isoformat() if t["dispatch_at"] else "now"
        how = "direct post" if t["intent"] == "publish" else "draft to the inbox"
        lines.append(
            f"{n}. {t['platform']} {shown(t['account_username'] or t['account_id'], 100)}: {how}, "
            f"privacy {t['privacy_level'] or 'default'}, at {when}"
        )
        lines.append(f"   caption: {shown(t['caption'], None)}")
        lines.append(f"   media: {', '.join(shown(m, 200) for m in t['media']) or 'none'}")
    return "\n".join(lines)


def _planned(plan: Plan) -> list[PlannedTarget]:
    return [PlannedTarget.model_validate(t) for t in plan.summary()]


# --- what to do next: fits the intent and the time ------------------------------------------------

FINAL = (
    "Final: report each target on its own (published = live, sent = a draft in the creator's inbox, "
    "failed with error, canceled)."
)


def _extra(model: BaseModel, *keys: str) -> Any:
    """A field PostQued sends that the wire model keeps without declaring it (e.g. ``caption``)."""
    extra = model.model_extra or {}
    return next((extra[k] for k in keys if k in extra), None)


def live_next_step(targets: Sequence[PlannedTarget], now: datetime) -> str:
    """After a live publish: wait for what goes out now; for what is scheduled, say when to look again."""
    current = [t for t in targets if t.dispatch_at is None or t.dispatch_at <= now]
    steps: list[str] = []
    if current and all(t.intent == "draft" for t in current):
        steps.append(
            "Call wait_for_publish(publish_id): a draft ends sent (in the creator's inbox, to finish in the app); "
            "it never becomes published."
        )
    elif current:
        steps.append(
            "Call wait_for_publish(publish_id) until each target is terminal: published for a direct post, "
            "sent for a draft."
        )
    later = sorted({t.dispatch_at for t in targets if t.dispatch_at is not None and t.dispatch_at > now})
    if later:
        which = "The scheduled targets go" if current else "Scheduled: it goes"
        first = " (the first)" if len(later) > 1 else ""
        steps.append(
            f"{which} out at {later[0].isoformat()}{first}: tell the user; do not wait for it now, check with "
            "get_publish_status(publish_id) after that time."
        )
    steps.append("Never publish it again.")
    return " ".join(steps)


def status_next_step(status: PublishStatus, now: datetime, *, poll_after: datetime | None = None) -> str:
    """After a status read or a wait."""
    if status.terminal:
        return FINAL
    until = scheduled_until(status)
    if until is not None and until > now:
        return (
            f"Scheduled: the next target goes out at {until.isoformat()}; nothing to wait for now, check with "
            "get_publish_status after that time. To cancel, only on the user's word: "
            "cancel_publish_target(target id) or cancel_publish(publish_id)."
        )
    again = f"after {poll_after.isoformat()}" if poll_after is not None else "to follow it"
    return f"Not final yet: call wait_for_publish(publish_id) {again}; never publish it again."


def approval_step(ctx: Context[Any, Any], plan: Plan) -> str:
    """After a valid dry run: how the live call gets the user's approval on this host."""
    step = "Show the user this plan. If they approve, call publish_content again with the same arguments and "
    if not plan.needs_confirmation(state(ctx).settings.confirm):
        return step + "dry_run=false."
    if can_ask(ctx):
        return step + "dry_run=false; the server then asks them to confirm."
    return step + "dry_run=false and confirm=true (this host cannot ask them; confirm is not part of the plan)."


async def account_usernames(ctx: Context[Any, Any], workspace_id: str | None) -> dict[str, str]:
    """Account id -> username, to say which post a status is about; empty when the accounts cannot be read."""
    try:
        accounts = await state(ctx).client.list_accounts(workspace_id=workspace_id)
    except PostQuedError:
        return {}
    return {a.id: a.username for a in accounts if a.username}


# --- tools ---------------------------------------------------------------------------------------


@TOOLS.tool("write", "Publish or schedule content", routes=("publish",))
async def publish_content(
    ctx: Context[Any, Any],
    content_ids: Annotated[
        list[UuidId],
        Field(description="From upload_media; 2-35 make a carousel.", max_length=35),
    ],
    targets: Annotated[
        list[TargetInput], Field(description="Where to post (1-10 targets).", min_length=1, max_length=10)
    ],
    plan: Annotated[Plan | Rejected, Resolve(prepare_plan)],
    approval: Annotated[Outcome, Resolve(ask_approval)],
    dry_run: Annotated[bool, Field(description="true (default): check and preview only. false: send it.")] = True,
    confirm: ConfirmArg = False,
    idempotency_key: Annotated[
        str | None, Field(description="Omit: the server keeps one per request.", max_length=200)
    ] = None,
    workspace_id: WorkspaceArg = None,
) -> PublishResult:
    """Post or schedule uploaded media. First dry_run=true: checks, sends nothing, returns the plan to
    show the user. After their yes: the same arguments with dry_run=false (and confirm=true if this host
    cannot ask them; confirm is not part of the plan). Never posts twice. Next: what next_step says."""
    st = state(ctx)
    if isinstance(plan, Rejected):
        if dry_run:
            return PublishResult(
                dry_run=True,
                valid=False,
                targets=[],
                issues=plan.issues,
                sandbox=st.sandbox,
                next_step="Fix the listed issues and run the dry run again; nothing was sent.",
            )
        raise LocalError(plan.error, code="PUBLISH_REQUEST_INVALID", next_step="Fix the request and dry-run it again.")
    if dry_run:
        try:
            await st.publisher.dry_run(plan)
        except BadRequestError as exc:
            return PublishResult(
                dry_run=True,
                valid=False,
                plan_id=plan.digest,
                targets=_planned(plan),
                sandbox=st.sandbox,
                issues=[Issue(path="", code=exc.code, message=exc.message)],
                next_step="PostQued refused the request: fix it and run the dry run again; nothing was sent.",
            )
        return PublishResult(
            dry_run=True,
            valid=True,
            plan_id=plan.digest,
            targets=_planned(plan),
            sandbox=st.sandbox,
            next_step=approval_step(ctx, plan),
        )
    await st.publisher.require_fresh_plan(plan)
    confirmation = require(approval, confirm, action="publish this post")
    return live_result(st, plan, await st.publisher.publish(plan, idempotency_key), confirmation)


def live_result(st: ServerState, plan: Plan, outcome: LiveOutcome, confirmation: str) -> PublishResult:
    """The answer to a live publish (publish_content, or the preview card's approval)."""
    s = outcome.status
    remaining = list(s.targets)
    targets_out = []
    for planned in _planned(plan):  # pair each planned target with PostQued's by platform and account
        remote = next(
            (t for t in remaining if (t.platform, t.account_id) == (planned.platform, planned.account_id)), None
        )
        if remote is not None:
            remaining.remove(remote)
        targets_out.append(planned.model_copy(update={"id": remote and remote.id, "status": remote and remote.status}))
    return PublishResult(
        dry_run=False,
        valid=True,
        plan_id=plan.digest,
        publish_id=s.id,
        status=s.status,
        targets=targets_out,
        idempotency_key=outcome.intent.idempotency_key,
        replayed=outcome.replayed,
        confirmation=confirmation,
        sandbox=st.sandbox,
        next_step=("Already sent earlier; nothing new was posted. " if outcome.replayed else "")
        + live_next_step(targets_out, st.clock.now()),
    )


@TOOLS.tool("read", "Get publish status", routes=("publish_get",))
async def get_publish_status(
    ctx: Context[Any, Any], publish_id: PublishIdArg, workspace_id: WorkspaceArg = None
) -> PublishStatusResult:
    """To check once whether a post went out: each target's status, caption and account. Next: what
    next_step says."""
    st = state(ctx)
    status = await st.publisher.read_status(publish_id, workspace_id=workspace_id)
    view = PublishView.of(status, await account_usernames(ctx, workspace_id))
    return PublishStatusResult(
        **view.model_dump(), next_step=status_next_step(status, st.clock.now()), sandbox=st.sandbox
    )


@TOOLS.tool("read", "Wait for a publish to finish", routes=("publish_get",))
async def wait_for_publish(
    ctx: Context[Any, Any],
    publish_id: PublishIdArg,
    timeout_seconds: Annotated[float, Field(ge=1, le=300)] = 45,
    workspace_id: WorkspaceArg = None,
) -> WaitResult:
    """After a live publish_content that goes out now: polls until every target is terminal or the timeout
    (timed_out=true is no error). Next: what next_step says."""
    st = state(ctx)

    async def on_poll(status: PublishStatus, elapsed: float) -> None:
        states = ", ".join(f"{t.platform} {t.account_id}: {t.status}" for t in status.targets) or str(status.status)
        await ctx.report_progress(min(elapsed, timeout_seconds), timeout_seconds, f"{status.status}: {states}")

    status, timed_out, poll_after = await st.publisher.wait(
        publish_id, budget=timeout_seconds, workspace_id=workspace_id, on_poll=on_poll
    )
    view = PublishView.of(status, await account_usernames(ctx, workspace_id))
    return WaitResult(
        **view.model_dump(),
        timed_out=timed_out,
        poll_after=poll_after,
        next_step=status_next_step(status, st.clock.now(), poll_after=poll_after),
        sandbox=st.sandbox,
    )


@TOOLS.tool("read", "List publish requests", routes=("publish_list",))
async def list_publish_requests(
    ctx: Context[Any, Any],
    start_date: Annotated[datetime | None, Field(description="Offset-aware ISO 8601; with end_date.")] = None,
    end_date: Annotated[datetime | None, Field(description="Offset-aware ISO 8601; with start_date.")] = None,
    workspace_id: WorkspaceArg = None,
) -> PublishListResult:
    """When asked what went out or is scheduled: the calendar, each target with status, caption, account
    and time; both dates or neither. Next: get_publish_status, or a cancel on the user's word."""
    st = state(ctx)
    items = await st.client.list_publish(start_date=start_date, end_date=end_date, workspace_id=workspace_id)
    usernames = await account_usernames(ctx, workspace_id) if items else {}
    return PublishListResult(
        requests=[PublishView.of(s, usernames) for s in items],
        next_step="Tell the user which post is which (caption, account, time). Cancel or move one only on their "
        "word: cancel_publish_target(target id), cancel_publish(publish_id), reschedule_publish_target."
        if items
        else "No publish requests in this range.",
        sandbox=st.sandbox,
        unverified=items.unverified,
    )


@TOOLS.tool("destructive", "Cancel a publish request", routes=("publish_cancel",))
async def cancel_publish(
    ctx: Context[Any, Any], publish_id: PublishIdArg, workspace_id: WorkspaceArg = None
) -> ActionResult:
    """Only when the user asked: cancel every target still queued or scheduled (started ones go on). Next:
    tell the user what was canceled."""
    st = state(ctx)
    await st.client.cancel_publish(publish_id, workspace_id=workspace_id)
    done = "Canceled what had not started; get_publish_status(publish_id) shows each target."
    try:
        after = await st.publisher.read_status(publish_id, workspace_id=workspace_id)
    except PostQuedError:  # the cancel itself succeeded; say so even if the read-back failed
        return ActionResult(publish_id=publish_id, action="cancel", ok=True, next_step=done)
    return ActionResult(
        publish_id=publish_id,
        action="cancel",
        ok=True,
        status=after.status,
        terminal=after.terminal,
        next_step=done if after.terminal else "Some targets had already started and go on: " + done,
    )


@TOOLS.tool("destructive", "Cancel one publish target", routes=("target_cancel",))
async def cancel_publish_target(
    ctx: Context[Any, Any], target_id: TargetIdArg, workspace_id: WorkspaceArg = None
) -> ActionResult:
    """Only when the user asked: cancel one queued or scheduled target; the others stay. Next: tell the
    user."""
    await state(ctx).client.cancel_target(target_id, workspace_id=workspace_id)
    return ActionResult(
        target_id=target_id, action="cancel_target", ok=True, next_step="Canceled; tell the user which post."
    )


@TOOLS.tool("idempotent_write", "Reschedule one publish target", routes=("target_reschedule",))
async def reschedule_publish_target(
    ctx: Context[Any, Any],
    target_id: TargetIdArg,
    dispatch_at: Annotated[
        datetime | None, Field(description="New offset-aware ISO 8601 time in the future; omit it to send now.")
    ] = None,
    workspace_id: WorkspaceArg = None,
) -> ActionResult:
    """When the user wants a queued or scheduled target at another time (no dispatch_at: now). Next:
    get_publish_status after it."""
    st = state(ctx)
    if dispatch_at is not None and dispatch_at.utcoffset() is not None and dispatch_at <= st.clock.now():
        raise LocalError(
            "dispatch_at is in the past.",
            code="INVALID_DISPATCH_AT",
            next_step="Pass a future time, or omit it for now.",
        )
    await st.client.reschedule_target(target_id, dispatch_at, workspace_id=workspace_id)
    when = dispatch_at.isoformat() if dispatch_at is not None else "now"
    return ActionResult(
        target_id=target_id,
        action="reschedule",
        ok=True,
        next_step=f"It goes out {'at ' if dispatch_at else ''}{when}; check with get_publish_status after that.",
    )


@TOOLS.tool("destructive", "Delete a publish request", routes=("publish_delete",))
async def delete_publish_request(
    ctx: Context[Any, Any], publish_id: PublishIdArg, workspace_id: WorkspaceArg = None
) -> ActionResult:
    """Only when the user asked: remove a request from the calendar (soft delete). Next: none; if it has not
    run yet, cancel_publish first."""
    await state(ctx).client.delete_publish(publish_id, workspace_id=workspace_id)
    return ActionResult(publish_id=publish_id, action="delete", ok=True, next_step="Removed from the calendar.")


@TOOLS.tool("local_read", "List the local publish journal")
async def list_publish_journal(
    ctx: Context[Any, Any],
    limit: Annotated[int, Field(ge=1, le=200)] = 20,
    status: Annotated[
        Literal["sending", "accepted", "unknown", "failed"] | None, Field(description="Only entries in this state.")
    ] = None,
) -> JournalResult:
    """Before posting again after an error: what this machine sent, newest first. Next: for unknown (answer
    lost) get_publish_status, or repeat the same publish_content call."""
    entries = await state(ctx).journal().list_entries(limit=limit, status=status)
    return JournalResult(entries=[JournalEntryView.of(e) for e in entries])

"""MCP Apps: a preview-and-approve card for publish_content's dry run and a status card for publish requests.

Hosts that negotiated MCP Apps (``io.modelcontextprotocol/ui``) render ``ui://postqued/publish-card.html`` beside
the result of ``publish_content``, ``get_publish_status`` and ``wait_for_publish`` (their ``_meta.ui``). The card
is plain HTML, CSS and a little JavaScript from ``tools/cards/``; the page carries a strict CSP of its own (no
outside origin at all, scripts and styles pinned by hash) and inserts every value as text.

The card calls three app-only tools (``_meta.ui.visibility = ["app"]``) back through the host:

- ``preview_publish_plan``: the full picture of a dry-run plan (accounts, captions with their limits,
  interaction switches, media with a thumbnail made here from the uploaded file, issues);
- ``approve_publish_plan``: publishes that plan and nothing else;
- ``decline_publish_plan``: withdraws the plan's dry run, so nothing can publish it without a new one.

The card holds the dry run's arguments (``ui/notifications/tool-input``) and its ``plan_id``; preview and approve
plan those arguments again and refuse unless the digest is exactly that ``plan_id`` and its dry run is fresh, so
nothing on the card (or anyone calling the tool) can change what is published. A click on the card is not
taken as proof of the user's consent: the server cannot tell a call the card made from one the model made, so
``approve_publish_plan`` follows the same consent rules as ``publish_content(dry_run=false)`` (SECURITY.md): with
elicitation the server still asks the user its own question; without it, the click stands for ``confirm=true``.

Hosts without Apps see none of this: the app-only tools and the ``ui://`` resource are left out of their lists
(and refused if called), and their tools' results are unchanged.
"""

from __future__ import annotations

import base64
import functools
import hashlib
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from datetime import UTC
from pathlib import Path
from typing import Annotated, Any, Literal

import anyio.to_thread
from mcp.server.apps import Apps, ResourceCsp, client_supports_apps
from mcp.server.context import CallNext, HandlerResult, ServerRequestContext
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.resolve import Resolve
from mcp.types import ToolAnnotations
from pydantic import BaseModel, Field

from postqued.errors import LocalError
from postqued.models import ContentAsset, TikTokOptions
from postqued.platform_rules import PLATFORM_RULES, media_kind, utf16_len
from postqued.publishing import Plan
from postqued.settings import Settings
from postqued.thumbnail import thumbnail

from .accounts import WorkspaceArg
from .common import ANNOTATIONS, UuidId, state, tool_errors
from .confirm import Outcome, Question, can_ask, require
from .publish import (
    Issue,
    PublishResult,
    Rejected,
    TargetInput,
    ask_approval,
    live_result,
    prepare_plan,
)
from .schemas import advertise

RESOURCE_URI = "ui://postqued/publish-card.html"
CARD_TOOLS = ("publish_content", "get_publish_status", "wait_for_publish")  # results the card renders
CARDS = Path(__file__).parent / "cards"
_SOURCES_MAX = 512

PlanIdArg = Annotated[str, Field(description="The plan_id the dry run returned.", pattern=r"^sha256:[0-9a-f]{64}$")]
ContentIdsArg = Annotated[list[UuidId], Field(description="The dry run's content_ids, unchanged.", max_length=35)]
TargetsArg = Annotated[
    list[TargetInput], Field(description="The dry run's targets, unchanged.", min_length=1, max_length=10)
]


# --- the page ------------------------------------------------------------------------------------


def _sha256_source(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode() + "'"


@functools.cache
def card_html() -> str:
    """The card: publish.html with its style and script inlined and pinned by hash in its own CSP."""
    style = (CARDS / "publish.css").read_text(encoding="utf-8")
    script = (CARDS / "publish.js").read_text(encoding="utf-8")
    csp = (
        "default-src 'none'; "
        f"script-src {_sha256_source(script)}; style-src {_sha256_source(style)}; "
        "img-src data:; connect-src 'none'; font-src 'none'; media-src 'none'; frame-src 'none'; "
        "object-src 'none'; base-uri 'none'; form-action 'none'"
    )
    page = (CARDS / "publish.html").read_text(encoding="utf-8")
    return page.replace("{{CSP}}", csp).replace("{{STYLE}}", style).replace("{{SCRIPT}}", script)


# --- where uploaded images came from (for thumbnails) --------------------------------------------

_sources: OrderedDict[str, tuple[str, str]] = OrderedDict()  # content id -> (path as given, sha256)


def remember_source(content_id: str, path: str, sha256: str) -> None:
    """Called by upload_media: the card may thumbnail this content from the local file (if still the same)."""
    _sources[content_id] = (path, sha256)
    _sources.move_to_end(content_id)
    while len(_sources) > _SOURCES_MAX:
        _sources.popitem(last=False)


# --- what the card shows -------------------------------------------------------------------------


class CardIssue(BaseModel):
    path: str
    code: str
    message: str
    severity: Literal["error", "note"]


class CardSetting(BaseModel):
    label: str
    value: str


class CardTarget(BaseModel):
    platform: str
    account_id: str
    account_username: str | None
    intent: str
    privacy_level: str | None
    caption: str = Field(description="Exactly as it will be sent.")
    caption_length: int
    caption_limit: int
    caption_unit: Literal["utf16", "codepoints"]
    interactions: list[CardSetting]
    options: list[CardSetting]
    dispatch_at: str | None = Field(description="UTC ISO 8601; null means as soon as it is approved.")


class CardMedia(BaseModel):
    content_id: str
    filename: str | None
    mime_type: str | None
    media_type: str | None
    width: int | None
    height: int | None
    duration_ms: int | None
    size: int | None
    orientation: Literal["portrait", "landscape", "square"] | None
    thumbnail: str | None = Field(description="A small PNG made here from the uploaded file (data: URL), or null.")


class PlanPreview(BaseModel):
    plan_id: str
    approvable: bool = Field(description="True when approve_publish_plan would publish this plan.")
    asks_again: bool = Field(description="Approving opens the host's own confirmation question as well.")
    targets: list[CardTarget]
    media: list[CardMedia]
    issues: list[CardIssue] = Field(description="Failing ones first.")
    sandbox: bool


class DeclineResult(BaseModel):
    plan_id: str
    withdrawn: bool = Field(description="True when a fresh dry run of this plan was withdrawn.")
    next_step: str


def _caption_limit(platform: str, photo: bool) -> tuple[int, Literal["utf16", "codepoints"]]:
    """The caption limit that applies (a TikTok photo post's caption is its 90-unit title)."""
    rules = PLATFORM_RULES[platform]
    return (
        rules.photo_caption_limit if photo and rules.photo_caption_limit else rules.caption_limit
    ), rules.caption_unit


_SWITCHES = (
    ("disable_comment", "comment_disabled", "Comments"),
    ("disable_duet", "duet_disabled", "Duets"),
    ("disable_stitch", "stitch_disabled", "Stitches"),
)


def _interactions(plan: Plan, account_id: str, options: TikTokOptions, photo: bool) -> list[CardSetting]:
    info = plan.creator_info.get(account_id)
    out: list[CardSetting] = []
    for option, creator_flag, label in _SWITCHES:
        if photo and option != "disable_comment":
            continue  # duets and stitches do not exist for photo posts
        asked = getattr(options, option)
        if info is not None and getattr(info, creator_flag):
            value = "off (turned off by the creator)"
        elif asked is None:
            value = "platform default"
        else:
            value = "off" if asked else "on"
        out.append(CardSetting(label=label, value=value))
    return out


def _targets(plan: Plan) -> list[CardTarget]:
    photo = {media_kind(a) if a else None for a in plan.content.values()} == {"image"}
    out: list[CardTarget] = []
    for target, summary in zip(plan.request.targets, plan.summary(), strict=True):
        limit, unit = _caption_limit(target.platform, photo)
        opts = target.options
        shown = {"privacy_level", *(s[0] for s in _SWITCHES)} if isinstance(opts, TikTokOptions) else set()
        extra = opts.model_dump(exclude_none=True, exclude=shown)
        out.append(
            CardTarget(
                platform=target.platform,
                account_id=target.account_id,
                account_username=summary["account_username"],
                intent=target.intent,
                privacy_level=summary["privacy_level"],
                caption=target.caption,
                caption_length=utf16_len(target.caption) if unit == "utf16" else len(target.caption),
                caption_limit=limit,
                caption_unit=unit,
                interactions=_interactions(plan, target.account_id, opts, photo)
                if isinstance(opts, TikTokOptions)
                else [],
                options=[CardSetting(label=k, value=str(v)) for k, v in sorted(extra.items())],
                dispatch_at=target.dispatch_at.astimezone(UTC).isoformat() if target.dispatch_at else None,
            )
        )
    return out


def _orientation(w: int | None, h: int | None) -> Literal["portrait", "landscape", "square"] | None:
    if not w or not h:
        return None
    return "square" if w == h else "portrait" if h > w else "landscape"


async def _media(plan: Plan, settings: Settings) -> list[CardMedia]:
    out: list[CardMedia] = []
    for cid in plan.request.content_ids:
        asset = plan.content.get(cid) or ContentAsset(id=cid)
        thumb: str | None = None
        source = _sources.get(cid)
        if source is not None and media_kind(asset) == "image":
            png = await anyio.to_thread.run_sync(thumbnail, *source, settings.media_dirs, settings.max_image_bytes)
            thumb = "data:image/png;base64," + base64.b64encode(png).decode() if png else None
        out.append(
            CardMedia(
                content_id=cid,
                filename=asset.filename,
                mime_type=asset.mime_type,
                media_type=asset.media_type,
                width=asset.width,
                height=asset.height,
                duration_ms=asset.duration_ms,
                size=asset.size,
                orientation=_orientation(asset.width, asset.height),
                thumbnail=thumb,
            )
        )
    return out


# --- the app-only tools --------------------------------------------------------------------------


def _require_apps(ctx: Context[Any, Any]) -> None:
    if not client_supports_apps(ctx):
        raise LocalError(
            "This tool belongs to the publish preview card, which this client does not display.",
            code="APP_ONLY_TOOL",
            next_step="Use publish_content (dry_run=true, then false) instead.",
        )


async def _stale(plan: Plan | Rejected, plan_id: str, ctx: Context[Any, Any]) -> Issue | None:
    """Why ``plan`` may not be published as the card's plan, or None."""
    if isinstance(plan, Rejected):
        return None
    if plan.digest != plan_id:
        return Issue(path="", code="PLAN_CHANGED", message="These arguments are not the previewed plan.")
    if not await state(ctx).journal().plan_is_fresh(plan.digest, workspace_id=plan.workspace_key):
        return Issue(path="", code="DRY_RUN_REQUIRED", message="The dry run is older than 30 minutes or withdrawn.")
    return None


async def _ask_card(
    ctx: Context[Any, Any], plan_id: str, plan: Annotated[Plan | Rejected, Resolve(prepare_plan)]
) -> Question:
    if await _stale(plan, plan_id, ctx) is not None:
        plan = Rejected(issues=[], error="stale")  # the body refuses it; nobody is asked about it
    return await ask_approval(ctx, False, plan)


async def preview_publish_plan(
    ctx: Context[Any, Any],
    plan_id: PlanIdArg,
    content_ids: ContentIdsArg,
    targets: TargetsArg,
    plan: Annotated[Plan | Rejected, Resolve(prepare_plan)],
    workspace_id: WorkspaceArg = None,
) -> PlanPreview:
    """For the preview card: everything the user needs to judge the dry-run plan before approving it."""
    _require_apps(ctx)
    st = state(ctx)
    if isinstance(plan, Rejected):
        issues = [CardIssue(**i.model_dump(), severity="error") for i in plan.issues]
        return PlanPreview(
            plan_id=plan_id, approvable=False, asks_again=False, targets=[], media=[], issues=issues, sandbox=st.sandbox
        )
    stale = await _stale(plan, plan_id, ctx)
    issues = [CardIssue(**stale.model_dump(), severity="error")] if stale else []
    asks = plan.needs_confirmation(st.settings.confirm) and can_ask(ctx)
    if plan.direct:
        issues.append(CardIssue(path="", code="DIRECT_POST", message="Posted publicly at once.", severity="note"))
    if st.sandbox:
        issues.append(CardIssue(path="", code="SANDBOX", message="Sandbox: nothing real is posted.", severity="note"))
    return PlanPreview(
        plan_id=plan_id,
        approvable=stale is None,
        asks_again=asks,
        targets=_targets(plan),
        media=await _media(plan, st.settings),
        issues=issues,
        sandbox=st.sandbox,
    )


async def approve_publish_plan(
    ctx: Context[Any, Any],
    plan_id: PlanIdArg,
    content_ids: ContentIdsArg,
    targets: TargetsArg,
    plan: Annotated[Plan | Rejected, Resolve(prepare_plan)],
    approval: Annotated[Outcome, Resolve(_ask_card)],
    workspace_id: WorkspaceArg = None,
) -> PublishResult:
    """For the preview card's "Approve and post": publishes exactly the previewed dry-run plan, once."""
    _require_apps(ctx)
    st = state(ctx)
    if isinstance(plan, Rejected):
        raise LocalError(plan.error, code="PUBLISH_REQUEST_INVALID", next_step="Fix the request and dry-run it again.")
    stale = await _stale(plan, plan_id, ctx)
    if stale is not None:
        raise LocalError(
            f"{stale.message} Nothing was sent.",
            code=stale.code,
            next_step="Run publish_content with dry_run=true again and review the new card.",
        )
    confirmation = require(approval, True, action="publish this post")
    confirmation = "approved on the preview card" if confirmation == "confirm=true" else confirmation
    return live_result(st, plan, await st.publisher.publish(plan), confirmation)


async def decline_publish_plan(ctx: Context[Any, Any], plan_id: PlanIdArg) -> DeclineResult:
    """For the preview card's "Cancel": withdraws the plan's dry run; nothing is sent, now or later."""
    _require_apps(ctx)
    withdrawn = await state(ctx).journal().withdraw_plan(plan_id) > 0
    return DeclineResult(
        plan_id=plan_id,
        withdrawn=withdrawn,
        next_step="Nothing was posted. Ask the user what to change; publishing needs a new dry run and approval.",
    )


# --- registration --------------------------------------------------------------------------------

_LOCAL_WRITE = ToolAnnotations(readOnlyHint=False, destructiveHint=False, idempotentHint=True, openWorldHint=False)
_APP_TOOLS: tuple[tuple[Callable[..., Awaitable[Any]], str, ToolAnnotations], ...] = (
    (preview_publish_plan, "Preview a publish plan (card)", ANNOTATIONS["read"]),
    (approve_publish_plan, "Approve and post a previewed plan (card)", ANNOTATIONS["write"]),
    (decline_publish_plan, "Decline a previewed plan (card)", _LOCAL_WRITE),
)


def card_extension(settings: Settings) -> Apps | None:
    """The Apps extension for ``settings``: the card, and its app-only tools unless read-only (no publish_content,
    so nothing to preview); None without the publishing toolset."""
    if "publishing" not in settings.toolsets:
        return None
    apps = Apps()
    apps.add_html_resource(
        RESOURCE_URI,
        card_html(),
        name="publish_card",
        title="Publish preview",
        description="Preview and approve a dry-run plan; follow a publish request.",
        csp=ResourceCsp(connect_domains=[], resource_domains=[], frame_domains=[], base_uri_domains=[]),
        prefers_border=True,
    )
    for fn, title, hints in () if settings.read_only else _APP_TOOLS:
        apps.tool(
            resource_uri=RESOURCE_URI,
            visibility=["app"],
            name=fn.__name__,
            title=title,
            annotations=hints,
            structured_output=True,
        )(tool_errors(fn))
    return apps


def link_cards(server: MCPServer[Any]) -> None:
    """Point the card tools at the card, advertise the app tools' schemas like every other tool's, and keep
    app-only entries from clients without Apps."""
    for fn, _, _ in _APP_TOOLS:
        advertise(server, fn.__name__)
    for name in CARD_TOOLS:
        tool = server._tool_manager.get_tool(name)
        if tool is not None:
            tool.meta = {**(tool.meta or {}), "ui": {"resourceUri": RESOURCE_URI}}
    server.middleware.append(_hide_app_entries)


async def _hide_app_entries(ctx: ServerRequestContext[Any, Any], call_next: CallNext) -> HandlerResult:
    """tools/list and resources/list for a client without Apps: no app-only tool, no ``ui://`` resource."""
    result = await call_next(ctx)
    if ctx.method not in ("tools/list", "resources/list") or not isinstance(result, dict) or client_supports_apps(ctx):
        return result
    if ctx.method == "tools/list":
        return {**result, "tools": [t for t in result.get("tools", []) if not app_only(t)]}
    return {
        **result,
        "resources": [r for r in result.get("resources", []) if not str(r.get("uri")).startswith("ui://")],
    }


def app_only(tool: dict[str, Any]) -> bool:
    """A ``tools/list`` entry only the card may call (``_meta.ui.visibility`` without "model"): no model sees it."""
    ui = (tool.get("_meta") or {}).get("ui") or {}
    return "model" not in ui.get("visibility", ["model"])

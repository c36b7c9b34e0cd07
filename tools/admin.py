"""Toolset ``admin``: create a workspace, read capabilities and billing, disconnect an account."""

from __future__ import annotations

from typing import Annotated, Any

from mcp.server.mcpserver import Context
from mcp.server.mcpserver.resolve import Resolve
from pydantic import BaseModel, Field

from postqued.api import admin
from postqued.api.shape import Checked

from .accounts import WorkspaceArg, WorkspaceView
from .common import ID_PATTERN, Toolset, state
from .confirm import ConfirmArg, Outcome, Question, ask, require

TOOLS = Toolset("admin")

AccountIdArg = Annotated[str, Field(description="Account id from list_accounts.", pattern=ID_PATTERN)]


class WorkspaceCreated(BaseModel):
    workspace: WorkspaceView
    next_step: str
    sandbox: bool


class CapabilitiesResult(Checked):
    workspace_id: str | None
    plan: str | None
    capabilities: dict[str, Any] = Field(description="Feature flags and limits as PostQued reports them.")
    sandbox: bool


class BillingResult(Checked):
    status: str | None = Field(description="Subscription status, e.g. active.")
    plan: str | None
    current_period_end: str | None
    details: dict[str, Any]
    sandbox: bool


class UsageResult(Checked):
    period_start: str | None
    period_end: str | None
    usage: dict[str, Any]
    sandbox: bool


class ActionResult(BaseModel):
    id: str
    action: str
    ok: bool
    confirmation: str | None = None
    next_step: str | None = None
    sandbox: bool


@TOOLS.tool("write", "Create a workspace", routes=("workspace_create",))
async def create_workspace(
    ctx: Context[Any, Any],
    organization_id: Annotated[str, Field(description="Organization id from list_workspaces.", pattern=ID_PATTERN)],
    name: Annotated[str, Field(description="Workspace (client) name.", min_length=1, max_length=100)],
) -> WorkspaceCreated:
    """Create a client workspace in the key's organization. Only when the user named the organization and
    client; then pass the new workspace_id explicitly (the key now sees several workspaces)."""
    st = state(ctx)
    ws = await admin.create_workspace(st.client, organization_id, name)
    return WorkspaceCreated(
        workspace=WorkspaceView.model_validate(ws, from_attributes=True),
        next_step="Pass this workspace_id to later calls; connect accounts in the PostQued app.",
        sandbox=st.sandbox,
    )


@TOOLS.tool("read", "Get workspace capabilities", routes=("billing_capabilities",))
async def get_workspace_capabilities(ctx: Context[Any, Any], workspace_id: WorkspaceArg = None) -> CapabilitiesResult:
    """What the workspace's plan allows (features, limits). Check before collaboration or other plan-gated work."""
    st = state(ctx)
    caps = await admin.get_capabilities(st.client, workspace_id)
    return CapabilitiesResult(**caps.model_dump(), sandbox=st.sandbox)


@TOOLS.tool("read", "Get billing status", routes=("billing",))
async def get_billing_status(ctx: Context[Any, Any], workspace_id: WorkspaceArg = None) -> BillingResult:
    """Read the subscription status and plan (read-only; checkout stays in the PostQued app)."""
    st = state(ctx)
    return BillingResult(**(await admin.get_billing(st.client, workspace_id)).model_dump(), sandbox=st.sandbox)


@TOOLS.tool("read", "Get billing usage", routes=("billing_usage",))
async def get_billing_usage(ctx: Context[Any, Any], workspace_id: WorkspaceArg = None) -> UsageResult:
    """Read the current billing period's usage (posts, uploads, seats as PostQued counts them)."""
    st = state(ctx)
    return UsageResult(**(await admin.get_usage(st.client, workspace_id)).model_dump(), sandbox=st.sandbox)


async def _ask_disconnect(ctx: Context[Any, Any], account_id: str) -> Question:
    return ask(
        ctx,
        f"Disconnect account {account_id} from PostQued? Its stored credentials are revoked; scheduled posts "
        "for it will fail until it is connected again in the PostQued app.",
    )


@TOOLS.tool("destructive", "Disconnect an account", routes=("integration_delete",))
async def disconnect_account(
    ctx: Context[Any, Any],
    account_id: AccountIdArg,
    approval: Annotated[Outcome, Resolve(_ask_disconnect)],
    confirm: ConfirmArg = False,
    workspace_id: WorkspaceArg = None,
) -> ActionResult:
    """Disconnect a social account and revoke its stored credentials; asks the user first. Reconnecting needs
    the PostQued app (OAuth)."""
    st = state(ctx)
    how = require(approval, confirm, action="disconnect the account")
    ok = await admin.disconnect_account(st.client, account_id, workspace_id)
    return ActionResult(
        id=account_id,
        action="disconnect",
        ok=ok,
        confirmation=how,
        next_step="Reconnect it in the PostQued app if needed; list_accounts no longer shows it.",
        sandbox=st.sandbox,
    )

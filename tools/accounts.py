"""Workspaces, connected accounts and TikTok creator info (all read-only)."""

from __future__ import annotations

from typing import Annotated, Any

from mcp.server.mcpserver import Context
from pydantic import BaseModel, Field

from postqued.api.shape import Checked
from postqued.models import Platform

from .common import Toolset, UuidId, state

TOOLS = Toolset("accounts")

# No description: list_workspaces says when to pass one, and words here would be paid for on every tool.
WorkspaceArg = UuidId | None


class WorkspaceView(BaseModel):
    id: str
    name: str | None = None
    organization_id: str | None = None
    organization_name: str | None = None


class WorkspacesResult(BaseModel):
    workspaces: list[WorkspaceView]
    default_workspace_id: str | None = Field(
        description="The workspace tools use when workspace_id is omitted; null when the user must choose."
    )
    sandbox: bool = Field(description="True when answers come from the local simulator, not PostQued.")


class AccountView(BaseModel):
    id: str
    platform: str
    username: str | None = None
    display_name: str | None = None
    account_status: str | None = None


class AccountsResult(Checked):
    accounts: list[AccountView]
    workspace_id: str | None
    next_step: str
    sandbox: bool


UNVERIFIED_NEXT_STEP = (
    "PostQued's answer lacked fields this server reads (see unverified): the list may be incomplete. Ask the "
    "user to run `postqued-mcp doctor --contract` and share the report; do not conclude an account is missing."
)


def accounts_next_step(accounts: list[AccountView], platform: str | None) -> str:
    """Which account to use, or that the user must connect one: never another account in its place."""
    if not accounts:
        which = f"{platform} account" if platform else "social account"
        return (
            f"No {which} is connected in this workspace: tell the user to connect it in the PostQued app, then "
            "call list_accounts again. Never post to another account or platform instead."
        )
    platforms = {a.platform for a in accounts}
    if len(accounts) > len(platforms):
        return "Several accounts of a platform: ask the user which one; use its id as account_id."
    after = "get_creator_info(account_id), then " if "tiktok" in platforms else ""
    return f"Use the id as account_id in the targets; next {after}publish_content with dry_run=true."


class CreatorInfoResult(Checked):
    account_id: str
    creator_username: str | None = None
    creator_nickname: str | None = None
    privacy_level_options: list[str] = Field(description="The only privacy levels this creator can post with.")
    comment_disabled: bool
    duet_disabled: bool
    stitch_disabled: bool
    max_video_post_duration_sec: int | None = None


@TOOLS.tool("read", "List workspaces", routes=())
async def list_workspaces(ctx: Context[Any, Any]) -> WorkspacesResult:
    """When a tool says the workspace is ambiguous: the workspaces this key can use. Ask the user which.
    Next: pass its id as workspace_id to every tool."""
    st = state(ctx)
    workspaces = await st.client.list_workspaces(refresh=True)
    default = st.settings.workspace_id or (workspaces[0].id if len(workspaces) == 1 else None)
    if st.client.api_version == "v1":
        default = None
    return WorkspacesResult(
        workspaces=[WorkspaceView.model_validate(w, from_attributes=True) for w in workspaces],
        default_workspace_id=default,
        sandbox=st.sandbox,
    )


@TOOLS.tool("read", "List connected accounts", routes=("integrations",))
async def list_accounts(
    ctx: Context[Any, Any],
    platform: Annotated[Platform | None, Field(description="Only accounts of this platform.")] = None,
    workspace_id: WorkspaceArg = None,
) -> AccountsResult:
    """Step 2 of a post: connected accounts (id, platform, username). If the platform has none, the user
    must connect it in PostQued; never use another account. Next: get_creator_info (TikTok), then
    publish_content."""
    st = state(ctx)
    ws = await st.client.resolve_workspace(workspace_id)
    accounts = await st.client.list_accounts(platform, workspace_id=ws)
    views = [AccountView.model_validate(a, from_attributes=True) for a in accounts]
    return AccountsResult(
        accounts=views,
        workspace_id=ws,
        # an answer of an unexpected shape may hide accounts: never tell the user none is connected then
        next_step=UNVERIFIED_NEXT_STEP if accounts.unverified else accounts_next_step(views, platform),
        sandbox=st.sandbox,
        unverified=accounts.unverified,
    )


@TOOLS.tool("read", "Get TikTok creator info", routes=("creator_info",))
async def get_creator_info(
    ctx: Context[Any, Any],
    account_id: Annotated[UuidId, Field(description="A TikTok account id from list_accounts.")],
    workspace_id: WorkspaceArg = None,
) -> CreatorInfoResult:
    """Before every TikTok post: the account's allowed privacy levels, disabled comment/duet/stitch, max
    video length. The user picks privacy_level from privacy_level_options (no default). Next:
    publish_content with dry_run=true."""
    st = state(ctx)
    ws = await st.client.resolve_workspace(workspace_id)
    info = await st.publisher.creator_info(account_id, workspace_id=ws)
    return CreatorInfoResult(account_id=account_id, **info.model_dump(include=set(CreatorInfoResult.model_fields)))

"""Workspaces, connected accounts and TikTok creator info (all read-only)."""

from __future__ import annotations

from typing import Annotated, Any

from mcp.server.mcpserver import Context
from pydantic import BaseModel, Field

from postqued.api.shape import Checked
from postqued.models import Platform
from tools.common import Toolset, UuidId, state

TOOLS = Toolset("accounts")

WorkspaceArg = Annotated[
    UuidId | None,
    Field(description="From list_workspaces; omit for the default."),
]


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
    sandbox: bool


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
    """List the workspaces this API key can use. Call first when a tool says the workspace is ambiguous;
    then pass workspace_id to the other tools."""
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
    """List connected social accounts (id, platform, username). Use the id as account_id in
    publish_content targets; for TikTok call get_creator_info next."""
    st = state(ctx)
    ws = await st.client.resolve_workspace(workspace_id)
    accounts = await st.client.list_accounts(platform, workspace_id=ws)
    return AccountsResult(
        accounts=[AccountView.model_validate(a, from_attributes=True) for a in accounts],
        workspace_id=ws,
        sandbox=st.sandbox,
        unverified=accounts.unverified,
    )


@TOOLS.tool("read", "Get TikTok creator info", routes=("creator_info",))
async def get_creator_info(
    ctx: Context[Any, Any],
    account_id: Annotated[UuidId, Field(description="A TikTok account id from list_accounts.")],
    workspace_id: WorkspaceArg = None,
) -> CreatorInfoResult:
    """Live TikTok limits for one account: allowed privacy levels, disabled comment/duet/stitch, max video
    length. Required before a direct TikTok post: pick privacy_level only from privacy_level_options, and ask
    the user which one (there is no default)."""
    st = state(ctx)
    ws = await st.client.resolve_workspace(workspace_id)
    info = await st.publisher.creator_info(account_id, workspace_id=ws)
    return CreatorInfoResult(account_id=account_id, **info.model_dump(include=set(CreatorInfoResult.model_fields)))

"""Admin operations: create a workspace, read capabilities, billing and usage, disconnect an account.

Answers (route map only, no schemas; one assumed name per field): a created workspace under ``workspace``;
billing ``{status, plan: {name}, currentPeriodEnd}``; capabilities ``{workspaceId, plan, capabilities}``;
usage ``{period: {start, end}, usage}``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pydantic import Field

from postqued.api.fields import obj, rest, success, text
from postqued.api.shape import Checked
from postqued.errors import WriteOutcomeUnknownError
from postqued.models import Workspace

if TYPE_CHECKING:
    from postqued.client import PostQuedClient


class Capabilities(Checked):
    workspace_id: str | None = None
    plan: str | None = None
    capabilities: dict[str, Any] = Field(default_factory=dict)


class BillingStatus(Checked):
    status: str | None = None
    plan: str | None = None
    current_period_end: str | None = None
    details: dict[str, Any] = Field(default_factory=dict)


class BillingUsage(Checked):
    period_start: str | None = None
    period_end: str | None = None
    usage: dict[str, Any] = Field(default_factory=dict)


async def create_workspace(client: PostQuedClient, organization_id: str, name: str) -> Workspace:
    answer = await client.call("workspace_create", organization_id, body={"name": name})
    client.forget_workspaces()  # the key now sees one more workspace
    data = obj(answer.body, "workspace")
    wid = text(data, "id")
    if not wid:
        raise WriteOutcomeUnknownError("PostQued created the workspace but its answer carried no id.")
    return Workspace(
        id=wid,
        name=text(data, "name") or name,
        organization_id=text(data, "organizationId") or organization_id,
        role=text(data, "role"),
    )


async def get_capabilities(client: PostQuedClient, workspace_id: str | None) -> Capabilities:
    scope = await client.scope(workspace_id)
    answer = await client.call("billing_capabilities", workspace_id=workspace_id)
    data = obj(answer.body)
    return Capabilities(
        workspace_id=text(data, "workspaceId") or scope.get("workspaceId"),
        plan=text(data, "plan"),
        capabilities=obj(data, "capabilities"),
        unverified=answer.unverified,
    )


async def get_billing(client: PostQuedClient, workspace_id: str | None) -> BillingStatus:
    answer = await client.call("billing", workspace_id=workspace_id)
    data = obj(answer.body)
    return BillingStatus(
        status=text(data, "status"),
        plan=text(obj(data, "plan"), "name"),
        current_period_end=text(data, "currentPeriodEnd"),
        details=rest(data, "status", "plan"),
        unverified=answer.unverified,
    )


async def get_usage(client: PostQuedClient, workspace_id: str | None) -> BillingUsage:
    answer = await client.call("billing_usage", workspace_id=workspace_id)
    data = obj(answer.body)
    period = obj(data, "period")
    return BillingUsage(
        period_start=text(period, "start"),
        period_end=text(period, "end"),
        usage=obj(data, "usage"),
        unverified=answer.unverified,
    )


async def disconnect_account(client: PostQuedClient, account_id: str, workspace_id: str | None) -> bool:
    return success((await client.call("integration_delete", account_id, workspace_id=workspace_id)).body)

"""Admin: creating a workspace, billing (plan, capabilities, usage), disconnecting an account."""

from __future__ import annotations

import dataclasses
import uuid
from datetime import timedelta
from typing import Any

from postqued.sandbox.common import ApiFail, iso
from postqued.sandbox.http import Ctx, Handler, Reply, by_name, json_reply, text_field
from postqued.sandbox.records import Workspace


async def workspace_create(ctx: Ctx) -> Reply:
    world = ctx.world
    if ctx.params["id"] != world.organization.id:
        raise ApiFail(403, "FORBIDDEN", "Organization access denied")
    name = text_field(ctx.json(), "name", limit=100)
    workspace = Workspace(str(uuid.uuid4()), name.strip(), "admin", world.organization.id)
    world.workspaces[workspace.id] = workspace
    data = {
        "id": workspace.id,
        "name": workspace.name,
        "organizationId": workspace.organization_id,
        "role": "admin",
    }
    return json_reply({"workspace": data}, 201)


async def billing(ctx: Ctx) -> Reply:
    if ctx.query("workspaceId") is not None:
        ctx.workspace()
    active = ctx.world.subscription_active
    now = ctx.now()
    return json_reply(
        {
            "status": "active" if active else "inactive",
            "plan": {"id": "sandbox_pro", "name": "Sandbox Pro"} if active else None,
            "currentPeriodEnd": iso(now.replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(days=30))
            if active
            else None,
            "cancelAtPeriodEnd": False,
        }
    )


async def billing_capabilities(ctx: Ctx) -> Reply:
    workspace = ctx.workspace()
    world, active = ctx.world, ctx.world.subscription_active
    members = [m for m in ctx.world.members_of(workspace.id).values() if m.status == "active"]
    features = ("apiAccess", "publishing", "analytics", "engagement", "approvals", "clientReview")
    capabilities: dict[str, Any] = {name: active for name in features}
    capabilities["collaborators"] = {"limit": 10 if active else 1, "used": len(members)}
    capabilities["workspaces"] = {"limit": 5 if active else 1, "used": len(world.workspaces)}
    return json_reply(
        {"workspaceId": workspace.id, "plan": "sandbox_pro" if active else None, "capabilities": capabilities}
    )


async def billing_usage(ctx: Ctx) -> Reply:
    workspace = ctx.workspace()
    world, now = ctx.world, ctx.now()
    start = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    requests = [r for r in world.publish_requests.values() if r.workspace_id == workspace.id]
    uploads = [c for c in world.contents.values() if c.workspace_id == workspace.id and c.status == "ready"]
    return json_reply(
        {
            "workspaceId": workspace.id,
            "period": {"start": iso(start), "end": iso((start + timedelta(days=32)).replace(day=1))},
            "usage": {
                "publishRequests": len(requests),
                "publishTargets": sum(len(r.targets) for r in requests),
                "uploads": len(uploads),
                "connectedAccounts": len(world.accounts_in(workspace.id)),
                "collaborators": len(ctx.world.members_of(workspace.id)),
            },
        }
    )


async def integration_delete(ctx: Ctx) -> Reply:
    workspace = ctx.workspace()
    world = ctx.world
    account = world.account_in(workspace.id, ctx.params["id"])
    # Detached, not deleted: targets that already reference it still resolve inside the simulator.
    world.accounts[account.id] = dataclasses.replace(account, workspace_id="")
    return json_reply({"success": True})


HANDLERS: dict[str, Handler] = by_name(
    workspace_create, billing, billing_capabilities, billing_usage, integration_delete
)

"""System and accounts: ping, the key's context, connected accounts (v2 and v1), TikTok creator info."""

from __future__ import annotations

from postqued.sandbox.common import ApiFail, stable_id
from postqued.sandbox.http import Ctx, Handler, Reply, by_name, json_reply


async def ping(ctx: Ctx) -> Reply:
    return json_reply({"pong": "it worked!"})


async def context(ctx: Ctx) -> Reply:
    world = ctx.world
    org = world.organization
    return json_reply(
        {
            "principal": {
                "type": "api_key",
                "id": stable_id("api-key"),
                "name": "Sandbox key",
                "keyPrefix": ctx.api_key[:11],
                "organizationId": org.id,
            },
            "organizations": [
                {
                    "id": org.id,
                    "name": org.name,
                    "workspaces": [{"id": w.id, "name": w.name, "role": w.role} for w in world.workspaces.values()],
                }
            ],
        }
    )


async def integrations(ctx: Ctx) -> Reply:
    accounts = ctx.world.accounts_in(ctx.workspace().id, ctx.query("platform"))
    return json_reply({"accounts": [a.to_api() for a in accounts]})


async def creator_info(ctx: Ctx) -> Reply:
    account = ctx.world.account_in(ctx.workspace().id, ctx.params["id"])
    if account.platform != "tiktok":
        raise ApiFail(
            400, "UNSUPPORTED_PLATFORM", f"Creator info exists for TikTok accounts only, not {account.platform}"
        )
    return json_reply({"creatorInfo": account.creator_info()})


async def v1_platform_accounts(ctx: Ctx) -> Reply:
    """Exactly as the original v1 skill documents it: ``{"accounts": [{"id", "username"}]}``, no platform."""
    accounts = ctx.world.accounts_in(ctx.workspace().id, ctx.query("platform"))
    return json_reply({"accounts": [{"id": a.id, "username": a.username} for a in accounts]})


HANDLERS: dict[str, Handler] = by_name(ping, context, integrations, creator_info, v1_platform_accounts)

"""Publishing: publish (live with an Idempotency-Key, or a v2 dry run), list, status, cancel, reschedule, delete."""

from __future__ import annotations

import asyncio
import hashlib
import json
from typing import Any

from postqued.sandbox.common import IDEMPOTENCY_TTL, ApiFail, iso, parse_time
from postqued.sandbox.http import Ctx, Handler, Reply, by_name, json_reply
from postqued.sandbox.records import IdempotencyRecord, PublishRequest
from postqued.sandbox.validation import parse_publish


def _canonical_digest(body: dict[str, Any]) -> str:
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


async def publish(ctx: Ctx) -> Reply:
    """v2 and v1: a live publish needs an Idempotency-Key; a same-key retry replays the first answer."""
    world, workspace, version = ctx.world, ctx.workspace(), ctx.spec.version
    if not world.subscription_active:
        raise ApiFail(402, "SUBSCRIPTION_REQUIRED", "This workspace's plan does not include API publishing")
    body = ctx.json()
    if version == "v2" and body.get("dryRun") is True:
        parsed = parse_publish(body, world=world, workspace_id=workspace.id, now=ctx.now(), api_version=version)
        return json_reply(
            {
                "dryRun": True,
                "valid": True,
                "targets": [
                    {
                        "platform": t.platform,
                        "accountId": t.account_id,
                        "intent": t.intent,
                        "dispatchAt": iso(t.dispatch_at),
                        "valid": True,
                    }
                    for t in parsed.targets
                ],
            }
        )
    key = ctx.request.headers.get("idempotency-key")
    if not key:
        raise ApiFail(400, "MISSING_IDEMPOTENCY_KEY", "A live publish needs an Idempotency-Key header")
    scope = (world.organization.id, version, key)
    lock_key = (id(asyncio.get_running_loop()), *scope)
    lock = world.idempotency_locks.setdefault(lock_key, asyncio.Lock())
    async with lock:
        now = ctx.now()
        digest = _canonical_digest(body)
        record = world.idempotency.get(scope)
        if record is not None and now - record.created_at < IDEMPOTENCY_TTL:
            if record.digest != digest:
                raise ApiFail(
                    409,
                    "IDEMPOTENCY_CONFLICT",
                    "This Idempotency-Key was already used with a different request body",
                )
            return Reply(record.status, record.body, {"Idempotent-Replayed": "true"})
        parsed = parse_publish(body, world=world, workspace_id=workspace.id, now=now, api_version=version)
        # A storage round trip would sit here; without the lock a same-key request could slip in.
        await asyncio.sleep(0)
        request = world.create_publish(
            workspace_id=workspace.id,
            api_version=version,
            content_ids=parsed.content_ids,
            targets=parsed.targets,
            idempotency_key=key,
            body=body,
        )
        reply = json_reply(world.render_created(request, now))
        world.idempotency[scope] = IdempotencyRecord(digest, now, reply.status, reply.body, request.id)
        return reply


async def publish_list(ctx: Ctx) -> Reply:
    workspace = ctx.workspace()
    start_raw, end_raw = ctx.query("startDate"), ctx.query("endDate")
    start = end = None
    if (start_raw is None) != (end_raw is None):
        raise ApiFail(400, "INVALID_DATE_RANGE", "startDate and endDate must be given together")
    if start_raw is not None and end_raw is not None:
        start, end = parse_time(start_raw), parse_time(end_raw)
        if start is None or end is None:
            raise ApiFail(400, "INVALID_DATE_RANGE", "startDate and endDate must be ISO 8601 date-times with offset")
        if start > end:
            raise ApiFail(400, "INVALID_DATE_RANGE", "startDate must not be after endDate")
    world, now = ctx.world, ctx.now()

    def in_range(request: PublishRequest) -> bool:
        if start is None or end is None:
            return True
        times = [t.dispatch_at or request.created_at for t in request.targets]
        return any(start <= moment <= end for moment in times)

    requests = [
        r
        for r in world.publish_requests.values()
        if r.workspace_id == workspace.id and r.deleted_at is None and in_range(r)
    ]
    requests.sort(key=lambda r: r.created_at, reverse=True)
    return json_reply({"publishRequests": [world.render_request(r, now) for r in requests]})


async def publish_get(ctx: Ctx) -> Reply:
    workspace = ctx.workspace()
    request = ctx.world.request_in(workspace.id, ctx.params["id"])
    return json_reply({"publish": ctx.world.render_request(request, ctx.now())})


async def v1_publish_get(ctx: Ctx) -> Reply:
    workspace = ctx.workspace()
    world, now = ctx.world, ctx.now()
    request = world.request_in(workspace.id, ctx.params["id"])
    rendered = world.render_request(request, now)
    return json_reply(
        {
            "publishId": request.id,
            "status": rendered["status"],
            "createdAt": rendered["createdAt"],
            "targets": rendered["targets"],
        }
    )


async def publish_cancel(ctx: Ctx) -> Reply:
    workspace = ctx.workspace()
    world = ctx.world
    request = world.request_in(workspace.id, ctx.params["id"])
    canceled = world.cancel_request(request)
    return json_reply(
        {
            "success": True,
            "canceledTargetIds": canceled,
            "publish": world.render_request(request, ctx.now()),
        }
    )


async def target_cancel(ctx: Ctx) -> Reply:
    workspace = ctx.workspace()
    world = ctx.world
    _request, target = world.target_in(workspace.id, ctx.params["id"])
    world.cancel_target(target)
    return json_reply({"success": True, "target": world.render_target(target, ctx.now())})


async def target_reschedule(ctx: Ctx) -> Reply:
    workspace = ctx.workspace()
    body = ctx.json()
    world, now = ctx.world, ctx.now()
    _request, target = world.target_in(workspace.id, ctx.params["id"])
    if "dispatchAt" not in body:
        raise ApiFail(400, "INVALID_DISPATCH_AT", "dispatchAt is required: a future ISO 8601 time, or null")
    raw = body["dispatchAt"]
    dispatch_at = None
    if raw is not None:
        dispatch_at = parse_time(raw)
        if dispatch_at is None:
            raise ApiFail(400, "INVALID_DISPATCH_AT", "dispatchAt must be an ISO 8601 time with an offset, or null")
        if dispatch_at <= now:
            raise ApiFail(400, "INVALID_DISPATCH_AT", "dispatchAt must be in the future (or null for now)")
    world.reschedule_target(target, dispatch_at)
    return json_reply({"success": True, "target": world.render_target(target, now)})


async def publish_delete(ctx: Ctx) -> Reply:
    workspace = ctx.workspace()
    world = ctx.world
    request = world.request_in(workspace.id, ctx.params["id"])
    world.delete_request(request)
    return json_reply({"success": True})


HANDLERS: dict[str, Handler] = {
    **by_name(
        publish,
        publish_list,
        publish_get,
        v1_publish_get,
        publish_cancel,
        target_cancel,
        target_reschedule,
        publish_delete,
    ),
    "v1_publish": publish,
}

"""The content library: list, get, the file itself, update (filename, alt), delete."""

from __future__ import annotations

import math

from postqued.sandbox.common import ALT_MAX, ApiFail
from postqued.sandbox.http import Ctx, Handler, Reply, by_name, json_reply


async def content_list(ctx: Ctx) -> Reply:
    workspace = ctx.workspace()
    page = ctx.int_query("page", 1, 1, 1_000_000)
    per_page = ctx.int_query("perPage", 24, 1, 60)
    media_type = ctx.query("mediaType") or "all"
    if media_type not in ("all", "image", "video"):
        raise ApiFail(400, "VALIDATION_ERROR", "mediaType: must be all, image or video")
    search = (ctx.query("search") or "").lower()
    items = [
        a
        for a in ctx.world.contents.values()
        if a.workspace_id == workspace.id
        and a.status == "ready"
        and (media_type == "all" or a.media_type == media_type)
        and search in a.filename.lower()
    ]
    items.sort(key=lambda a: (a.created_at, a.id), reverse=True)
    total = len(items)
    window = items[(page - 1) * per_page : page * per_page]
    return json_reply(
        {
            "content": [a.to_api(ctx.base_url) for a in window],
            "pagination": {
                "page": page,
                "perPage": per_page,
                "total": total,
                "pages": math.ceil(total / per_page),
            },
        }
    )


async def content_get(ctx: Ctx) -> Reply:
    workspace = ctx.workspace()
    asset = ctx.world.content_in(workspace.id, ctx.params["id"])
    return json_reply({"content": asset.to_api(ctx.base_url)})


async def content_file(ctx: Ctx) -> Reply:
    workspace = ctx.workspace()
    asset = ctx.world.content_in(workspace.id, ctx.params["id"])
    stored = ctx.storage.get(asset.key)
    if stored is None:
        raise ApiFail(404, "FILE_NOT_FOUND", "Content file not found")
    return Reply(200, media_type="application/octet-stream", file=stored.path)


async def content_update(ctx: Ctx) -> Reply:
    workspace = ctx.workspace()
    body = ctx.json()
    asset = ctx.world.content_in(workspace.id, ctx.params["id"])
    filename, alt = body.get("filename"), body.get("alt")
    if filename is None and alt is None:
        raise ApiFail(400, "EMPTY_UPDATE", "Nothing to update: give filename and/or alt")
    if filename is not None and (not isinstance(filename, str) or not filename.strip()):
        raise ApiFail(400, "VALIDATION_ERROR", "filename: must be a non-empty string")
    if alt is not None and (not isinstance(alt, str) or len(alt) > ALT_MAX):
        raise ApiFail(400, "VALIDATION_ERROR", f"alt: must be a string of at most {ALT_MAX} characters")
    if isinstance(filename, str):
        asset.filename = filename
    if isinstance(alt, str):
        asset.alt = alt
    return json_reply({"content": asset.to_api(ctx.base_url)})


async def content_delete(ctx: Ctx) -> Reply:
    workspace = ctx.workspace()
    asset = ctx.world.content_in(workspace.id, ctx.params["id"], ready_only=False)
    asset.status = "deleted"
    return json_reply({"success": True})


HANDLERS: dict[str, Handler] = by_name(content_list, content_get, content_file, content_update, content_delete)

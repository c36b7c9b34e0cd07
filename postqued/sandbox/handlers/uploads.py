"""Uploads: the presigned upload session (v2 and v1), the storage PUT, completion, and v1's multipart image."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from starlette.datastructures import UploadFile

from postqued.sandbox.common import (
    IMAGE_MAX_BYTES,
    IMAGE_MAX_SIDE,
    MIME_TYPES,
    UPLOAD_URL_TTL_SECONDS,
    VIDEO_MAX_BYTES,
    ApiFail,
    iso,
)
from postqued.sandbox.http import Ctx, Drop, Handler, Reply, by_name, json_reply, optional_int, required_str
from postqued.sandbox.records import ContentAsset
from postqued.sandbox.storage import image_dimensions, same_family, sniff_mime


async def content_upload(ctx: Ctx) -> Reply:
    workspace = ctx.workspace()
    body = ctx.json()
    filename = required_str(body, "filename")
    content_type = required_str(body, "contentType")
    if content_type not in MIME_TYPES:
        raise ApiFail(
            400,
            "UNSUPPORTED_MEDIA_TYPE",
            f"contentType {content_type!r} is not supported; allowed: {', '.join(MIME_TYPES)}",
        )
    file_size = optional_int(body, "fileSize")
    media_type, extension = MIME_TYPES[content_type]
    limit = VIDEO_MAX_BYTES if media_type == "video" else IMAGE_MAX_BYTES
    if file_size is not None and file_size > limit:
        raise ApiFail(400, "FILE_TOO_LARGE", f"fileSize {file_size} exceeds the {media_type} limit of {limit} bytes")

    now = ctx.now()
    content_id = str(uuid.uuid4())
    key = f"content/{workspace.id}/{content_id}{extension}"
    expires = int(now.timestamp()) + UPLOAD_URL_TTL_SECONDS
    if ctx.faults.take("expire_upload_url", ctx.spec.name):
        ctx.entry.faults.append("expire_upload_url")
        expires = int(now.timestamp()) - 1
    ctx.world.contents[content_id] = ContentAsset(
        id=content_id,
        workspace_id=workspace.id,
        key=key,
        filename=filename,
        mime_type=content_type,
        declared_size=file_size,
        created_at=now,
    )
    url = ctx.storage.presigned_url(ctx.base_url, key, content_type, expires)
    upload: dict[str, Any] = {"url": url, "method": "PUT", "headers": {"Content-Type": content_type}}
    if ctx.spec.version == "v2":  # v1 answers exactly as the original skill documents it: no key, no expiry
        upload.update(key=key, expiresAt=iso(datetime.fromtimestamp(expires, UTC)))
    return json_reply({"contentId": content_id, "upload": upload})


async def storage_put(ctx: Ctx) -> Reply:
    request, entry = ctx.request, ctx.entry
    key = ctx.params["key"]
    if "authorization" in request.headers:
        raise ApiFail(
            403,
            "AUTH_HEADER_NOT_ALLOWED",
            "Presigned storage URLs must not receive an Authorization header (the API key leaked)",
        )
    content_type = request.headers.get("content-type", "")
    try:
        expires = int(ctx.query("expires") or "")
    except ValueError:
        expires = -1
    signature = ctx.query("signature") or ""
    if expires < 0 or not ctx.storage.verify(key, content_type, expires, signature):
        raise ApiFail(
            403,
            "SIGNATURE_MISMATCH",
            "The request signature does not match (URL altered, or Content-Type differs from the signed one)",
        )
    if ctx.now().timestamp() > expires:
        raise ApiFail(403, "EXPIRED", "The presigned URL has expired; start a new upload")
    length_header = request.headers.get("content-length")
    if length_header is None:
        raise ApiFail(411, "LENGTH_REQUIRED", "Content-Length is required")
    try:
        expected = int(length_header)
    except ValueError:
        raise ApiFail(400, "INVALID_CONTENT_LENGTH", "Content-Length is not a number") from None

    reset = ctx.faults.take("reset_put", "storage_put")
    reset_at = int(reset.params["after_bytes"]) if reset is not None else None
    if reset_at is not None and reset_at <= 0:
        entry.faults.append("reset_put")
        raise Drop(reset=True)
    writer = ctx.storage.writer(key, content_type)
    try:
        async for chunk in request.stream():
            if reset_at is not None and writer.size + len(chunk) >= reset_at:
                writer.write(chunk[: reset_at - writer.size])
                entry.body_size = writer.size
                entry.faults.append("reset_put")
                raise Drop(reset=True)
            writer.write(chunk)
            if writer.size > expected:
                break
    except BaseException:
        writer.abort()
        raise
    entry.body_size = writer.size
    if writer.size != expected:
        writer.abort()
        raise ApiFail(400, "INCOMPLETE_BODY", f"Received {writer.size} bytes but Content-Length said {expected}")
    stored = writer.commit()
    return Reply(200, b"", {"ETag": f'"{stored.sha256[:32]}"'}, media_type=None)


async def content_complete(ctx: Ctx) -> Reply:
    workspace = ctx.workspace()
    body = ctx.json()
    content_id = required_str(body, "contentId")
    key = required_str(body, "key")
    filename = required_str(body, "filename")
    content_type = required_str(body, "contentType")
    size = optional_int(body, "size")
    width = optional_int(body, "width")
    height = optional_int(body, "height")
    duration_ms = optional_int(body, "durationMs")

    asset = ctx.world.contents.get(content_id)
    if asset is None or asset.workspace_id != workspace.id or asset.status == "deleted":
        raise ApiFail(404, "NOT_FOUND", "Content not found")
    if key != asset.key:
        raise ApiFail(400, "KEY_MISMATCH", "key does not belong to this contentId")
    if content_type != asset.mime_type:
        raise ApiFail(400, "TYPE_MISMATCH", f"contentType {content_type} differs from the upload's {asset.mime_type}")
    if asset.status == "ready":  # a repeated complete returns the same ready asset
        return json_reply({"content": asset.to_api(ctx.base_url)})
    stored = ctx.storage.get(key)
    if stored is None:
        raise ApiFail(404, "FILE_NOT_FOUND", "Uploaded file not found: PUT the bytes to upload.url first")
    sniffed = sniff_mime(stored.head)
    if not same_family(asset.mime_type, sniffed):
        raise ApiFail(
            400,
            "TYPE_MISMATCH",
            f"The stored bytes are {sniffed or 'not a supported media type'}, not {asset.mime_type}",
        )
    if size is not None and size != stored.size:
        raise ApiFail(400, "SIZE_MISMATCH", f"size {size} differs from the {stored.size} bytes stored")
    limit = VIDEO_MAX_BYTES if asset.media_type == "video" else IMAGE_MAX_BYTES
    if stored.size > limit:
        raise ApiFail(400, "FILE_TOO_LARGE", f"The stored file exceeds the {asset.media_type} limit of {limit} bytes")
    if asset.media_type == "image":
        measured = image_dimensions(stored.path, asset.mime_type)
        if measured is not None:
            width, height = measured
        if max(width or 0, height or 0) > IMAGE_MAX_SIDE:
            raise ApiFail(
                400,
                "DIMENSIONS_TOO_LARGE",
                f"Image is {width}x{height} px; at most {IMAGE_MAX_SIDE} px on a side",
            )
        duration_ms = None
    asset.status = "ready"
    asset.filename = filename
    asset.size = stored.size
    asset.width, asset.height, asset.duration_ms = width, height, duration_ms
    return json_reply({"content": asset.to_api(ctx.base_url)})


async def v1_upload_image(ctx: Ctx) -> Reply:
    workspace = ctx.workspace()
    try:
        form = await ctx.request.form()
    except Exception:  # malformed multipart: python-multipart raises several types
        raise ApiFail(400, "VALIDATION_ERROR", "The body must be multipart/form-data with a 'file' field") from None
    try:
        upload = form.get("file")
        if not isinstance(upload, UploadFile):
            raise ApiFail(400, "VALIDATION_ERROR", "file: the multipart field 'file' is required")
        source = upload.file
        head = source.read(64)
        source.seek(0, 2)
        size = source.tell()
        source.seek(0)
        mime = sniff_mime(head)
        if mime is None or MIME_TYPES[mime][0] != "image":
            raise ApiFail(
                400, "UNSUPPORTED_MEDIA_TYPE", "file: only JPEG, PNG, WebP or GIF images can be uploaded here"
            )
        if size > IMAGE_MAX_BYTES:
            raise ApiFail(400, "FILE_TOO_LARGE", f"file: {size} bytes exceeds the image limit of {IMAGE_MAX_BYTES}")
        content_id = str(uuid.uuid4())
        key = f"content/{workspace.id}/{content_id}{MIME_TYPES[mime][1]}"
        stored = ctx.storage.put_file(key, mime, source)
    finally:
        await form.close()
    dims = image_dimensions(stored.path, mime)
    if dims is not None and max(dims) > IMAGE_MAX_SIDE:
        raise ApiFail(400, "DIMENSIONS_TOO_LARGE", f"Image is {dims[0]}x{dims[1]} px; at most {IMAGE_MAX_SIDE} px")
    asset = ContentAsset(
        id=content_id,
        workspace_id=workspace.id,
        key=key,
        filename=upload.filename or f"image{MIME_TYPES[mime][1]}",
        mime_type=mime,
        declared_size=size,
        created_at=ctx.now(),
        status="ready",
        size=stored.size,
        width=dims[0] if dims else None,
        height=dims[1] if dims else None,
    )
    ctx.world.contents[content_id] = asset
    return json_reply({"contentId": content_id, "content": asset.to_api(ctx.base_url)})


HANDLERS: dict[str, Handler] = {
    **by_name(content_upload, storage_put, content_complete, v1_upload_image),
    "v1_content_upload": content_upload,
    "v1_content_complete": content_complete,
}

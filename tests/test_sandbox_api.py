"""The sandbox's own semantics, through plain httpx against the in-process transport.

Every test builds a fresh ``Sandbox`` on a ``ManualClock`` so state, limits and time are its own.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
import struct
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from typing import Any

import httpx
import pytest

from postqued.clock import ManualClock
from postqued.sandbox import SANDBOX_API_KEY, Sandbox
from postqued.sandbox.common import iso

BASE = "http://sandbox.test"
AUTH = {"Authorization": f"Bearer {SANDBOX_API_KEY}"}


# ---------------------------------------------------------------------------------------------------------
# Media bytes that pass (or deliberately fail) the sandbox's sniffing


def mp4_bytes(size: int = 4096) -> bytes:
    head = b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom"
    return head + bytes(size - len(head))


def png_bytes(width: int, height: int) -> bytes:
    ihdr = struct.pack(">II", width, height) + b"\x08\x02\x00\x00\x00"
    return b"\x89PNG\r\n\x1a\n" + struct.pack(">I", 13) + b"IHDR" + ihdr + b"\x00\x00\x00\x00" + bytes(64)


def jpeg_bytes(width: int, height: int) -> bytes:
    app0 = b"\xff\xe0" + struct.pack(">H", 16) + b"JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00"
    sof0 = b"\xff\xc0" + struct.pack(">HBHHB", 17, 8, height, width, 3) + bytes(9)
    return b"\xff\xd8" + app0 + sof0 + b"\xff\xd9"


def gif_bytes(width: int, height: int) -> bytes:
    return b"GIF89a" + struct.pack("<HH", width, height) + b"\x00\x00\x00" + bytes(32) + b";"


def webp_bytes(width: int, height: int) -> bytes:
    vp8x = b"VP8X" + struct.pack("<I", 10) + b"\x00\x00\x00\x00"
    vp8x += (width - 1).to_bytes(3, "little") + (height - 1).to_bytes(3, "little")
    return b"RIFF" + struct.pack("<I", 4 + len(vp8x)) + b"WEBP" + vp8x


# ---------------------------------------------------------------------------------------------------------
# Fixtures and helpers


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def sb(clock: ManualClock) -> Iterator[Sandbox]:
    sandbox = Sandbox(clock=clock)
    yield sandbox
    sandbox.close()


@pytest.fixture
async def api(sb: Sandbox) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=sb.transport(), base_url=BASE, headers=AUTH) as client:
        yield client


@pytest.fixture
async def storage(sb: Sandbox) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=sb.transport()) as client:
        yield client


async def start_upload(
    api: httpx.AsyncClient, sb: Sandbox, data: bytes, content_type: str, filename: str
) -> dict[str, Any]:
    response = await api.post(
        "/v2/content/upload",
        json={"filename": filename, "contentType": content_type, "fileSize": len(data), "workspaceId": sb.workspace_id},
    )
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


async def complete(api: httpx.AsyncClient, sb: Sandbox, started: dict[str, Any], **extra: Any) -> httpx.Response:
    upload = started["upload"]
    body = {
        "contentId": started["contentId"],
        "key": upload["key"],
        "filename": extra.pop("filename", "file"),
        "contentType": upload["headers"]["Content-Type"],
        "workspaceId": sb.workspace_id,
        **extra,
    }
    return await api.post("/v2/content/upload/complete", json=body)


async def upload(
    api: httpx.AsyncClient,
    storage: httpx.AsyncClient,
    sb: Sandbox,
    data: bytes | None = None,
    content_type: str = "video/mp4",
    filename: str = "clip.mp4",
    duration_ms: int | None = 12_000,
) -> dict[str, Any]:
    """The whole three-step upload; returns the ready ContentAsset."""
    data = mp4_bytes() if data is None else data
    started = await start_upload(api, sb, data, content_type, filename)
    put = await storage.put(started["upload"]["url"], content=data, headers=started["upload"]["headers"])
    assert put.status_code == 200, put.text
    extra: dict[str, Any] = {"filename": filename, "size": len(data)}
    if duration_ms is not None and content_type.startswith("video/"):
        extra["durationMs"] = duration_ms
    done = await complete(api, sb, started, **extra)
    assert done.status_code == 200, done.text
    content: dict[str, Any] = done.json()["content"]
    return content


def tiktok_target(account_id: str, **overrides: Any) -> dict[str, Any]:
    target: dict[str, Any] = {
        "platform": "tiktok",
        "accountId": account_id,
        "intent": "publish",
        "caption": "Hello from the sandbox #test",
        "dispatchAt": None,
        "options": {"privacyLevel": "SELF_ONLY"},
    }
    target.update(overrides)
    return target


def publish_body(sb: Sandbox, content_ids: list[str], *targets: dict[str, Any]) -> dict[str, Any]:
    return {"workspaceId": sb.workspace_id, "contentIds": content_ids, "targets": list(targets)}


async def publish(api: httpx.AsyncClient, body: dict[str, Any], key: str = "key-1") -> httpx.Response:
    return await api.post("/v2/publish", json=body, headers={"Idempotency-Key": key})


async def status_of(api: httpx.AsyncClient, sb: Sandbox, publish_id: str) -> dict[str, Any]:
    response = await api.get(f"/v2/publish/{publish_id}", params={"workspaceId": sb.workspace_id})
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()["publish"]
    return result


def ws(sb: Sandbox) -> dict[str, str]:
    return {"workspaceId": sb.workspace_id}


# ---------------------------------------------------------------------------------------------------------
# Auth, scope, discovery


async def test_ping_needs_no_key_and_every_answer_is_marked(sb: Sandbox, api: httpx.AsyncClient) -> None:
    async with httpx.AsyncClient(transport=sb.transport(), base_url=BASE) as anonymous:
        pong = await anonymous.get("/v2/ping")
        refused = await anonymous.get("/v2/integrations", params=ws(sb))
        unknown = await anonymous.get("/v2/nothing-here")
    assert pong.status_code == 200 and pong.json() == {"pong": "it worked!"}
    assert refused.status_code == 401 and refused.json()["code"] == "UNAUTHORIZED"
    assert unknown.status_code == 404 and unknown.json()["code"] == "NOT_FOUND"
    for response in (pong, refused, unknown):
        assert response.headers["X-PostQued-Sandbox"] == "1"
    wrong_method = await api.put("/v2/publish")
    assert wrong_method.status_code == 405 and wrong_method.headers["X-PostQued-Sandbox"] == "1"


async def test_wrong_key_is_refused_and_the_ledger_never_keeps_it(sb: Sandbox) -> None:
    async with httpx.AsyncClient(
        transport=sb.transport(), base_url=BASE, headers={"Authorization": "Bearer pq_wrong_key_123456"}
    ) as client:
        response = await client.get("/v2/mcp/context")
    assert response.status_code == 401
    assert response.json() == {"error": "Invalid or revoked API key", "code": "UNAUTHORIZED"}
    entry = sb.requests("context")[0]
    assert entry.has_auth is True and entry.status == 401
    assert "pq_wrong_key" not in repr(entry) and SANDBOX_API_KEY not in repr(sb.ledger)
    assert sb.api_key == SANDBOX_API_KEY


async def test_context_lists_the_organisation_and_its_workspaces(clock: ManualClock) -> None:
    with Sandbox(clock=clock, extra_workspace=True) as sb:
        async with httpx.AsyncClient(transport=sb.transport(), base_url=BASE, headers=AUTH) as api:
            body = (await api.get("/v2/mcp/context")).json()
            extra = await api.get("/v2/integrations", params={"workspaceId": sb.extra_workspace_id})
    assert body["principal"]["organizationId"] == sb.organization_id
    [org] = body["organizations"]
    assert org["id"] == sb.organization_id
    assert [w["id"] for w in org["workspaces"]] == [sb.workspace_id, sb.extra_workspace_id]
    assert all({"id", "name", "role"} <= set(w) for w in org["workspaces"])
    assert [a["username"] for a in extra.json()["accounts"]] == ["@sandbox_client"]


async def test_ids_are_deterministic_across_sandboxes(sb: Sandbox) -> None:
    with Sandbox() as other:
        assert (other.workspace_id, other.organization_id, other.tiktok_public_id) == (
            sb.workspace_id,
            sb.organization_id,
            sb.tiktok_public_id,
        )
    assert len({sb.tiktok_public_id, sb.tiktok_private_id, sb.instagram_id}) == 3


@pytest.mark.parametrize(
    ("method", "path", "kwargs"),
    [
        ("GET", "/v2/integrations", {}),
        ("GET", "/v2/content", {}),
        ("GET", "/v2/publish", {}),
        ("POST", "/v2/content/upload", {"json": {"filename": "a.mp4", "contentType": "video/mp4"}}),
        ("POST", "/v2/publish/00000000-0000-0000-0000-000000000000/cancel", {}),
    ],
)
async def test_v2_requires_an_explicit_workspace(
    sb: Sandbox, api: httpx.AsyncClient, method: str, path: str, kwargs: dict[str, Any]
) -> None:
    missing = await api.request(method, path, **kwargs)
    assert missing.status_code == 400 and missing.json()["code"] == "MISSING_WORKSPACE_SCOPE"
    foreign = "11111111-2222-3333-4444-555555555555"
    if "json" in kwargs:
        kwargs = {"json": {**kwargs["json"], "workspaceId": foreign}}
    else:
        kwargs = {"params": {"workspaceId": foreign}}
    denied = await api.request(method, path, **kwargs)
    assert denied.status_code == 403 and denied.json()["code"] == "FORBIDDEN"


async def test_accounts_and_creator_info(sb: Sandbox, api: httpx.AsyncClient) -> None:
    accounts = (await api.get("/v2/integrations", params=ws(sb))).json()["accounts"]
    assert {(a["platform"], a["username"]) for a in accounts} == {
        ("tiktok", "@sandbox_creator"),
        ("tiktok", "@sandbox_private"),
        ("instagram", "@sandbox_insta"),
    }
    assert {a["id"] for a in accounts} == {a.id for a in sb.accounts}

    public = (await api.get(f"/v2/integrations/{sb.tiktok_public_id}/creator-info", params=ws(sb))).json()
    assert public["creatorInfo"]["privacy_level_options"] == [
        "PUBLIC_TO_EVERYONE",
        "MUTUAL_FOLLOW_FRIENDS",
        "SELF_ONLY",
    ]
    assert public["creatorInfo"]["max_video_post_duration_sec"] == 600
    assert public["creatorInfo"]["creator_username"] == "sandbox_creator"
    private = (await api.get(f"/v2/integrations/{sb.tiktok_private_id}/creator-info", params=ws(sb))).json()
    info = private["creatorInfo"]
    assert info["privacy_level_options"] == ["FOLLOWER_OF_CREATOR", "MUTUAL_FOLLOW_FRIENDS", "SELF_ONLY"]
    assert (info["duet_disabled"], info["stitch_disabled"], info["comment_disabled"]) == (True, True, False)
    assert info["max_video_post_duration_sec"] == 180

    insta = await api.get(f"/v2/integrations/{sb.instagram_id}/creator-info", params=ws(sb))
    assert insta.status_code == 400 and insta.json()["code"] == "UNSUPPORTED_PLATFORM"
    unknown = await api.get("/v2/integrations/00000000-0000-0000-0000-000000000000/creator-info", params=ws(sb))
    assert unknown.status_code == 404


async def test_v1_platform_accounts_filter_by_platform(api: httpx.AsyncClient) -> None:
    response = await api.get("/v1/platform-accounts", params={"platform": "tiktok"})
    assert response.status_code == 200
    assert sorted(a["username"] for a in response.json()["accounts"]) == ["@sandbox_creator", "@sandbox_private"]


# ---------------------------------------------------------------------------------------------------------
# Uploads


async def test_upload_flow_stores_the_bytes_and_makes_the_asset_ready(
    sb: Sandbox, api: httpx.AsyncClient, storage: httpx.AsyncClient
) -> None:
    data = mp4_bytes(10_000)
    started = await start_upload(api, sb, data, "video/mp4", "clip.mp4")
    up = started["upload"]
    assert up["method"] == "PUT" and up["headers"] == {"Content-Type": "video/mp4"}
    assert up["url"].startswith(f"{BASE}/_storage/{up['key']}?expires=")
    assert sb.contents[started["contentId"]].status == "processing"
    # not listed or gettable before complete
    assert (await api.get(f"/v2/content/{started['contentId']}", params=ws(sb))).status_code == 404

    put = await storage.put(up["url"], content=data, headers=up["headers"])
    assert put.status_code == 200
    assert sb.storage_sha256(up["key"]) == hashlib.sha256(data).hexdigest()
    assert sb.storage_size(up["key"]) == len(data)

    done = await complete(api, sb, started, filename="clip.mp4", size=len(data), durationMs=12_000)
    content = done.json()["content"]
    assert content["status"] == "ready" and content["mediaType"] == "video" and content["size"] == len(data)
    assert content["durationMs"] == 12_000 and content["url"] == f"{BASE}/v2/content/{content['id']}/file"
    again = await complete(api, sb, started, filename="clip.mp4")
    assert again.status_code == 200 and again.json()["content"] == content

    fetched = await api.get(f"/v2/content/{content['id']}", params=ws(sb))
    assert fetched.json()["content"] == content
    file = await api.get(f"/v2/content/{content['id']}/file", params=ws(sb))
    assert file.content == data


@pytest.mark.parametrize(
    ("content_type", "size", "code"),
    [
        ("application/pdf", 10, "UNSUPPORTED_MEDIA_TYPE"),
        ("video/x-msvideo", 10, "UNSUPPORTED_MEDIA_TYPE"),
        ("video/mp4", 4 * 1024**3 + 1, "FILE_TOO_LARGE"),
        ("image/png", 20 * 1024**2 + 1, "FILE_TOO_LARGE"),
    ],
)
async def test_upload_start_checks_type_and_size(
    sb: Sandbox, api: httpx.AsyncClient, content_type: str, size: int, code: str
) -> None:
    response = await api.post(
        "/v2/content/upload",
        json={"filename": "x", "contentType": content_type, "fileSize": size, "workspaceId": sb.workspace_id},
    )
    assert response.status_code == 400 and response.json()["code"] == code
    assert sb.contents == {}


async def test_upload_start_at_the_limit_is_accepted(sb: Sandbox, api: httpx.AsyncClient) -> None:
    response = await api.post(
        "/v2/content/upload",
        json={"filename": "x.mp4", "contentType": "video/mp4", "fileSize": 4 * 1024**3, "workspaceId": sb.workspace_id},
    )
    assert response.status_code == 200
    missing = await api.post("/v2/content/upload", json={"contentType": "video/mp4", "workspaceId": sb.workspace_id})
    assert missing.status_code == 400 and "filename" in missing.json()["error"]


async def test_storage_refuses_bad_puts_and_stores_nothing(
    sb: Sandbox, clock: ManualClock, api: httpx.AsyncClient, storage: httpx.AsyncClient
) -> None:
    data = mp4_bytes()
    started = await start_upload(api, sb, data, "video/mp4", "clip.mp4")
    url, key = started["upload"]["url"], started["upload"]["key"]
    headers = started["upload"]["headers"]

    leaked = await storage.put(url, content=data, headers={**headers, **AUTH})
    assert leaked.status_code == 403 and leaked.json()["code"] == "AUTH_HEADER_NOT_ALLOWED"
    assert sb.requests("storage_put")[-1].has_auth is True

    tampered = await storage.put(url.replace("signature=", "signature=0"), content=data, headers=headers)
    assert tampered.status_code == 403 and tampered.json()["code"] == "SIGNATURE_MISMATCH"
    other_type = await storage.put(url, content=data, headers={"Content-Type": "video/webm"})
    assert other_type.status_code == 403 and other_type.json()["code"] == "SIGNATURE_MISMATCH"

    async def chunks() -> AsyncIterator[bytes]:
        yield data

    no_length = await storage.put(url, content=chunks(), headers=headers)
    assert no_length.status_code == 411

    short = await storage.put(url, content=data[:100], headers={**headers, "Content-Length": str(len(data))})
    assert short.status_code == 400 and short.json()["code"] == "INCOMPLETE_BODY"
    assert sb.storage_sha256(key) is None

    clock.advance(3601)
    expired = await storage.put(url, content=data, headers=headers)
    assert expired.status_code == 403 and expired.json()["code"] == "EXPIRED"
    assert sb.storage_size(key) is None
    assert all(e.status in (400, 403, 411) for e in sb.requests("storage_put"))


async def test_complete_refusals(sb: Sandbox, api: httpx.AsyncClient, storage: httpx.AsyncClient) -> None:
    data = mp4_bytes()
    started = await start_upload(api, sb, data, "video/mp4", "clip.mp4")
    not_uploaded = await complete(api, sb, started)
    assert not_uploaded.status_code == 404 and not_uploaded.json()["code"] == "FILE_NOT_FOUND"

    unknown = await complete(api, sb, {**started, "contentId": "00000000-0000-0000-0000-000000000000"})
    assert unknown.status_code == 404

    await storage.put(started["upload"]["url"], content=data, headers=started["upload"]["headers"])
    other = await start_upload(api, sb, data, "video/mp4", "other.mp4")
    wrong_key = await complete(api, sb, {**started, "upload": other["upload"]})
    assert wrong_key.status_code == 400 and wrong_key.json()["code"] == "KEY_MISMATCH"
    assert sb.contents[started["contentId"]].status == "processing"


async def test_complete_sniffs_the_stored_bytes(
    sb: Sandbox, api: httpx.AsyncClient, storage: httpx.AsyncClient
) -> None:
    png = png_bytes(100, 100)
    started = await start_upload(api, sb, png, "video/mp4", "fake.mp4")
    await storage.put(started["upload"]["url"], content=png, headers=started["upload"]["headers"])
    response = await complete(api, sb, started)
    assert response.status_code == 400 and response.json()["code"] == "TYPE_MISMATCH"


@pytest.mark.parametrize(
    ("content_type", "maker"),
    [("image/png", png_bytes), ("image/jpeg", jpeg_bytes), ("image/gif", gif_bytes), ("image/webp", webp_bytes)],
)
async def test_image_dimensions_are_measured_and_bounded(
    sb: Sandbox, api: httpx.AsyncClient, storage: httpx.AsyncClient, content_type: str, maker: Any
) -> None:
    content = await upload(api, storage, sb, maker(1080, 1350), content_type, "photo")
    assert (content["width"], content["height"], content["mediaType"]) == (1080, 1350, "image")

    huge = maker(5000, 100)
    started = await start_upload(api, sb, huge, content_type, "huge")
    await storage.put(started["upload"]["url"], content=huge, headers=started["upload"]["headers"])
    refused = await complete(api, sb, started, width=10, height=10)  # the file's own header wins
    assert refused.status_code == 400 and refused.json()["code"] == "DIMENSIONS_TOO_LARGE"


async def test_content_list_pagination_search_and_media_type(
    sb: Sandbox, api: httpx.AsyncClient, storage: httpx.AsyncClient, clock: ManualClock
) -> None:
    for name in ("beach.mp4", "city.mp4", "beach-night.mp4"):
        await upload(api, storage, sb, filename=name)
        clock.advance(1)
    await upload(api, storage, sb, png_bytes(10, 10), "image/png", "beach.png")
    await start_upload(api, sb, mp4_bytes(), "video/mp4", "pending.mp4")  # never completed

    page = (await api.get("/v2/content", params={**ws(sb), "perPage": 2, "page": 2})).json()
    assert page["pagination"] == {"page": 2, "perPage": 2, "total": 4, "pages": 2}
    assert len(page["content"]) == 2
    everything = (await api.get("/v2/content", params=ws(sb))).json()["content"]
    assert [c["filename"] for c in everything] == ["beach.png", "beach-night.mp4", "city.mp4", "beach.mp4"]
    beach_videos = (await api.get("/v2/content", params={**ws(sb), "search": "BEACH", "mediaType": "video"})).json()
    assert sorted(c["filename"] for c in beach_videos["content"]) == ["beach-night.mp4", "beach.mp4"]
    bad = await api.get("/v2/content", params={**ws(sb), "perPage": 61})
    assert bad.status_code == 400


async def test_update_and_soft_delete(sb: Sandbox, api: httpx.AsyncClient, storage: httpx.AsyncClient) -> None:
    content = await upload(api, storage, sb)
    path = f"/v2/content/{content['id']}"
    empty = await api.patch(path, json={"workspaceId": sb.workspace_id})
    assert empty.status_code == 400 and empty.json()["code"] == "EMPTY_UPDATE"
    too_long = await api.patch(path, json={"workspaceId": sb.workspace_id, "alt": "x" * 501})
    assert too_long.status_code == 400
    updated = await api.patch(path, json={"workspaceId": sb.workspace_id, "alt": "a" * 500, "filename": "new.mp4"})
    assert updated.json()["content"]["filename"] == "new.mp4" and updated.json()["content"]["alt"] == "a" * 500

    deleted = await api.delete(path, params=ws(sb))
    assert deleted.status_code == 200 and deleted.json() == {"success": True}
    assert sb.contents[content["id"]].status == "deleted"
    assert (await api.get(path, params=ws(sb))).status_code == 404
    assert (await api.delete(path, params=ws(sb))).status_code == 404
    assert (await api.get("/v2/content", params=ws(sb))).json()["pagination"]["total"] == 0


async def test_v1_upload_flow_and_multipart_image(
    sb: Sandbox, api: httpx.AsyncClient, storage: httpx.AsyncClient
) -> None:
    data = mp4_bytes()
    started = await api.post(
        "/v1/content/upload", json={"filename": "v1.mp4", "contentType": "video/mp4", "fileSize": len(data)}
    )
    up = started.json()["upload"]
    # v1 answers as documented: no key; it stands in the URL as content/<user-id>/<content-id>.<ext>
    assert set(up) == {"url", "method", "headers"} and up["method"] == "PUT"
    key = re.search(r"content/[^/]+/[^/?]+", up["url"]).group(0)  # type: ignore[union-attr]
    assert (await storage.put(up["url"], content=data, headers=up["headers"])).status_code == 200
    done = await api.post(
        "/v1/content/upload/complete",
        json={
            "contentId": started.json()["contentId"],
            "key": key,
            "filename": "v1.mp4",
            "contentType": "video/mp4",
        },
    )
    assert done.status_code == 200 and done.json()["content"]["status"] == "ready"

    image = await api.post(
        "/v1/content/upload-image", files={"file": ("cover.jpg", jpeg_bytes(640, 480), "image/jpeg")}
    )
    assert image.status_code == 200, image.text
    body = image.json()
    assert body["contentId"] == body["content"]["id"]
    assert (body["content"]["width"], body["content"]["height"], body["content"]["status"]) == (640, 480, "ready")
    assert sb.storage_size(sb.contents[body["contentId"]].key) == len(jpeg_bytes(640, 480))
    assert sb.requests("v1_upload_image")[0].status == 200

    not_image = await api.post("/v1/content/upload-image", files={"file": ("x.mp4", data, "video/mp4")})
    assert not_image.status_code == 400 and not_image.json()["code"] == "UNSUPPORTED_MEDIA_TYPE"


async def test_streamed_64_mib_put_keeps_memory_flat(
    sb: Sandbox, api: httpx.AsyncClient, storage: httpx.AsyncClient
) -> None:
    import tracemalloc

    total, chunk_size = 64 * 1024**2, 1024**2

    def chunk(i: int) -> bytes:
        return mp4_bytes(chunk_size) if i == 0 else bytes([i % 251]) * chunk_size

    expected = hashlib.sha256()
    for i in range(total // chunk_size):
        expected.update(chunk(i))
    started = await start_upload(api, sb, b"", "video/mp4", "big.mp4")

    async def generate() -> AsyncIterator[bytes]:
        for i in range(total // chunk_size):
            yield chunk(i)

    tracemalloc.start()
    try:
        response = await storage.put(
            started["upload"]["url"],
            content=generate(),
            headers={**started["upload"]["headers"], "Content-Length": str(total)},
        )
        _current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert response.status_code == 200, response.text
    assert sb.storage_size(started["upload"]["key"]) == total
    assert sb.storage_sha256(started["upload"]["key"]) == expected.hexdigest()
    assert peak < 16 * 1024**2, f"peak traced memory {peak} bytes"
    assert sb.requests("storage_put")[0].body == b"" and sb.requests("storage_put")[0].body_size == total


# ---------------------------------------------------------------------------------------------------------
# Publish: validation, dry run, idempotency


async def test_dry_run_validates_without_state_or_key(
    sb: Sandbox, api: httpx.AsyncClient, storage: httpx.AsyncClient, clock: ManualClock
) -> None:
    content = await upload(api, storage, sb)
    later = iso(clock.now() + timedelta(hours=2))
    body = publish_body(
        sb,
        [content["id"]],
        tiktok_target(sb.tiktok_public_id, dispatchAt=later),
        tiktok_target(sb.tiktok_private_id, intent="draft", options={}),
    )
    response = await api.post("/v2/publish", json={**body, "dryRun": True})
    assert response.status_code == 200
    assert response.json() == {
        "dryRun": True,
        "valid": True,
        "targets": [
            {
                "platform": "tiktok",
                "accountId": sb.tiktok_public_id,
                "intent": "publish",
                "dispatchAt": later,
                "valid": True,
            },
            {
                "platform": "tiktok",
                "accountId": sb.tiktok_private_id,
                "intent": "draft",
                "dispatchAt": None,
                "valid": True,
            },
        ],
    }
    assert sb.publish_requests == {} and sb.world.idempotency == {}


def _video(sb: Sandbox, duration_ms: int = 12_000) -> str:
    """A ready video asset created directly in state (for validation tests that need many variants)."""
    from postqued.sandbox.records import ContentAsset

    asset = ContentAsset(
        id=f"00000000-0000-4000-8000-{len(sb.contents):012d}",
        workspace_id=sb.workspace_id,
        key="content/x.mp4",
        filename="x.mp4",
        mime_type="video/mp4",
        declared_size=10,
        created_at=sb.clock.now(),
        status="ready",
        size=10,
        duration_ms=duration_ms,
    )
    sb.contents[asset.id] = asset
    return asset.id


VALIDATION_CASES: list[tuple[str, Any, str, str]] = [
    # (case id, mutation(body, sb) -> body, expected code, text the message must contain)
    ("privacy not offered", lambda b, sb: _tt(b, sb.tiktok_private_id, privacyLevel="PUBLIC_TO_EVERYONE"),
     "PRIVACY_LEVEL_OPTION_MISMATCH", "targets[0].options.privacyLevel"),
    ("privacy missing", lambda b, sb: _tt(b, sb.tiktok_public_id, privacyLevel=None),
     "VALIDATION_ERROR", "targets[0].options.privacyLevel"),
    ("branded private", lambda b, sb: _tt(b, sb.tiktok_public_id, brandContentToggle=True),
     "BRANDED_CONTENT_PRIVATE", "branded"),
    ("duet on disabled", lambda b, sb: _tt(b, sb.tiktok_private_id, disableDuet=False),
     "VALIDATION_ERROR", "targets[0].options.disableDuet"),
    ("too long for private", lambda b, sb: {**b, "contentIds": [_video(sb, 181_000)]} | _acct(b, sb.tiktok_private_id),
     "VALIDATION_ERROR", "at most 180 s"),
    ("caption over 2200", lambda b, sb: _set(b, caption="x" * 2201), "VALIDATION_ERROR", "targets[0].caption"),
    ("empty caption", lambda b, sb: _set(b, caption=""), "VALIDATION_ERROR", "targets[0].caption"),
    ("eleven targets", lambda b, sb: {**b, "targets": b["targets"] * 11}, "VALIDATION_ERROR", "targets"),
    ("no targets", lambda b, sb: {**b, "targets": []}, "VALIDATION_ERROR", "targets"),
    ("36 content ids", lambda b, sb: {**b, "contentIds": b["contentIds"] * 36}, "VALIDATION_ERROR", "contentIds"),
    ("unknown content", lambda b, sb: {**b, "contentIds": ["00000000-0000-0000-0000-00000000dead"]},
     "VALIDATION_ERROR", "contentIds[0]"),
    ("past dispatch", lambda b, sb: _set(b, dispatchAt=iso(sb.clock.now() - timedelta(seconds=1))),
     "VALIDATION_ERROR", "targets[0].dispatchAt"),
    ("naive dispatch", lambda b, sb: _set(b, dispatchAt="2030-01-01T10:00:00"), "VALIDATION_ERROR", "dispatchAt"),
    ("dispatch missing", lambda b, sb: _drop_key(b, "dispatchAt"), "VALIDATION_ERROR", "targets[0].dispatchAt"),
    ("bad intent", lambda b, sb: _set(b, intent="later"), "VALIDATION_ERROR", "targets[0].intent"),
    ("platform mismatch", lambda b, sb: _set(b, accountId=sb.instagram_id), "VALIDATION_ERROR", "targets[0].platform"),
    ("unknown account", lambda b, sb: _set(b, accountId="00000000-0000-0000-0000-000000000000"),
     "VALIDATION_ERROR", "targets[0].accountId"),
    ("reddit needs subreddit", lambda b, sb: _set(b, platform="reddit", options={}),
     "VALIDATION_ERROR", "targets[0].options.subreddit"),
    ("pinterest needs board", lambda b, sb: _set(b, platform="pinterest", options={}),
     "VALIDATION_ERROR", "targets[0].options.boardId"),
    ("tiktok needs media", lambda b, sb: {**b, "contentIds": []}, "VALIDATION_ERROR", "targets[0]"),
]  # fmt: skip


def _set(body: dict[str, Any], **fields: Any) -> dict[str, Any]:
    return {**body, "targets": [{**body["targets"][0], **fields}]}


def _tt(body: dict[str, Any], account_id: str, **options: Any) -> dict[str, Any]:
    merged = {**body["targets"][0]["options"], **options}
    return _set(body, accountId=account_id, options={k: v for k, v in merged.items() if v is not None})


def _acct(body: dict[str, Any], account_id: str) -> dict[str, Any]:
    return {"targets": [{**body["targets"][0], "accountId": account_id}]}


def _drop_key(body: dict[str, Any], key: str) -> dict[str, Any]:
    return {**body, "targets": [{k: v for k, v in body["targets"][0].items() if k != key}]}


@pytest.mark.parametrize(("case", "mutate", "code", "needle"), VALIDATION_CASES, ids=[c[0] for c in VALIDATION_CASES])
async def test_publish_validation(
    sb: Sandbox, api: httpx.AsyncClient, case: str, mutate: Any, code: str, needle: str
) -> None:
    body = mutate(publish_body(sb, [_video(sb)], tiktok_target(sb.tiktok_public_id)), sb)
    dry = await api.post("/v2/publish", json={**body, "dryRun": True})
    live = await publish(api, body)
    for response in (dry, live):
        assert response.status_code == 400, (case, response.text)
        payload = response.json()
        assert payload["code"] == code
        assert needle in payload["error"]
        assert payload["issues"] and {"path", "message"} <= set(payload["issues"][0])
    assert sb.publish_requests == {}


async def test_a_valid_body_passes_the_same_checks(sb: Sandbox, api: httpx.AsyncClient) -> None:
    body = publish_body(sb, [_video(sb, 180_000)], tiktok_target(sb.tiktok_private_id, options={
        "privacyLevel": "FOLLOWER_OF_CREATOR", "disableDuet": True, "disableStitch": True, "disableComment": False,
    }))  # fmt: skip
    assert (await publish(api, body)).status_code == 200


async def test_missing_idempotency_key(sb: Sandbox, api: httpx.AsyncClient) -> None:
    body = publish_body(sb, [_video(sb)], tiktok_target(sb.tiktok_public_id))
    response = await api.post("/v2/publish", json=body)
    assert response.status_code == 400 and response.json()["code"] == "MISSING_IDEMPOTENCY_KEY"
    v1 = await api.post("/v1/content/publish", json={k: v for k, v in body.items() if k != "workspaceId"})
    assert v1.status_code == 400 and v1.json()["code"] == "MISSING_IDEMPOTENCY_KEY"
    assert sb.publish_requests == {}


async def test_idempotent_replay_conflict_and_24h_window(
    sb: Sandbox, api: httpx.AsyncClient, clock: ManualClock
) -> None:
    body = publish_body(sb, [_video(sb)], tiktok_target(sb.tiktok_public_id))
    first = await publish(api, body, "same-key")
    assert first.status_code == 200
    reordered = json.loads(json.dumps(body, sort_keys=True))  # same JSON, different key order and bytes
    replay = await api.post(
        "/v2/publish",
        content=json.dumps(reordered, indent=2),
        headers={"Idempotency-Key": "same-key", "Content-Type": "application/json"},
    )
    assert replay.status_code == 200 and replay.json() == first.json()
    assert replay.headers["Idempotent-Replayed"] == "true"
    assert len(sb.publish_requests) == 1

    changed = await publish(api, {**body, "targets": [{**body["targets"][0], "caption": "Different"}]}, "same-key")
    assert changed.status_code == 409 and changed.json()["code"] == "IDEMPOTENCY_CONFLICT"
    assert len(sb.publish_requests) == 1

    clock.advance(24 * 3600 - 1)
    assert (await publish(api, body, "same-key")).json()["publishId"] == first.json()["publishId"]
    clock.advance(1)
    fresh = await publish(api, body, "same-key")
    assert fresh.status_code == 200 and fresh.json()["publishId"] != first.json()["publishId"]
    assert len(sb.publish_requests) == 2


async def test_concurrent_same_key_requests_create_one_request(sb: Sandbox, api: httpx.AsyncClient) -> None:
    body = publish_body(sb, [_video(sb)], tiktok_target(sb.tiktok_public_id))
    answers = await asyncio.gather(*(publish(api, body, "racing-key") for _ in range(5)))
    assert {a.status_code for a in answers} == {200}
    assert len({a.json()["publishId"] for a in answers}) == 1
    assert len(sb.publish_requests) == 1


async def test_subscription_gate(clock: ManualClock) -> None:
    with Sandbox(clock=clock, subscription_active=False) as sb:
        async with httpx.AsyncClient(transport=sb.transport(), base_url=BASE, headers=AUTH) as api:
            body = publish_body(sb, [_video(sb)], tiktok_target(sb.tiktok_public_id))
            v2 = await publish(api, body)
            v1 = await api.post("/v1/content/publish", json=body, headers={"Idempotency-Key": "k"})
            reads = await api.get("/v2/integrations", params=ws(sb))
    assert v2.status_code == 402 and v2.json()["code"] == "SUBSCRIPTION_REQUIRED"
    assert v1.json()["code"] == "SUBSCRIPTION_REQUIRED"
    assert reads.status_code == 200
    assert sb.publish_requests == {}


# ---------------------------------------------------------------------------------------------------------
# The state machine


async def test_direct_post_lifecycle(sb: Sandbox, api: httpx.AsyncClient, clock: ManualClock) -> None:
    created = (await publish(api, publish_body(sb, [_video(sb)], tiktok_target(sb.tiktok_public_id)))).json()
    assert created["status"] == "pending"
    [target] = created["targets"]
    assert (target["status"], target["intent"], target["dispatchAt"]) == ("queued", "publish", None)
    pid = created["publishId"]

    seen = await status_of(api, sb, pid)
    assert seen["status"] == "pending" and seen["targets"][0]["status"] == "queued"
    clock.advance(0.1)
    seen = await status_of(api, sb, pid)
    assert seen["status"] == "processing" and seen["targets"][0]["status"] == "processing"
    clock.advance(2.0)  # processing done, moderation pending: the post id is withheld
    seen = await status_of(api, sb, pid)
    assert seen["targets"][0]["status"] == "processing" and seen["targets"][0]["providerPostId"] is None
    clock.advance(1.0)
    seen = await status_of(api, sb, pid)
    done = seen["targets"][0]
    assert seen["status"] == "completed" and done["status"] == "published"
    assert done["providerPostId"] and done["error"] is None
    assert done["publishedAt"] == iso(sb.publish_requests[pid].created_at + timedelta(seconds=3))
    assert set(seen) >= {"id", "status", "createdAt", "targets"}


async def test_draft_is_sent_and_scheduled_waits(sb: Sandbox, api: httpx.AsyncClient, clock: ManualClock) -> None:
    at = clock.now() + timedelta(minutes=30)
    body = publish_body(
        sb,
        [_video(sb)],
        tiktok_target(sb.tiktok_public_id, intent="draft", options={}),
        tiktok_target(sb.tiktok_private_id, intent="draft", options={}, dispatchAt=iso(at)),
    )
    pid = (await publish(api, body)).json()["publishId"]
    clock.advance(2.5)
    seen = await status_of(api, sb, pid)
    assert [t["status"] for t in seen["targets"]] == ["sent", "scheduled"]
    assert seen["status"] == "processing" and seen["targets"][0]["providerPostId"] is None
    clock.advance((at - clock.now()).total_seconds())  # exactly at the dispatch time
    assert [t["status"] for t in (await status_of(api, sb, pid))["targets"]] == ["sent", "processing"]
    clock.advance(2)
    seen = await status_of(api, sb, pid)
    assert seen["status"] == "completed" and [t["status"] for t in seen["targets"]] == ["sent", "sent"]


async def test_provider_failures_and_aggregates(sb: Sandbox, api: httpx.AsyncClient, clock: ManualClock) -> None:
    video = _video(sb)
    sb.set_provider_outcome(sb.tiktok_private_id, reason="file_format_check_failed")
    partial = (
        await publish(
            api,
            publish_body(sb, [video], tiktok_target(sb.tiktok_public_id), tiktok_target(sb.tiktok_private_id)),
            "p",
        )
    ).json()["publishId"]
    sb.set_provider_outcome(sb.tiktok_public_id, reason="spam_risk_user_banned_from_posting")
    failed = (await publish(api, publish_body(sb, [video], tiktok_target(sb.tiktok_public_id)), "f")).json()[
        "publishId"
    ]
    clock.advance(5)
    seen = await status_of(api, sb, partial)
    assert seen["status"] == "partial_failed"
    assert seen["targets"][1]["status"] == "failed"
    assert seen["targets"][1]["error"]["code"] == "file_format_check_failed"
    assert seen["targets"][1]["providerPostId"] is None
    other = await status_of(api, sb, failed)
    assert other["status"] == "failed" and other["targets"][0]["error"]["code"] == "spam_risk_user_banned_from_posting"
    assert sb.publish_status(failed)["status"] == "failed"


async def test_tiktok_daily_caps(clock: ManualClock) -> None:
    with Sandbox(clock=clock, rate_limits=None) as sb:
        async with httpx.AsyncClient(transport=sb.transport(), base_url=BASE, headers=AUTH) as api:
            video = _video(sb)
            ids = []
            for n in range(16):
                body = publish_body(sb, [video], tiktok_target(sb.tiktok_public_id, caption=f"post {n}"))
                ids.append((await publish(api, body, f"direct-{n}")).json()["publishId"])
                clock.advance(60)
            drafts = []
            for n in range(6):
                body = publish_body(sb, [video], tiktok_target(sb.tiktok_private_id, intent="draft", caption=f"d{n}"))
                drafts.append((await publish(api, body, f"draft-{n}")).json()["publishId"])
                clock.advance(60)
            clock.advance(10)
            direct = [(await status_of(api, sb, i))["targets"][0] for i in ids]
            assert [t["status"] for t in direct] == ["published"] * 15 + ["failed"]
            assert direct[15]["error"]["code"] == "spam_risk_too_many_posts"
            inbox = [(await status_of(api, sb, i))["targets"][0] for i in drafts]
            assert [t["status"] for t in inbox] == ["sent"] * 5 + ["failed"]
            assert inbox[5]["error"]["code"] == "spam_risk_too_many_pending_share"

            clock.advance(24 * 3600)  # the window has rolled over
            body = publish_body(sb, [video], tiktok_target(sb.tiktok_public_id, caption="next day"))
            next_day = (await publish(api, body, "next-day")).json()["publishId"]
            clock.advance(10)
            assert (await status_of(api, sb, next_day))["targets"][0]["status"] == "published"


async def test_cancel_request_and_target(sb: Sandbox, api: httpx.AsyncClient, clock: ManualClock) -> None:
    later = iso(clock.now() + timedelta(hours=1))
    body = publish_body(
        sb,
        [_video(sb)],
        tiktok_target(sb.tiktok_public_id, dispatchAt=later),
        tiktok_target(sb.tiktok_private_id, dispatchAt=later, options={"privacyLevel": "SELF_ONLY"}),
    )
    created = (await publish(api, body)).json()
    pid, (first, second) = created["publishId"], created["targets"]

    one = await api.post(f"/v2/publish/target/{first['id']}/cancel", params=ws(sb))
    assert one.status_code == 200 and one.json()["target"]["status"] == "canceled"
    again = await api.post(f"/v2/publish/target/{first['id']}/cancel", params=ws(sb))
    assert again.status_code == 409 and again.json()["code"] == "INVALID_STATE"
    assert (await status_of(api, sb, pid))["status"] == "pending"

    whole = await api.post(f"/v2/publish/{pid}/cancel", params=ws(sb))
    assert whole.status_code == 200 and whole.json()["canceledTargetIds"] == [second["id"]]
    assert whole.json()["publish"]["status"] == "canceled"
    nothing_left = await api.post(f"/v2/publish/{pid}/cancel", params=ws(sb))
    assert nothing_left.status_code == 409 and nothing_left.json()["code"] == "INVALID_STATE"
    clock.advance(7200)
    assert (await status_of(api, sb, pid))["status"] == "canceled"


async def test_cancel_refuses_targets_already_moving_and_mixed_cancel_is_completed(
    sb: Sandbox, api: httpx.AsyncClient, clock: ManualClock
) -> None:
    later = iso(clock.now() + timedelta(hours=1))
    body = publish_body(
        sb, [_video(sb)], tiktok_target(sb.tiktok_public_id), tiktok_target(sb.tiktok_private_id, dispatchAt=later)
    )
    created = (await publish(api, body)).json()
    clock.advance(1)
    moving = await api.post(f"/v2/publish/target/{created['targets'][0]['id']}/cancel", params=ws(sb))
    assert moving.status_code == 409
    canceled = await api.post(f"/v2/publish/{created['publishId']}/cancel", params=ws(sb))
    assert canceled.json()["canceledTargetIds"] == [created["targets"][1]["id"]]
    clock.advance(10)
    seen = await status_of(api, sb, created["publishId"])
    assert [t["status"] for t in seen["targets"]] == ["published", "canceled"]
    assert seen["status"] == "completed"


async def test_reschedule(sb: Sandbox, api: httpx.AsyncClient, clock: ManualClock) -> None:
    created = (
        await publish(
            api,
            publish_body(
                sb, [_video(sb)], tiktok_target(sb.tiktok_public_id, dispatchAt=iso(clock.now() + timedelta(hours=1)))
            ),
        )
    ).json()
    tid, path = created["targets"][0]["id"], f"/v2/publish/target/{created['targets'][0]['id']}"

    new_time = iso(clock.now() + timedelta(hours=3))
    moved = await api.patch(path, json={"workspaceId": sb.workspace_id, "dispatchAt": new_time})
    assert moved.status_code == 200 and moved.json()["target"]["dispatchAt"] == new_time
    assert moved.json()["target"]["status"] == "scheduled"
    clock.advance(3600 * 2)
    assert (await status_of(api, sb, created["publishId"]))["targets"][0]["status"] == "scheduled"

    for bad in (iso(clock.now() - timedelta(minutes=1)), "tomorrow", "2030-01-01T00:00:00"):
        refused = await api.patch(path, json={"workspaceId": sb.workspace_id, "dispatchAt": bad})
        assert refused.status_code == 400 and refused.json()["code"] == "INVALID_DISPATCH_AT"
    missing = await api.patch(path, json={"workspaceId": sb.workspace_id})
    assert missing.status_code == 400 and missing.json()["code"] == "INVALID_DISPATCH_AT"

    now_please = await api.patch(path, json={"workspaceId": sb.workspace_id, "dispatchAt": None})
    assert now_please.json()["target"]["status"] == "queued" and now_please.json()["target"]["dispatchAt"] is None
    clock.advance(0.5)
    assert sb.publish_status(created["publishId"])["targets"][0]["status"] == "processing"
    too_late = await api.patch(path, json={"workspaceId": sb.workspace_id, "dispatchAt": new_time})
    assert too_late.status_code == 409 and too_late.json()["code"] == "INVALID_STATE"
    assert sb.world.targets[tid].dispatch_at is None


async def test_delete_request_hides_it_and_stops_its_targets(
    sb: Sandbox, api: httpx.AsyncClient, clock: ManualClock
) -> None:
    later = iso(clock.now() + timedelta(hours=1))
    created = await publish(api, publish_body(sb, [_video(sb)], tiktok_target(sb.tiktok_public_id, dispatchAt=later)))
    pid = created.json()["publishId"]
    deleted = await api.delete(f"/v2/publish/{pid}", params=ws(sb))
    assert deleted.status_code == 200 and deleted.json() == {"success": True}
    assert (await api.get(f"/v2/publish/{pid}", params=ws(sb))).status_code == 404
    assert (await api.delete(f"/v2/publish/{pid}", params=ws(sb))).status_code == 404
    assert (await api.get("/v2/publish", params=ws(sb))).json()["publishRequests"] == []
    clock.advance(7200)
    assert sb.publish_requests[pid].targets[0].dispatched_at is None  # never reached the provider


async def test_publish_list_and_date_range(sb: Sandbox, api: httpx.AsyncClient, clock: ManualClock) -> None:
    video = _video(sb)
    soon = (await publish(api, publish_body(sb, [video], tiktok_target(sb.tiktok_public_id)), "a")).json()
    clock.advance(1)
    far_at = clock.now() + timedelta(days=10)
    far = (
        await publish(api, publish_body(sb, [video], tiktok_target(sb.tiktok_public_id, dispatchAt=iso(far_at))), "b")
    ).json()
    listed = (await api.get("/v2/publish", params=ws(sb))).json()["publishRequests"]
    assert [r["id"] for r in listed] == [far["publishId"], soon["publishId"]]  # newest first
    window = {"startDate": iso(far_at - timedelta(days=1)), "endDate": iso(far_at + timedelta(days=1))}
    ranged = (await api.get("/v2/publish", params={**ws(sb), **window})).json()["publishRequests"]
    assert [r["id"] for r in ranged] == [far["publishId"]]
    half = await api.get("/v2/publish", params={**ws(sb), "startDate": window["startDate"]})
    assert half.status_code == 400 and half.json()["code"] == "INVALID_DATE_RANGE"
    backwards = await api.get(
        "/v2/publish", params={**ws(sb), "startDate": window["endDate"], "endDate": window["startDate"]}
    )
    assert backwards.status_code == 400 and backwards.json()["code"] == "INVALID_DATE_RANGE"


async def test_v1_publish_and_flat_status(sb: Sandbox, api: httpx.AsyncClient, clock: ManualClock) -> None:
    video = _video(sb)
    target = tiktok_target(sb.tiktok_public_id, intent="draft", options={})
    created = await api.post(
        "/v1/content/publish", json={"contentIds": [video], "targets": [target]}, headers={"Idempotency-Key": "v1"}
    )
    assert created.status_code == 200
    body = created.json()
    assert body["status"] == "pending" and body["targets"][0]["status"] == "queued"
    clock.advance(3)
    flat = (await api.get(f"/v1/content/publish/{body['publishId']}")).json()
    assert flat["publishId"] == body["publishId"] and flat["status"] == "completed"
    assert flat["targets"][0]["status"] == "sent"
    legacy = await api.post(
        "/v1/content/publish", json={"contentId": video, "targets": [target]}, headers={"Idempotency-Key": "v1-old"}
    )
    assert legacy.status_code == 200 and sb.publish_requests[legacy.json()["publishId"]].content_ids == [video]


# ---------------------------------------------------------------------------------------------------------
# Rate limits


async def test_read_bucket_limits_with_retry_after(sb: Sandbox, api: httpx.AsyncClient, clock: ManualClock) -> None:
    for _ in range(20):
        assert (await api.get("/v2/integrations", params=ws(sb))).status_code == 200
    clock.advance(30)
    for _ in range(10):
        assert (await api.get("/v2/mcp/context")).status_code == 200
    limited = await api.get("/v2/integrations", params=ws(sb))
    assert limited.status_code == 429
    assert limited.json()["code"] == "RATE_LIMITED" and limited.headers["Retry-After"] == "30"
    assert (await api.get("/v2/ping")).status_code == 200  # unauthenticated ping is not limited
    # other buckets are independent
    assert (await api.post("/v2/publish", json={"workspaceId": sb.workspace_id, "dryRun": True})).status_code == 400
    clock.advance(30)  # the first 20 slots free up
    assert (await api.get("/v2/integrations", params=ws(sb))).status_code == 200
    assert [e.status for e in sb.requests("integrations")].count(429) == 1


async def test_publish_bucket_counts_dry_runs(sb: Sandbox, api: httpx.AsyncClient, clock: ManualClock) -> None:
    body = {**publish_body(sb, [_video(sb)], tiktok_target(sb.tiktok_public_id)), "dryRun": True}
    for _ in range(10):
        assert (await api.post("/v2/publish", json=body)).status_code == 200
    clock.advance(12.5)
    limited = await api.post("/v2/publish", json=body)
    assert limited.status_code == 429 and limited.headers["Retry-After"] == "48"


async def test_limits_can_be_disabled_and_storage_is_never_limited(clock: ManualClock) -> None:
    with Sandbox(clock=clock, rate_limits=None) as sb:
        async with httpx.AsyncClient(transport=sb.transport(), base_url=BASE, headers=AUTH) as api:
            statuses = {(await api.get("/v2/integrations", params=ws(sb))).status_code for _ in range(45)}
    assert statuses == {200}
    with Sandbox(clock=clock, rate_limits={"upload": 1}) as sb:
        async with (
            httpx.AsyncClient(transport=sb.transport(), base_url=BASE, headers=AUTH) as api,
            httpx.AsyncClient(transport=sb.transport()) as storage,
        ):
            started = await start_upload(api, sb, mp4_bytes(), "video/mp4", "a.mp4")
            for _ in range(5):
                put = await storage.put(
                    started["upload"]["url"], content=mp4_bytes(), headers={"Content-Type": "video/mp4"}
                )
                assert put.status_code == 200
            assert (await complete(api, sb, started)).status_code == 429


# ---------------------------------------------------------------------------------------------------------
# Faults


async def test_drop_after_commit_then_same_key_replays(sb: Sandbox, api: httpx.AsyncClient) -> None:
    body = publish_body(sb, [_video(sb)], tiktok_target(sb.tiktok_public_id))
    fault = sb.inject("drop_after_commit", route="publish")
    with pytest.raises(httpx.RemoteProtocolError):
        await publish(api, body, "lost-answer")
    assert fault.fired == 1 and len(sb.publish_requests) == 1
    entry = sb.requests("publish")[-1]
    assert entry.status is None and entry.faults == ["drop_after_commit"] and entry.idempotency_key == "lost-answer"
    retry = await publish(api, body, "lost-answer")
    assert retry.status_code == 200 and retry.json()["publishId"] == next(iter(sb.publish_requests))
    assert len(sb.publish_requests) == 1


async def test_drop_before_commit_changes_nothing(sb: Sandbox, api: httpx.AsyncClient) -> None:
    body = publish_body(sb, [_video(sb)], tiktok_target(sb.tiktok_public_id))
    sb.inject("drop_before_commit", route="publish", times=2)
    for _ in range(2):
        with pytest.raises(httpx.RemoteProtocolError):
            await publish(api, body)
    assert sb.publish_requests == {} and [e.status for e in sb.requests("publish")] == [None, None]
    assert (await publish(api, body)).status_code == 200


async def test_injected_status_with_retry_after(sb: Sandbox, api: httpx.AsyncClient) -> None:
    sb.inject("status", route="integrations", times=2, status=503, retry_after=7)
    sb.inject("status", route="context", status=429, retry_after=2.5)
    for _ in range(2):
        failed = await api.get("/v2/integrations", params=ws(sb))
        assert failed.status_code == 503 and failed.headers["Retry-After"] == "7"
        assert failed.json()["code"] == "SERVICE_UNAVAILABLE"
    assert (await api.get("/v2/integrations", params=ws(sb))).status_code == 200
    storm = await api.get("/v2/mcp/context")
    assert storm.status_code == 429 and storm.json()["code"] == "RATE_LIMITED" and storm.headers["Retry-After"] == "3"
    assert [e.faults for e in sb.requests("integrations")] == [["status"], ["status"], []]


async def test_slow_sleeps_on_the_sandbox_clock(sb: Sandbox, api: httpx.AsyncClient, clock: ManualClock) -> None:
    before = clock.now()
    sb.inject("slow", route="*", seconds=5)
    response = await api.get("/v2/mcp/context")
    assert response.status_code == 200
    assert clock.sleeps == [5.0] and clock.now() - before == timedelta(seconds=5)
    assert sb.requests("context")[0].faults == ["slow"]


async def test_truncate_body_commits_but_cuts_the_json(sb: Sandbox, api: httpx.AsyncClient) -> None:
    sb.inject("truncate_body", route="content_upload")
    response = await api.post(
        "/v2/content/upload", json={"filename": "a.mp4", "contentType": "video/mp4", "workspaceId": sb.workspace_id}
    )
    assert response.status_code == 200
    assert int(response.headers["Content-Length"]) == len(response.content) > 0
    with pytest.raises(json.JSONDecodeError):
        json.loads(response.content)
    assert len(sb.contents) == 1  # the upload session was created
    assert sb.requests("content_upload")[0].faults == ["truncate_body"]


async def test_expired_upload_url(sb: Sandbox, api: httpx.AsyncClient, storage: httpx.AsyncClient) -> None:
    sb.inject("expire_upload_url", route="content_upload")
    started = await start_upload(api, sb, mp4_bytes(), "video/mp4", "a.mp4")
    refused = await storage.put(started["upload"]["url"], content=mp4_bytes(), headers=started["upload"]["headers"])
    assert refused.status_code == 403 and refused.json()["code"] == "EXPIRED"
    fresh = await start_upload(api, sb, mp4_bytes(), "video/mp4", "a.mp4")
    ok = await storage.put(fresh["upload"]["url"], content=mp4_bytes(), headers=fresh["upload"]["headers"])
    assert ok.status_code == 200


async def test_reset_put_stores_nothing_and_keeps_the_old_object(
    sb: Sandbox, api: httpx.AsyncClient, storage: httpx.AsyncClient
) -> None:
    first, second = mp4_bytes(300_000), mp4_bytes(400_000)
    started = await start_upload(api, sb, first, "video/mp4", "a.mp4")
    url, key, headers = started["upload"]["url"], started["upload"]["key"], started["upload"]["headers"]
    assert (await storage.put(url, content=first, headers=headers)).status_code == 200

    sb.inject("reset_put", route="storage_put", after_bytes=100_000)

    async def stream() -> AsyncIterator[bytes]:
        for offset in range(0, len(second), 65_536):
            yield second[offset : offset + 65_536]

    with pytest.raises(httpx.ReadError):
        await storage.put(url, content=stream(), headers={**headers, "Content-Length": str(len(second))})
    entry = sb.requests("storage_put")[-1]
    assert entry.status is None and entry.faults == ["reset_put"] and entry.body_size == 100_000
    assert sb.storage_sha256(key) == hashlib.sha256(first).hexdigest()
    assert list(sb.storage.root.glob("tmp-*")) == []


def test_inject_rejects_unknown_kinds_routes_and_params(sb: Sandbox) -> None:
    with pytest.raises(ValueError, match="kind"):
        sb.inject("explode", route="publish")
    with pytest.raises(ValueError, match="route"):
        sb.inject("status", route="publsh", status=500)
    with pytest.raises(ValueError, match="status"):
        sb.inject("status", route="publish")
    with pytest.raises(ValueError, match="storage_put"):
        sb.inject("reset_put", route="publish", after_bytes=1)
    with pytest.raises(ValueError):
        sb.set_provider_outcome("not-an-account")

"""The sandbox over a real socket: uvicorn on loopback in a background thread (``run_in_thread``)."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest

from postqued.sandbox import SANDBOX_API_KEY, Sandbox, run_in_thread

AUTH = {"Authorization": f"Bearer {SANDBOX_API_KEY}"}


def mp4_bytes(size: int) -> bytes:
    head = b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom"
    return head + bytes(size - len(head))


@pytest.fixture
def served() -> Iterator[tuple[Sandbox, str]]:
    with Sandbox() as sb, run_in_thread(sb) as base_url:
        yield sb, base_url


@pytest.fixture
async def api(served: tuple[Sandbox, str]) -> AsyncIterator[httpx.AsyncClient]:
    _sb, base_url = served
    async with httpx.AsyncClient(base_url=base_url, headers=AUTH, timeout=10) as client:
        yield client


async def start_upload(api: httpx.AsyncClient, sb: Sandbox, size: int) -> dict[str, Any]:
    response = await api.post(
        "/v2/content/upload",
        json={"filename": "clip.mp4", "contentType": "video/mp4", "fileSize": size, "workspaceId": sb.workspace_id},
    )
    assert response.status_code == 200
    result: dict[str, Any] = response.json()
    return result


async def test_base_url_and_marked_answers(served: tuple[Sandbox, str], api: httpx.AsyncClient) -> None:
    sb, base_url = served
    assert base_url.startswith("http://127.0.0.1:") and not base_url.endswith(":0")
    pong = await api.get("/v2/ping")
    assert pong.json() == {"pong": "it worked!"} and pong.headers["x-postqued-sandbox"] == "1"
    async with httpx.AsyncClient(base_url=base_url) as anonymous:
        refused = await anonymous.get("/v2/mcp/context")
    assert refused.status_code == 401 and refused.json()["code"] == "UNAUTHORIZED"
    assert [e.has_auth for e in sb.requests("context")] == [False]


async def test_upload_over_the_socket(served: tuple[Sandbox, str], api: httpx.AsyncClient) -> None:
    sb, base_url = served
    size = 8 * 1024**2
    data = mp4_bytes(size)
    started = await start_upload(api, sb, size)
    up = started["upload"]
    assert up["url"].startswith(f"{base_url}/_storage/")

    async def stream() -> AsyncIterator[bytes]:
        for offset in range(0, size, 1024**2):
            yield data[offset : offset + 1024**2]

    async with httpx.AsyncClient(timeout=10) as storage:
        put = await storage.put(up["url"], content=stream(), headers={**up["headers"], "Content-Length": str(size)})
    assert put.status_code == 200
    assert sb.storage_sha256(up["key"]) == hashlib.sha256(data).hexdigest()
    done = await api.post(
        "/v2/content/upload/complete",
        json={
            "contentId": started["contentId"],
            "key": up["key"],
            "filename": "clip.mp4",
            "contentType": "video/mp4",
            "size": size,
            "workspaceId": sb.workspace_id,
        },
    )
    assert done.status_code == 200 and done.json()["content"]["url"].startswith(base_url)
    file = await api.get(f"/v2/content/{started['contentId']}/file", params={"workspaceId": sb.workspace_id})
    assert hashlib.sha256(file.content).hexdigest() == hashlib.sha256(data).hexdigest()


async def test_drop_after_commit_is_a_real_disconnect(served: tuple[Sandbox, str], api: httpx.AsyncClient) -> None:
    sb, _ = served
    sb.inject("drop_after_commit", route="content_upload")
    with pytest.raises(httpx.RemoteProtocolError):
        await start_upload(api, sb, 100)
    assert len(sb.contents) == 1 and sb.requests("content_upload")[0].status is None
    # the server is still up and the next request is answered normally
    await start_upload(api, sb, 100)
    assert len(sb.contents) == 2


async def test_drop_before_commit_over_the_socket(served: tuple[Sandbox, str], api: httpx.AsyncClient) -> None:
    sb, _ = served
    sb.inject("drop_before_commit", route="integrations")
    with pytest.raises(httpx.RemoteProtocolError):
        await api.get("/v2/integrations", params={"workspaceId": sb.workspace_id})
    ok = await api.get("/v2/integrations", params={"workspaceId": sb.workspace_id})
    assert ok.status_code == 200 and [e.status for e in sb.requests("integrations")] == [None, 200]


async def test_reset_put_over_the_socket(served: tuple[Sandbox, str], api: httpx.AsyncClient) -> None:
    sb, _ = served
    size = 4 * 1024**2
    started = await start_upload(api, sb, size)
    up = started["upload"]
    sb.inject("reset_put", route="storage_put", after_bytes=256 * 1024)
    async with httpx.AsyncClient(timeout=10) as storage:
        with pytest.raises(httpx.TransportError):
            await storage.put(up["url"], content=mp4_bytes(size), headers=up["headers"])
        assert sb.storage_size(up["key"]) is None
        entry = sb.requests("storage_put")[0]
        assert entry.status is None and entry.faults == ["reset_put"] and entry.body_size == 256 * 1024
        again = await storage.put(up["url"], content=mp4_bytes(size), headers=up["headers"])
    assert again.status_code == 200 and sb.storage_size(up["key"]) == size


async def test_truncated_body_and_rate_limit_over_the_socket(
    served: tuple[Sandbox, str], api: httpx.AsyncClient
) -> None:
    sb, _ = served
    sb.inject("truncate_body", route="context")
    cut = await api.get("/v2/mcp/context")
    assert cut.status_code == 200 and int(cut.headers["content-length"]) == len(cut.content)
    with pytest.raises(ValueError):
        cut.json()
    for _ in range(29):
        assert (await api.get("/v2/mcp/context")).status_code == 200
    limited = await api.get("/v2/mcp/context")
    assert limited.status_code == 429 and limited.json()["code"] == "RATE_LIMITED"
    assert 1 <= int(limited.headers["retry-after"]) <= 60

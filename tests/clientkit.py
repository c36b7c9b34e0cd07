"""Shared helpers for the client suites: a sandbox and a ``PostQuedClient`` on one ``ManualClock``.

``client_env`` builds the pair in-process (``sb.transport()``) or over loopback (``run_in_thread``);
``HookTransport`` wraps a transport to record or react to every request the client sends.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
from pydantic import SecretStr

from postqued.api.retry import RetryPolicy
from postqued.client import PostQuedClient
from postqued.clock import ManualClock
from postqued.errors import PostQuedError
from postqued.models import (
    ContentAsset,
    Intent,
    PrivacyLevel,
    PublishRequest,
    PublishTarget,
    TikTokOptions,
    UploadComplete,
)
from postqued.sandbox import SANDBOX_API_KEY, LedgerEntry, Sandbox, run_in_thread
from postqued.settings import Settings

FIXTURES = Path(__file__).parent / "fixtures" / "media"
OPENAPI_V2 = Path(__file__).resolve().parents[1].parent / "shared/postqued/openapi-v2.json"
IN_PROCESS_URL = "http://sandbox.localhost"
MODES = ("inprocess", "loopback")

# (file, MIME type, width, height, duration in ms) of the real fixtures the tests upload
VIDEO = (FIXTURES / "video.mp4", "video/mp4", 320, 240, 2000)
PNG = (FIXTURES / "image.png", "image/png", 50, 30, None)


def make_settings(tmp_path: Path, base_url: str = IN_PROCESS_URL, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "api_key": SecretStr(SANDBOX_API_KEY),
        "base_url": base_url,
        "state_dir": tmp_path,
        "media_dirs": (tmp_path,),
        "timeout": 10.0,
    }
    values.update(overrides)
    return Settings.build(**values)


class HookTransport(httpx.AsyncBaseTransport):
    """Forwards to ``inner``; ``before(request, n)`` runs first for the n-th request (from 1)."""

    def __init__(
        self, inner: httpx.AsyncBaseTransport, before: Callable[[httpx.Request, int], None] | None = None
    ) -> None:
        self.inner = inner
        self.before = before
        self.requests: list[httpx.Request] = []
        self.bodies: list[bytes] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        body = await request.aread()
        self.requests.append(request)
        self.bodies.append(body)
        if self.before is not None:
            self.before(request, len(self.requests))
        return await self.inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self.inner.aclose()


@dataclass
class Env:
    sb: Sandbox
    clock: ManualClock
    client: PostQuedClient
    mode: str
    base_url: str
    hook: HookTransport | None = None
    errors: list[PostQuedError] = field(default_factory=list)

    def count(self, route: str) -> int:
        return len(self.sb.requests(route))

    def api_entries(self) -> list[LedgerEntry]:
        return [e for e in self.sb.ledger if e.route != "storage_put"]


@asynccontextmanager
async def client_env(
    tmp_path: Path,
    *,
    mode: str = "inprocess",
    sandbox: dict[str, Any] | None = None,
    retry: RetryPolicy | None = None,
    wrap: bool = False,
    **settings: Any,
) -> AsyncIterator[Env]:
    """A fresh sandbox and a client on one ManualClock; ``wrap`` puts a ``HookTransport`` in between."""
    clock = ManualClock()
    with Sandbox(clock=clock, **(sandbox or {})) as sb, _served(sb, mode) as base_url:
        transport: httpx.AsyncBaseTransport | None = sb.transport() if mode == "inprocess" else None
        hooked: HookTransport | None = None
        if wrap:
            hooked = HookTransport(transport or httpx.AsyncHTTPTransport())
            transport = hooked
        client = PostQuedClient(
            make_settings(tmp_path, base_url, **settings), transport=transport, clock=clock, retry=retry
        )
        async with client:
            yield Env(sb, clock, client, mode, base_url, hooked)


@contextmanager
def _served(sb: Sandbox, mode: str) -> Iterator[str]:
    if mode == "inprocess":
        yield IN_PROCESS_URL
    elif mode == "loopback":
        with run_in_thread(sb) as base_url:
            yield base_url
    else:
        raise ValueError(mode)


async def upload(
    client: PostQuedClient, fixture: tuple[Path, str, int, int, int | None] = VIDEO, *, workspace_id: str | None = None
) -> ContentAsset:
    """The three upload steps: start, PUT through ``client.storage``, complete."""
    path, mime, width, height, duration_ms = fixture
    data = path.read_bytes()
    session = await client.start_upload(path.name, mime, len(data), workspace_id=workspace_id)
    put = await client.storage.request(session.method, session.url, content=data, headers=session.headers)
    assert put.status_code == 200, put.text
    request = UploadComplete(
        content_id=session.content_id,
        key=session.key,
        filename=path.name,
        content_type=mime,
        size=len(data),
        width=width,
        height=height,
        duration_ms=duration_ms,
        workspace_id=workspace_id,
    )
    return await client.complete_upload(request)


def tiktok_request(
    account_id: str,
    content_ids: list[str],
    *,
    caption: str = "Hello from the client tests #sandbox",
    intent: Intent = "publish",
    privacy: PrivacyLevel | None = "PUBLIC_TO_EVERYONE",
    dispatch_at: datetime | None = None,
    workspace_id: str | None = None,
) -> PublishRequest:
    target = PublishTarget(
        platform="tiktok",
        account_id=account_id,
        intent=intent,
        caption=caption,
        dispatch_at=dispatch_at,
        options=TikTokOptions(privacy_level=privacy),
    )
    return PublishRequest(content_ids=content_ids, targets=[target], workspace_id=workspace_id)


def json_body(entry: LedgerEntry) -> Any:
    return json.loads(entry.body) if entry.body else None


def secrets_free(error: BaseException) -> bool:
    """Neither the key nor a bearer header nor a presigned signature shows in the error's text."""
    text = f"{error} {error!r} {getattr(error, 'message', '')}"
    return SANDBOX_API_KEY not in text and "Bearer pq_" not in text and "signature=" not in text

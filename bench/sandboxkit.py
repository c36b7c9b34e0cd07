"""Helpers for benchmarks that talk to an in-process sandbox: a client, a ready video, a TikTok request."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bench.common import ROOT

UNLIMITED = {"upload": 10**9, "read": 10**9, "publish": 10**9, "delete": 10**9}
VIDEO = ROOT / "tests" / "fixtures" / "media" / "video.mp4"


def client_for(sb: Any, state_dir: Path, *, clock: Any = None, rate_limits: dict[str, int] | None = None) -> Any:
    """A ``PostQuedClient`` on ``sb`` in-process (``rate_limits`` None: the client's own limits are off)."""
    from pydantic import SecretStr

    from postqued.client import PostQuedClient
    from postqued.sandbox import SANDBOX_API_KEY
    from postqued.settings import Settings
    from postqued_mcp.app import SANDBOX_ORIGIN

    settings = Settings.build(
        api_key=SecretStr(SANDBOX_API_KEY),
        base_url=SANDBOX_ORIGIN,
        state_dir=state_dir,
        media_dirs=(),
        rate_limits=rate_limits or UNLIMITED,
    )
    return PostQuedClient(settings, transport=sb.transport(), clock=clock)


async def ready_video(client: Any) -> str:
    """Upload the fixture video (start, PUT, complete) and return its content id."""
    from postqued.models import UploadComplete

    data = VIDEO.read_bytes()
    session = await client.start_upload(VIDEO.name, "video/mp4", len(data))
    put = await client.storage.request(session.method, session.url, content=data, headers=session.headers)
    put.raise_for_status()
    asset = await client.complete_upload(
        UploadComplete(
            content_id=session.content_id,
            key=session.key,
            filename=VIDEO.name,
            content_type="video/mp4",
            size=len(data),
            width=320,
            height=240,
            duration_ms=2000,
        )
    )
    content_id: str = asset.id
    return content_id


def draft_request(account_id: str, content_id: str, caption: str) -> Any:
    """A TikTok draft (inbox) of the video: valid, needs no confirmation."""
    from postqued.models import PublishRequest, PublishTarget, TikTokOptions

    target = PublishTarget(
        platform="tiktok",
        account_id=account_id,
        intent="draft",
        caption=caption,
        options=TikTokOptions(privacy_level="SELF_ONLY"),
    )
    return PublishRequest(content_ids=[content_id], targets=[target])

"""Three real server processes share one PostgreSQL journal (issue 18): each request posts exactly once.

The replicas are the ``postqued-mcp`` entry point spawned as subprocesses speaking stdio, all pointed at one
loopback sandbox (real time: each process has its own clock) and one database. First, the same live
publish is sent to all three at the same moment; then a second request is held by the sandbox while one
replica is killed with SIGKILL, and the same call is repeated on another replica. PostQued (the simulator)
must end up with exactly one post per request, every attempt carrying that request's one idempotency key.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import Client, StdioServerParameters

from postqued.sandbox import SANDBOX_API_KEY, LedgerEntry, Sandbox, run_in_thread
from tests.journalkit import fresh_postgres_url

ROOT = Path(__file__).resolve().parents[1]
HOLD_SECONDS = 3.0  # how long the sandbox holds the live publish of the replica that is then killed
BOOT = (
    "import os, sys; open(sys.argv[1], 'w').write(str(os.getpid())); import server; raise SystemExit(server.main([]))"
)

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL is POSIX")


def live_attempts(sb: Sandbox, caption: str) -> list[LedgerEntry]:
    return [
        e
        for e in sb.requests("publish")
        if e.idempotency_key is not None and caption in (e.body or b"").decode(errors="replace")
    ]


def posts(sb: Sandbox, caption: str) -> list[str]:
    return [pid for pid, req in sb.publish_requests.items() if caption in json.dumps(req.body)]


async def until(condition: Callable[[], Any], within: float, what: str) -> Any:
    deadline = time.monotonic() + within
    while not (value := condition()):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await anyio.sleep(0.02)
    return value


async def call(client: Client, tool: str, **args: Any) -> dict[str, Any]:
    result = await client.call_tool(tool, args)
    assert not result.is_error, result.content
    assert isinstance(result.structured_content, dict)
    return dict(result.structured_content)


def replica(tmp_path: Path, name: str, base_url: str, journal_url: str, media_dir: Path) -> StdioServerParameters:
    env = {
        "POSTQUED_BASE_URL": base_url,
        "POSTQUED_API_KEY": SANDBOX_API_KEY,
        "POSTQUED_JOURNAL_URL": journal_url,
        "POSTQUED_STATE_DIR": str(tmp_path / name),  # each machine its own folder: only the database is shared
        "POSTQUED_MEDIA_DIRS": str(media_dir),
        "POSTQUED_LOG_LEVEL": "WARNING",
        "PYTHONPATH": str(ROOT),
    }
    pidfile = tmp_path / f"{name}.pid"
    return StdioServerParameters(command=sys.executable, args=["-c", BOOT, str(pidfile)], env=env, cwd=tmp_path)


def draft(sb: Sandbox, content_id: str, caption: str) -> dict[str, Any]:
    target = {
        "platform": "tiktok",
        "account_id": sb.tiktok_public_id,
        "intent": "draft",
        "caption": caption,
        "options": {"privacy_level": "SELF_ONLY"},
    }
    return {"content_ids": [content_id], "targets": [target]}


@pytest.mark.slow  # three server processes, one killed (~20 s): --run-slow
async def test_three_replicas_post_each_request_once(tmp_path: Path, media_dir: Path) -> None:
    journal_url = fresh_postgres_url()
    with Sandbox() as sb, run_in_thread(sb) as base_url:
        params = [replica(tmp_path, f"r{n}", base_url, journal_url, media_dir) for n in range(3)]
        async with Client(params[0]) as a, Client(params[1]) as b, Client(params[2]) as c:
            up = await call(a, "upload_media", path=str(media_dir / "video.mp4"))
            content_id = up["content"]["id"]
            # the same file on another replica is found in the shared journal: no second upload
            again = await call(b, "upload_media", path=str(media_dir / "video.mp4"))
            assert again["content"]["id"] == content_id and again["deduplicated"] is True

            # 1. the same request on three replicas at once
            same = draft(sb, content_id, "Three replicas, one post #sandbox")
            assert (await call(a, "publish_content", **same))["valid"] is True  # one dry run serves every replica
            results: list[dict[str, Any]] = []

            async def live(client: Client) -> None:
                results.append(await call(client, "publish_content", **same, dry_run=False))

            async with anyio.create_task_group() as tg:
                for client in (a, b, c):
                    tg.start_soon(live, client)
            caption = "Three replicas, one post"
            [post] = posts(sb, caption)
            keys = {e.idempotency_key for e in live_attempts(sb, caption)}
            assert len(keys) == 1 and {r["publish_id"] for r in results} == {post}
            assert {r["idempotency_key"] for r in results} == keys

            # 2. a replica is killed while PostQued holds its request; the user repeats the call on another
            held_request = draft(sb, content_id, "Killed mid-publish #sandbox")
            assert (await call(b, "publish_content", **held_request))["valid"] is True
            sb.inject("slow", route="publish", seconds=HOLD_SECONDS)
            async with anyio.create_task_group() as tg:

                async def doomed() -> None:
                    with contextlib.suppress(Exception):  # the replica dies under the call
                        await c.call_tool("publish_content", {**held_request, "dry_run": False})

                tg.start_soon(doomed)
                caption = "Killed mid-publish"
                await until(lambda: live_attempts(sb, caption), 20, "the held publish to arrive")
                os.kill(int((tmp_path / "r2.pid").read_text()), signal.SIGKILL)
                repeat = await call(a, "publish_content", **held_request, dry_run=False)
                tg.cancel_scope.cancel()
            await until(  # the held request is answered too (PostQued replays it: same key, same body)
                lambda: all(e.status is not None for e in live_attempts(sb, caption)), HOLD_SECONDS + 10, "the sandbox"
            )
            [killed_post] = posts(sb, caption)
            attempts = live_attempts(sb, caption)
            assert len(attempts) == 2 and {e.idempotency_key for e in attempts} == {repeat["idempotency_key"]}
            assert repeat["publish_id"] == killed_post
            assert len(sb.publish_requests) == 2  # one post per request, nothing else

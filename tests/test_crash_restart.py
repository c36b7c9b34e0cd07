"""The real server process is killed while a live publish is in flight, then restarted.

The sandbox runs on loopback (real time, a ``slow`` fault holds the live publish open); the server is the
``postqued-mcp`` entry point spawned as a subprocess speaking stdio. It is killed with SIGKILL once the
sandbox is holding the publish; the sandbox then commits it anyway. The restarted server must find the
intent in its journal and repeat the *same* call with the *same* Idempotency-Key, so PostQued replays
its answer and exactly one publish request exists.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio
import mcp.types as mt
import pytest
from mcp import Client, StdioServerParameters

from postqued.journal import SqliteJournal
from postqued.sandbox import SANDBOX_API_KEY, LedgerEntry, Sandbox, run_in_thread
from tests.mcpkit import call

ROOT = Path(__file__).resolve().parents[1]
HOLD_SECONDS = 1.5  # how long the sandbox holds the live publish before committing it
# The server entry point, writing its own pid first (the SDK does not expose the child process).
BOOT = (
    "import os, sys; open(sys.argv[1], 'w').write(str(os.getpid()))\n"
    "from postqued_mcp.cli import main\n"
    "raise SystemExit(main([]))"
)

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL is POSIX")


def live_attempts(sb: Sandbox) -> list[LedgerEntry]:
    return [e for e in sb.requests("publish") if e.idempotency_key is not None]


async def until(condition: Callable[[], Any], within: float, what: str) -> Any:
    deadline = time.monotonic() + within
    while not (value := condition()):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await anyio.sleep(0.01)
    return value


def server_process(tmp_path: Path, base_url: str, media_dir: Path, pidfile: Path) -> StdioServerParameters:
    env = {
        "POSTQUED_BASE_URL": base_url,
        "POSTQUED_API_KEY": SANDBOX_API_KEY,
        "POSTQUED_STATE_DIR": str(tmp_path / "state"),
        "POSTQUED_MEDIA_DIRS": str(media_dir),
        "POSTQUED_LOG_LEVEL": "WARNING",
        "PYTHONPATH": str(ROOT),
    }
    return StdioServerParameters(command=sys.executable, args=["-c", BOOT, str(pidfile)], env=env, cwd=tmp_path)


@pytest.mark.slow  # two real server processes and a held publish: --run-slow
async def test_server_killed_mid_publish_publishes_once_after_restart(tmp_path: Path, media_dir: Path) -> None:
    with Sandbox() as sb, run_in_thread(sb) as base_url:  # a real clock: the server process has its own
        first_pid = tmp_path / "first.pid"
        outcome: list[Any] = []

        async def publish_live(client: Client, args: dict[str, Any]) -> None:
            try:
                outcome.append(await client.call_tool("publish_content", {**args, "dry_run": False}))
            except Exception as exc:  # the server died under the call
                outcome.append(exc)

        async with Client(server_process(tmp_path, base_url, media_dir, first_pid)) as first:
            up = await call(first, "upload_media", path=str(media_dir / "video.mp4"))
            target = {
                "platform": "tiktok",
                "account_id": sb.tiktok_public_id,
                "intent": "draft",
                "caption": "Survives a crash #sandbox",
                "options": {"privacy_level": "SELF_ONLY"},
            }
            args = {"content_ids": [up["content"]["id"]], "targets": [target]}
            assert (await call(first, "publish_content", **args))["valid"] is True
            sb.inject("slow", route="publish", seconds=HOLD_SECONDS)

            async with anyio.create_task_group() as tg:
                tg.start_soon(publish_live, first, args)
                # the request arrived, its body was read, and the sandbox is holding it
                held = await until(
                    lambda: [e for e in live_attempts(sb) if "slow" in e.faults], 10, "the live publish to arrive"
                )
                os.kill(int(first_pid.read_text()), signal.SIGKILL)
                await until(lambda: outcome, 10, "the client to notice the dead server")
                tg.cancel_scope.cancel()

        [attempt] = held
        assert attempt.status is None and not sb.publish_requests  # killed before PostQued answered
        assert not isinstance(outcome[0], mt.CallToolResult) or outcome[0].is_error
        key = attempt.idempotency_key
        assert key is not None

        # the intent was on disk before the request left, with the exact bytes that were sent
        async with SqliteJournal(tmp_path / "state" / "journal.sqlite3") as journal:
            entry = await journal.find_by_key(key)
            assert entry is not None and entry.publish_id is None and entry.status in ("sending", "unknown")
            assert entry.body == json.loads(attempt.body)

        # PostQued finishes the work it was given although nobody is listening any more
        await until(lambda: sb.publish_requests, HOLD_SECONDS + 5, "the sandbox to commit the publish")
        [(publish_id, created)] = sb.publish_requests.items()
        assert created.idempotency_key == key

        async with Client(server_process(tmp_path, base_url, media_dir, tmp_path / "second.pid")) as second:
            unknown = await call(second, "list_publish_journal", status="unknown")
            assert [(e["idempotency_key"], e["publish_id"]) for e in unknown["entries"]] == [(key, None)]

            again = await call(second, "publish_content", **args, dry_run=False)

            journal_view = await call(second, "list_publish_journal")

        attempts = live_attempts(sb)
        assert [e.idempotency_key for e in attempts] == [key, key]
        assert attempts[0].body == attempts[1].body and attempts[1].status == 200
        assert list(sb.publish_requests) == [publish_id]  # the same call published nothing new
        assert (again["publish_id"], again["idempotency_key"]) == (publish_id, key)
        [resolved] = journal_view["entries"]
        assert (resolved["status"], resolved["publish_id"], resolved["attempts"]) == ("accepted", publish_id, 2)

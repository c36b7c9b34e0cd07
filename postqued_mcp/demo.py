"""``postqued-mcp demo``: the whole chain through a real MCP client session against the embedded sandbox."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from postqued.settings import Settings
from postqued_mcp.app import build_server


async def run_demo(settings: Settings, *, out: Any = None) -> int:
    """The whole chain through a real MCP client session against the embedded sandbox. 0 if every step passed."""
    import tempfile
    from importlib.resources import as_file, files

    from mcp import Client

    from postqued.sandbox import Sandbox

    out = out or sys.stdout
    failures = 0

    def say(text: str) -> None:
        print(text, file=out, flush=True)

    async def step(title: str, client: Any, tool: str, args: dict[str, Any], progress: Any = None) -> Any:
        nonlocal failures
        say(f"\n▶ {title}: {tool}({json.dumps(args)})")
        result = await client.call_tool(tool, args, progress_callback=progress)
        if result.is_error:
            failures += 1
            say(f"  ✗ {result.content[0].text if result.content else 'error'}")
            return None
        return result.structured_content

    say("postqued-mcp demo: the publishing chain against the embedded PostQued sandbox (nothing is posted).")
    with tempfile.TemporaryDirectory() as state_dir, as_file(files("postqued.assets") / "sample.mp4") as sample:
        demo_settings = settings.model_copy(
            update={"media_dirs": (Path(sample).parent,), "state_dir": Path(state_dir), "confirm": "direct"}
        )
        sandbox = Sandbox(processing_seconds=1.0, moderation_seconds=0.5)
        server = build_server(demo_settings, sandbox=sandbox)
        async with Client(server) as client:
            last = [-1.0]

            async def on_progress(done: float, total: float | None, message: str | None) -> None:
                if total and (done - last[0] >= total / 4 or done == total):
                    last[0] = done
                    say(f"  … {message or ''} ({100 * done / total:.0f}%)")

            ws = await step("1. Workspaces", client, "list_workspaces", {})
            if ws:
                say(f"  ✓ workspace {ws['default_workspace_id']} (sandbox={ws['sandbox']})")
            up = await step("2. Upload the sample video", client, "upload_media", {"path": str(sample)}, on_progress)
            if up:
                c = up["content"]
                say(
                    f"  ✓ content {c['id']}: {c['mime_type']} {c['width']}x{c['height']}, "
                    f"{c['duration_ms']} ms, {c['size']} bytes, status {c['status']}"
                )
            acc = await step("3. TikTok accounts", client, "list_accounts", {"platform": "tiktok"})
            account = acc["accounts"][0] if acc and acc["accounts"] else None
            if account:
                say(f"  ✓ {len(acc['accounts'])} account(s); using {account['username']} ({account['id']})")
                info = await step("4. Creator info", client, "get_creator_info", {"account_id": account["id"]})
                if info:
                    say(
                        f"  ✓ privacy options {info['privacy_level_options']}, "
                        f"max {info['max_video_post_duration_sec']} s"
                    )
            if not (up and account):
                say("\n✗ demo stopped: an earlier step failed")
                return 1
            args = {
                "content_ids": [up["content"]["id"]],
                "targets": [
                    {
                        "platform": "tiktok",
                        "account_id": account["id"],
                        "intent": "draft",
                        "caption": "Hello from the postqued-mcp demo #sandbox",
                        "options": {"privacy_level": "SELF_ONLY"},
                    }
                ],
            }
            plan = await step("5. Dry run", client, "publish_content", {**args, "dry_run": True})
            if plan:
                say(f"  ✓ valid={plan['valid']} plan_id={plan['plan_id'][:19]}… issues={plan['issues']}")
            live = await step(
                "6. Publish (draft to the creator's inbox)", client, "publish_content", {**args, "dry_run": False}
            )
            if live:
                say(f"  ✓ publish_id {live['publish_id']} status {live['status']} key {live['idempotency_key']}")
                done = await step(
                    "7. Wait until terminal",
                    client,
                    "wait_for_publish",
                    {"publish_id": live["publish_id"], "timeout_seconds": 30},
                    on_progress,
                )
                if done:
                    states = ", ".join(f"{t['platform']}:{t['status']}" for t in done["targets"])
                    say(f"  ✓ request {done['status']} (terminal={done['terminal']}): {states}")
                    if not done["terminal"]:
                        failures += 1
    say("\n✓ demo passed: every step succeeded." if not failures else f"\n✗ demo failed: {failures} step(s) failed.")
    return 0 if not failures else 1

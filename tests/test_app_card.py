"""The publish card's server side, through the real MCP protocol: what hosts with and without Apps see, and the
three app-only tools (preview, approve exactly the previewed plan, decline).

The card itself is driven in a real browser by tests/test_app_card_browser.py.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import re
from datetime import timedelta
from pathlib import Path
from typing import Any

import mcp.types as mt
import pytest
from mcp.server.apps import APP_MIME_TYPE

from postqued.clock import ManualClock
from postqued.sandbox import Sandbox
from postqued.settings import Settings
from postqued.text import shown
from postqued_mcp.tools.apps import RESOURCE_URI, card_html
from tests.appkit import HOSTILE, apps_client, dry_run, error, live_attempts, ok, target
from tests.conftest import make_client
from tests.journalkit import BACKENDS, journal_factory

APP_TOOLS = {"preview_publish_plan", "approve_publish_plan", "decline_publish_plan"}


# --- what each kind of host sees -----------------------------------------------------------------


async def test_a_host_without_apps_sees_no_app_tool_and_no_card(
    settings: Settings, sandbox: Sandbox, clock: ManualClock
) -> None:
    async with make_client(settings, sandbox, clock) as plain, apps_client(settings, sandbox, clock) as apps:
        plain_tools = {t.name: t for t in (await plain.list_tools()).tools}
        apps_tools = {t.name: t for t in (await apps.list_tools()).tools}
        plain_resources = {str(r.uri) for r in (await plain.list_resources()).resources}
        apps_resources = {str(r.uri) for r in (await apps.list_resources()).resources}

    assert not APP_TOOLS & set(plain_tools) and RESOURCE_URI not in plain_resources
    assert set(apps_tools) == set(plain_tools) | APP_TOOLS and apps_resources == plain_resources | {RESOURCE_URI}
    for name in APP_TOOLS:  # hidden from the model by the host, callable by the card
        assert apps_tools[name].meta == {"ui": {"resourceUri": RESOURCE_URI, "visibility": ["app"]}}
    for name in ("publish_content", "get_publish_status", "wait_for_publish"):
        assert plain_tools[name].meta == {"ui": {"resourceUri": RESOURCE_URI}} == apps_tools[name].meta


async def test_app_tools_refuse_a_client_without_apps(
    settings: Settings, sandbox: Sandbox, clock: ManualClock, media_dir: Path
) -> None:
    async with make_client(settings, sandbox, clock) as plain:
        args, plan_id, _ = await dry_run(plain, media_dir / "video.mp4", target(sandbox.tiktok_public_id))
        refused = await error(plain, "approve_publish_plan", plan_id=plan_id, **args)

    assert "APP_ONLY_TOOL" in refused and "publish_content" in refused
    assert not live_attempts(sandbox)


async def test_the_card_resource_is_an_mcp_app_with_a_strict_policy(
    settings: Settings, sandbox: Sandbox, clock: ManualClock
) -> None:
    async with apps_client(settings, sandbox, clock) as client:
        [content] = (await client.read_resource(RESOURCE_URI)).contents
    assert isinstance(content, mt.TextResourceContents) and content.mime_type == APP_MIME_TYPE
    assert content.text == card_html()
    assert content.meta == {
        "ui": {
            "csp": {"connectDomains": [], "resourceDomains": [], "frameDomains": [], "baseUriDomains": []},
            "prefersBorder": True,
        }
    }
    html = content.text
    [policy] = re.findall(r'http-equiv="Content-Security-Policy" content="([^"]+)"', html)
    directives = dict(d.strip().split(" ", 1) for d in policy.split(";"))
    assert directives["default-src"] == "'none'" and directives["connect-src"] == "'none'"
    assert directives["img-src"] == "data:" and "http" not in policy and "unsafe" not in policy
    [script] = re.findall(r"<script>(.*?)</script>", html, re.S)
    [style] = re.findall(r"<style>(.*?)</style>", html, re.S)
    for source, directive in ((script, "script-src"), (style, "style-src")):
        digest = base64.b64encode(hashlib.sha256(source.encode()).digest()).decode()
        assert directives[directive] == f"'sha256-{digest}'"  # only this exact inline code runs
    assert not re.search(r"\son[a-z]+\s*=", html, re.I), "no inline event handler attributes"
    assert "innerHTML" not in script and "insertAdjacentHTML" not in script and "document.write" not in script


# --- preview -------------------------------------------------------------------------------------


async def test_preview_shows_the_plan_exactly_with_limits_switches_and_a_local_thumbnail(
    settings: Settings, sandbox: Sandbox, clock: ManualClock, media_dir: Path
) -> None:
    when = (clock.now() + timedelta(hours=3)).replace(microsecond=0)
    async with apps_client(settings, sandbox, clock) as client:
        args, plan_id, _ = await dry_run(
            client, media_dir / "image.png", target(sandbox.tiktok_public_id, dispatch_at=when.isoformat())
        )
        preview = await ok(client, "preview_publish_plan", plan_id=plan_id, **args)

    assert preview["plan_id"] == plan_id and preview["approvable"] is True and preview["sandbox"] is True
    [shown] = preview["targets"]
    assert shown["caption"] == HOSTILE and shown["account_username"] == "@sandbox_creator"
    # a photo post: TikTok counts UTF-16 units against its 90-unit title limit
    assert (shown["caption_length"], shown["caption_limit"], shown["caption_unit"]) == (len(HOSTILE), 90, "utf16")
    assert shown["privacy_level"] == "PUBLIC_TO_EVERYONE" and shown["dispatch_at"] == when.isoformat()
    assert shown["interactions"] == [{"label": "Comments", "value": "off"}]  # no duets or stitches on photo posts
    [media] = preview["media"]
    assert (media["filename"], media["mime_type"], media["width"], media["height"]) == (
        "image.png",
        "image/png",
        50,
        30,
    )
    assert media["orientation"] == "landscape" and media["size"] == (media_dir / "image.png").stat().st_size
    prefix = "data:image/png;base64,"
    assert media["thumbnail"].startswith(prefix)
    from PIL import Image

    with Image.open(io.BytesIO(base64.b64decode(media["thumbnail"][len(prefix) :]))) as thumb:
        assert thumb.format == "PNG" and thumb.size == (50, 30)  # small images are not enlarged
    assert [i["code"] for i in preview["issues"]] == ["DIRECT_POST", "SANDBOX"]
    assert all(i["severity"] == "note" for i in preview["issues"])
    assert "X-Amz" not in str(preview) and "pq_" not in str(preview)


async def test_a_video_shows_metadata_and_no_thumbnail(
    settings: Settings, sandbox: Sandbox, clock: ManualClock, media_dir: Path
) -> None:
    async with apps_client(settings, sandbox, clock) as client:
        args, plan_id, _ = await dry_run(client, media_dir / "video.mp4", target(sandbox.tiktok_public_id))
        preview = await ok(client, "preview_publish_plan", plan_id=plan_id, **args)

    [media] = preview["media"]
    assert (media["width"], media["height"], media["duration_ms"], media["thumbnail"]) == (320, 240, 2000, None)
    [shown] = preview["targets"]
    assert shown["caption_limit"] == 2200 and [s["label"] for s in shown["interactions"]] == [
        "Comments",
        "Duets",
        "Stitches",
    ]


async def test_an_image_changed_after_its_upload_gets_no_thumbnail(
    settings: Settings, sandbox: Sandbox, clock: ManualClock, media_dir: Path
) -> None:
    async with apps_client(settings, sandbox, clock) as client:
        args, plan_id, _ = await dry_run(client, media_dir / "image.png", target(sandbox.tiktok_public_id))
        (media_dir / "image.png").write_bytes((media_dir / "image.jpg").read_bytes())  # not what was uploaded
        preview = await ok(client, "preview_publish_plan", plan_id=plan_id, **args)
    assert preview["media"][0]["thumbnail"] is None


async def test_a_stale_plan_lists_the_failing_issue_first_and_cannot_be_approved(
    settings: Settings, sandbox: Sandbox, clock: ManualClock, media_dir: Path
) -> None:
    async with apps_client(settings, sandbox, clock) as client:
        args, plan_id, _ = await dry_run(client, media_dir / "video.mp4", target(sandbox.tiktok_public_id))
        clock.advance(31 * 60)
        preview = await ok(client, "preview_publish_plan", plan_id=plan_id, **args)
        refused = await error(client, "approve_publish_plan", plan_id=plan_id, **args)

    assert preview["approvable"] is False
    assert [(i["code"], i["severity"]) for i in preview["issues"]] == [
        ("DRY_RUN_REQUIRED", "error"),
        ("DIRECT_POST", "note"),
        ("SANDBOX", "note"),
    ]
    assert "DRY_RUN_REQUIRED" in refused and "Nothing was sent" in refused
    assert not live_attempts(sandbox)


# --- approve -------------------------------------------------------------------------------------


async def test_approve_posts_the_previewed_plan_once(
    settings: Settings, sandbox: Sandbox, clock: ManualClock, media_dir: Path
) -> None:
    async with apps_client(settings, sandbox, clock) as client:
        args, plan_id, _ = await dry_run(client, media_dir / "video.mp4", target(sandbox.tiktok_public_id))
        first = await ok(client, "approve_publish_plan", plan_id=plan_id, **args)
        again = await ok(client, "approve_publish_plan", plan_id=plan_id, **args)

    assert first["plan_id"] == plan_id and first["confirmation"] == "approved on the preview card"
    assert again["replayed"] is True and again["publish_id"] == first["publish_id"]
    [attempt] = live_attempts(sandbox)
    assert json.loads(attempt.body)["targets"][0]["caption"] == HOSTILE
    assert list(sandbox.publish_requests) == [first["publish_id"]]


@pytest.mark.parametrize(
    "change",
    [
        lambda a: a["targets"][0].update(caption="Something else"),
        lambda a: a["targets"][0]["options"].update(privacy_level="SELF_ONLY"),
        lambda a: a["targets"][0].update(intent="draft"),
    ],
    ids=["caption", "privacy", "intent"],
)
async def test_approve_refuses_anything_but_the_previewed_plan(
    settings: Settings, sandbox: Sandbox, clock: ManualClock, media_dir: Path, change: Any
) -> None:
    async with apps_client(settings, sandbox, clock) as client:
        args, plan_id, _ = await dry_run(client, media_dir / "video.mp4", target(sandbox.tiktok_public_id))
        change(args)
        refused = await error(client, "approve_publish_plan", plan_id=plan_id, **args)
    assert "PLAN_CHANGED" in refused and "Nothing was sent" in refused
    assert not live_attempts(sandbox)


async def test_approve_still_asks_the_user_when_the_host_can_be_asked(
    settings: Settings, sandbox: Sandbox, clock: ManualClock, media_dir: Path
) -> None:
    """A card's call cannot be told from the model's, so elicitation still asks; a refusal sends nothing."""
    asked: list[str] = []

    async def user(context: Any, params: mt.ElicitRequestParams) -> mt.ElicitResult:
        asked.append(params.message)
        return mt.ElicitResult(action="decline")

    async with apps_client(settings, sandbox, clock, elicitation_callback=user) as client:
        args, plan_id, _ = await dry_run(client, media_dir / "video.mp4", target(sandbox.tiktok_public_id))
        preview = await ok(client, "preview_publish_plan", plan_id=plan_id, **args)
        refused = await error(client, "approve_publish_plan", plan_id=plan_id, **args)

    assert preview["asks_again"] is True
    [question] = asked
    assert shown(HOSTILE, None) in question and "PUBLIC_TO_EVERYONE" in question
    assert "CONFIRMATION_DECLINED" in refused and not live_attempts(sandbox)


# --- decline -------------------------------------------------------------------------------------


async def test_decline_withdraws_the_dry_run_so_nothing_can_publish_it(
    settings: Settings, sandbox: Sandbox, clock: ManualClock, media_dir: Path
) -> None:
    async with apps_client(settings, sandbox, clock) as client:
        args, plan_id, _ = await dry_run(client, media_dir / "video.mp4", target(sandbox.tiktok_public_id))
        declined = await ok(client, "decline_publish_plan", plan_id=plan_id)
        by_card = await error(client, "approve_publish_plan", plan_id=plan_id, **args)
        by_model = await error(client, "publish_content", **args, dry_run=False, confirm=True)
        declined_again = await ok(client, "decline_publish_plan", plan_id=plan_id)

    assert declined["withdrawn"] is True and declined_again["withdrawn"] is False
    assert "DRY_RUN_REQUIRED" in by_card and "DRY_RUN_REQUIRED" in by_model
    assert not live_attempts(sandbox) and not sandbox.publish_requests


@pytest.mark.parametrize("backend", BACKENDS)
async def test_withdrawing_a_plan_ends_its_freshness_for_its_identity_only(
    backend: str, clock: ManualClock, tmp_path: Path
) -> None:
    digest = "sha256:" + "ab" * 32
    async with journal_factory(backend, clock, tmp_path) as reopen:
        journal = await reopen()
        other = journal.for_identity("someone-else")
        for j in (journal, other):
            await j.record_plan(digest, "ws", {"targets": []})
        assert await journal.withdraw_plan(digest) == 1
        assert not await journal.plan_is_fresh(digest) and await other.plan_is_fresh(digest)
        assert await journal.withdraw_plan(digest) == 0
        await journal.record_plan(digest, "ws", {"targets": []})  # a new dry run makes it fresh again
        assert await journal.plan_is_fresh(digest)

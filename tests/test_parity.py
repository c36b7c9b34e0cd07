"""Parity with PostQued's hosted MCP server: the 62-tool catalog, and the admin, providers, analytics and
engagement toolsets through a real in-memory MCP client against the sandbox (both handshake modes).

Approvals, team and client review are in ``test_parity_approvals.py``; the sandbox routes themselves in
``test_parity_sandbox.py``.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from mcp import Client

from postqued.clock import ManualClock
from postqued.sandbox import Sandbox
from postqued.settings import TOOLSETS as TOOLSET_NAMES
from postqued.settings import Settings
from postqued_mcp.tools import TOOLSETS
from postqued_mcp.tools.discovery import NAMES as DISCOVERY
from tests.conftest import make_client
from tests.mcpkit import PUBLISHING_TOOLS, all_settings, call, call_error, sent

FOREIGN_WS = "0e9f4d4a-1111-4222-8333-944445555666"  # a well-formed workspace id this key cannot see

# PostQued's hosted server (https://mcp.postqued.com/mcp): its 62 tools by group (api-facts.md, section 3.3).
HOSTED_CATALOG: dict[str, tuple[str, ...]] = {
    "workspaces and account context": (
        "list_workspaces", "create_workspace", "get_workspace_capabilities", "get_billing_status",
        "get_billing_usage",
    ),
    "connected accounts": (
        "list_accounts", "get_creator_info", "list_instagram_audio", "search_reddit_subreddits",
        "get_reddit_restrictions", "search_linkedin_companies", "list_pinterest_boards", "disconnect_account",
    ),
    "content library": (
        "start_content_upload", "complete_content_upload", "list_content", "get_content", "update_content",
        "delete_content",
    ),
    "calendar and publishing": (
        "publish_content", "list_publish_requests", "get_publish_status", "cancel_publish", "cancel_publish_target",
        "reschedule_publish_target", "delete_publish_request",
    ),
    "analytics": ("get_account_analytics", "get_tiktok_videos"),
    "engagement": (
        "list_engagement", "reply_to_comment", "comment_on_post", "set_comment_hidden", "set_comment_liked",
        "delete_comment",
    ),
    "approvals and revisions": (
        "list_approval_posts", "create_approval_post", "get_approval_post", "create_post_revision",
        "create_post_suggestion", "accept_post_suggestion", "decline_post_suggestion", "comment_on_approval",
        "submit_for_approval", "request_post_changes", "approve_post", "schedule_approved_post",
        "publish_approved_post",
    ),
    "collaboration and client review": (
        "list_collaborators", "invite_collaborator", "revoke_collaborator_invitation", "update_collaborator",
        "remove_collaborator", "list_post_reviewers", "invite_post_reviewer", "revoke_post_reviewer_invitation",
        "remove_post_reviewer", "list_client_reviews", "get_client_review", "create_client_suggestion",
        "comment_on_client_review", "request_client_changes", "approve_client_review",
    ),
}  # fmt: skip
HOSTED = {name for names in HOSTED_CATALOG.values() for name in names}

# Our own tools beyond the hosted catalog (local conveniences of the publishing toolset).
OURS_ONLY = {"upload_media", "wait_for_publish", "list_publish_journal"}

READ_TOOLS = {
    "get_workspace_capabilities", "get_billing_status", "get_billing_usage", "list_instagram_audio",
    "search_reddit_subreddits", "get_reddit_restrictions", "search_linkedin_companies", "list_pinterest_boards",
    "get_account_analytics", "get_tiktok_videos", "list_engagement", "list_approval_posts", "get_approval_post",
    "list_collaborators", "list_post_reviewers", "list_client_reviews", "get_client_review",
}  # fmt: skip
DESTRUCTIVE_TOOLS = {
    "disconnect_account", "delete_comment", "remove_collaborator", "revoke_collaborator_invitation",
    "remove_post_reviewer", "revoke_post_reviewer_invitation",
}  # fmt: skip
# Tools that reach another person, take access away, or publish: they ask the user (or need confirm=true).
CONFIRMING_TOOLS = {
    "disconnect_account", "reply_to_comment", "comment_on_post", "delete_comment", "invite_collaborator",
    "revoke_collaborator_invitation", "update_collaborator", "remove_collaborator", "invite_post_reviewer",
    "revoke_post_reviewer_invitation", "remove_post_reviewer", "schedule_approved_post", "publish_approved_post",
}  # fmt: skip
NEW_TOOLSETS = ("analytics", "engagement", "approvals", "team", "providers", "admin")


@pytest.fixture
async def full(settings: Settings, sandbox: Sandbox, clock: ManualClock, mode: str) -> AsyncIterator[Client]:
    """An MCP client of a server with POSTQUED_TOOLSETS=all, both handshake modes."""
    async with make_client(all_settings(settings), sandbox, clock, mode=mode) as client:
        yield client


# --- the catalog ---------------------------------------------------------------------------------


def test_the_hosted_catalog_has_62_tools() -> None:
    assert sum(len(names) for names in HOSTED_CATALOG.values()) == len(HOSTED) == 62


async def test_every_hosted_tool_is_registered_with_all(full: Client) -> None:
    names = {t.name for t in (await full.list_tools()).tools}
    assert HOSTED - names == set()
    assert names - HOSTED == PUBLISHING_TOOLS - HOSTED == OURS_ONLY  # local conveniences of publishing


def test_every_new_toolset_is_in_the_settings_and_the_registry() -> None:
    assert set(TOOLSETS) == set(TOOLSET_NAMES)
    by_toolset = {name: {s.name for g in groups for s in g.specs} for name, groups in TOOLSETS.items()}
    assert by_toolset["analytics"] == set(HOSTED_CATALOG["analytics"])
    assert by_toolset["engagement"] == set(HOSTED_CATALOG["engagement"])
    assert by_toolset["approvals"] == set(HOSTED_CATALOG["approvals and revisions"])
    assert by_toolset["team"] == set(HOSTED_CATALOG["collaboration and client review"])
    assert len(by_toolset["providers"]) == 5 and len(by_toolset["admin"]) == 5
    assert by_toolset["publishing"] == PUBLISHING_TOOLS
    everything = set().union(*by_toolset.values())
    assert sum(len(v) for v in by_toolset.values()) == len(everything)  # no tool is in two toolsets
    assert not HOSTED - everything


async def test_new_toolsets_are_off_by_default(mcp: Client) -> None:  # and on request: tests/test_toolsets.py
    assert {t.name for t in (await mcp.list_tools()).tools} == PUBLISHING_TOOLS | DISCOVERY


async def test_one_toolset_alone(settings: Settings, sandbox: Sandbox, clock: ManualClock) -> None:
    only = settings.model_copy(update={"toolsets": frozenset({"analytics"})})
    async with make_client(only, sandbox, clock) as client:
        assert {t.name for t in (await client.list_tools()).tools} == set(HOSTED_CATALOG["analytics"])


async def test_annotations_tell_the_truth(full: Client) -> None:
    tools = {t.name: t for t in (await full.list_tools()).tools}
    for name in HOSTED - PUBLISHING_TOOLS:
        tool = tools[name]
        ann = tool.annotations
        assert ann is not None and tool.title and tool.output_schema, name
        assert tool.description and 30 < len(tool.description) < 400, name
        assert ann.read_only_hint is (name in READ_TOOLS), name
        assert ann.open_world_hint is True, name
        if name not in READ_TOOLS:
            assert ann.destructive_hint is (name in DESTRUCTIVE_TOOLS), name
        props = tool.input_schema.get("properties", {})
        assert all(p == p.lower() for p in props), name
        assert ("confirm" in props) is (name in CONFIRMING_TOOLS), name
        assert "approval" not in props, name  # resolved on the server, never by the model
        if name in CONFIRMING_TOOLS:
            assert props["confirm"]["default"] is False
    for name in ("schedule_approved_post", "publish_approved_post", "approve_post"):
        assert tools[name].annotations.destructive_hint is False  # type: ignore[union-attr]


async def test_read_only_keeps_only_the_reads(settings: Settings, sandbox: Sandbox, clock: ManualClock) -> None:
    async with make_client(all_settings(settings, read_only=True), sandbox, clock) as client:
        names = {t.name for t in (await client.list_tools()).tools}
    assert names >= READ_TOOLS and not (names & (HOSTED - PUBLISHING_TOOLS - READ_TOOLS))


async def test_v1_registers_none_of_the_new_tools(settings: Settings, sandbox: Sandbox, clock: ManualClock) -> None:
    async with make_client(all_settings(settings, api_version="v1"), sandbox, clock) as client:
        names = {t.name for t in (await client.list_tools()).tools}
    assert not names & (HOSTED - PUBLISHING_TOOLS - {"list_workspaces", "list_accounts"})


async def test_tools_list_stays_compact(settings: Settings, sandbox: Sandbox, clock: ManualClock) -> None:
    """Measured: compact JSON of tools/list, in total and per tool (the numbers are in the issue report)."""
    sizes = {}
    for label, toolsets in (("publishing", frozenset({"publishing"})), ("all", frozenset(TOOLSET_NAMES))):
        async with make_client(settings.model_copy(update={"toolsets": toolsets}), sandbox, clock) as client:
            tools = (await client.list_tools()).tools
        dumped = [t.model_dump(mode="json", by_alias=True, exclude_none=True) for t in tools]
        total = len(json.dumps({"tools": dumped}, separators=(",", ":")))
        sizes[label] = (len(tools), total)
        biggest = max(dumped, key=lambda t: len(json.dumps(t, separators=(",", ":"))))
        assert len(json.dumps(biggest, separators=(",", ":"))) < 7_000, biggest["name"]
    count, total = sizes["all"]
    added = (total - sizes["publishing"][1]) / (count - sizes["publishing"][0])
    assert count == 65 and total < 160_000 and added < 2_500, sizes


# --- admin ---------------------------------------------------------------------------------------


async def test_create_workspace(full: Client, sandbox: Sandbox) -> None:
    made = await call(full, "create_workspace", organization_id=sandbox.organization_id, name="Client B")
    assert made["workspace"]["name"] == "Client B" and made["sandbox"] is True
    assert made["workspace"]["organization_id"] == sandbox.organization_id
    listed = await call(full, "list_workspaces")
    assert made["workspace"]["id"] in {w["id"] for w in listed["workspaces"]}
    assert listed["default_workspace_id"] is None  # two workspaces now: the agent must choose
    error = await call_error(full, "create_workspace", organization_id="someone-elses-org", name="X")
    assert "FORBIDDEN (HTTP 403)" in error and "Next step" in error


async def test_capabilities_billing_usage(full: Client, sandbox: Sandbox) -> None:
    caps = await call(full, "get_workspace_capabilities")
    assert caps["workspace_id"] == sandbox.workspace_id and caps["plan"] == "sandbox_pro"
    assert caps["capabilities"]["approvals"] is True and caps["capabilities"]["collaborators"]["used"] == 3
    billing = await call(full, "get_billing_status")
    assert (billing["status"], billing["plan"]) == ("active", "Sandbox Pro") and billing["current_period_end"]
    usage = await call(full, "get_billing_usage")
    assert usage["usage"]["connectedAccounts"] == 3 and usage["period_start"] and usage["period_end"]
    sandbox.subscription_active = False
    assert (await call(full, "get_billing_status"))["status"] == "inactive"
    assert (await call(full, "get_workspace_capabilities"))["capabilities"]["approvals"] is False
    error = await call_error(full, "get_billing_usage", workspace_id=FOREIGN_WS)
    assert "FORBIDDEN (HTTP 403)" in error


async def test_disconnect_account_needs_confirmation(full: Client, sandbox: Sandbox) -> None:
    account = sandbox.instagram_id
    refused = await call_error(full, "disconnect_account", account_id=account)
    assert "CONFIRMATION_REQUIRED" in refused and sent(sandbox, "integration_delete") == 0
    done = await call(full, "disconnect_account", account_id=account, confirm=True)
    assert done["ok"] is True and done["confirmation"] == "confirm=true"
    accounts = await call(full, "list_accounts")
    assert account not in {a["id"] for a in accounts["accounts"]}
    again = await call_error(full, "disconnect_account", account_id=account, confirm=True)
    assert "NOT_FOUND (HTTP 404)" in again


# --- providers -----------------------------------------------------------------------------------


async def test_instagram_audio(full: Client, sandbox: Sandbox) -> None:
    found = await call(full, "list_instagram_audio", account_id=sandbox.instagram_id)
    kinds = {a["type"] for a in found["audio"]}
    assert kinds == {"music", "original_sound"} and all(a["selection_token"] for a in found["audio"])
    assert found["audio"][0]["duration_ms"] == 30_000
    error = await call_error(full, "list_instagram_audio", account_id=sandbox.tiktok_public_id)
    assert "UNSUPPORTED_PLATFORM (HTTP 400)" in error


async def test_reddit_helpers(full: Client, sandbox: Sandbox) -> None:
    reddit = sandbox.connect_account("reddit", "sandbox_redditor")
    found = await call(full, "search_reddit_subreddits", account_id=reddit, query="short")
    assert [s["name"] for s in found["items"]] == ["shortfilms"] and found["items"][0]["details"]["subscribers"]
    assert len((await call(full, "search_reddit_subreddits", account_id=reddit, limit=2))["items"]) == 2
    rules = await call(full, "get_reddit_restrictions", account_id=reddit, subreddit="r/sandbox")
    assert rules["subreddit"] == "sandbox" and rules["flair_required"] is True
    assert "image" not in rules["post_types"] and {f["name"] for f in rules["flairs"]} >= {"OC"}
    assert rules["details"]["titleMaxLength"] == 300
    missing = await call_error(full, "get_reddit_restrictions", account_id=reddit, subreddit="nope_nope")
    assert "NOT_FOUND (HTTP 404)" in missing
    wrong = await call_error(full, "search_reddit_subreddits", account_id=sandbox.instagram_id)
    assert "UNSUPPORTED_PLATFORM" in wrong


async def test_linkedin_and_pinterest_helpers(full: Client, sandbox: Sandbox) -> None:
    linkedin = sandbox.connect_account("linkedin", "sandbox_li")
    pinterest = sandbox.connect_account("pinterest", "sandbox_pins")
    companies = await call(full, "search_linkedin_companies", account_id=linkedin, query="studio")
    assert [(c["id"], c["name"]) for c in companies["items"]] == [("urn:li:organization:1002", "Sandbox Studio")]
    boards = await call(full, "list_pinterest_boards", account_id=pinterest)
    assert [b["name"] for b in boards["items"]] == ["Launch ideas", "Behind the scenes", "Drafts"]
    assert boards["items"][2]["details"]["privacy"] == "secret"
    again = await call(full, "list_pinterest_boards", account_id=pinterest, limit=1)
    assert again["items"] == boards["items"][:1]  # deterministic ids
    assert "UNSUPPORTED_PLATFORM" in await call_error(full, "list_pinterest_boards", account_id=linkedin)
    error = await call_error(full, "search_linkedin_companies", account_id="unknown-account")
    assert "NOT_FOUND (HTTP 404)" in error


# --- analytics -----------------------------------------------------------------------------------


async def test_account_analytics_are_deterministic(full: Client, sandbox: Sandbox) -> None:
    first = await call(full, "get_account_analytics", account_id=sandbox.tiktok_public_id, range="week")
    assert first["range"] == "week" and first["platform"] == "tiktok" and len(first["posts"]) == 3
    metrics = first["posts"][0]["metrics"]
    assert {"views", "likes", "comments", "shares"} <= set(metrics) and metrics["views"] >= 400
    assert first["totals"]["views"] == sum(p["metrics"]["views"] for p in first["posts"])
    again = await call(full, "get_account_analytics", account_id=sandbox.tiktok_public_id, range="week")
    assert again["posts"] == first["posts"]
    month = await call(full, "get_account_analytics", account_id=sandbox.tiktok_public_id, limit=5)
    assert month["range"] == "month" and len(month["posts"]) == 5
    other = await call(full, "get_account_analytics", account_id=sandbox.instagram_id, range="week")
    assert other["posts"][0]["metrics"] != metrics  # derived from ids
    pins = sandbox.connect_account("pinterest", "sandbox_pins")
    error = await call_error(full, "get_account_analytics", account_id=pins)
    assert "UNSUPPORTED_PLATFORM (HTTP 400)" in error


async def test_tiktok_videos_page_by_cursor(full: Client, sandbox: Sandbox) -> None:
    account = sandbox.tiktok_public_id
    page = await call(full, "get_tiktok_videos", account_id=account, range="month", limit=5)
    assert len(page["videos"]) == 5 and page["has_more"] is True and page["next_cursor"] == "5"
    assert page["videos"][0]["published_at"].endswith("Z") and page["videos"][0]["url"]
    seen = [v["id"] for v in page["videos"]]
    while page["has_more"]:
        page = await call(full, "get_tiktok_videos", account_id=account, range="month", cursor=page["next_cursor"])
        seen += [v["id"] for v in page["videos"]]
    assert len(seen) == len(set(seen)) == 12 and page["next_cursor"] is None
    error = await call_error(full, "get_tiktok_videos", account_id=sandbox.instagram_id)
    assert "UNSUPPORTED_PLATFORM (HTTP 400)" in error


# --- engagement ----------------------------------------------------------------------------------


async def inbox(client: Client) -> dict[str, Any]:
    items = (await call(client, "list_engagement"))["items"]
    assert items, "the sandbox seeds one published post with comments"
    return dict(items[0])


async def test_list_engagement(full: Client, sandbox: Sandbox) -> None:
    item = await inbox(full)
    assert item["platform"] == "tiktok" and item["account_id"] == sandbox.tiktok_public_id
    assert item["first_comment_status"] == "posted" and len(item["comments"]) == 2
    assert {c["author"] for c in item["comments"]} == {"@fan_one", "@fan_two"}
    error = await call_error(full, "list_engagement", workspace_id=FOREIGN_WS)
    assert "FORBIDDEN (HTTP 403)" in error


async def test_reply_and_comment_need_confirmation(full: Client, sandbox: Sandbox) -> None:
    item = await inbox(full)
    target, comment = item["target_id"], item["comments"][-1]["id"]
    refused = await call_error(full, "reply_to_comment", target_id=target, comment_id=comment, text="Friday!")
    assert "CONFIRMATION_REQUIRED" in refused and "confirm=true" in refused
    assert sent(sandbox, "engagement_reply") == 0
    reply = await call(full, "reply_to_comment", target_id=target, comment_id=comment, text="Friday!", confirm=True)
    assert reply["comment"]["parent_id"] == comment and reply["comment"]["author"] == "@sandbox_creator"
    assert reply["confirmation"] == "confirm=true"
    assert "CONFIRMATION_REQUIRED" in await call_error(full, "comment_on_post", target_id=target, text="Hi")
    posted = await call(full, "comment_on_post", target_id=target, text="Thanks all", confirm=True)
    assert posted["comment"]["text"] == "Thanks all" and posted["comment"]["parent_id"] is None
    assert len((await inbox(full))["comments"]) == 4
    missing = await call_error(full, "reply_to_comment", target_id=target, comment_id="nope", text="x", confirm=True)
    assert "NOT_FOUND (HTTP 404)" in missing
    gone = await call_error(full, "comment_on_post", target_id="unknown-target", text="x", confirm=True)
    assert "NOT_FOUND (HTTP 404)" in gone


async def test_hide_like_delete(full: Client, sandbox: Sandbox) -> None:
    item = await inbox(full)
    target, comment = item["target_id"], item["comments"][0]["id"]
    hidden = await call(full, "set_comment_hidden", target_id=target, comment_id=comment, hidden=True)
    assert hidden["action"] == "hide" and hidden["comment"]["hidden"] is True and hidden["confirmation"] is None
    shown = await call(full, "set_comment_hidden", target_id=target, comment_id=comment, hidden=False)
    assert shown["comment"]["hidden"] is False
    liked = await call(full, "set_comment_liked", target_id=target, comment_id=comment, liked=True)
    assert liked["action"] == "like" and liked["comment"]["liked"] is True
    assert "CONFIRMATION_REQUIRED" in await call_error(full, "delete_comment", target_id=target, comment_id=comment)
    deleted = await call(full, "delete_comment", target_id=target, comment_id=comment, confirm=True)
    assert deleted["ok"] is True and comment not in {c["id"] for c in (await inbox(full))["comments"]}
    error = await call_error(full, "set_comment_liked", target_id=target, comment_id=comment, liked=False)
    assert "NOT_FOUND (HTTP 404)" in error


async def test_a_published_post_joins_the_inbox(full: Client, sandbox: Sandbox, media_dir: Path) -> None:
    up = await call(full, "upload_media", path=str(media_dir / "video.mp4"))
    target = {
        "platform": "tiktok",
        "account_id": sandbox.tiktok_public_id,
        "intent": "publish",
        "caption": "Live #sandbox",
        "options": {"privacy_level": "PUBLIC_TO_EVERYONE"},
    }
    args = {"content_ids": [up["content"]["id"]], "targets": [target]}
    assert (await call(full, "publish_content", **args))["valid"] is True
    live = await call(full, "publish_content", **args, dry_run=False, confirm=True)
    done = await call(full, "wait_for_publish", publish_id=live["publish_id"], timeout_seconds=60)
    assert done["targets"][0]["status"] == "published"
    newest = (await call(full, "list_engagement"))["items"][0]
    assert newest["target_id"] == done["targets"][0]["id"] and newest["comments"] == []
    posted = await call(full, "comment_on_post", target_id=newest["target_id"], text="First!", confirm=True)
    assert posted["comment"]["author"] == "@sandbox_creator"
    assert [c["text"] for c in (await call(full, "list_engagement"))["items"][0]["comments"]] == ["First!"]

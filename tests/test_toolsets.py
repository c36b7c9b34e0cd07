"""On-demand toolsets through a real MCP client: discover, enable, get notified, call, same rules as at start.

The default start (``dynamic``) is publishing plus ``list_toolsets`` and ``enable_toolset``; enabling a
toolset registers its tools, the host hears ``notifications/tools/list_changed`` (the 2025 handshake hosts
speak) or a ``subscriptions/listen`` event (2026-07-28), and the new tools answer. Read-only mode and the
confirmation rules hold for them exactly as for the same toolset enabled at start, and the start setting a
result names gives exactly the tools the session has.
"""

from __future__ import annotations

import typing
from pathlib import Path
from typing import Any

import anyio
import mcp.types as mt
import pytest
from mcp import Client

from postqued.clock import ManualClock
from postqued.errors import ConfigError
from postqued.sandbox import Sandbox
from postqued.settings import TOOLSETS, Settings, parse_toolsets
from postqued_mcp.tools.discovery import NAMES as DISCOVERY
from postqued_mcp.tools.discovery import PURPOSES, OnDemand
from tests.conftest import make_client


async def structured(client: Client, tool: str, **args: Any) -> dict[str, Any]:
    result = await client.call_tool(tool, args)
    assert not result.is_error, result.content
    assert isinstance(result.structured_content, dict)
    return result.structured_content


async def names(client: Client) -> set[str]:
    return {t.name for t in (await client.list_tools()).tools}


class Notifications:
    """A message handler that keeps the server's notifications."""

    def __init__(self) -> None:
        self.methods: list[str] = []
        self.tools_changed = anyio.Event()

    async def __call__(self, message: Any) -> None:
        method = getattr(message, "method", None) or getattr(getattr(message, "root", None), "method", None)
        if isinstance(method, str):
            self.methods.append(method)
            if method == "notifications/tools/list_changed":
                self.tools_changed.set()


def test_dynamic_is_the_default_and_a_start_setting() -> None:
    assert Settings.build(media_dirs=()).toolsets == {"publishing", "dynamic"}
    assert parse_toolsets("dynamic") == {"publishing", "dynamic"}
    assert parse_toolsets("dynamic,analytics") == {"publishing", "analytics", "dynamic"}
    assert parse_toolsets("publishing") == {"publishing"} and "dynamic" not in parse_toolsets("all")
    with pytest.raises(ConfigError, match="dynamic"):
        parse_toolsets("dynamc")
    assert set(typing.get_args(OnDemand)) == set(TOOLSETS) - {"publishing"} and PURPOSES.keys() == set(TOOLSETS)


async def test_enabling_a_toolset_notifies_the_host_and_its_tools_answer(
    settings: Settings, sandbox: Sandbox, clock: ManualClock
) -> None:
    heard = Notifications()
    async with make_client(settings, sandbox, clock, mode="legacy", message_handler=heard) as client:
        assert client.server_capabilities.tools is not None and client.server_capabilities.tools.list_changed
        before = await names(client)
        listing = await structured(client, "list_toolsets")
        by_name = {t["name"]: t for t in listing["toolsets"]}
        assert by_name["publishing"]["enabled"] and not by_name["analytics"]["enabled"]
        assert "get_account_analytics" in by_name["analytics"]["tools"] and by_name["engagement"]["writes"]
        assert listing["start_setting"] == "POSTQUED_TOOLSETS=dynamic"
        assert not (before & set(by_name["analytics"]["tools"])) and before >= DISCOVERY

        enabled = await structured(client, "enable_toolset", name="analytics")
        with anyio.fail_after(60):  # a hang guard, not a speed check
            await heard.tools_changed.wait()
        after = await names(client)
        assert set(enabled["added"]) == set(by_name["analytics"]["tools"]) == after - before
        assert enabled["notified"] is True and enabled["start_setting"] == "POSTQUED_TOOLSETS=dynamic,analytics"
        assert "POSTQUED_TOOLSETS=dynamic,analytics" in enabled["next_step"]
        account = (await structured(client, "list_accounts", platform="tiktok"))["accounts"][0]["id"]
        stats = await client.call_tool("get_account_analytics", {"account_id": account})
        assert not stats.is_error, stats.content

        again = await structured(client, "enable_toolset", name="analytics")
        assert again["added"] == [] and again["notified"] is False
        assert heard.methods.count("notifications/tools/list_changed") == 1
        assert (await structured(client, "list_toolsets"))["toolsets"][1]["enabled"] is True


async def test_on_the_2026_protocol_the_change_arrives_on_a_listen_stream(
    settings: Settings, sandbox: Sandbox, clock: ManualClock
) -> None:
    async with make_client(settings, sandbox, clock, mode="auto") as client:
        assert client.protocol_version == "2026-07-28"
        async with client.listen(tools_list_changed=True) as events:
            await structured(client, "enable_toolset", name="providers")
            with anyio.fail_after(60):  # a hang guard, not a speed check
                event = await anext(aiter(events))
        assert type(event).__name__ == "ToolsListChanged"
        assert "list_pinterest_boards" in await names(client)


async def test_the_start_setting_a_result_names_gives_the_same_tools(
    settings: Settings, sandbox: Sandbox, clock: ManualClock
) -> None:
    async with make_client(settings, sandbox, clock, mode="legacy") as client:
        for name in ("team", "admin"):
            setting = (await structured(client, "enable_toolset", name=name))["start_setting"]
        enabled_later = await names(client)
    assert setting == "POSTQUED_TOOLSETS=dynamic,team,admin"
    at_start = settings.model_copy(update={"toolsets": parse_toolsets(setting.split("=", 1)[1])})
    async with make_client(at_start, sandbox, clock, mode="legacy") as client:
        assert await names(client) == enabled_later


async def test_a_toolset_the_api_version_lacks_adds_nothing_and_says_so(
    settings: Settings, sandbox: Sandbox, clock: ManualClock
) -> None:
    v1 = settings.model_copy(update={"api_version": "v1"})
    async with make_client(v1, sandbox, clock, mode="legacy") as client:
        before = await names(client)
        answer = await structured(client, "enable_toolset", name="analytics")
        assert await names(client) == before
    assert (
        answer["added"] == [] and answer["notified"] is False and "no tools with PostQued API v1" in answer["next_step"]
    )


async def test_read_only_holds_for_a_toolset_enabled_later(
    settings: Settings, sandbox: Sandbox, clock: ManualClock
) -> None:
    read_only = settings.model_copy(update={"read_only": True})
    async with make_client(read_only, sandbox, clock, mode="legacy") as client:
        listing = {t["name"]: t for t in (await structured(client, "list_toolsets"))["toolsets"]}
        assert not any(t["writes"] for t in listing.values())
        added = set((await structured(client, "enable_toolset", name="engagement"))["added"])
        now = await names(client)
    assert added == {"list_engagement"} == set(listing["engagement"]["tools"])
    assert not now & {"reply_to_comment", "comment_on_post", "set_comment_hidden", "delete_comment"}
    started = settings.model_copy(update={"read_only": True, "toolsets": frozenset({"publishing", "engagement"})})
    async with make_client(started, sandbox, clock, mode="legacy") as client:
        assert await names(client) == now - DISCOVERY  # exactly what read-only registers at start


class Decline:
    """An elicitation callback for a user who says no."""

    def __init__(self) -> None:
        self.asked: list[str] = []

    async def __call__(self, context: Any, params: mt.ElicitRequestParams) -> mt.ElicitResult:
        self.asked.append(params.message)
        return mt.ElicitResult(action="decline")


async def delete_first_comment(client: Client, **extra: Any) -> tuple[mt.CallToolResult, str]:
    item = (await structured(client, "list_engagement"))["items"][0]
    comment = item["comments"][0]["id"]
    args = {"target_id": item["target_id"], "comment_id": comment, **extra}
    return await client.call_tool("delete_comment", args), comment


@pytest.mark.parametrize("when", ["enabled later", "at start"])
async def test_confirmation_rules_hold_for_a_toolset_enabled_later(
    settings: Settings, sandbox: Sandbox, clock: ManualClock, tmp_path: Path, when: str
) -> None:
    if when == "at start":
        settings = settings.model_copy(update={"toolsets": frozenset({"publishing", "engagement"})})
    user = Decline()
    async with make_client(settings, sandbox, clock, mode="legacy", elicitation_callback=user) as asked:
        if when == "enabled later":
            await structured(asked, "enable_toolset", name="engagement")
        declined, comment = await delete_first_comment(asked, confirm=True)
    async with make_client(settings, sandbox, clock, mode="legacy") as no_elicitation:
        if when == "enabled later":
            await structured(no_elicitation, "enable_toolset", name="engagement")
        unconfirmed, _ = await delete_first_comment(no_elicitation)
        confirmed, deleted = await delete_first_comment(no_elicitation, confirm=True)
    assert declined.is_error and len(user.asked) == 1 and comment in user.asked[0]  # asked, said no
    assert unconfirmed.is_error and "CONFIRMATION_REQUIRED" in str(unconfirmed.content)
    assert not confirmed.is_error and deleted == comment
    assert len(sandbox.requests("engagement_delete")) == 1  # only the confirmed call reached PostQued

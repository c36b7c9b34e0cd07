"""One identity per token (``POSTQUED_MCP_TOKENS_FILE``, issue 18): its own key, workspaces, toolsets,
read-only and journal, over the real HTTP transport; the single ``POSTQUED_MCP_TOKEN`` keeps working; and
stateless replicas (``POSTQUED_HTTP_STATELESS``) behind a load balancer without sticky sessions."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import httpx2
import mcp.types as mt
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from postqued.errors import ConfigError
from postqued.identities import load_identities, token_digest
from postqued.sandbox import SANDBOX_API_KEY, Sandbox, run_in_thread
from tests.journalkit import fresh_postgres_url
from tests.servekit import http_server, server_env

OWNER, ALICE, BOB = "owner-token-0123456789", "alice-token-0123456789", "bob-token-0123456789"
PUBLISHING = frozenset({"publishing"})


def identity(name: str, token: str, **extra: Any) -> dict[str, Any]:
    return {"name": name, "token_sha256": token_digest(token), "api_key_env": f"KEY_{name.upper()}", **extra}


@dataclass
class Team:
    url: str
    sb: Sandbox


@contextmanager
def team_server(tmp_path: Path) -> Iterator[Team]:
    with Sandbox(extra_workspace=True) as sb, run_in_thread(sb) as base_url:
        tokens = tmp_path / "tokens.json"
        entries = [
            identity("alice", ALICE, workspaces=[sb.workspace_id], confirm="never"),
            identity("bob", BOB, read_only=True),
        ]
        tokens.write_text(json.dumps({"identities": entries}))
        env = server_env(
            POSTQUED_BASE_URL=base_url,
            POSTQUED_MCP_TOKEN=OWNER,
            POSTQUED_API_KEY=SANDBOX_API_KEY,
            POSTQUED_MCP_TOKENS_FILE=str(tokens),
            KEY_ALICE=SANDBOX_API_KEY,
            KEY_BOB=SANDBOX_API_KEY,
            POSTQUED_STATE_DIR=str(tmp_path / "state"),
            POSTQUED_MEDIA_DIRS=str(tmp_path / "media"),
        )
        with http_server(env) as (url, _, _):
            yield Team(url, sb)


@asynccontextmanager
async def session(team: Team, token: str, elicitation: Any = None) -> AsyncIterator[Client]:
    http = httpx2.AsyncClient(headers={"Authorization": f"Bearer {token}"}, timeout=60)
    transport = streamable_http_client(team.url, http_client=http)
    async with http, Client(transport, mode="legacy", elicitation_callback=elicitation) as client:
        yield client


async def call(client: Client, tool: str, **args: Any) -> mt.CallToolResult:
    return await client.call_tool(tool, args)


def data(result: mt.CallToolResult) -> dict[str, Any]:
    assert not result.is_error and isinstance(result.structured_content, dict), result.content
    return result.structured_content


def text(result: mt.CallToolResult) -> str:
    block = result.content[0]
    assert isinstance(block, mt.TextContent)
    return block.text


async def journal_resource(client: Client) -> list[Any]:
    read = await client.read_resource("postqued://journal")
    content = read.contents[0]
    assert isinstance(content, mt.TextResourceContents)
    entries: list[Any] = json.loads(content.text)
    return entries


async def test_each_identity_has_its_own_tools_workspaces_and_journal(tmp_path: Path, media_dir: Path) -> None:
    with team_server(tmp_path) as team:
        sb = team.sb
        async with session(team, ALICE) as alice:
            assert [w["id"] for w in data(await call(alice, "list_workspaces"))["workspaces"]] == [sb.workspace_id]
            other = await call(alice, "list_accounts", workspace_id=sb.extra_workspace_id)
            assert other.is_error and "WORKSPACE_NOT_ALLOWED" in text(other)
            up = data(await call(alice, "upload_media", path=str(media_dir / "video.mp4")))
            options = {"privacy_level": "SELF_ONLY"}
            target = {"platform": "tiktok", "account_id": sb.tiktok_public_id, "intent": "publish", "options": options}
            target["caption"] = "Alice posts"
            args = {"content_ids": [up["content"]["id"]], "targets": [target]}
            data(await call(alice, "publish_content", **args))
            live = data(await call(alice, "publish_content", **args, dry_run=False))  # her mode: never asks
            [mine] = data(await call(alice, "list_publish_journal"))["entries"]
            assert mine["publish_id"] == live["publish_id"]
            assert [e["identity"] for e in await journal_resource(alice)] == ["alice"]

        async with session(team, BOB) as bob:
            names = {t.name for t in (await bob.list_tools()).tools}
            assert "list_publish_journal" in names and "list_accounts" in names
            assert "publish_content" not in names and "upload_media" not in names  # read-only identity
            refused = await call(bob, "publish_content", **args, dry_run=False, confirm=True)
            assert refused.is_error and "FORBIDDEN_FOR_IDENTITY" in text(refused)
            assert data(await call(bob, "list_publish_journal"))["entries"] == []  # alice's entries are hers
            assert await journal_resource(bob) == []
            with pytest.raises(Exception, match="not served to team identities"):
                await bob.read_resource("postqued://accounts")

        async with session(team, OWNER) as owner:  # the single token: the server's own identity
            assert "publish_content" in {t.name for t in (await owner.list_tools()).tools}
            assert data(await call(owner, "list_publish_journal"))["entries"] == []
            assert len(data(await call(owner, "list_workspaces"))["workspaces"]) == 2

        async with httpx.AsyncClient(timeout=20) as raw:
            refused_status = await raw.post(team.url, headers={"Authorization": "Bearer not-a-token"}, json={})
        assert refused_status.status_code == 401
        assert len(sb.publish_requests) == 1


def test_tokens_file_problems_are_clear_config_errors(tmp_path: Path) -> None:
    path = tmp_path / "tokens.json"
    env = {"KEY_ALICE": "pq_live_x"}

    def load(*entries: dict[str, Any]) -> Any:
        path.write_text(json.dumps({"identities": list(entries)}))
        return load_identities(path, env, toolsets=PUBLISHING)

    [alice] = load(identity("alice", ALICE))
    assert alice.api_key is not None and alice.api_key.get_secret_value() == "pq_live_x"
    assert ALICE not in path.read_text() and ALICE not in repr(alice) and "pq_live_x" not in repr(alice)
    cases = [
        ({**identity("alice", ALICE), "token_sha256": ALICE}, "SHA-256"),  # the token itself is refused
        (identity("bob", BOB), "KEY_BOB, which is not set"),
        ({**identity("alice", ALICE), "api_key_env": "pq_live_x y"}, "environment variable"),
        (identity("alice", ALICE, toolsets=["admin"]), "does not serve"),
        ({**identity("alice", ALICE), "name": "a\nb"}, "name"),
    ]
    for entry, message in cases:
        with pytest.raises(ConfigError, match=message):
            load(entry)
    with pytest.raises(ConfigError, match="unique"):
        load(identity("alice", ALICE), {**identity("alice", BOB)})
    path.write_text("{not json")
    with pytest.raises(ConfigError, match="JSON"):
        load_identities(path, env, toolsets=PUBLISHING)


class AlwaysYes:
    """An elicitation callback that would approve anything: it must never be what lets a post through."""

    def __init__(self) -> None:
        self.asked = 0

    async def __call__(self, context: Any, params: mt.ElicitRequestParams) -> mt.ElicitResult:
        self.asked += 1
        return mt.ElicitResult(action="accept", content={"confirm": True})


async def test_stateless_replicas_without_sticky_sessions_never_post_without_approval(
    tmp_path: Path, media_dir: Path
) -> None:
    """Two stateless replicas on one PostgreSQL journal: a dry run on one counts on the other; with no session
    to hold a question, a direct post needs confirm=true and is never sent on an unasked yes."""
    journal_url = fresh_postgres_url()
    with Sandbox() as sb, run_in_thread(sb) as base_url:
        env = server_env(
            POSTQUED_BASE_URL=base_url,
            POSTQUED_API_KEY=SANDBOX_API_KEY,
            POSTQUED_MCP_TOKEN=OWNER,
            POSTQUED_JOURNAL_URL=journal_url,
            POSTQUED_HTTP_STATELESS="1",
            POSTQUED_STATE_DIR=str(tmp_path / "state"),
            POSTQUED_MEDIA_DIRS=str(media_dir),
        )
        with http_server(env) as (url_a, _, _), http_server(env) as (url_b, _, _):
            yes = AlwaysYes()
            one, other = Team(url_a, sb), Team(url_b, sb)
            async with session(one, OWNER, yes) as a, session(other, OWNER, yes) as b:
                up = data(await call(a, "upload_media", path=str(media_dir / "video.mp4")))
                options = {"privacy_level": "SELF_ONLY"}
                target = {"platform": "tiktok", "account_id": sb.tiktok_public_id, "intent": "publish", "caption": "b"}
                args = {"content_ids": [up["content"]["id"]], "targets": [{**target, "options": options}]}
                data(await call(a, "publish_content", **args))  # the dry run, on replica A
                unconfirmed = await call(b, "publish_content", **args, dry_run=False)  # the live call, on B
                assert unconfirmed.is_error and "CONFIRMATION_REQUIRED" in text(unconfirmed)
                assert not sb.publish_requests and yes.asked == 0
                live = data(await call(b, "publish_content", **args, dry_run=False, confirm=True))
                again = data(await call(a, "publish_content", **args, dry_run=False, confirm=True))
    assert again["publish_id"] == live["publish_id"] and again["replayed"] is True
    assert list(sb.publish_requests) == [live["publish_id"]]

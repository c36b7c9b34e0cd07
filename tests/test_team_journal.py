"""The PostgreSQL journal beyond the shared contract: its schema (versioned, created once however many
replicas start together), its URL never shown with the password, and an unreachable database that blocks
live publishing while reads keep working (issue 18)."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import mcp.types as mt
import psycopg
import pytest
from mcp import Client
from pydantic import SecretStr

from postqued.client import PostQuedClient
from postqued.clock import ManualClock
from postqued.doctor import diagnose
from postqued.errors import ConfigError, JournalError, RateLimitedError
from postqued.journal import SqliteJournal, open_journal
from postqued.journal.postgres import POSTGRES_SCHEMA_VERSION, PostgresJournal, safe_url
from postqued.sandbox import Sandbox
from postqued.uploads import Uploader
from postqued_mcp.app import build_server
from tests.clientkit import make_settings
from tests.journalkit import fresh_postgres_url
from tests.servekit import free_port

PASSWORD = "hunter2-canary"


def tables(url: str) -> dict[str, int]:
    with psycopg.connect(url) as conn:
        version = conn.execute("SELECT version FROM postqued_schema").fetchall()
        names = conn.execute("SELECT tablename FROM pg_tables WHERE tablename LIKE 'postqued_%'").fetchall()
    return {"versions": len(version), "version": version[0][0], "tables": len(names)}


async def test_replicas_starting_together_create_the_schema_once() -> None:
    url = fresh_postgres_url()
    journals = [PostgresJournal(url) for _ in range(6)]
    try:
        await asyncio.gather(*(j.open() for j in journals))
        keys = await asyncio.gather(
            *(j.begin_publish("d", "ws", {"n": 1}, [], None, "v2") for j in journals)  # and race on one request
        )
    finally:
        for j in journals:
            await j.aclose()
    assert len({k.idempotency_key for k in keys}) == 1
    assert tables(url) == {"versions": 1, "version": POSTGRES_SCHEMA_VERSION, "tables": 5}
    async with PostgresJournal(url) as again:  # opening a current schema changes nothing
        assert [e.digest for e in await again.list_entries()] == ["d"]
    assert tables(url)["versions"] == 1


async def test_a_schema_from_the_future_is_refused() -> None:
    url = fresh_postgres_url()
    async with PostgresJournal(url):
        pass
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("UPDATE postqued_schema SET version = version + 1")
    with pytest.raises(JournalError, match="newer"):
        await PostgresJournal(url).open()


async def test_an_unreachable_database_is_a_journal_error_without_the_password() -> None:
    url = f"postgresql://postqued:{PASSWORD}@127.0.0.1:{free_port()}/postqued"
    journal = PostgresJournal(url, timeout=2)
    with pytest.raises(JournalError) as info:
        await journal.begin_publish("d", "ws", {}, [], None, "v2")
    text = info.value.describe()
    assert info.value.code == "JOURNAL_UNAVAILABLE" and PASSWORD not in text and PASSWORD not in repr(info.value)
    assert f"postgresql://postqued@127.0.0.1:{url.rsplit(':', 1)[1].split('/')[0]}/postqued" in text
    assert "list_publish_requests" in text  # the safe advice
    assert safe_url(url) == journal.where and PASSWORD not in journal.where
    await journal.aclose()


def test_the_setting_picks_the_backend(tmp_path: Path) -> None:
    clock = ManualClock()
    url = f"postgresql://u:{PASSWORD}@db.internal:5432/postqued"
    settings = make_settings(tmp_path, journal_url=SecretStr(url))
    chosen = open_journal(settings, clock)
    assert isinstance(chosen, PostgresJournal) and chosen.where == "postgresql://u@db.internal:5432/postqued"
    assert PASSWORD not in repr(settings) and PASSWORD not in settings.model_dump_json()
    assert isinstance(open_journal(make_settings(tmp_path), clock), SqliteJournal)
    sandboxed = settings.model_copy(update={"sandbox": True})  # simulator posts never enter a team journal
    assert isinstance(open_journal(sandboxed, clock), SqliteJournal)
    with pytest.raises(ConfigError, match="POSTQUED_JOURNAL_URL"):
        make_settings(tmp_path, journal_url=SecretStr("mysql://u@h/db"))


@pytest.fixture
async def unreachable(tmp_path: Path, media_dir: Path, sandbox: Sandbox, clock: ManualClock) -> AsyncIterator[Client]:
    url = f"postgresql://postqued:{PASSWORD}@127.0.0.1:{free_port()}/postqued"
    settings = make_settings(tmp_path, journal_url=SecretStr(url), media_dirs=(media_dir,), timeout=2.0)
    async with Client(build_server(settings, transport=sandbox.transport(), clock=clock)) as client:
        yield client


def _text(result: mt.CallToolResult) -> str:
    block = result.content[0]
    assert isinstance(block, mt.TextContent)
    return block.text


@pytest.mark.slow  # each call waits out the pool's connect timeout (~30 s): --run-slow
async def test_an_unreachable_database_refuses_to_publish_and_keeps_serving_reads(
    unreachable: Client, sandbox: Sandbox, media_dir: Path
) -> None:
    accounts = await unreachable.call_tool("list_accounts", {})
    assert not accounts.is_error and isinstance(accounts.structured_content, dict)
    target = {"platform": "tiktok", "account_id": sandbox.tiktok_public_id, "intent": "draft", "caption": "x"}
    up = await unreachable.call_tool("upload_media", {"path": str(media_dir / "video.mp4")})  # de-dup is skipped
    assert not up.is_error and isinstance(up.structured_content, dict), up.content
    args: dict[str, Any] = {"content_ids": [up.structured_content["content"]["id"]], "targets": [target]}
    outcomes = [
        await unreachable.call_tool("publish_content", args),
        await unreachable.call_tool("publish_content", {**args, "dry_run": False, "confirm": True}),
        await unreachable.call_tool("list_publish_journal", {}),
    ]
    for result in outcomes:
        assert result.is_error and "JOURNAL_UNAVAILABLE" in _text(result)
        assert PASSWORD not in _text(result) and "postgresql://postqued@127.0.0.1" in _text(result)
    assert not [e for e in sandbox.requests("publish") if e.idempotency_key is not None]
    assert not sandbox.publish_requests
    status = await unreachable.call_tool("list_publish_requests", {})
    assert not status.is_error, status.content


async def test_rate_limit_buckets_are_shared_by_the_replicas_of_one_key(tmp_path: Path) -> None:
    """Two clients (two replicas) with the same key and database: together they stay under the limit."""
    url = fresh_postgres_url()
    clock = ManualClock()
    with Sandbox(clock=clock, rate_limits=None) as sb:
        settings = make_settings(tmp_path, rate_limits={"read": 3}, max_retry_wait=0.0)
        async with PostgresJournal(url) as journal:
            replicas = [PostQuedClient(settings, transport=sb.transport(), clock=clock) for _ in range(2)]
            for client in replicas:
                client.limiter.store = journal.bucket_store("key-digest")
            answered, refused = 0, []
            for n in range(6):
                try:
                    await replicas[n % 2].list_workspaces(refresh=True)
                    answered += 1
                except RateLimitedError as exc:
                    refused.append(exc)
            other = PostQuedClient(settings, transport=sb.transport(), clock=clock)
            other.limiter.store = journal.bucket_store("another-key-digest")
            await other.list_workspaces()  # another key has its own buckets
            for client in [*replicas, other]:
                await client.aclose()
    assert answered == 3 and len(refused) == 3
    assert {e.code for e in refused} == {"RATE_LIMITED_LOCAL"} and all(e.retry_at for e in refused)
    assert len(sb.requests("context")) == 4  # the refused calls never left


async def test_shared_buckets_fall_back_to_the_local_count_when_the_database_is_down(tmp_path: Path) -> None:
    clock = ManualClock()
    with Sandbox(clock=clock, rate_limits=None) as sb:
        settings = make_settings(tmp_path, rate_limits={"read": 2}, max_retry_wait=0.0)
        down = PostgresJournal(f"postgresql://postqued@127.0.0.1:{free_port()}/postqued", timeout=1)
        async with PostQuedClient(settings, transport=sb.transport(), clock=clock) as client:
            client.limiter.store = down.bucket_store("key-digest")
            await client.list_workspaces(refresh=True)
            await client.list_workspaces(refresh=True)
            with pytest.raises(RateLimitedError):
                await client.list_workspaces(refresh=True)
        await down.aclose()
    assert len(sb.requests("context")) == 2


async def test_doctor_checks_the_team_database(tmp_path: Path) -> None:
    url = fresh_postgres_url()
    down = f"postgresql://postqued:{PASSWORD}@127.0.0.1:{free_port()}/postqued"
    results = {}
    for name, journal_url in (("up", url), ("down", down)):
        settings = make_settings(tmp_path, journal_url=SecretStr(journal_url), timeout=2.0)
        [check] = [c for c in await diagnose(settings, transport=httpx.MockTransport(_no_api)) if c.name == "state_dir"]
        results[name] = check
    assert results["up"].ok and safe_url(url) in results["up"].detail
    assert not results["down"].ok and PASSWORD not in str(results["down"])
    assert tables(url)["version"] == POSTGRES_SCHEMA_VERSION  # the check created the schema


def _no_api(request: httpx.Request) -> httpx.Response:
    return httpx.Response(503)


async def test_the_same_file_uploaded_on_two_replicas_at_once_is_uploaded_once(tmp_path: Path, media_dir: Path) -> None:
    url = fresh_postgres_url()
    clock = ManualClock()
    with Sandbox(clock=clock, rate_limits=None) as sb:
        settings = make_settings(tmp_path, media_dirs=(media_dir,))
        async with PostgresJournal(url) as first, PostgresJournal(url) as second:
            replicas = [
                Uploader(
                    PostQuedClient(settings, transport=sb.transport(), clock=clock),
                    functools.partial(_same, j),
                    settings,
                )
                for j in (first, second)
            ]
            outcomes = await asyncio.gather(*(r.upload_file(media_dir / "video.mp4") for r in replicas))
            for replica in replicas:
                await replica.client.aclose()
    assert len({o.content.id for o in outcomes}) == 1
    assert sorted(o.deduplicated for o in outcomes) == [False, True]
    assert len(sb.requests("content_upload")) == 1 and len(sb.contents) == 1


def _same(journal: PostgresJournal) -> PostgresJournal:
    return journal

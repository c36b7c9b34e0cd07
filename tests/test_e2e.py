"""End to end: the real `postqued-mcp` process over stdio and over streamable HTTP, the demo, doctor, v1."""

from __future__ import annotations

import io
import json
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import httpx2
import pytest
from mcp import Client, StdioServerParameters
from mcp.client.streamable_http import streamable_http_client

from postqued.clock import ManualClock
from postqued.doctor import run_doctor
from postqued.sandbox import Sandbox
from postqued.settings import Settings
from postqued_mcp.app import build_server, sandbox_settings
from postqued_mcp.demo import run_demo
from tests.mcpkit import call, chain, draft_target
from tests.servekit import ROOT, http_server, server_env


def sandbox_env(tmp_path: Path, media_dir: Path, **extra: str) -> dict[str, str]:
    return server_env(
        POSTQUED_STATE_DIR=str(tmp_path / "state"), POSTQUED_MEDIA_DIRS=str(media_dir), POSTQUED_SANDBOX="true", **extra
    )


# the legacy handshake over stdio in the full run only (in memory, every suite speaks both)
@pytest.mark.parametrize("handshake", [pytest.param("legacy", marks=pytest.mark.slow), "auto"])
async def test_stdio_server_runs_the_chain(tmp_path: Path, media_dir: Path, handshake: str) -> None:
    params = StdioServerParameters(
        command=sys.executable, args=["-m", "postqued_mcp", "--sandbox"], env=sandbox_env(tmp_path, media_dir), cwd=ROOT
    )
    async with Client(params, mode=handshake) as client:
        done = await chain(client, media_dir)
    assert done["terminal"] is True and done["status"] == "completed" and done["sandbox"] is True


@pytest.fixture
def http_mcp(tmp_path: Path, media_dir: Path) -> Iterator[str]:
    with http_server(sandbox_env(tmp_path, media_dir, POSTQUED_MCP_TOKEN="t0ken-for-tests")) as (url, _, _):
        yield url


@pytest.mark.slow  # tests/test_http_transport.py checks the same gates and chain on its own server
async def test_http_server_auth_origin_host_and_chain(http_mcp: str, media_dir: Path) -> None:
    init = {"jsonrpc": "2.0", "id": 1, "method": "ping"}
    accept = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}
    good = {**accept, "Authorization": "Bearer t0ken-for-tests"}
    async with httpx.AsyncClient() as raw:
        assert (await raw.post(http_mcp, json=init, headers=accept)).status_code == 401
        wrong = {**accept, "Authorization": "Bearer nope"}
        assert (await raw.post(http_mcp, json=init, headers=wrong)).status_code == 401
        foreign = {**good, "Origin": "https://evil.example"}
        assert (await raw.post(http_mcp, json=init, headers=foreign)).status_code == 403
        bad_host = {**good, "Host": "evil.example"}
        assert (await raw.post(http_mcp, json=init, headers=bad_host)).status_code == 421
    http = httpx2.AsyncClient(headers={"Authorization": "Bearer t0ken-for-tests"}, timeout=60)
    async with http, Client(streamable_http_client(http_mcp, http_client=http)) as client:
        done = await chain(client, media_dir)
    assert done["terminal"] is True and done["status"] == "completed"


async def test_demo_passes_and_reports_every_step(tmp_path: Path) -> None:
    out = io.StringIO()
    code = await run_demo(Settings.build(state_dir=tmp_path, media_dirs=(tmp_path,)), out=out)
    text = out.getvalue()
    assert code == 0, text
    for step in ("upload_media", "list_accounts", "get_creator_info", "publish_content", "wait_for_publish"):
        assert step in text
    assert "demo passed" in text and "%)" in text  # progress was shown


async def test_doctor_passes_on_the_sandbox_and_explains_failures(tmp_path: Path, media_dir: Path) -> None:
    sandbox = Sandbox()
    settings = sandbox_settings(Settings.build(state_dir=tmp_path, media_dirs=(media_dir,)), sandbox)
    out = io.StringIO()
    assert await run_doctor(settings, as_json=True, transport=sandbox.transport(), out=out) == 0
    report = json.loads(out.getvalue())
    assert report["ok"] is True and {c["name"] for c in report["checks"]} >= {"api_key", "auth", "workspace"}

    broken = Settings.build(state_dir=tmp_path, media_dirs=(tmp_path / "missing",), api_key=None)
    out = io.StringIO()
    assert await run_doctor(broken, out=out) == 1
    text = out.getvalue()
    assert "✗ api_key" in text and "fix: " in text and "✗ media_dir" in text


async def test_v1_runs_the_original_skill_chain(
    settings: Settings, sandbox: Sandbox, clock: ManualClock, media_dir: Path
) -> None:
    v1 = settings.model_copy(update={"api_version": "v1"})
    async with Client(build_server(v1, sandbox=sandbox, clock=clock)) as client:
        video = await call(client, "upload_media", path=str(media_dir / "video.mp4"))
        image = await call(client, "upload_media", path=str(media_dir / "image.jpg"))
        assert image["content"]["id"] and len(sandbox.requests("v1_upload_image")) == 1
        assert len(sandbox.requests("v1_content_upload")) == 1
        accounts = (await call(client, "list_accounts", platform="tiktok"))["accounts"]
        account_id = next(a["id"] for a in accounts if a["username"] == "@sandbox_creator")
        args = {"content_ids": [video["content"]["id"]], "targets": [draft_target(account_id)]}
        plan = await call(client, "publish_content", **args)
        assert plan["valid"] is True and not sandbox.requests("v1_publish")  # v1 has no API dry run
        live = await call(client, "publish_content", **args, dry_run=False)
        assert len(sandbox.requests("v1_publish")) == 1
        assert sandbox.requests("v1_publish")[0].idempotency_key == live["idempotency_key"]
        status = await call(client, "get_publish_status", publish_id=live["publish_id"])
        assert status["publish_id"] == live["publish_id"] and status["targets"]
        workspaces = await call(client, "list_workspaces")
        assert [w["id"] for w in workspaces["workspaces"]] == ["default"] and workspaces["default_workspace_id"] is None

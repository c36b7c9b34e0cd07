"""``doctor --contract``: read-only, shapes only (no values), and every expected field that was missing."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from postqued.api.contract import check_contract, run_contract
from postqued.client import PostQuedClient
from postqued.clock import ManualClock
from postqued.errors import BadResponseError
from postqued.sandbox import Sandbox
from tests.clientkit import make_settings, upload

Reshape = Callable[[str, Any], Any]


class Reshaping(httpx.AsyncBaseTransport):
    """Answers as the sandbox does, except that ``reshape(path, body)`` may rewrite a JSON answer."""

    def __init__(self, inner: httpx.AsyncBaseTransport, reshape: Reshape) -> None:
        self.inner, self.reshape = inner, reshape

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self.inner.handle_async_request(request)
        raw = await response.aread()
        if response.status_code >= 300 or not raw:
            return response
        body = self.reshape(request.url.path, json.loads(raw))
        return httpx.Response(response.status_code, json=body, headers={"content-type": "application/json"})


async def _with_content(sb: Sandbox, tmp_path: Path) -> str:
    async with PostQuedClient(make_settings(tmp_path), transport=sb.transport(), clock=sb.clock) as client:
        return (await upload(client)).id


def _values(sb: Sandbox, content_id: str) -> list[str]:
    """Strings the report must never contain: ids, usernames, names, URLs."""
    world = sb.world
    found = [content_id, sb.workspace_id, sb.organization_id, "http", "sandbox.localhost"]
    for account in world.accounts.values():
        found += [account.id, account.username]
    return found


async def test_the_sandbox_answers_every_expected_field_and_nothing_is_changed(tmp_path: Path) -> None:
    with Sandbox(clock=ManualClock()) as sb:
        content_id = await _with_content(sb, tmp_path)
        before = len(sb.ledger)
        report = await check_contract(make_settings(tmp_path), transport=sb.transport())
        probed = sb.ledger[before:]
    names = [p.operation for p in report.probes]
    assert names == [
        "context", "integrations", "creator_info", "content_list", "publish_list", "billing", "publish (dry run)",
    ]  # fmt: skip
    assert report.ok, [(p.operation, p.missing, p.error) for p in report.probes]
    # read-only: GETs and one dry run; no publish request exists afterwards
    assert {e.method for e in probed} == {"GET", "POST"} and [e.route for e in probed if e.method == "POST"] == [
        "publish"
    ]
    assert sb.publish_requests == {}
    text = json.dumps(report.as_json())
    assert not [v for v in _values(sb, content_id) if v in text]
    accounts = next(p for p in report.probes if p.operation == "integrations")
    assert accounts.shape == {"accounts": [{k: t for k, t in accounts.shape["accounts"][0].items()}]}
    assert accounts.shape["accounts"][0]["id"] == "string" and accounts.shape["accounts"][0]["displayName"] in (
        "string", "null",
    )  # fmt: skip


def _reshape(path: str, body: Any) -> Any:
    if path.endswith("/integrations"):
        return {"integrations": body["accounts"]}  # another envelope
    if path.endswith("/creator-info"):
        return body["creatorInfo"]  # flat instead of nested
    if path == "/v2/billing":
        return {"subscription": body}
    return body


async def test_reshaped_answers_are_reported_field_by_field(tmp_path: Path) -> None:
    with Sandbox(clock=ManualClock()) as sb:
        await _with_content(sb, tmp_path)
        transport = Reshaping(sb.transport(), _reshape)
        out, target = io.StringIO(), tmp_path / "contract.json"
        code = await run_contract(make_settings(tmp_path), out_file=target, transport=transport, out=out)
    assert code == 1 and "contract.json" in out.getvalue()
    report = json.loads(target.read_text(encoding="utf-8"))
    by_name = {p["operation"]: p for p in report["probes"]}
    assert report["ok"] is False
    assert by_name["integrations"]["missing"] == [
        "accounts",
        "accounts[].id",
        "accounts[].platform",
        "accounts[].username",
    ]
    assert by_name["integrations"]["shape"]["integrations"][0]["username"] == "string"
    assert by_name["billing"]["missing"] == ["status"] and "subscription" in by_name["billing"]["shape"]
    assert by_name["content_list"]["missing"] == [] and by_name["context"]["missing"] == []
    # the accounts list was not recognised, so no TikTok account was found to ask creator info for
    assert "creator_info" not in by_name


async def test_a_refused_call_reports_its_code_and_status_only(tmp_path: Path) -> None:
    with Sandbox(clock=ManualClock()) as sb:
        sb.inject("status", route="billing", status=402)
        report = await check_contract(make_settings(tmp_path), transport=sb.transport())
    billing = next(p for p in report.probes if p.operation == "billing")
    assert (billing.status, billing.error, billing.shape) == (402, "SANDBOX_INJECTED_ERROR", None)
    assert not report.ok and "publish (dry run)" not in [p.operation for p in report.probes]  # no content yet


async def test_v1_reports_the_documented_accounts_answer(tmp_path: Path) -> None:
    with Sandbox(clock=ManualClock()) as sb:
        report = await check_contract(make_settings(tmp_path, api_version="v1"), transport=sb.transport())
    [accounts] = report.probes
    assert accounts.path == "/v1/platform-accounts" and accounts.source == "v1-docs" and report.ok
    assert accounts.shape == {"accounts": [{"id": "string", "username": "string"}]}


def test_the_command_line_writes_the_report(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from postqued_mcp.cli import main

    target = tmp_path / "report.json"
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("POSTQUED_STATE_DIR", str(tmp_path))
    code = main(["--sandbox", "doctor", "--contract", "--out", str(target)])
    report = json.loads(target.read_text(encoding="utf-8"))
    assert code == 0 and report["ok"] is True and report["api_version"] == "v2"
    assert [p["operation"] for p in report["probes"]][:2] == ["context", "integrations"]


async def test_a_malformed_answer_is_not_blamed_on_the_caller(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """A field of the wrong type is dropped and noted (never a ValidationError that tools report as "Invalid
    arguments ... nothing was sent"); an account without an id is BAD_RESPONSE, which says it was sent."""

    def bad_date(path: str, body: Any) -> Any:
        if path.endswith("/integrations"):
            body["accounts"][0]["createdAt"] = "not a date"
        return body

    with Sandbox(clock=ManualClock()) as sb:
        async with PostQuedClient(make_settings(tmp_path), transport=Reshaping(sb.transport(), bad_date)) as client:
            with caplog.at_level(logging.WARNING, logger="postqued.shape"):
                accounts = await client.list_accounts()
        assert len(accounts) == len(sb.world.accounts_in(sb.workspace_id))
        first = accounts[0]
        assert first.created_at is None and first.unverified is not None
        assert first.unverified.missing_fields == ["createdAt"] and "not a date" not in caplog.text

        def no_id(path: str, body: Any) -> Any:
            if path.endswith("/integrations"):
                del body["accounts"][0]["id"]
            return body

        async with PostQuedClient(make_settings(tmp_path), transport=Reshaping(sb.transport(), no_id)) as client:
            with pytest.raises(BadResponseError) as caught:
                await client.list_accounts()
    assert caught.value.code == "BAD_RESPONSE" and "nothing was sent" not in str(caught.value)
    assert "reached PostQued" in caught.value.next_step

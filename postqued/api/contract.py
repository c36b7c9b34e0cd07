"""``postqued-mcp doctor --contract``: what PostQued's answers really look like, for a first run with a real key.

Read-only: each read operation once (workspaces/context, accounts, creator info for one TikTok account if
there is one, content list, publish list, billing) and one publish dry run (v2) when content exists. The
report holds each answer's shape (field names and JSON types only: no value, id, username or URL), the
fields the project expects that the answer lacked, and for a refused call only its code and HTTP status.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, TextIO

import httpx

from postqued.api.fields import items, obj, text
from postqued.api.shape import missing_fields, shape
from postqued.client import PostQuedClient
from postqued.errors import PostQuedError
from postqued.models import PublishRequest, PublishTarget
from postqued.settings import Settings

DRY_RUN_CAPTION = "postqued-mcp contract check (dry run, never published)"


@dataclass
class Probe:
    operation: str
    method: str
    path: str
    source: str
    status: int | None = None
    shape: Any = None
    missing: list[str] = field(default_factory=list)
    error: str | None = None  # the error code only (its message may quote values)


@dataclass
class ContractReport:
    api_version: str
    probes: list[Probe] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(not p.missing and p.error is None for p in self.probes)

    def as_json(self) -> dict[str, Any]:
        return {"api_version": self.api_version, "ok": self.ok, "probes": [asdict(p) for p in self.probes]}


class _Prober:
    def __init__(self, client: PostQuedClient, report: ContractReport) -> None:
        self.client, self.report = client, report

    async def __call__(self, name: str, *ids: str, expects: bool = True, **kwargs: Any) -> Mapping[str, Any] | None:
        op, template = self.client.operation(name)
        route = op.route(self.client.api_version)
        probe = Probe(name, op.method, template, route.source if route else "assumed")
        self.report.probes.append(probe)
        try:
            answer = await self.client.call(name, *ids, expect=expects, **kwargs)
        except PostQuedError as exc:
            probe.status, probe.error = exc.status, exc.code
            return None
        probe.status, probe.shape = answer.status, shape(answer.body)
        if expects and route is not None:
            probe.missing = missing_fields(answer.body, route.expects)
        return answer.body if isinstance(answer.body, Mapping) else None


async def check_contract(settings: Settings, *, transport: httpx.AsyncBaseTransport | None = None) -> ContractReport:
    report = ContractReport(settings.api_version)
    async with PostQuedClient(settings, transport=transport) as client:
        probe = _Prober(client, report)
        if settings.api_version == "v1":
            await probe("integrations", query={"platform": "tiktok"})
            return report
        context = await probe("context")
        workspace = settings.workspace_id or _first_workspace(context)
        if workspace is None:
            return report
        accounts = items(await probe("integrations", workspace_id=workspace), "accounts")
        tiktok = next((a for a in accounts if a.get("platform") == "tiktok" and text(a, "id")), None)
        if tiktok is not None:
            await probe("creator_info", str(tiktok["id"]), workspace_id=workspace)
        content = items(await probe("content_list", query={"perPage": 1}, workspace_id=workspace), "content")
        await probe("publish_list", workspace_id=workspace)
        await probe("billing", workspace_id=workspace)
        account = tiktok or next((a for a in accounts if text(a, "id") and text(a, "platform")), None)
        content_id = text(content[0], "id") if content else None
        if account is not None and content_id is not None:
            request = _dry_run(account, content_id, workspace)
            await probe("publish", body=request.model_copy(update={"dry_run": True}), expects=False)
            report.probes[-1].operation = "publish (dry run)"
    return report


def _first_workspace(context: Mapping[str, Any] | None) -> str | None:
    for org in items(context, "organizations"):
        for ws in items(org, "workspaces"):
            if text(ws, "id"):
                return text(ws, "id")
    return text(obj(context), "activeWorkspaceId") if context else None


def _dry_run(account: Mapping[str, Any], content_id: str, workspace: str) -> PublishRequest:
    platform = str(account["platform"])
    options = {"privacy_level": "SELF_ONLY"} if platform == "tiktok" else {}
    target = PublishTarget.model_validate(
        {
            "platform": platform,
            "account_id": str(account["id"]),
            "intent": "draft",
            "caption": DRY_RUN_CAPTION,
            "options": options,
        }
    )
    return PublishRequest(content_ids=[content_id], targets=[target], workspace_id=workspace)


async def run_contract(
    settings: Settings,
    *,
    out_file: Path | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
    out: TextIO,
) -> int:
    """Write the report (JSON) to ``out_file`` or ``out``; exit 0 when every expected field was found."""
    return write_report(await check_contract(settings, transport=transport), out_file, out)


def write_report(report: ContractReport, out_file: Path | None, out: TextIO) -> int:
    body = json.dumps(report.as_json(), indent=2)
    if out_file is None:
        print(body, file=out)
    else:
        out_file.write_text(body + "\n", encoding="utf-8")
        print(f"contract report written to {out_file}: share it so the answer shapes can be checked", file=out)
    return 0 if report.ok else 1

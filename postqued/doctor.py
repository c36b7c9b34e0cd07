"""``postqued-mcp doctor``: check the configuration end to end and print a fix for each failure."""

from __future__ import annotations

import json
import os
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, TextIO

import httpx

from postqued.client import PostQuedClient
from postqued.clock import SystemClock
from postqued.errors import AuthenticationError, ConfigError, PostQuedError
from postqued.journal import open_journal
from postqued.settings import Settings


@dataclass
class Check:
    name: str
    ok: bool
    detail: str
    fix: str = ""


async def diagnose(settings: Settings, *, transport: httpx.AsyncBaseTransport | None = None) -> list[Check]:
    checks: list[Check] = []
    key_ok = False
    try:
        settings.require_api_key()
        key_ok = True
        checks.append(Check("api_key", True, "POSTQUED_API_KEY is set and looks like a PostQued key (pq_…)."))
    except ConfigError as exc:
        checks.append(Check("api_key", False, exc.message, exc.next_step))
    checks.append(Check("base_url", True, f"{settings.origin} (API {settings.api_version})"))

    if key_ok:
        async with PostQuedClient(settings, transport=transport) as client:
            try:
                if settings.api_version == "v2":
                    workspaces = await client.list_workspaces()
                    checks.append(Check("auth", True, f"the key is accepted; it sees {len(workspaces)} workspace(s)."))
                    try:
                        ws = await client.resolve_workspace()
                        checks.append(Check("workspace", True, f"tools use workspace {ws}."))
                    except PostQuedError as exc:
                        checks.append(Check("workspace", False, exc.message, exc.next_step))
                else:
                    accounts = await client.list_accounts()
                    checks.append(Check("auth", True, f"the key is accepted; {len(accounts)} account(s) connected."))
            except AuthenticationError as exc:
                checks.append(Check("auth", False, exc.message, exc.next_step))
            except PostQuedError as exc:
                name = "reachability" if exc.status is None else "auth"
                checks.append(Check(name, False, exc.message, exc.next_step))

    checks.append(await _check_journal(settings))
    for folder in settings.media_dirs:
        if folder.is_dir() and os.access(folder, os.R_OK | os.X_OK):
            checks.append(Check("media_dir", True, f"{folder} is readable."))
        else:
            checks.append(
                Check(
                    "media_dir",
                    False,
                    f"{folder} is not a readable folder.",
                    "Fix POSTQUED_MEDIA_DIRS (folders separated by the path separator).",
                )
            )
    return checks


async def _check_journal(settings: Settings) -> Check:
    """The configured journal opens (created or migrated) and answers: the state folder's file, or the
    team database of POSTQUED_JOURNAL_URL."""
    try:
        async with open_journal(settings, SystemClock(), recover=False) as journal:
            await journal.list_entries(limit=1)
            where = journal.where
        return Check("state_dir", True, f"journal at {where} is writable.")
    except PostQuedError as exc:
        return Check("state_dir", False, exc.message, exc.next_step)


async def run_doctor(
    settings: Settings,
    *,
    as_json: bool = False,
    transport: httpx.AsyncBaseTransport | None = None,
    out: TextIO | None = None,
    contract: bool = False,
    out_file: Path | None = None,
) -> int:
    out = out or sys.stdout
    if contract:
        from postqued.api.contract import run_contract

        return await run_contract(settings, out_file=out_file, transport=transport, out=out)
    checks = await diagnose(settings, transport=transport)
    failed = [c for c in checks if not c.ok]
    if as_json:
        report: dict[str, Any] = {"ok": not failed, "checks": [asdict(c) for c in checks]}
        print(json.dumps(report, indent=2), file=out)
    else:
        for c in checks:
            print(f"{'✓' if c.ok else '✗'} {c.name}: {c.detail}", file=out)
            if c.fix:
                print(f"    fix: {c.fix}", file=out)
        print("all checks passed" if not failed else f"{len(failed)} check(s) failed", file=out)
    return 0 if not failed else 1

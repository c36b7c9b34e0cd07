"""Prompt and resource errors carry JSON-RPC codes, over the wire, and never put a traceback in the log.

Raw JSON-RPC against the real ``postqued-mcp`` process over stdio (the 2025-11-25 handshake hosts use):
an unknown prompt or a missing required prompt argument is -32602 (invalid params), so is an unknown
resource or publish id; a PostQued failure behind a resource is -32603 naming the error code and the next
step. stderr never holds a traceback.
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Any

from tests.servekit import ROOT, server_env

INVALID_PARAMS, INTERNAL_ERROR = -32602, -32603


class RawSession:
    """One stdio server process, spoken to in JSON-RPC lines."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self.next_id = 0

    async def request(self, method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        self.next_id += 1
        await self.send({"jsonrpc": "2.0", "id": self.next_id, "method": method, "params": params or {}})
        assert self.proc.stdout is not None
        while True:
            line = await asyncio.wait_for(self.proc.stdout.readline(), timeout=60)
            assert line, "the server closed stdout"
            message: dict[str, Any] = json.loads(line)
            if message.get("id") == self.next_id:
                return message

    async def send(self, message: dict[str, Any]) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(message).encode() + b"\n")
        await self.proc.stdin.drain()


async def session(tmp_path: Path, *args: str, **env: str) -> tuple[RawSession, asyncio.subprocess.Process]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, str(ROOT / "server.py"), *args,
        env=server_env(POSTQUED_STATE_DIR=str(tmp_path / "state"), POSTQUED_LOG_LEVEL="INFO", **env),
        cwd=tmp_path, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    raw = RawSession(proc)
    init = await raw.request(
        "initialize",
        {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "raw-test", "version": "0"}},
    )
    assert init["result"]["protocolVersion"] == "2025-11-25"
    await raw.send({"jsonrpc": "2.0", "method": "notifications/initialized"})
    return raw, proc


async def finish(proc: asyncio.subprocess.Process) -> str:
    assert proc.stdin is not None
    proc.stdin.close()
    _, err = await asyncio.wait_for(proc.communicate(), timeout=30)
    return err.decode(errors="replace")


def error_of(answer: dict[str, Any]) -> tuple[int, str]:
    assert "error" in answer and "result" not in answer, answer
    return answer["error"]["code"], answer["error"]["message"]


async def test_prompt_and_resource_errors_are_invalid_params_without_a_traceback(tmp_path: Path) -> None:
    raw, proc = await session(tmp_path, "--sandbox")
    try:
        code, message = error_of(await raw.request("prompts/get", {"name": "no_such_prompt"}))
        assert code == INVALID_PARAMS and "'no_such_prompt'" in message and "publish_video" in message
        code, message = error_of(await raw.request("prompts/get", {"name": "publish_video", "arguments": {}}))
        assert code == INVALID_PARAMS and "path" in message
        code, message = error_of(await raw.request("resources/read", {"uri": "postqued://nothing"}))
        assert code == INVALID_PARAMS
        code, message = error_of(await raw.request("resources/read", {"uri": "postqued://publish/not-a-uuid"}))
        assert code == INVALID_PARAMS and "UUID" in message
        unknown = "postqued://publish/00000000-0000-4000-8000-000000000000"
        code, message = error_of(await raw.request("resources/read", {"uri": unknown}))
        assert code == INVALID_PARAMS and "NOT_FOUND (HTTP 404)" in message and "Next step" in message
        # and the same server still answers correctly
        ok = await raw.request("prompts/get", {"name": "publish_video", "arguments": {"path": "/v/clip.mp4"}})
        assert "clip.mp4" in json.dumps(ok["result"]["messages"])
        accounts = await raw.request("resources/read", {"uri": "postqued://accounts"})
        assert json.loads(accounts["result"]["contents"][0]["text"])
    finally:
        err = await finish(proc)
    assert "Traceback" not in err, err[-3000:]


async def test_a_postqued_failure_behind_a_resource_is_internal_error_naming_the_code(tmp_path: Path) -> None:
    raw, proc = await session(tmp_path)  # no key, no sandbox: the read fails before any request is sent
    try:
        code, message = error_of(await raw.request("resources/read", {"uri": "postqued://accounts"}))
    finally:
        err = await finish(proc)
    assert code == INTERNAL_ERROR and "POSTQUED_API_KEY" in message, message
    assert "Traceback" not in err, err[-3000:]

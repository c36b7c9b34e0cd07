"""Per-call overhead: a read tool round trip through MCP minus the same client call made directly.

The tool is ``list_accounts`` (one ``GET /v2/integrations`` once the workspace is known). The server runs
as a subprocess (``bench/sandbox_server.py``) with the sandbox inside it, rate limits off, and is driven by
the SDK's own client over stdio and over streamable HTTP (bearer token, as deployed). The baseline is
``PostQuedClient.list_accounts`` against an in-process sandbox in this process: what the tool does
without MCP. For context the floor server's ``echo`` tool is timed through the same client and
transport: what the SDK and the transport cost for any tool.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from bench.common import ROOT, Config, Row, Stats, ratio

GOAL_MS = 2.0


async def _time_calls(call: Callable[[], Awaitable[Any]], n: int, warmup: int) -> Stats:
    for _ in range(warmup):
        await call()
    samples = []
    for _ in range(n):
        start = time.perf_counter()
        await call()
        samples.append(time.perf_counter() - start)
    return Stats.of(samples)


async def direct_calls(n: int, warmup: int, state_dir: Path) -> Stats:
    """What the tool does, without MCP: resolve the workspace (cached), list the accounts."""
    from bench.sandboxkit import client_for
    from postqued.sandbox import Sandbox

    with Sandbox(rate_limits=None) as sb:
        async with client_for(sb, state_dir) as client:

            async def call() -> None:
                ws = await client.resolve_workspace(None)
                accounts = await client.list_accounts(None, workspace_id=ws)
                assert accounts

            return await _time_calls(call, n, warmup)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _wait_for_port(port: int, proc: subprocess.Popen[bytes], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the HTTP server exited with {proc.returncode}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port}")


def _spawn(cmd: list[str]) -> subprocess.Popen[bytes]:
    quiet = subprocess.DEVNULL
    return subprocess.Popen(cmd, cwd=ROOT, stdin=quiet, stdout=quiet, stderr=quiet)


@asynccontextmanager
async def _http_server(args: list[str], port: int) -> AsyncIterator[None]:
    proc = _spawn([sys.executable, *args])
    try:
        await asyncio.to_thread(_wait_for_port, port, proc)
        yield
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


async def mcp_calls(server: Any, tool: str, args: dict[str, Any], n: int, warmup: int) -> Stats:
    from mcp import Client

    async with Client(server) as client:

        async def call() -> None:
            result = await client.call_tool(tool, args)
            assert not result.is_error, result.content

        return await _time_calls(call, n, warmup)


def _stdio(args: list[str], state_dir: Path) -> Any:
    from mcp import StdioServerParameters

    env = {k: v for k, v in os.environ.items() if not k.startswith("POSTQUED_")}
    env["POSTQUED_STATE_DIR"] = str(state_dir)
    return StdioServerParameters(command=sys.executable, args=args, cwd=ROOT, env=env)


def _http(port: int, token: str | None) -> Any:
    import httpx2
    from mcp.client.streamable_http import streamable_http_client

    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return streamable_http_client(
        f"http://127.0.0.1:{port}/mcp", http_client=httpx2.AsyncClient(headers=headers, timeout=30.0)
    )


async def _measure(config: Config, state: Path) -> dict[str, Stats]:
    n, warmup = config.calls, 5 if config.short else 30
    floor_script = str(ROOT / "bench" / "floor_server.py")
    out: dict[str, Stats] = {}
    out["direct"] = await direct_calls(n, warmup, state / "direct")
    out["stdio"] = await mcp_calls(
        _stdio(["-m", "bench.sandbox_server", str(state / "stdio")], state), "list_accounts", {}, n, warmup
    )
    out["stdio_floor"] = await mcp_calls(_stdio([floor_script], state), "echo", {"text": "hi"}, n, warmup)
    token = secrets.token_urlsafe(24)
    port = _free_port()
    async with _http_server(["-m", "bench.sandbox_server", str(state / "http"), "--http", str(port), token], port):
        out["http"] = await mcp_calls(_http(port, token), "list_accounts", {}, n, warmup)
    port = _free_port()
    async with _http_server([floor_script, "--http", str(port)], port):
        out["http_floor"] = await mcp_calls(_http(port, None), "echo", {"text": "hi"}, n, warmup)
    return out


def run(config: Config) -> list[Row]:
    with tempfile.TemporaryDirectory(prefix="postqued-bench-") as tmp:
        found = asyncio.run(_measure(config, Path(tmp)))
    direct = found["direct"]
    rows = []
    for key, label in (("stdio", "stdio"), ("http", "streamable HTTP")):
        rt, floor = found[key], found[f"{key}_floor"]
        overhead = rt.median - direct.median
        rows.append(
            Row(
                figure=f"Per-call overhead, {label} (list_accounts round trip minus direct call)",
                value=f"{overhead * 1000:+.2f} ms (round trip {rt.show(digits=2)})",
                baseline=f"direct client call: {direct.show(digits=2)}",
                ratio=ratio(rt.median, direct.median),
                goal=f"overhead < {GOAL_MS:.0f} ms",
                met=overhead * 1000 < GOAL_MS,
                notes=[
                    f"{label}: the floor server's echo round trip through the same client: {floor.show(digits=2)}; "
                    f"our overhead above the floor's: {(overhead - floor.median) * 1000:+.2f} ms",
                    f"{label}: {len(rt.samples)} timed calls after warm-up",
                ],
            )
        )
    return rows

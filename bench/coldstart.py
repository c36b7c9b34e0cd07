"""Cold start: spawn -> ``initialize`` -> ``tools/list`` over stdio, against the floor server run the same way.

Both are started as ``python <script>`` from an empty working directory (no ``.env``), with no API key
(``tools/list`` needs none), and driven by the same few lines of raw JSON-RPC over pipes, so the client
costs the same for both. Runs alternate between the two to cancel drift; one warm-up run each fills the
page cache and the bytecode caches first.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.common import ROOT, Config, Row, Stats, mb, ratio, rss_of

PROTOCOL = "2025-11-25"  # the initialize handshake current hosts speak
GOAL = 1.3


@dataclass
class Start:
    seconds: float  # wall time until the tools/list answer was read
    cpu: float  # the server process's user + system CPU time, start to exit
    tools: list[dict[str, Any]]
    rss: int


def server_env(state_dir: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("POSTQUED_")}
    env["POSTQUED_STATE_DIR"] = str(state_dir)
    env.update(extra)
    return env


def _send(proc: subprocess.Popen[bytes], message: dict[str, Any]) -> None:
    assert proc.stdin is not None
    proc.stdin.write(json.dumps(message).encode() + b"\n")
    proc.stdin.flush()


def _answer(proc: subprocess.Popen[bytes], request_id: int) -> dict[str, Any]:
    assert proc.stdout is not None
    while True:
        line = proc.stdout.readline()
        if not line:
            raise RuntimeError(f"the server exited before answering request {request_id}")
        message: dict[str, Any] = json.loads(line)
        if message.get("id") == request_id:
            if "error" in message:
                raise RuntimeError(f"request {request_id} failed: {message['error']}")
            return message


def start_once(cmd: list[str], env: dict[str, str], cwd: Path) -> Start:
    """Spawn, initialize, list tools; the time until the tools/list answer has been read."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    with tempfile.TemporaryFile() as errlog:
        begin = time.perf_counter()
        proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=errlog, env=env, cwd=cwd)
        try:
            _send(
                proc,
                {
                    "jsonrpc": "2.0",
                    "id": 1,
                    "method": "initialize",
                    "params": {
                        "protocolVersion": PROTOCOL,
                        "capabilities": {},
                        "clientInfo": {"name": "postqued-bench", "version": "0"},
                    },
                },
            )
            _answer(proc, 1)
            _send(proc, {"jsonrpc": "2.0", "method": "notifications/initialized"})
            _send(proc, {"jsonrpc": "2.0", "id": 2, "method": "tools/list", "params": {}})
            tools = _answer(proc, 2)["result"]["tools"]
            elapsed = time.perf_counter() - begin
            rss, _ = rss_of(proc.pid)
        except Exception as exc:
            proc.kill()
            proc.wait()
            errlog.seek(0)
            raise RuntimeError(f"{cmd[-1]} failed: {exc}\n{errlog.read().decode(errors='replace')[-2000:]}") from None
        finally:
            if proc.stdin is not None:
                proc.stdin.close()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return Start(elapsed, cpu, tools, rss)


def run(config: Config) -> list[Row]:
    with tempfile.TemporaryDirectory(prefix="postqued-bench-") as tmp:
        cwd = Path(tmp)
        env = server_env(cwd / "state")
        ours = [sys.executable, str(ROOT / "server.py")]
        floor = [sys.executable, str(ROOT / "bench" / "floor_server.py")]
        start_once(ours, env, cwd)  # warm-up: bytecode and page cache
        start_once(floor, env, cwd)
        mine: list[Start] = []
        base: list[Start] = []
        for _ in range(config.runs):
            mine.append(start_once(ours, env, cwd))
            base.append(start_once(floor, env, cwd))
    m, b = Stats.of(s.seconds for s in mine), Stats.of(s.seconds for s in base)
    mc, bc = Stats.of(s.cpu for s in mine), Stats.of(s.cpu for s in base)
    tools = len(mine[-1].tools)
    return [
        Row(
            figure=f"Cold start: spawn -> initialize -> tools/list, stdio ({tools} tools)",
            value=m.show(),
            baseline=f"floor MCPServer, 1 tool: {b.show()}",
            ratio=ratio(m.median, b.median),
            goal=f"<= {GOAL}x floor",
            met=m.median <= GOAL * b.median,
            notes=[
                f"CPU time of the server process (robust when the machine is busy): ours {mc.show()}, "
                f"floor {bc.show()}, ratio {ratio(mc.median, bc.median)}",
                f"idle RSS after tools/list: ours {mb(Stats.of(s.rss for s in mine).median)}, "
                f"floor {mb(Stats.of(s.rss for s in base).median)}",
                f"runs: {len(mine)} each, alternating, after one warm-up each",
            ],
        )
    ]

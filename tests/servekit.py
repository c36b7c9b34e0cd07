"""Spawning the real `postqued-mcp` process for end-to-end tests."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def server_env(**variables: str) -> dict[str, str]:
    """This process's environment without any POSTQUED_ setting, plus ``variables``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("POSTQUED_")}
    env.update(PYTHONPATH=str(ROOT), **variables)
    return env


def wait_for_port(port: int, proc: subprocess.Popen[bytes], attempts: int = 1200) -> None:
    """Until ``proc`` accepts connections on ``port``; fails if it exits first or after ``attempts`` tries (~60 s)."""
    for _ in range(attempts):
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            assert proc.poll() is None, "the HTTP server exited before it accepted a connection"
            time.sleep(0.05)
    raise AssertionError(f"the HTTP server did not accept a connection after {attempts} attempts")


@contextmanager
def http_server(env: dict[str, str], port: int | None = None) -> Iterator[tuple[str, int, subprocess.Popen[bytes]]]:
    """`postqued-mcp --http` on loopback: (MCP URL, port, process), stopped afterwards."""
    port = port or free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "postqued_mcp", "--http", "--port", str(port)],
        env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        wait_for_port(port, proc)
        yield f"http://127.0.0.1:{port}/mcp", port, proc
    finally:
        proc.terminate()
        proc.wait(timeout=10)

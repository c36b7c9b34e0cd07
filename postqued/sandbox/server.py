"""Serving the sandbox on loopback through uvicorn (in a background thread, or blocking)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import uvicorn

from postqued.sandbox.core import Sandbox


def _config(sb: Sandbox, host: str, port: int, log_level: str) -> uvicorn.Config:
    return uvicorn.Config(
        sb.app,
        host=host,
        port=port,
        log_level=log_level,
        access_log=False,
        loop="asyncio",
        http="h11",
        ws="none",
        lifespan="on",
    )


@contextmanager
def run_in_thread(sb: Sandbox, host: str = "127.0.0.1", port: int = 0) -> Iterator[str]:
    """Serve ``sb`` with uvicorn in a background thread; yields the base URL (``http://127.0.0.1:PORT``)."""
    server = uvicorn.Server(_config(sb, host, port, "warning"))
    thread = threading.Thread(target=server.run, name="postqued-sandbox", daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            server.should_exit = True
            raise RuntimeError(f"the sandbox server did not start on {host}:{port}")
        time.sleep(0.005)
    bound_port = server.servers[0].sockets[0].getsockname()[1]
    shown_host = f"[{host}]" if ":" in host else host
    try:
        yield f"http://{shown_host}:{bound_port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def serve(sb: Sandbox, host: str = "127.0.0.1", port: int = 8765) -> None:
    """Serve ``sb`` with uvicorn until interrupted (blocking)."""
    uvicorn.Server(_config(sb, host, port, "info")).run()

"""postqued-mcp against the embedded sandbox with rate limits off, for the per-call benchmark.

``python -m bench.sandbox_server STATE_DIR`` serves stdio; ``... STATE_DIR --http PORT TOKEN`` serves
streamable HTTP on 127.0.0.1 with the bearer token, through the same ``http_app`` as ``postqued-mcp --http``.
The sandbox runs inside this process (``httpx.ASGITransport``), exactly as with ``--sandbox``.
"""

from __future__ import annotations

import sys
from pathlib import Path

from pydantic import SecretStr

from bench.sandboxkit import UNLIMITED
from postqued.sandbox import Sandbox
from postqued.settings import Settings
from postqued_mcp.app import build_server
from postqued_mcp.http_transport import http_app


def main(argv: list[str]) -> None:
    state_dir = Path(argv[0])
    http = len(argv) >= 4 and argv[1] == "--http"
    settings = Settings.build(
        state_dir=state_dir,
        media_dirs=(),
        rate_limits=UNLIMITED,
        mcp_token=SecretStr(argv[3]) if http else None,
    )
    built = build_server(settings, sandbox=Sandbox(rate_limits=None))
    if http:
        import uvicorn

        port = int(argv[2])
        app = http_app(built, settings, "127.0.0.1", port)
        uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning")
    else:
        built.run("stdio")


if __name__ == "__main__":
    main(sys.argv[1:])

"""The ``postqued-mcp`` command: serve over stdio (default) or streamable HTTP, ``sandbox``, ``demo``, ``doctor``.

stdout carries nothing but the protocol; logs go to stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from postqued import __version__
from postqued.errors import PostQuedError
from postqued.settings import Settings, is_loopback_host, parse_toolsets
from postqued_mcp.app import build_server, sandbox_settings
from postqued_mcp.logs import configure_logging


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="postqued-mcp", description="MCP server for PostQued (stdio by default).")
    p.add_argument("--version", action="version", version=f"postqued-mcp {__version__}")
    p.add_argument("--sandbox", action="store_true", default=None, help="use the embedded simulator (POSTQUED_SANDBOX)")
    p.add_argument("--http", action="store_true", help="serve streamable HTTP instead of stdio")
    p.add_argument("--host", default="127.0.0.1", help="HTTP bind address (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8765, help="HTTP port (default 8765)")
    p.add_argument("--toolsets", help="dynamic (default), a comma list of toolsets, or all (POSTQUED_TOOLSETS)")
    p.add_argument(
        "--read-only", action="store_true", default=None, help="register read tools only (POSTQUED_READ_ONLY)"
    )
    p.add_argument("--api-version", choices=("v1", "v2"), help="PostQued API version (POSTQUED_API_VERSION)")
    p.add_argument("--workspace-id", help="v2 workspace (POSTQUED_WORKSPACE_ID)")
    p.add_argument("--state-dir", type=Path, help="journal folder (POSTQUED_STATE_DIR)")
    p.add_argument(
        "--media-dirs", nargs="*", type=Path, metavar="DIR", help="folders uploads may read from (POSTQUED_MEDIA_DIRS)"
    )
    p.add_argument("--log-level", help="stderr log level (POSTQUED_LOG_LEVEL, default WARNING)")
    p.add_argument(
        "--env-file",
        type=Path,
        help="read settings from this file (POSTQUED_ENV_FILE); a .env in the working folder may only set the API key",
    )
    sub = p.add_subparsers(dest="command")
    sb = sub.add_parser("sandbox", help="run the PostQued simulator on loopback")
    sb.add_argument("--host", default="127.0.0.1", dest="sandbox_host")
    sb.add_argument("--port", type=int, default=8787, dest="sandbox_port")
    sub.add_parser("demo", help="the whole chain against the embedded sandbox, through a real MCP client")
    doc = sub.add_parser("doctor", help="check the configuration and print a fix for each problem")
    doc.add_argument("--json", action="store_true", help="machine-readable output")
    doc.add_argument(
        "--contract", action="store_true", help="read-only: report the shape of each PostQued answer (no values)"
    )
    doc.add_argument("--out", type=Path, default=None, help="with --contract: write the JSON report to this file")
    return p


def load_settings(args: argparse.Namespace) -> Settings:
    overrides: dict[str, object] = {
        "sandbox": args.sandbox,
        "read_only": args.read_only,
        "api_version": args.api_version,
        "workspace_id": args.workspace_id,
        "state_dir": args.state_dir,
        "media_dirs": tuple(p.expanduser() for p in args.media_dirs) if args.media_dirs else None,
        "log_level": args.log_level.upper() if args.log_level else None,
    }
    if args.toolsets:
        overrides["toolsets"] = parse_toolsets(args.toolsets)
    return Settings.from_env(env_file=args.env_file, overrides=overrides)


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        settings = load_settings(args)
    except PostQuedError as exc:
        print(f"postqued-mcp: {exc}", file=sys.stderr)
        return 2
    configure_logging(settings.log_level)
    try:
        if args.command == "sandbox":
            return _run_sandbox(args.sandbox_host, args.sandbox_port)
        if args.command == "demo":
            from postqued_mcp.demo import run_demo

            return asyncio.run(run_demo(settings))
        if args.command == "doctor":
            from postqued.doctor import run_doctor

            transport = None
            if settings.sandbox:
                from postqued.sandbox import Sandbox

                sandbox = Sandbox()
                settings, transport = sandbox_settings(settings, sandbox), sandbox.transport()
            return asyncio.run(
                run_doctor(settings, as_json=args.json, transport=transport, contract=args.contract, out_file=args.out)
            )
        server = build_server(settings)
        if args.http:
            from postqued_mcp.http_transport import run_http

            return run_http(server, settings, args.host, args.port)
        server.run("stdio")
        return 0
    except PostQuedError as exc:
        print(f"postqued-mcp: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


def _run_sandbox(host: str, port: int) -> int:
    from postqued.sandbox import Sandbox, serve

    if not is_loopback_host(host):
        print("postqued-mcp: the sandbox only binds to loopback addresses.", file=sys.stderr)
        return 2
    sandbox = Sandbox()
    print(
        json.dumps(
            {
                "base_url": f"http://{host}:{port}",
                "api_key": sandbox.api_key,
                "workspace_id": sandbox.workspace_id,
                "note": "sandbox: nothing here is real",
            }
        ),
        file=sys.stderr,
    )
    serve(sandbox, host, port)
    return 0

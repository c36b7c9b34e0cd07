"""The streamable HTTP transport, locked down.

- binds 127.0.0.1 unless told otherwise, and never starts without POSTQUED_MCP_TOKEN (on any host);
- a missing or wrong bearer token is 401 (compared in constant time), whatever the method, path or body;
- a foreign Origin is 403, a Host that is not this server is 421, a body over 1 MiB is 413;
- the MCP client's own Authorization header never reaches PostQued: the server process talks to a loopback
  sandbox that authenticates by exact key, and every request it received carried the PostQued key.
"""

from __future__ import annotations

import base64
import hmac
import os
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import httpx2
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from pydantic import SecretStr
from starlette.types import Message, Receive, Scope, Send

from postqued.errors import PostQuedError
from postqued.sandbox import SANDBOX_API_KEY, Sandbox, run_in_thread
from postqued.settings import Settings
from postqued_mcp import cli, http_transport
from postqued_mcp.app import build_server
from tests.mcpkit import chain
from tests.servekit import http_server, server_env

ROOT = Path(__file__).resolve().parents[1]
TOKEN = "mcp-token-for-transport-tests-5f0a9c"
MIB = 1024 * 1024
PING = b'{"jsonrpc":"2.0","id":1,"method":"ping"}'
ACCEPT = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}


# --- binding and start-up (in process; uvicorn.run is replaced, nothing binds) --------------------


@pytest.fixture
def bound(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> list[dict[str, Any]]:
    """Run ``main`` with a clean environment; records what uvicorn would have been asked to bind."""
    for name in list(os.environ):
        if name.startswith("POSTQUED_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("POSTQUED_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("POSTQUED_MEDIA_DIRS", str(tmp_path))
    monkeypatch.chdir(tmp_path)  # no stray .env
    calls: list[dict[str, Any]] = []
    monkeypatch.setattr("uvicorn.run", lambda app, **kw: calls.append({"app": app, **kw}))
    monkeypatch.setattr(cli, "configure_logging", lambda level: None)
    return calls


def test_http_binds_loopback_by_default(bound: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch) -> None:
    assert cli._parser().parse_args(["--http"]).host == "127.0.0.1"
    monkeypatch.setenv("POSTQUED_MCP_TOKEN", TOKEN)
    assert cli.main(["--http", "--sandbox"]) == 0
    assert [(c["host"], c["port"]) for c in bound] == [("127.0.0.1", 8765)]
    assert isinstance(bound[0]["app"], http_transport.BearerAuth)


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "::1", "0.0.0.0", "::", "192.0.2.10"])
def test_http_never_starts_without_a_token(
    bound: list[dict[str, Any]], host: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["--http", "--sandbox", "--host", host]) == 2
    assert not bound
    out, err = capsys.readouterr()
    assert "POSTQUED_MCP_TOKEN" in err and not out


def test_non_loopback_bind_needs_the_token_and_keeps_it(
    bound: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("POSTQUED_MCP_TOKEN", TOKEN)
    assert cli.main(["--http", "--sandbox", "--host", "0.0.0.0", "--port", "9000"]) == 0
    assert bound[0]["host"] == "0.0.0.0" and isinstance(bound[0]["app"], http_transport.BearerAuth)


# --- BearerAuth as an ASGI unit ------------------------------------------------------------------


@dataclass
class Inner:
    calls: list[str] = field(default_factory=list)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.calls.append(scope["type"])
        if scope["type"] == "http":
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.body", "body": b"ok"})


async def _asgi(app: Any, scope: Scope) -> list[Message]:
    sent: list[Message] = []

    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Message) -> None:
        sent.append(message)

    await app(scope, receive, send)
    return sent


def _scope(kind: str = "http", headers: list[tuple[bytes, bytes]] | None = None) -> Scope:
    return {"type": kind, "method": "POST", "path": "/mcp", "headers": headers or [], "query_string": b""}


async def test_bearer_comparison_is_constant_time(monkeypatch: pytest.MonkeyPatch) -> None:
    compared: list[tuple[bytes, bytes]] = []
    real = hmac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        compared.append((a, b))
        return bool(real(a, b))

    monkeypatch.setattr(hmac, "compare_digest", spy)
    inner = Inner()
    auth = http_transport.BearerAuth(inner, TOKEN)
    for supplied in (TOKEN, TOKEN[:-1], TOKEN + "x", "", "x" * 4096):
        sent = await _asgi(auth, _scope(headers=[(b"authorization", f"Bearer {supplied}".encode())]))
        assert sent[0]["status"] == (200 if supplied == TOKEN else 401)
    assert [b for _, b in compared] == [TOKEN.encode()] * 5  # every check went through compare_digest


async def test_only_lifespan_passes_without_a_token() -> None:
    inner = Inner()
    auth = http_transport.BearerAuth(inner, TOKEN)
    sent = await _asgi(auth, _scope("websocket"))
    assert inner.calls == [] and sent and sent[0]["type"] == "websocket.close"
    lifespan_sent = await _asgi(auth, {"type": "lifespan"})
    assert inner.calls == ["lifespan"] and lifespan_sent == []


# --- the real server process against a loopback sandbox ------------------------------------------


@dataclass
class Served:
    url: str
    port: int
    sandbox: Sandbox
    seen: list[tuple[str, dict[bytes, bytes]]]  # path and headers of every request the sandbox received
    proc: subprocess.Popen[bytes]
    media: Path


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    tmp = tmp_path_factory.mktemp("http")
    media = tmp / "media"
    media.mkdir()
    for name in ("video.mp4",):
        (media / name).write_bytes((Path(__file__).parent / "fixtures" / "media" / name).read_bytes())
    seen: list[tuple[str, dict[bytes, bytes]]] = []
    with Sandbox() as sb:
        inner = sb.app

        async def recorder(scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] == "http":
                seen.append((scope["path"], dict(scope["headers"])))
            await inner(scope, receive, send)

        sb.app = recorder  # type: ignore[assignment]
        with run_in_thread(sb) as base_url:
            env = server_env(
                POSTQUED_API_KEY=SANDBOX_API_KEY,
                POSTQUED_BASE_URL=base_url,
                POSTQUED_MCP_TOKEN=TOKEN,
                POSTQUED_STATE_DIR=str(tmp / "state"),
                POSTQUED_MEDIA_DIRS=str(media),
            )
            with http_server(env) as (url, port, proc):
                yield Served(url, port, sb, seen, proc, media)


def _post(served: Served, headers: dict[str, str], body: bytes = PING, **kw: Any) -> httpx.Response:
    with httpx.Client(timeout=20) as raw:
        return raw.post(served.url, content=body, headers={**ACCEPT, **headers}, **kw)


def _good(**extra: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {TOKEN}", **extra}


GATES = {401, 403, 413, 421}  # what the transport's own checks answer


def _passes(response: httpx.Response) -> bool:
    """Past every gate: the MCP layer answered (a bare ping without a session is its own 4xx)."""
    return response.status_code not in GATES and response.status_code < 500


@pytest.mark.parametrize(
    "authorization",
    [
        None,
        "",
        "Bearer",
        "Bearer wrong",
        f"Bearer {TOKEN[:-1]}",
        f"Bearer {TOKEN}x",
        f"Bearer {TOKEN.upper()}",
        f"Basic {base64.b64encode(f'user:{TOKEN}'.encode()).decode()}",
        f"Token {TOKEN}",
        TOKEN,
        f"Bearer {SANDBOX_API_KEY}",  # the PostQued key is not the MCP token
    ],
)
def test_missing_or_wrong_bearer_is_401(served: Served, authorization: str | None) -> None:
    before = len(served.sandbox.ledger)
    headers = {} if authorization is None else {"Authorization": authorization}
    response = _post(served, headers)
    assert response.status_code == 401
    assert response.headers.get("www-authenticate") == "Bearer"
    assert TOKEN not in response.text and len(served.sandbox.ledger) == before


def test_every_method_and_path_needs_the_token(served: Served) -> None:
    with httpx.Client(timeout=20) as raw:
        base = served.url.removesuffix("/mcp")
        for method, path in (("GET", "/mcp"), ("DELETE", "/mcp"), ("OPTIONS", "/mcp"), ("GET", "/"), ("GET", "/x")):
            assert raw.request(method, base + path).status_code == 401, (method, path)
        assert raw.post(f"{served.url}?token={TOKEN}", content=PING, headers=ACCEPT).status_code == 401
        assert raw.post(served.url, content=PING, headers={**ACCEPT, "Cookie": f"token={TOKEN}"}).status_code == 401


def test_the_right_token_is_accepted(served: Served) -> None:
    assert _passes(_post(served, _good()))
    assert _passes(_post(served, {"Authorization": f"bearer {TOKEN}"}))  # the scheme is case-blind


@pytest.mark.parametrize(
    "origin", ["https://evil.example", "null", "http://127.0.0.1.evil.example", "file://", "http://localhost:1"]
)
def test_foreign_origin_is_403(served: Served, origin: str) -> None:
    assert _post(served, _good(Origin=origin)).status_code == 403


def test_own_origin_is_accepted(served: Served) -> None:
    for origin in (f"http://127.0.0.1:{served.port}", f"http://localhost:{served.port}"):
        assert _passes(_post(served, _good(Origin=origin))), origin


@pytest.mark.parametrize("host", ["evil.example", "127.0.0.1.nip.io", "localhost.evil.example", "localhost:1", "[::2]"])
def test_bad_host_is_421(served: Served, host: str) -> None:
    assert _post(served, _good(Host=host)).status_code == 421


def test_oversized_body_is_413(served: Served) -> None:
    big = PING[:-1] + b',"pad":"' + b"x" * MIB + b'"}'
    assert _post(served, _good(), big).status_code == 413

    def chunks() -> Iterator[bytes]:  # no Content-Length: the limit counts what arrives
        for _ in range(5):
            yield b" " * (MIB // 4)
        yield PING

    assert _post(served, _good(), chunks()).status_code == 413  # type: ignore[arg-type]
    assert _post(served, {}, big).status_code == 401  # authentication comes first; the body is never read
    under = PING[:-1] + b',"pad":"' + b"x" * (MIB - 1024) + b'"}'
    assert _passes(_post(served, _good(), under))


async def test_the_clients_authorization_is_never_forwarded(served: Served) -> None:
    start = len(served.seen)
    http = httpx2.AsyncClient(headers={"Authorization": f"Bearer {TOKEN}"}, timeout=60)
    async with http, Client(streamable_http_client(served.url, http_client=http)) as client:
        done = await chain(client, served.media)
    assert done["terminal"] is True and done["status"] == "completed"
    sent = served.seen[start:]
    for path, headers in sent:
        assert not any(TOKEN.encode() in v for v in headers.values()), f"the MCP token reached PostQued ({path})"
    api = [h.get(b"authorization") for path, h in sent if not path.startswith("/_storage")]
    storage = [h.get(b"authorization") for path, h in sent if path.startswith("/_storage")]
    assert api and set(api) == {f"Bearer {SANDBOX_API_KEY}".encode()}  # the PostQued key, every time
    assert storage and set(storage) == {None}  # presigned storage gets no Authorization at all
    calls = [e for e in served.sandbox.ledger if e.route != "storage_put"]
    assert calls and all(e.has_auth and e.status not in (401, 403) for e in calls)


def test_http_app_refuses_without_a_token(tmp_path: Path) -> None:
    configured = Settings.build(state_dir=tmp_path, media_dirs=(tmp_path,), sandbox=True)
    with pytest.raises(PostQuedError, match="POSTQUED_MCP_TOKEN"):
        http_transport.http_app(build_server(configured), configured, "127.0.0.1", 8765)
    tokened = configured.model_copy(update={"mcp_token": SecretStr(TOKEN)})
    app = http_transport.http_app(build_server(tokened), tokened, "127.0.0.1", 8765)
    assert isinstance(app, http_transport.BearerAuth)

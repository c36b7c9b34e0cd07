"""Canaries: a canary API key, a canary storage signature and a canary MCP token never leak.

The sandbox is made to accept a canary key (its module constant is patched, so every sandbox built here,
the demo's included, uses it) and to sign presigned URLs with a recognisable canary prefix. A
representative set of scenarios then runs with DEBUG logging through ``configure_logging`` (and the
HTTP/MCP libraries forced to DEBUG as well, the worst case): uploads (v2 presigned, v1 multipart, expired
URLs, resets, refusals that echo the signature), publishing with faults (5xx, 429, lost answers, a 401
that echoes the key), a wrong key, ``doctor``, the demo and the streamable HTTP transport in a separate
process. Afterwards nothing may contain a canary: captured stdout/stderr, log records, tool results and
error texts, str()/repr() of every raised error, the journal's files, the subprocess's output. The real
sandbox key is a secret too and is scanned for as well. The storage endpoint never sees Authorization.
"""

from __future__ import annotations

import io
import json
import logging
import shutil
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import httpx2
import mcp.types as mt
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from pydantic import SecretStr

import postqued.sandbox.core as sandbox_core
import postqued_mcp.tools.common
from postqued.client import PostQuedClient
from postqued.clock import ManualClock
from postqued.doctor import run_doctor
from postqued.errors import PostQuedError, redact
from postqued.models import UploadComplete
from postqued.sandbox import SANDBOX_API_KEY, Sandbox, run_in_thread
from postqued.sandbox.storage import Storage
from postqued.settings import Settings
from postqued_mcp.app import SANDBOX_ORIGIN, build_server
from postqued_mcp.demo import run_demo
from postqued_mcp.logs import configure_logging
from tests import servekit

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = Path(__file__).parent / "fixtures" / "media"

CANARY_KEY = "pq_canary_7f3e9b1d5c2a4e6f8091a2b3c4d5e6f7"
WRONG_KEY = "pq_wrongcanary_c0ffee5eedfacade1234abcd"
SIG_PREFIX = "CANARYSIG"
CANARY_TOKEN = "mcp-canary-token-2b9d41e7a0c34f5e9d11"
# keyPrefix (the first 11 characters) is public by design, as in PostQued's own /v2/mcp/context
STATIC_NEEDLES = (
    CANARY_KEY,
    CANARY_KEY[11:],
    WRONG_KEY,
    WRONG_KEY[11:],
    SANDBOX_API_KEY,
    SANDBOX_API_KEY[11:],
    SIG_PREFIX,
    CANARY_TOKEN,
)
THIRD_PARTY_LOGGERS = ("httpx", "httpcore", "mcp", "uvicorn", "uvicorn.access", "uvicorn.error", "starlette")


@dataclass
class Canary:
    signatures: list[str] = field(default_factory=list)
    errors: list[BaseException] = field(default_factory=list)

    @property
    def needles(self) -> list[str]:
        return [*STATIC_NEEDLES, *self.signatures, *(s[len(SIG_PREFIX) :] for s in self.signatures)]

    def leaks(self, text: str | bytes) -> list[str]:
        data = text.encode("utf-8", "surrogateescape") if isinstance(text, str) else text
        return [n for n in self.needles if n.encode() in data]

    def check(self, where: str, text: str | bytes) -> None:
        found = self.leaks(text)
        assert not found, f"{where} leaked {found}"


@pytest.fixture
def canary(monkeypatch: pytest.MonkeyPatch) -> Iterator[Canary]:
    """The sandbox accepts only CANARY_KEY and signs every URL with a canary signature."""
    found = Canary()
    monkeypatch.setattr(sandbox_core, "SANDBOX_API_KEY", CANARY_KEY)
    real_signature = Storage.signature

    def canary_signature(self: Storage, key: str, content_type: str, expires: int) -> str:
        value = SIG_PREFIX + real_signature(self, key, content_type, expires)
        if value not in found.signatures:
            found.signatures.append(value)
        return value

    monkeypatch.setattr(Storage, "signature", canary_signature)
    real_to_tool_error = postqued_mcp.tools.common._to_tool_error

    def recording(exc: PostQuedError) -> Any:
        found.errors.append(exc)
        return real_to_tool_error(exc)

    monkeypatch.setattr(postqued_mcp.tools.common, "_to_tool_error", recording)
    yield found


class RawRecords(logging.Handler):
    """Every record as emitted, before the redacting handler touches it (it must be first on the root)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[tuple[str, str]] = []

    def emit(self, record: logging.LogRecord) -> None:
        text = record.getMessage()
        if record.exc_info:
            text += "\n" + logging.Formatter().formatException(record.exc_info)
        self.lines.append((record.name, text))


class _CurrentStderr:
    """Writes to whatever ``sys.stderr`` is now (the handler keeps the object it was given)."""

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()


@pytest.fixture
def debug_logs(capfd: pytest.CaptureFixture[str]) -> Iterator[RawRecords]:
    """configure_logging("DEBUG") on the captured stderr, then the libraries forced to DEBUG; restored after."""
    root = logging.getLogger()
    saved = (root.handlers[:], root.level, {n: logging.getLogger(n).level for n in THIRD_PARTY_LOGGERS})
    configure_logging("DEBUG")
    handler = root.handlers[0]
    assert isinstance(handler, logging.StreamHandler)
    handler.setStream(_CurrentStderr())  # capfd swaps sys.stderr per phase
    for name in THIRD_PARTY_LOGGERS:
        logging.getLogger(name).setLevel(logging.DEBUG)
    raw = RawRecords()
    root.handlers.insert(0, raw)
    yield raw
    root.handlers[:], levels = saved[0], saved[2]
    root.setLevel(saved[1])
    for name, level in levels.items():
        logging.getLogger(name).setLevel(level)


def scan_everything(
    canary: Canary,
    raw: RawRecords,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
    state_dir: Path | None,
    results: list[Any],
) -> str:
    """Scan every place a secret could surface; returns the captured stderr (to prove capture works)."""
    out, err = capfd.readouterr()
    canary.check("stdout", out)
    canary.check("stderr (redacting handler)", err)
    canary.check("caplog", caplog.text)
    for record in caplog.records:
        canary.check(f"log record {record.name}", record.getMessage() + str(record.exc_text or ""))
    for name, text in raw.lines:
        if name.split(".")[0] in ("postqued", "postqued_mcp"):  # our own code logs nothing secret at all
            canary.check(f"unredacted record of {name}", text)
    for n, result in enumerate(results):
        dumped = result.model_dump_json() if hasattr(result, "model_dump_json") else json.dumps(result, default=str)
        canary.check(f"result {n}", dumped)
    for exc in canary.errors:
        chain: BaseException | None = exc
        while chain is not None:
            canary.check(f"error {type(chain).__name__}", f"{chain!s} {chain!r} {getattr(chain, 'details', '')}")
            chain = chain.__cause__ or chain.__context__
    if state_dir is not None:
        files = [p for p in state_dir.rglob("*") if p.is_file()]
        for path in files:
            canary.check(f"state file {path.name}", path.read_bytes())
    return err


async def call(client: Client, results: list[Any], tool: str, **args: Any) -> mt.CallToolResult:
    result = await client.call_tool(tool, args)
    results.append(result)
    return result


def structured(result: mt.CallToolResult) -> dict[str, Any]:
    assert not result.is_error, result.content
    assert isinstance(result.structured_content, dict)
    return result.structured_content


def error_text(result: mt.CallToolResult) -> str:
    assert result.is_error, result.structured_content
    first = result.content[0]
    assert isinstance(first, mt.TextContent)
    return first.text


def draft(account_id: str, caption: str = "canary run #sandbox") -> dict[str, Any]:
    return {
        "platform": "tiktok",
        "account_id": account_id,
        "intent": "draft",
        "caption": caption,
        "options": {"privacy_level": "SELF_ONLY"},
    }


@pytest.fixture
def media(tmp_path: Path) -> Path:
    folder = tmp_path / "media"
    folder.mkdir()
    for name in ("video.mp4", "image.png", "image.jpg"):
        shutil.copy(FIXTURES / name, folder / name)
    return folder


@pytest.fixture
async def session(tmp_path: Path, media: Path, canary: Canary) -> AsyncIterator[tuple[Client, Sandbox]]:
    clock = ManualClock()
    configured = Settings.build(state_dir=tmp_path / "state", media_dirs=(media,), log_level="DEBUG", rate_limits={})
    with Sandbox(clock=clock) as sb:
        assert sb.api_key == CANARY_KEY
        async with Client(build_server(configured, sandbox=sb, clock=clock)) as client:
            yield client, sb


# --- the scenarios -------------------------------------------------------------------------------


async def test_uploads_and_publishes_with_faults_leak_nothing(
    session: tuple[Client, Sandbox],
    canary: Canary,
    debug_logs: RawRecords,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
    media: Path,
    tmp_path: Path,
) -> None:
    client, sb = session
    r: list[Any] = []
    video = structured(await call(client, r, "upload_media", path=str(media / "video.mp4")))["content"]["id"]
    structured(await call(client, r, "upload_media", path=str(media / "image.png"), alt_text="alt"))
    structured(await call(client, r, "upload_media", path=str(media / "video.mp4")))  # de-duplicated
    raw = structured(
        await call(client, r, "start_content_upload", filename="x.mp4", content_type="video/mp4", file_size=10)
    )
    assert "?" not in raw["upload_target"]

    sb.inject("expire_upload_url", route="content_upload")
    structured(await call(client, r, "upload_media", path=str(media / "video.mp4"), force=True))
    sb.inject("reset_put", route="storage_put", times=3, after_bytes=100)
    assert "UPLOAD_FAILED" in error_text(
        await call(client, r, "upload_media", path=str(media / "video.mp4"), force=True)
    )
    echo = f"SignatureDoesNotMatch <SignatureProvided>{SIG_PREFIX}00ff</SignatureProvided> Bearer {CANARY_KEY}"
    sb.inject("status", route="storage_put", status=403, error=echo)
    assert "UPLOAD_REFUSED" in error_text(await call(client, r, "upload_media", path=str(media / "image.jpg")))
    sb.inject(
        "status", route="integrations", status=401, code="UNAUTHORIZED", error=f"Invalid or revoked key {CANARY_KEY}"
    )
    assert "UNAUTHORIZED (HTTP 401)" in error_text(await call(client, r, "list_accounts"))

    args = {"content_ids": [video], "targets": [draft(sb.tiktok_public_id)]}
    assert structured(await call(client, r, "publish_content", **args))["valid"] is True
    sb.inject("status", route="publish", status=500, times=3)
    assert "OUTCOME_UNKNOWN" in error_text(await call(client, r, "publish_content", **args, dry_run=False))
    live = structured(await call(client, r, "publish_content", **args, dry_run=False))
    structured(await call(client, r, "get_publish_status", publish_id=live["publish_id"]))
    structured(await call(client, r, "wait_for_publish", publish_id=live["publish_id"], timeout_seconds=60))

    other = {"content_ids": [video], "targets": [draft(sb.tiktok_private_id, "second")]}
    structured(await call(client, r, "publish_content", **other))
    sb.inject("status", route="publish", status=429, retry_after=600)
    assert "RATE_LIMITED" in error_text(await call(client, r, "publish_content", **other, dry_run=False))
    sb.inject("drop_after_commit", route="publish", times=3)
    assert "OUTCOME_UNKNOWN" in error_text(await call(client, r, "publish_content", **other, dry_run=False))
    structured(await call(client, r, "publish_content", **other, dry_run=False))  # same key: resolved
    sb.inject("truncate_body", route="content_list")
    await call(client, r, "list_content")
    structured(await call(client, r, "list_publish_journal", limit=50))
    for uri in ("postqued://journal", "postqued://accounts"):
        r.append(await client.read_resource(uri))

    assert [e for e in sb.requests("storage_put") if e.has_auth] == []
    assert all(e.has_auth for e in sb.ledger if e.route != "storage_put")
    assert canary.signatures and canary.errors
    err = scan_everything(canary, debug_logs, caplog, capfd, tmp_path / "state", r)
    assert "postqued" in err  # DEBUG logging really reached the captured stderr


async def test_v1_multipart_and_publish_leak_nothing(
    tmp_path: Path,
    media: Path,
    canary: Canary,
    debug_logs: RawRecords,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
) -> None:
    clock = ManualClock()
    configured = Settings.build(state_dir=tmp_path / "state", media_dirs=(media,), api_version="v1")
    r: list[Any] = []
    with Sandbox(clock=clock) as sb:
        async with Client(build_server(configured, sandbox=sb, clock=clock)) as client:
            image = structured(await call(client, r, "upload_media", path=str(media / "image.png")))
            video = structured(await call(client, r, "upload_media", path=str(media / "video.mp4")))
            sb.inject("status", route="v1_upload_image", status=400, error=f"bad key {CANARY_KEY}")
            await call(client, r, "upload_media", path=str(media / "image.jpg"))
            args = {"content_ids": [video["content"]["id"]], "targets": [draft(sb.tiktok_public_id)]}
            structured(await call(client, r, "publish_content", **args))
            structured(await call(client, r, "publish_content", **args, dry_run=False))
        assert image["content"]["id"] and sb.requests("v1_upload_image")
        assert not [e for e in sb.requests("storage_put") if e.has_auth]
    scan_everything(canary, debug_logs, caplog, capfd, tmp_path / "state", r)


async def test_a_wrong_key_is_a_clean_401(
    tmp_path: Path,
    media: Path,
    canary: Canary,
    debug_logs: RawRecords,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
) -> None:
    clock = ManualClock()
    wrong = Settings.build(
        state_dir=tmp_path / "state", media_dirs=(media,), api_key=SecretStr(WRONG_KEY), base_url=SANDBOX_ORIGIN
    )
    r: list[Any] = []
    with Sandbox(clock=clock) as sb:
        async with Client(build_server(wrong, transport=sb.transport(), clock=clock)) as client:
            for tool, args in (("list_workspaces", {}), ("upload_media", {"path": str(media / "video.mp4")})):
                text = error_text(await call(client, r, tool, **args))
                assert "UNAUTHORIZED (HTTP 401)" in text and "POSTQUED_API_KEY" in text
        assert all(e.status == 401 for e in sb.ledger)
        out = io.StringIO()
        assert await run_doctor(wrong, transport=sb.transport(), out=out) == 1
        r.append(out.getvalue())
    scan_everything(canary, debug_logs, caplog, capfd, tmp_path / "state", r)


async def test_doctor_and_demo_leak_nothing(
    tmp_path: Path,
    media: Path,
    canary: Canary,
    debug_logs: RawRecords,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
) -> None:
    r: list[Any] = []
    with Sandbox() as sb:
        configured = Settings.build(
            state_dir=tmp_path / "state", media_dirs=(media,), api_key=SecretStr(CANARY_KEY), base_url=SANDBOX_ORIGIN
        )
        for as_json in (False, True):
            out = io.StringIO()
            assert await run_doctor(configured, as_json=as_json, transport=sb.transport(), out=out) == 0
            r.append(out.getvalue())
    out = io.StringIO()
    assert await run_demo(Settings.build(state_dir=tmp_path / "demo", media_dirs=(media,)), out=out) == 0
    r.append(out.getvalue())
    assert "demo passed" in r[-1] and canary.signatures  # the demo uploaded through a canary-signed URL
    scan_everything(canary, debug_logs, caplog, capfd, tmp_path, r)


async def test_raised_errors_leak_nothing(tmp_path: Path, canary: Canary) -> None:
    """The client's own exceptions, under every fault the sandbox has, in str(), repr() and their chain."""
    clock = ManualClock()
    with Sandbox(clock=clock) as sb:
        configured = Settings.build(
            state_dir=tmp_path, media_dirs=(tmp_path,), api_key=SecretStr(CANARY_KEY), base_url=SANDBOX_ORIGIN
        )
        async with PostQuedClient(configured, transport=sb.transport(), clock=clock) as client:
            session = await client.start_upload("v.mp4", "video/mp4", 10)
            assert session.url.count(SIG_PREFIX) == 1
            faults: list[tuple[str, str, dict[str, Any]]] = [
                ("status", "content_upload", {"status": 401, "error": f"key {CANARY_KEY} revoked"}),
                ("status", "content_upload", {"status": 400, "error": session.url}),
                ("status", "content_upload", {"status": 503, "error": f"Bearer {CANARY_KEY}"}),
                ("drop_before_commit", "content_upload", {}),
                ("truncate_body", "content_upload", {}),
                ("status", "content_complete", {"status": 409, "code": "CONFLICT", "error": session.url}),
            ]
            for kind, route, params in faults:
                sb.inject(kind, route=route, times=3, **params)
                try:
                    if route == "content_upload":
                        await client.start_upload("v.mp4", "video/mp4", 10)
                    else:
                        await client.complete_upload(
                            UploadComplete(
                                content_id=session.content_id,
                                key=session.key,
                                filename="v.mp4",
                                content_type="video/mp4",
                            )
                        )
                except PostQuedError as exc:
                    canary.errors.append(exc)
                sb.faults.clear()
            put = await client.storage.put(session.url, content=b"x" * 3, headers={"Content-Type": "text/plain"})
            assert put.status_code == 403  # the signed Content-Type differs; nothing echoes the signature
            canary.check("storage refusal", put.text)
    assert len(canary.errors) >= 5
    for error in canary.errors:
        canary.check(type(error).__name__, f"{error!s} {error!r} {error.__cause__!r} {error.__context__!r}")


def test_redact_covers_the_shapes_secrets_take() -> None:
    samples = [
        f"Authorization: Bearer {CANARY_KEY}",
        f"authorization: bearer {CANARY_TOKEN}",
        f"key={CANARY_KEY}",
        f"https://bucket.s3.amazonaws.com/k.mp4?X-Amz-Algorithm=AWS4&X-Amz-Credential={SIG_PREFIX}%2F1&X-Amz-Signature={SIG_PREFIX}",
        f"http://127.0.0.1:9/_storage/k?expires=1&signature={SIG_PREFIX}abc",
        f"//cdn.example/k?Signature={SIG_PREFIX}&Expires=1",
        f"https://storage.googleapis.com/b/o?X-Goog-Signature={SIG_PREFIX}",
        f"https://acct.blob.core.windows.net/c/b?sv=1&sig={SIG_PREFIX}",
        f"https://x.r2.cloudflarestorage.com/k?X-Amz-Security-Token={SIG_PREFIX}",
        json.dumps({"url": f"https://s3/k?X-Amz-Signature={SIG_PREFIX}", "key": CANARY_KEY}),
        repr({"upload": {"url": f"https://s3/k?a=1&signature={SIG_PREFIX}"}}),
    ]
    canary = Canary()
    for text in samples:
        canary.check(f"redact({text[:40]!r})", redact(text))


def test_tracebacks_and_third_party_records_are_redacted(
    debug_logs: RawRecords, capfd: pytest.CaptureFixture[str]
) -> None:
    url = f"http://127.0.0.1:1/_storage/k?expires=1&signature={SIG_PREFIX}0a"
    try:
        raise httpx.ConnectError(f"PUT {url} failed, Authorization: Bearer {CANARY_KEY}")
    except httpx.ConnectError:
        logging.getLogger("postqued.uploads").exception("upload failed for %s", url)
    logging.getLogger("httpx").info('HTTP Request: PUT %s "HTTP/1.1 200 OK"', url)
    logging.getLogger("mcp.server").debug("sending %s", {"headers": {"authorization": f"Bearer {CANARY_TOKEN}"}})
    logging.getLogger("postqued").info("stack", stack_info=True)
    _, err = capfd.readouterr()
    assert "Traceback" in err and "HTTP Request: PUT" in err and "_storage/k?***" in err
    Canary().check("stderr", err)


# --- the streamable HTTP transport in its own process --------------------------------------------


@pytest.fixture
def http_server(tmp_path: Path, media: Path, canary: Canary) -> Iterator[tuple[str, Sandbox, subprocess.Popen[bytes]]]:
    """`postqued-mcp --http` against a loopback sandbox that accepts only the canary key."""
    with Sandbox() as sb, run_in_thread(sb) as base_url:
        env = servekit.server_env(
            POSTQUED_API_KEY=CANARY_KEY,
            POSTQUED_BASE_URL=base_url,
            POSTQUED_MCP_TOKEN=CANARY_TOKEN,
            POSTQUED_STATE_DIR=str(tmp_path / "state"),
            POSTQUED_MEDIA_DIRS=str(media),
            POSTQUED_LOG_LEVEL="DEBUG",
        )
        with servekit.http_server(env) as (url, _, proc):
            yield url, sb, proc


async def test_http_transport_leaks_nothing(
    http_server: tuple[str, Sandbox, subprocess.Popen[bytes]], canary: Canary, media: Path, tmp_path: Path
) -> None:
    url, sb, proc = http_server
    r: list[Any] = []
    http = httpx2.AsyncClient(headers={"Authorization": f"Bearer {CANARY_TOKEN}"}, timeout=60)
    async with http, Client(streamable_http_client(url, http_client=http)) as client:
        up = structured(await call(client, r, "upload_media", path=str(media / "video.mp4")))
        args = {"content_ids": [up["content"]["id"]], "targets": [draft(sb.tiktok_public_id)]}
        structured(await call(client, r, "publish_content", **args))
        live = structured(await call(client, r, "publish_content", **args, dry_run=False))
        sb.inject("status", route="publish_get", status=401, error=f"bad key {CANARY_KEY}")
        await call(client, r, "get_publish_status", publish_id=live["publish_id"])
        error_text(await call(client, r, "upload_media", path="/etc/passwd"))
    async with httpx.AsyncClient() as raw:
        refused = await raw.post(url, json={"jsonrpc": "2.0", "id": 1, "method": "ping"})
        r.append({"status": refused.status_code, "headers": dict(refused.headers), "body": refused.text})
    proc.terminate()
    out, err = proc.communicate(timeout=10)
    canary.check("server stdout", out)
    canary.check("server stderr", err)
    assert b"postqued" in err  # DEBUG logs were written (and redacted)
    api = [e for e in sb.ledger if e.route != "storage_put"]
    assert api and all(e.has_auth and e.status != 401 for e in api if "status" not in e.faults)
    assert sb.requests("storage_put") and not any(e.has_auth for e in sb.requests("storage_put"))
    for n, result in enumerate(r):
        canary.check(f"http result {n}", json.dumps(result, default=str))
    for path in (tmp_path / "state").rglob("*"):
        if path.is_file():
            canary.check(f"server state {path.name}", path.read_bytes())

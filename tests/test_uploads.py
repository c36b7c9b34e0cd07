"""Local uploads (issue 4): every refusal sends nothing, progress through a real MCP client, faults that end
with the right bytes in storage, v1 multipart images, de-duplication, and storage hygiene.

Refusals go through the ``upload_media`` tool and prove with the sandbox ledger that not one request (not
even a workspace lookup) left the machine. Fault tests compare the sha256 the sandbox computed over the
stored object with the source file's.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import shutil
import struct
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import mcp.types as mt
import pytest
from mcp import Client
from pydantic import SecretStr

from postqued import media
from postqued.client import PostQuedClient
from postqued.clock import ManualClock
from postqued.errors import PostQuedError, UploadIncompleteError
from postqued.journal import SqliteJournal
from postqued.sandbox import SANDBOX_API_KEY, Sandbox, run_in_thread
from postqued.settings import Settings
from postqued.uploads import CHUNK, ProgressThrottle, Uploader
from tests.conftest import FIXTURES, make_client

MiB = 1024 * 1024
UPLOAD_ROUTES = {
    "content_upload",
    "content_complete",
    "storage_put",
    "v1_content_upload",
    "v1_content_complete",
    "v1_upload_image",
}


# --- helpers -------------------------------------------------------------------------------------


def padded_mp4(path: Path, size: int) -> Path:
    """The real MP4 fixture followed by one top-level ``free`` box (allowed by ISO BMFF) up to ``size`` bytes.

    The box's payload is a hole in a sparse file: big files cost no disk and no time to create.
    """
    head = (FIXTURES / "video.mp4").read_bytes()
    pad = size - len(head)
    assert pad >= 16
    with open(path, "wb") as fh:
        fh.write(head)
        if pad < 2**32:
            fh.write(struct.pack(">I4s", pad, b"free"))
        else:
            fh.write(struct.pack(">I4sQ", 1, b"free", pad))
        fh.truncate(size)
    return path


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(MiB):
            digest.update(chunk)
    return digest.hexdigest()


async def call(client: Client, tool: str, **args: Any) -> dict[str, Any]:
    result = await client.call_tool(tool, args)
    assert not result.is_error, result.content
    assert isinstance(result.structured_content, dict)
    return dict(result.structured_content)


async def call_error(client: Client, tool: str, **args: Any) -> str:
    """The error text with the SDK's "Error executing tool ...:" prefix removed (it starts with the code)."""
    result = await client.call_tool(tool, args)
    assert result.is_error, result.structured_content
    text = result.content[0]
    assert isinstance(text, mt.TextContent)
    return text.text.removeprefix(f"Error executing tool {tool}: ")


def upload_requests(sb: Sandbox) -> list[str]:
    return [e.route for e in sb.ledger if e.route in UPLOAD_ROUTES]


def stored_key(sb: Sandbox, content_id: str) -> str:
    return sb.contents[content_id].key


class Rewrite(httpx.AsyncBaseTransport):
    """Forwards to ``inner``; may edit the upload-session answer or answer storage PUTs itself."""

    def __init__(
        self,
        inner: httpx.AsyncBaseTransport,
        *,
        session: Callable[[dict[str, Any]], None] | None = None,
        storage: Callable[[httpx.Request], httpx.Response] | None = None,
    ) -> None:
        self.inner = inner
        self.session = session
        self.storage = storage
        self.storage_requests: list[httpx.Request] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.method == "PUT" and request.url.path.startswith("/_storage/"):
            self.storage_requests.append(request)
            if self.storage is not None:
                await request.aread()
                return self.storage(request)
        response = await self.inner.handle_async_request(request)
        if self.session is not None and request.url.path.endswith("/content/upload") and response.status_code == 200:
            body = json.loads(await response.aread())
            self.session(body)
            return httpx.Response(200, json=body)
        return response

    async def aclose(self) -> None:
        await self.inner.aclose()


@pytest.fixture
async def client(settings: Settings, sandbox: Sandbox, clock: ManualClock) -> AsyncIterator[Client]:
    async with make_client(settings, sandbox, clock) as c:
        yield c


@dataclass
class Env:
    sb: Sandbox
    clock: ManualClock
    client: PostQuedClient
    uploader: Uploader
    media: Path


@contextmanager
def _served(sb: Sandbox, mode: str) -> Iterator[str]:
    if mode == "loopback":
        with run_in_thread(sb) as url:
            yield url
    else:
        yield "http://sandbox.localhost"


@asynccontextmanager
async def uploader_env(
    tmp_path: Path,
    mode: str = "inprocess",
    *,
    base_url: str | None = None,
    wrap: Callable[[httpx.AsyncBaseTransport], httpx.AsyncBaseTransport] | None = None,
    **settings: Any,
) -> AsyncIterator[Env]:
    """An ``Uploader`` over a ``PostQuedClient`` talking to a fresh sandbox in-process or over loopback."""
    clock = ManualClock()
    folder = tmp_path / "media"
    folder.mkdir(exist_ok=True)
    with Sandbox(clock=clock) as sb, _served(sb, mode) as url:
        transport: httpx.AsyncBaseTransport | None = sb.transport() if mode == "inprocess" else None
        if wrap is not None:
            transport = wrap(transport or httpx.AsyncHTTPTransport())
        values: dict[str, Any] = {
            "api_key": SecretStr(SANDBOX_API_KEY),
            "base_url": base_url or url,
            "state_dir": tmp_path / "state",
            "media_dirs": (folder,),
            "timeout": 30.0,
        }
        values.update(settings)
        s = Settings.build(**values)
        with SqliteJournal(tmp_path / "state" / "journal.sqlite3", clock=clock) as journal:
            async with PostQuedClient(s, transport=transport, clock=clock) as api:
                yield Env(sb, clock, api, Uploader(api, lambda: journal, s), folder)


# --- refusals: nothing leaves the machine --------------------------------------------------------


def _write(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def _overwrite(path: Path, offset: int, data: bytes) -> None:
    with open(path, "r+b") as fh:
        fh.seek(offset)
        fh.write(data)


def _refusal(case: str, media_dir: Path, outside: Path) -> tuple[str, str]:
    """(path to pass, expected code) for one refusal case; builds whatever the case needs."""
    video = (FIXTURES / "video.mp4").read_bytes()
    png = (FIXTURES / "image.png").read_bytes()
    outside.mkdir(exist_ok=True)
    secret = _write(outside / "secret.mp4", video)
    if case == "outside":
        return str(secret), "PATH_OUTSIDE_MEDIA_DIRS"
    if case == "dotdot":
        return f"{media_dir}/../{outside.name}/secret.mp4", "PATH_OUTSIDE_MEDIA_DIRS"
    if case == "symlink_out":
        (media_dir / "link.mp4").symlink_to(secret)
        return str(media_dir / "link.mp4"), "PATH_OUTSIDE_MEDIA_DIRS"
    if case == "symlinked_folder_out":
        (media_dir / "linked").symlink_to(outside, target_is_directory=True)
        return str(media_dir / "linked" / "secret.mp4"), "PATH_OUTSIDE_MEDIA_DIRS"
    if case == "dangling_link":
        (media_dir / "gone.mp4").symlink_to(media_dir / "deleted.mp4")
        return str(media_dir / "gone.mp4"), "PATH_BROKEN_LINK"
    if case == "link_loop":
        (media_dir / "a.mp4").symlink_to(media_dir / "b.mp4")
        (media_dir / "b.mp4").symlink_to(media_dir / "a.mp4")
        return str(media_dir / "a.mp4"), "PATH_BROKEN_LINK"
    if case == "missing":
        return str(media_dir / "nope.mp4"), "PATH_NOT_FOUND"
    if case == "hidden_file":
        return str(_write(media_dir / ".clip.mp4", video)), "PATH_HIDDEN"
    if case == "hidden_folder":
        return str(_write(media_dir / ".cache" / "clip.mp4", video)), "PATH_HIDDEN"
    if case == "link_into_hidden":
        target = _write(media_dir / ".private" / "clip.mp4", video)
        (media_dir / "visible.mp4").symlink_to(target)
        return str(media_dir / "visible.mp4"), "PATH_HIDDEN"
    if case == "directory":
        (media_dir / "folder.mp4").mkdir()
        return str(media_dir / "folder.mp4"), "PATH_IS_DIRECTORY"
    if case == "fifo":
        os.mkfifo(media_dir / "pipe.mp4")
        return str(media_dir / "pipe.mp4"), "PATH_NOT_REGULAR_FILE"
    if case == "device":
        return "/dev/null", "PATH_NOT_REGULAR_FILE"  # /dev is an allowed folder in this case
    if case == "empty":
        return str(_write(media_dir / "empty.mp4", b"")), "FILE_EMPTY"
    if case == "unsupported":
        return str(_write(media_dir / "notes.mp4", b"just some text, not a video\n" * 10)), "UNSUPPORTED_MEDIA_TYPE"
    if case == "unsupported_bmp":
        return str(_write(media_dir / "picture.png", b"BM" + bytes(200))), "UNSUPPORTED_MEDIA_TYPE"
    if case == "extension_mismatch":
        shutil.copy(FIXTURES / "png_named.jpg", media_dir / "png_named.jpg")
        return str(media_dir / "png_named.jpg"), "EXTENSION_MISMATCH"
    if case == "unknown_extension":
        return str(_write(media_dir / "image.txt", png)), "EXTENSION_MISMATCH"
    if case == "video_over_4gib":
        return str(padded_mp4(media_dir / "huge.mp4", 4 * 1024**3 + 1)), "FILE_TOO_LARGE"
    if case == "image_over_20mib":
        path = _write(media_dir / "huge.png", png)
        os.truncate(path, 20 * MiB + 1)
        return str(path), "FILE_TOO_LARGE"
    if case == "truncated":
        return str(_write(media_dir / "cut.mp4", video[: len(video) // 2])), "PROBE_FAILED"
    raise AssertionError(case)


REFUSALS = [
    "outside", "dotdot", "symlink_out", "symlinked_folder_out", "dangling_link", "link_loop", "missing",
    "hidden_file", "hidden_folder", "link_into_hidden", "directory", "fifo", "device", "empty", "unsupported",
    "unsupported_bmp", "extension_mismatch", "unknown_extension", "video_over_4gib", "image_over_20mib",
    "truncated",
]  # fmt: skip


@pytest.mark.parametrize("case", REFUSALS)
async def test_refusal_sends_nothing(
    case: str, settings: Settings, sandbox: Sandbox, clock: ManualClock, media_dir: Path, tmp_path: Path
) -> None:
    path, code = _refusal(case, media_dir, tmp_path / "outside")
    if case == "device":
        settings = settings.model_copy(update={"media_dirs": (media_dir, Path("/dev"))})
    async with make_client(settings, sandbox, clock) as client:
        text = await call_error(client, "upload_media", path=path)
    assert text.startswith(code), text
    assert "Next step" in text
    assert sandbox.ledger == []  # not one request: no workspace lookup, no upload session, no PUT


async def test_lowered_size_limit_refuses_before_any_request(
    settings: Settings, sandbox: Sandbox, clock: ManualClock, media_dir: Path
) -> None:
    small = settings.model_copy(update={"max_image_bytes": 100, "max_video_bytes": 1000})
    async with make_client(small, sandbox, clock) as client:
        for name in ("image.png", "video.mp4"):
            text = await call_error(client, "upload_media", path=str(media_dir / name))
            assert text.startswith("FILE_TOO_LARGE"), text
    assert sandbox.ledger == []


async def test_file_changed_between_check_and_upload(
    client: Client, sandbox: Sandbox, media_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = media.open_media

    def inspect_then_edit(*args: Any, **kwargs: Any) -> Any:
        checked = real(*args, **kwargs)
        with open(media_dir / "video.mp4", "ab") as fh:  # someone is still writing the file
            fh.write(b"\0" * 16)
        return checked

    monkeypatch.setattr(media, "open_media", inspect_then_edit)
    text = await call_error(client, "upload_media", path=str(media_dir / "video.mp4"))
    assert text.startswith("FILE_CHANGED"), text
    assert sandbox.ledger == []


async def test_file_changed_while_uploading_is_never_completed(tmp_path: Path) -> None:
    async with uploader_env(tmp_path) as env:
        path = padded_mp4(env.media / "clip.mp4", 4 * MiB)
        touched: list[int] = []

        async def edit_midway(sent: int, total: int) -> None:
            if 0 < sent < total and not touched:
                touched.append(sent)
                _overwrite(path, total - 100, b"changed")  # same size, new bytes in the padding

        with pytest.raises(UploadIncompleteError) as caught:
            await env.uploader.upload_file(path, progress=edit_midway)
        assert caught.value.code == "FILE_CHANGED"
        assert "nothing was sent" not in str(caught.value) and "1 PUT attempt(s) sent" in caught.value.message
        assert touched
        assert env.sb.requests("content_complete") == []  # never marked ready with bytes that changed
        assert [c.status for c in env.sb.contents.values()] == ["deleted"]  # the unfinished asset is gone


@pytest.mark.parametrize("version", ["v2", "v1"])
async def test_upload_failing_midway_says_what_was_sent_and_removes_the_unfinished_asset(
    tmp_path: Path, version: str
) -> None:
    """Issue 12.8: a session was opened and bytes were PUT, so the error says so (never "nothing was sent");
    v2 deletes the unfinished asset, v1 (no delete route) names it."""
    async with uploader_env(tmp_path, api_version=version) as env:
        path = padded_mp4(env.media / "clip.mp4", 3 * MiB)
        env.sb.inject("reset_put", route="storage_put", times=3, after_bytes=MiB + 5)
        with pytest.raises(UploadIncompleteError) as caught:
            await env.uploader.upload_file(path)
        err = caught.value
        [content_id] = env.sb.contents
        assert err.code == "UPLOAD_FAILED" and "nothing was sent" not in str(err)
        assert "opened 1 upload session(s) and 3 PUT attempt(s) sent" in err.message
        stored = sum(e.body_size or 0 for e in env.sb.requests("storage_put"))
        assert err.details["bytes_sent"] >= stored >= 3 * MiB  # what left this machine; storage kept part of it
        assert env.sb.requests("content_complete" if version == "v2" else "v1_content_complete") == []
        if version == "v2":
            assert env.sb.contents[content_id].status == "deleted"
            assert err.details == {
                "deleted_content_ids": [content_id],
                "unfinished_content_ids": [],
                **{"bytes_sent": err.details["bytes_sent"]},
            }
            assert f"{content_id} were deleted" in err.message
        else:
            assert env.sb.contents[content_id].status != "ready"
            assert err.details["unfinished_content_ids"] == [content_id]
            assert f"{content_id} remain on PostQued (this API version cannot delete them)" in err.message


async def test_failed_cleanup_names_the_asset_left_behind(tmp_path: Path) -> None:
    async with uploader_env(tmp_path) as env:
        path = padded_mp4(env.media / "clip.mp4", 1 * MiB)
        env.sb.inject("status", route="storage_put", status=403, times=1)
        env.sb.inject("status", route="content_delete", status=500, times=10)
        with pytest.raises(UploadIncompleteError) as caught:
            await env.uploader.upload_file(path)
        [content_id] = env.sb.contents
        assert caught.value.code == "UPLOAD_REFUSED" and caught.value.status == 403
        assert env.sb.requests("content_delete")
        assert caught.value.details["unfinished_content_ids"] == [content_id]
        assert f"{content_id} remain on PostQued;" in caught.value.message


async def test_upload_failing_midway_through_mcp_says_what_happened(
    client: Client, sandbox: Sandbox, media_dir: Path
) -> None:
    sandbox.inject("status", route="storage_put", status=500, times=3)
    text = await call_error(client, "upload_media", path=str(media_dir / "video.mp4"))
    [content_id] = sandbox.contents
    assert text.startswith("UPLOAD_FAILED") and "nothing was sent" not in text
    assert f"The unfinished asset(s) {content_id} were deleted" in text
    assert sandbox.contents[content_id].status == "deleted"


# --- progress through a real MCP client ----------------------------------------------------------


def check_progress(reports: list[tuple[float, float | None]], size: int) -> None:
    """Monotonic, constant total, ends at the total, and one report at each 5% boundary (within one read)."""
    values = [p for p, _ in reports]
    assert values, "no progress notifications arrived"
    assert all(t == size for _, t in reports), reports
    assert all(b > a for a, b in itertools.pairwise(values)), values
    assert values[-1] == size
    for k in range(1, 20):
        boundary = size * k / 20
        assert any(boundary <= v < boundary + CHUNK for v in values), (k, values)
    assert len(values) <= 2 + 20, values  # the clock stands still: only boundaries, the start and the end


async def test_progress_arrives_in_order_through_mcp(mcp: Client, sandbox: Sandbox, media_dir: Path) -> None:
    path = padded_mp4(media_dir / "big.mp4", 8 * MiB)
    reports: list[tuple[float, float | None]] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        reports.append((progress, total))

    result = await mcp.call_tool("upload_media", {"path": str(path)}, progress_callback=on_progress)
    assert not result.is_error, result.content
    check_progress(reports, 8 * MiB)
    assert result.structured_content is not None
    content = result.structured_content["content"]
    assert (content["width"], content["height"], content["duration_ms"]) == (320, 240, 2000)
    assert sandbox.storage_sha256(stored_key(sandbox, content["id"])) == sha256_of(path)


async def test_progress_throttle_boundaries_interval_and_end() -> None:
    """Unit rules on a manual clock: each 5% boundary, otherwise >= 100 ms apart, the end once, never back."""
    clock = ManualClock()
    reports: list[tuple[float, float]] = []  # (time, bytes)

    async def report(done: float, total: float | None, message: str | None) -> None:
        reports.append((clock.monotonic(), done))

    total = 10_000_000
    throttle = ProgressThrottle(report, clock=clock)
    for sent in range(0, total + 1, 10_000):  # 1000 small reads, 7 ms apart
        await throttle(sent, total)
        clock.advance(0.007)
    await throttle(total, total)  # a repeated end is not reported twice
    sent_values = [b for _, b in reports]
    assert sent_values[0] == 0 and sent_values[-1] == total and sent_values.count(total) == 1
    assert all(b > a for a, b in itertools.pairwise(sent_values))
    boundary_reports = set()
    for k in range(1, 21):
        first = next(b for b in sent_values if b >= total * k / 20)
        assert first < total * k / 20 + 10_000, k
        boundary_reports.add(first)
    for (t0, _), (t1, b1) in itertools.pairwise(reports):
        assert b1 in boundary_reports or t1 - t0 >= 0.1 - 1e-9, (t0, t1, b1)
    # 7 s of uploading: about 70 timed reports plus 20 boundaries, not 1000
    assert 60 <= len(reports) <= 100, len(reports)


async def test_progress_throttle_hits_exact_boundaries() -> None:
    """A 20 MiB file read in 1 MiB chunks ends every read exactly on a 5% boundary: each one is reported."""
    clock = ManualClock()
    seen: list[float] = []

    async def report(done: float, total: float | None, message: str | None) -> None:
        seen.append(done)

    throttle = ProgressThrottle(report, clock=clock)
    total = 20 * MiB
    for sent in range(0, total + 1, MiB):
        await throttle(sent, total)
    assert seen == [float(n * MiB) for n in range(21)]


async def test_progress_never_goes_back_after_a_restart() -> None:
    clock = ManualClock()
    seen: list[float] = []

    async def report(done: float, total: float | None, message: str | None) -> None:
        seen.append(done)

    throttle = ProgressThrottle(report, clock=clock)
    total = 10 * MiB
    for sent in (0, MiB, 2 * MiB, 3 * MiB, 0, MiB, 2 * MiB, 3 * MiB, 4 * MiB, 10 * MiB):
        await throttle(sent, total)
    assert seen == [0, MiB, 2 * MiB, 3 * MiB, 4 * MiB, 10 * MiB]


# --- faults that end with the right bytes --------------------------------------------------------


async def test_reset_mid_put_through_mcp_restarts_from_zero(mcp: Client, sandbox: Sandbox, media_dir: Path) -> None:
    path = padded_mp4(media_dir / "big.mp4", 8 * MiB)
    sandbox.inject("reset_put", route="storage_put", after_bytes=3 * MiB + 123)
    reports: list[tuple[float, float | None]] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        reports.append((progress, total))

    result = await mcp.call_tool("upload_media", {"path": str(path)}, progress_callback=on_progress)
    assert not result.is_error, result.content
    puts = sandbox.requests("storage_put")
    assert [p.faults for p in puts] == [["reset_put"], []]
    assert puts[0].dropped and puts[1].status == 200 and puts[1].body_size == 8 * MiB
    assert len(sandbox.requests("content_upload")) == 1  # the same URL, from byte 0
    assert result.structured_content is not None
    content_id = result.structured_content["content"]["id"]
    assert sandbox.storage_sha256(stored_key(sandbox, content_id)) == sha256_of(path)
    values = [p for p, _ in reports]
    assert all(b > a for a, b in itertools.pairwise(values)) and values[-1] == 8 * MiB


@pytest.mark.parametrize("mode", ["inprocess", "loopback"])
async def test_reset_mid_put_ends_with_the_source_bytes(tmp_path: Path, mode: str) -> None:
    async with uploader_env(tmp_path, mode) as env:
        path = padded_mp4(env.media / "clip.mp4", 6 * MiB)
        env.sb.inject("reset_put", route="storage_put", after_bytes=2 * MiB)
        outcome = await env.uploader.upload_file(path)
        assert outcome.put_attempts == 2 and outcome.bytes_sent == 6 * MiB
        assert len(env.clock.sleeps) == 1  # the client's RetryPolicy: one jittered wait before the repeat
        assert outcome.content.status == "ready"
        assert env.sb.storage_sha256(stored_key(env.sb, outcome.content.id)) == sha256_of(path) == outcome.sha256


@pytest.mark.parametrize("mode", ["inprocess", "loopback"])
async def test_expired_url_gets_one_fresh_session(tmp_path: Path, mode: str) -> None:
    async with uploader_env(tmp_path, mode) as env:
        path = padded_mp4(env.media / "clip.mp4", 3 * MiB)
        env.sb.inject("expire_upload_url", route="content_upload")
        outcome = await env.uploader.upload_file(path)
        assert [e.status for e in env.sb.requests("storage_put")] == [403, 200]
        assert len(env.sb.requests("content_upload")) == 2
        assert env.sb.storage_sha256(stored_key(env.sb, outcome.content.id)) == sha256_of(path)


async def test_expired_url_through_mcp(client: Client, sandbox: Sandbox, media_dir: Path) -> None:
    sandbox.inject("expire_upload_url", route="content_upload")
    up = await call(client, "upload_media", path=str(media_dir / "video.mp4"))
    assert [e.status for e in sandbox.requests("storage_put")] == [403, 200]
    assert sandbox.storage_sha256(stored_key(sandbox, up["content"]["id"])) == sha256_of(media_dir / "video.mp4")


async def test_expired_twice_is_a_clear_error(client: Client, sandbox: Sandbox, media_dir: Path) -> None:
    sandbox.inject("expire_upload_url", route="content_upload", times=2)
    text = await call_error(client, "upload_media", path=str(media_dir / "video.mp4"))
    assert text.startswith("UPLOAD_URL_EXPIRED") and "clock" in text
    assert len(sandbox.requests("content_upload")) == 2 and sandbox.requests("content_complete") == []


async def test_storage_5xx_is_retried_then_gives_up(tmp_path: Path) -> None:
    async with uploader_env(tmp_path) as env:
        path = padded_mp4(env.media / "clip.mp4", 2 * MiB)
        env.sb.inject("status", route="storage_put", status=503)
        outcome = await env.uploader.upload_file(path)
        assert outcome.put_attempts == 2
        assert env.sb.storage_sha256(stored_key(env.sb, outcome.content.id)) == sha256_of(path)

        env.sb.inject("status", route="storage_put", status=500, times=3)
        with pytest.raises(PostQuedError) as caught:
            await env.uploader.upload_file(path, force=True)
        assert caught.value.code == "UPLOAD_FAILED"
        assert [e.status for e in env.sb.requests("storage_put")][-3:] == [500, 500, 500]


async def test_hashing_runs_off_the_event_loop(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Hashing 1 GiB takes seconds; it must not stall the event loop (other requests, progress).

    The separate hash runs only when a duplicate is possible (an earlier upload of the same size): the
    second upload of the same file is the case that hashes first."""
    import postqued.uploads as uploads

    loop_thread = threading.get_ident()
    threads: list[int] = []
    real = uploads._sha256

    def spy(local: Any) -> str:
        threads.append(threading.get_ident())
        return real(local)

    monkeypatch.setattr(uploads, "_sha256", spy)
    async with uploader_env(tmp_path) as env:
        shutil.copy(FIXTURES / "video.mp4", env.media / "video.mp4")
        first = await env.uploader.upload_file(env.media / "video.mp4")
        assert threads == []  # nothing of this size was uploaded before: hashed while sending
        again = await env.uploader.upload_file(env.media / "video.mp4")
    assert again.deduplicated and again.sha256 == first.sha256
    assert threads and loop_thread not in threads


# --- v1 multipart images -------------------------------------------------------------------------


async def test_v1_image_goes_through_multipart(
    settings: Settings, sandbox: Sandbox, clock: ManualClock, media_dir: Path
) -> None:
    v1 = settings.model_copy(update={"api_version": "v1"})
    reports: list[tuple[float, float | None]] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        reports.append((progress, total))

    async with make_client(v1, sandbox, clock) as client:
        result = await client.call_tool(
            "upload_media", {"path": str(media_dir / "image.png")}, progress_callback=on_progress
        )
        assert not result.is_error, result.content
        assert result.structured_content is not None
        content = result.structured_content["content"]
        assert (content["mime_type"], content["width"], content["height"]) == ("image/png", 50, 30)
        assert upload_requests(sandbox) == ["v1_upload_image"]  # one multipart request, no presigned PUT
        assert sandbox.storage_sha256(stored_key(sandbox, content["id"])) == sha256_of(media_dir / "image.png")
        size = (media_dir / "image.png").stat().st_size
        assert reports[-1] == (size, size)

        video = await call(client, "upload_media", path=str(media_dir / "video.mp4"))  # videos: presigned v1
        assert upload_requests(sandbox)[1:] == ["v1_content_upload", "storage_put", "v1_content_complete"]
        assert sandbox.storage_sha256(stored_key(sandbox, video["content"]["id"])) == sha256_of(media_dir / "video.mp4")


# --- de-duplication ------------------------------------------------------------------------------


async def test_same_bytes_again_are_deduplicated(client: Client, sandbox: Sandbox, media_dir: Path) -> None:
    first = await call(client, "upload_media", path=str(media_dir / "video.mp4"))
    assert first["deduplicated"] is False and first["bytes_sent"] == first["content"]["size"]
    before = upload_requests(sandbox)

    again = await call(client, "upload_media", path=str(media_dir / "video.mp4"))
    assert again["deduplicated"] is True and again["bytes_sent"] == 0
    assert again["content"]["id"] == first["content"]["id"] and again["sha256"] == first["sha256"]
    shutil.copy(media_dir / "video.mp4", media_dir / "copy.mp4")  # same bytes, another name
    copy = await call(client, "upload_media", path=str(media_dir / "copy.mp4"))
    assert copy["deduplicated"] is True and copy["content"]["id"] == first["content"]["id"]
    assert upload_requests(sandbox) == before  # zero new upload requests

    forced = await call(client, "upload_media", path=str(media_dir / "video.mp4"), force=True)
    assert forced["deduplicated"] is False and forced["content"]["id"] != first["content"]["id"]
    assert upload_requests(sandbox) == before * 2


@pytest.mark.parametrize("version", ["v2", "v1"])
async def test_heic_photo_is_uploaded_as_jpeg_and_deduplicated_on_the_original(tmp_path: Path, version: str) -> None:
    """Issue 15.1: the iPhone's default photo format just works; the original stays as it was."""
    async with uploader_env(tmp_path, api_version=version) as env:
        path = env.media / "IMG_0001.heic"
        shutil.copy(FIXTURES / "photo.heic", path)
        original = path.read_bytes()
        first = await env.uploader.upload_file(path)
        assert first.converted_from == "image/heic" and not first.deduplicated
        assert first.sha256 == hashlib.sha256(original).hexdigest()  # the user's file, as de-duplication sees it
        asset = first.content
        assert (asset.mime_type, asset.filename, asset.width, asset.height) == ("image/jpeg", "IMG_0001.jpg", 48, 64)
        assert first.bytes_sent != len(original) and path.read_bytes() == original
        if version == "v2":
            assert env.sb.storage_sha256(stored_key(env.sb, asset.id)) != first.sha256  # the JPEG was stored
            again = await env.uploader.upload_file(path)
            assert again.deduplicated and again.content.id == asset.id and again.converted_from == "image/heic"


async def test_heic_through_mcp_reports_the_conversion(client: Client, media_dir: Path) -> None:
    shutil.copy(FIXTURES / "photo.heic", media_dir / "photo.heic")
    result = await call(client, "upload_media", path=str(media_dir / "photo.heic"))
    assert result["converted_from"] == "image/heic" and result["content"]["mime_type"] == "image/jpeg"
    plain = await call(client, "upload_media", path=str(media_dir / "image.png"))
    assert plain["converted_from"] is None


async def test_deleted_asset_is_uploaded_again(
    client: Client, sandbox: Sandbox, media_dir: Path, tmp_path: Path
) -> None:
    first = await call(client, "upload_media", path=str(media_dir / "image.jpg"))
    await call(client, "delete_content", content_id=first["content"]["id"])  # the tool forgets it
    second = await call(client, "upload_media", path=str(media_dir / "image.jpg"))
    assert second["deduplicated"] is False and second["content"]["id"] != first["content"]["id"]

    # deleted elsewhere (the PostQued app): the remembered id answers 404, so the bytes go up again
    sandbox.contents[second["content"]["id"]].status = "deleted"
    third = await call(client, "upload_media", path=str(media_dir / "image.jpg"))
    assert third["deduplicated"] is False and third["content"]["id"] != second["content"]["id"]
    assert len(sandbox.requests("content_upload")) == 3


# --- storage hygiene: no credential, no redirect, https only -------------------------------------


async def test_storage_never_receives_the_api_key(tmp_path: Path) -> None:
    def add_auth(body: dict[str, Any]) -> None:  # a session that asks for an Authorization header
        body["upload"]["headers"]["Authorization"] = f"Bearer {SANDBOX_API_KEY}"

    rewrite: list[Rewrite] = []

    def wrap(inner: httpx.AsyncBaseTransport) -> httpx.AsyncBaseTransport:
        rewrite.append(Rewrite(inner, session=add_auth))
        return rewrite[0]

    async with uploader_env(tmp_path, wrap=wrap) as env:
        shutil.copy(FIXTURES / "video.mp4", env.media / "video.mp4")
        shutil.copy(FIXTURES / "image.png", env.media / "image.png")
        for name in ("video.mp4", "image.png"):
            outcome = await env.uploader.upload_file(env.media / name)
            assert outcome.content.status == "ready"
        puts = env.sb.requests("storage_put")
        assert len(puts) == 2 and not any(p.has_auth for p in puts)
        assert all("authorization" not in r.headers for r in rewrite[0].storage_requests)
        assert all(e.has_auth for e in env.sb.ledger if e.route != "storage_put")


async def test_storage_redirect_is_not_followed(tmp_path: Path) -> None:
    rewrite: list[Rewrite] = []

    def redirect(request: httpx.Request) -> httpx.Response:
        return httpx.Response(307, headers={"Location": "http://sandbox.localhost/_storage/elsewhere"})

    def wrap(inner: httpx.AsyncBaseTransport) -> httpx.AsyncBaseTransport:
        rewrite.append(Rewrite(inner, storage=redirect))
        return rewrite[0]

    async with uploader_env(tmp_path, wrap=wrap) as env:
        shutil.copy(FIXTURES / "video.mp4", env.media / "video.mp4")
        with pytest.raises(PostQuedError) as caught:
            await env.uploader.upload_file(env.media / "video.mp4")
        assert caught.value.code == "UPLOAD_REFUSED" and caught.value.status == 307
        assert len(rewrite[0].storage_requests) == 1  # the Location was never requested
        assert env.sb.requests("content_complete") == []


def _uploader_for(base_url: str) -> Uploader:
    s = Settings.build(api_key=SecretStr(SANDBOX_API_KEY), base_url=base_url, state_dir=Path("unused"), media_dirs=())
    return Uploader(PostQuedClient(s), lambda: pytest.fail("no journal needed"), s)


@pytest.mark.parametrize(
    ("base_url", "storage_url", "allowed"),
    [
        ("https://api.postqued.com", "https://bucket.s3.amazonaws.com/k?X-Amz-Signature=x", True),
        ("https://api.postqued.com", "http://bucket.s3.amazonaws.com/k?X-Amz-Signature=x", False),
        ("https://api.postqued.com", "http://127.0.0.1:9000/k", False),  # https API: storage must be too
        ("https://127.0.0.1:8443", "http://127.0.0.1:9000/k", False),
        ("https://api.postqued.com", "ftp://bucket/k", False),
        ("http://127.0.0.1:8787", "http://127.0.0.1:8787/_storage/k", True),  # the sandbox on loopback
        ("http://localhost:8787", "https://bucket.example/k", True),
    ],
)
def test_storage_url_must_be_https_unless_the_api_is_loopback_http(
    base_url: str, storage_url: str, allowed: bool
) -> None:
    uploader = _uploader_for(base_url)
    if allowed:
        uploader._check_url(storage_url)
    else:
        with pytest.raises(PostQuedError) as caught:
            uploader._check_url(storage_url)
        assert caught.value.code == "INSECURE_UPLOAD_URL"
        assert "Signature" not in str(caught.value)


async def test_plain_http_storage_url_is_refused_before_sending(tmp_path: Path) -> None:
    def downgrade(body: dict[str, Any]) -> None:
        body["upload"]["url"] = body["upload"]["url"].replace("https://", "http://")

    async with uploader_env(
        tmp_path, base_url="https://sandbox.localhost", wrap=lambda inner: Rewrite(inner, session=downgrade)
    ) as env:
        shutil.copy(FIXTURES / "video.mp4", env.media / "video.mp4")
        with pytest.raises(PostQuedError) as caught:
            await env.uploader.upload_file(env.media / "video.mp4")
        assert caught.value.code == "INSECURE_UPLOAD_URL"
        assert env.sb.requests("storage_put") == []


async def test_https_api_uploads_over_https_storage(tmp_path: Path) -> None:
    async with uploader_env(tmp_path, base_url="https://sandbox.localhost") as env:
        shutil.copy(FIXTURES / "video.mp4", env.media / "video.mp4")
        outcome = await env.uploader.upload_file(env.media / "video.mp4")
        assert outcome.content.status == "ready"


def test_start_up_imports_no_media_or_sandbox_code() -> None:
    """Start-up imports no media, sandbox or HTTP-server code of ours (they load on first use)."""
    import subprocess
    import sys

    code = (
        "import sys\nfrom postqued_mcp.app import build_server\n"
        "from postqued.settings import Settings\n"
        "build_server(Settings.build(state_dir='unused', media_dirs=()))\n"
        "bad = [m for m in ('postqued.media', 'postqued.sandbox', 'postqued.doctor') if m in sys.modules]\n"
        "print(bad)\n"
    )
    root = Path(__file__).resolve().parents[1]
    out = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]", out.stdout

"""Local file -> PostQued content asset: checks, de-duplication, a streamed presigned PUT, completion.

Memory stays flat whatever the file size: the file is hashed and sent in 1 MiB reads. The PUT goes
through the storage client (no PostQued credential, no redirects) with an exact Content-Length; a
reset or a 5xx starts again from byte 0 (a PUT replaces the object) and an expired URL gets one fresh
upload session.

Inspecting and hashing run in a worker thread: hashing 1 GiB takes seconds, and the event loop must keep
serving other requests (and progress) meanwhile. ``postqued.media`` is imported on first use, not at
start-up.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO
from urllib.parse import urlsplit

import anyio.to_thread
import httpx

from postqued.client import PostQuedClient
from postqued.clock import Clock
from postqued.errors import (
    APIError,
    LocalError,
    NotFoundError,
    PostQuedError,
    TransportError,
    UploadIncompleteError,
)
from postqued.journal import Journal
from postqued.models import ContentAsset, UploadComplete, UploadSession
from postqued.settings import Settings
from postqued.text import clean_name

if TYPE_CHECKING:
    from postqued.media import Prepared

log = logging.getLogger("postqued.uploads")

CHUNK = 1024 * 1024

ProgressFn = Callable[[int, int], Awaitable[None]]


class ProgressThrottle:
    """Reports bytes sent at every 5% boundary, in between at most every 100 ms, and always at the end.

    Reports only ever move forward: a PUT that starts again from byte 0 after a reset is silent until it
    passes the last reported count (MCP progress must increase), and the end is reported once. ``step``
    is 1/n (boundaries are computed in integers, so exact multiples of 5% are never missed).
    """

    def __init__(
        self,
        report: Callable[[float, float | None, str | None], Awaitable[None]],
        *,
        clock: Clock,
        step: float = 0.05,
        min_interval: float = 0.1,
    ) -> None:
        self._report = report
        self._clock = clock
        self._steps = max(1, round(1 / step))
        self._min_interval = min_interval
        self._last_bytes = -1
        self._last_time = float("-inf")

    async def __call__(self, sent: int, total: int) -> None:
        if sent <= self._last_bytes:
            return
        now = self._clock.monotonic()
        first = self._last_bytes < 0
        crossed = total > 0 and sent * self._steps // total > max(self._last_bytes, 0) * self._steps // total
        due = now - self._last_time >= self._min_interval
        if first or sent >= total or crossed or due:
            self._last_bytes, self._last_time = sent, now
            await self._report(float(sent), float(total), f"uploaded {sent} of {total} bytes")


@dataclass(frozen=True)
class UploadOutcome:
    content: ContentAsset
    deduplicated: bool
    sha256: str  # of the user's file (the original of a converted photo)
    bytes_sent: int
    put_attempts: int
    converted_from: str | None = None  # e.g. "image/heic": a JPEG made from it was sent


@dataclass
class Uploader:
    client: PostQuedClient
    journal: Callable[[], Journal]
    settings: Settings
    _sessions: dict[str, UploadSession] = field(default_factory=dict)

    def remember_session(self, session: UploadSession) -> None:
        """Keep a raw session (start_content_upload) in memory only: its URL is a credential."""
        self._sessions[session.content_id] = session

    async def forget(self, content_id: str) -> None:
        self._sessions.pop(content_id, None)
        with contextlib.suppress(PostQuedError):
            await self.journal().forget_upload(content_id)

    async def upload_file(
        self,
        path: str | Path,
        *,
        alt_text: str | None = None,
        force: bool = False,
        workspace_id: str | None = None,
        progress: ProgressFn | None = None,
    ) -> UploadOutcome:
        from postqued.media import open_media

        check = functools.partial(
            open_media,
            path,
            self.settings.media_dirs,
            max_video_bytes=self.settings.max_video_bytes,
            max_image_bytes=self.settings.max_image_bytes,
        )
        # One descriptor, opened through the path policy, is probed, hashed and sent: the path is never
        # opened again, so a folder swapped for a link meanwhile changes nothing that is read.
        with await anyio.to_thread.run_sync(check) as ready:
            journal = self.journal()
            if force or not journal.shares_uploads:
                return await self._upload_prepared(ready, alt_text, force, workspace_id, progress)
            # Replicas share the journal: hash first and hold a claim on these bytes, so a replica uploading
            # the same file at the same moment waits, then finds this upload instead of making a second one.
            sha256 = ready.original_sha256
            if sha256 is None:
                sha256 = await anyio.to_thread.run_sync(_sha256, ready.handle)
            ws_key = await self.client.resolve_workspace(workspace_id) or "default"
            async with contextlib.AsyncExitStack() as claimed:
                with contextlib.suppress(PostQuedError):  # no claim (database busy or down): upload anyway
                    await claimed.enter_async_context(journal.upload_claim(ws_key, sha256, ready.local.size))
                return await self._upload_prepared(ready, alt_text, force, workspace_id, progress, sha256)

    async def _upload_prepared(
        self,
        ready: Prepared,
        alt_text: str | None,
        force: bool,
        workspace_id: str | None,
        progress: ProgressFn | None,
        hashed: str | None = None,
    ) -> UploadOutcome:
        ready.verify_unchanged()  # cheap, and before any request: a file still being written is refused now
        ws = await self.client.resolve_workspace(workspace_id)
        ws_key = ws or "default"
        # De-duplication is keyed on the user's file (the original of a converted photo). Hash first only
        # when a duplicate is possible (an earlier upload of this very size that the API can still be asked
        # about); otherwise the hash is taken from the bytes as they are sent: one read, not two.
        size, sha256 = ready.local.size, ready.original_sha256 or hashed
        if not force and "content_get" in self.client.routes and await self._seen_size(ws_key, size):
            if sha256 is None:
                sha256 = await anyio.to_thread.run_sync(_sha256, ready.handle)
            if (existing := await self._existing(ws_key, sha256, size, ws)) is not None:
                if progress is not None:
                    await progress(ready.info.size, ready.info.size)
                return UploadOutcome(existing, True, sha256, 0, 0, ready.converted_from)
        filename = clean_name(ready.filename) or "upload"  # no control or bidi characters leave the disk
        if self.client.api_version == "v1" and ready.info.media_type == "image":
            content, sent_sha256 = await self._v1_image(ready, filename, progress)
            attempts = 1
        else:
            content, attempts, sent_sha256 = await self._presigned(ready, filename, ws, progress)
        sha256 = ready.original_sha256 or sent_sha256
        if alt_text and "content_update" in self.client.routes:
            content = await self.client.update_content(content.id, alt=alt_text, workspace_id=ws)
        try:
            await self.journal().remember_upload(ws_key, sha256, size, content.id)
        except PostQuedError as exc:  # de-duplication is a convenience; the upload itself succeeded
            log.warning("could not record upload for de-duplication: %s", exc.code)
        return UploadOutcome(content, False, sha256, ready.info.size, attempts, ready.converted_from)

    async def _seen_size(self, ws_key: str, size: int) -> bool:
        try:
            return await self.journal().has_upload_of_size(ws_key, size)
        except PostQuedError:
            return False

    async def _existing(self, ws_key: str, sha256: str, size: int, ws: str | None) -> ContentAsset | None:
        try:
            content_id = await self.journal().lookup_upload(ws_key, sha256, size)
        except PostQuedError:
            return None
        if content_id is None or "content_get" not in self.client.routes:
            return None
        try:
            asset = await self.client.get_content(content_id, workspace_id=ws)
        except NotFoundError:
            await self.forget(content_id)
            return None
        if asset.status not in (None, "ready"):
            await self.forget(content_id)
            return None
        return asset

    async def _presigned(
        self,
        ready: Prepared,
        filename: str,
        ws: str | None,
        progress: ProgressFn | None,
    ) -> tuple[ContentAsset, int, str]:
        """Start, PUT (again from byte 0 when needed), complete: (asset, PUT attempts, sha256 of the bytes sent).

        A failure once a session is open says what was sent and deletes the unfinished asset (or names it).
        """
        sent = _Sent()
        try:
            return await self._start_put_complete(ready, filename, ws, progress, sent)
        except PostQuedError as exc:
            if not sent.content_ids:
                raise
            raise await self._abandon(exc, sent, ready.info.size, ws) from exc

    async def _abandon(self, cause: PostQuedError, sent: _Sent, size: int, ws: str | None) -> UploadIncompleteError:
        """Delete the unfinished assets where the API can (v2), and the error that says exactly what happened."""
        deleted: list[str] = []
        left: list[str] = []
        for content_id in sent.content_ids:
            await self.forget(content_id)
            if "content_delete" not in self.client.routes:
                left.append(content_id)
                continue
            try:
                await self.client.delete_content(content_id, workspace_id=ws)
            except NotFoundError:
                deleted.append(content_id)  # already gone
            except PostQuedError as exc:
                log.warning("could not delete unfinished upload %s: %s", content_id, exc.code)
                left.append(content_id)
            else:
                deleted.append(content_id)
        what = (
            f"The upload had started: PostQued opened {len(sent.content_ids)} upload session(s) and "
            f"{sent.puts} PUT attempt(s) sent {sent.bytes} bytes to storage (the file has {size}); the asset "
            "was never completed, so it cannot be published."
        )
        if deleted:
            what += f" The unfinished asset(s) {', '.join(deleted)} were deleted."
        if left:
            why = "" if "content_delete" in self.client.routes else " (this API version cannot delete them)"
            what += (
                f" The unfinished asset(s) {', '.join(left)} remain on PostQued{why}; remove them in the PostQued "
                "app if they appear there."
            )
        return UploadIncompleteError(
            f"{cause.message} {what}",
            code=cause.code,
            status=cause.status,
            retryable=cause.retryable,
            next_step=cause.next_step,
            details={"deleted_content_ids": deleted, "unfinished_content_ids": left, "bytes_sent": sent.bytes},
        )

    async def _start_put_complete(
        self,
        ready: Prepared,
        filename: str,
        ws: str | None,
        progress: ProgressFn | None,
        sent: _Sent,
    ) -> tuple[ContentAsset, int, str]:
        start = functools.partial(self.client.start_upload, filename, ready.info.mime_type, ready.info.size)
        session = await start(workspace_id=ws)
        sent.content_ids.append(session.content_id)
        attempts = 0
        renewed = False
        while True:
            self._check_url(session.url)
            attempts += 1
            try:
                sha256 = await self._put(session, ready, progress, sent)
                break
            except _Expired:
                if renewed:
                    raise APIError(
                        "The storage URL was refused as expired twice.",
                        code="UPLOAD_URL_EXPIRED",
                        status=403,
                        next_step="Check this machine's clock, then call upload_media again.",
                    ) from None
                renewed = True
                session = await start(workspace_id=ws)
                sent.content_ids.append(session.content_id)
            except _Retryable as exc:
                if attempts > self.client.retry.max_retries:  # the client's one retry policy
                    raise TransportError(
                        f"The upload to storage failed {attempts} times ({exc}).",
                        code="UPLOAD_FAILED",
                        next_step="Check the network and call upload_media again; nothing was published.",
                    ) from None
                wait = self.client.retry.backoff(attempts - 1)
                log.info("upload attempt %d failed (%s); from byte 0 again in %.2fs", attempts, exc, wait)
                await self.client.clock.sleep(wait)
        ready.verify_unchanged()
        content = await self.client.complete_upload(
            UploadComplete(
                content_id=session.content_id,
                key=session.key,
                filename=filename,
                content_type=ready.info.mime_type,
                size=ready.info.size,
                width=ready.info.width,
                height=ready.info.height,
                duration_ms=ready.info.duration_ms,
                workspace_id=ws,
            )
        )
        return content, attempts, sha256

    def _check_url(self, url: str) -> None:
        scheme = urlsplit(url).scheme
        if scheme != "https" and not (scheme == "http" and self.settings.allows_plain_http_storage):
            raise APIError(
                "PostQued returned a storage URL that is not https; refusing to send the file over it.",
                code="INSECURE_UPLOAD_URL",
                next_step="Report this to PostQued support; nothing was uploaded.",
            )

    async def _put(
        self,
        session: UploadSession,
        ready: Prepared,
        progress: ProgressFn | None,
        sent: _Sent,
    ) -> str:
        """One PUT of the whole file; the sha256 of exactly the bytes sent."""
        headers = {k: v for k, v in session.headers.items() if k.lower() not in ("authorization", "content-length")}
        headers.setdefault("Content-Type", ready.info.mime_type)
        headers["Content-Length"] = str(ready.info.size)
        digest = hashlib.sha256()
        sent.puts += 1
        try:
            response = await self.client.storage.request(
                session.method or "PUT",
                session.url,
                content=_chunks(ready.handle, ready.info.size, progress, digest, sent),
                headers=headers,
            )
        except httpx.HTTPError as exc:
            raise _Retryable(type(exc).__name__) from None
        if response.status_code < 300:
            return digest.hexdigest()
        body = response.text[:200]
        if response.status_code == 403 and ("expire" in body.lower() or "request has expired" in body.lower()):
            raise _Expired()
        if response.status_code >= 500 or response.status_code == 408:
            raise _Retryable(f"HTTP {response.status_code}")
        raise APIError(
            f"Storage refused the upload: HTTP {response.status_code}.",
            code="UPLOAD_REFUSED",
            status=response.status_code,
            next_step="Call upload_media again; if it repeats, report it to PostQued support.",
        )

    async def _v1_image(self, ready: Prepared, filename: str, progress: ProgressFn | None) -> tuple[ContentAsset, str]:
        ready.handle.seek(0)
        data = ready.handle.read(ready.info.size + 1)
        if len(data) != ready.info.size:
            raise LocalError("The file changed while it was read.", code="FILE_CHANGED")
        content = await self.client.upload_image_v1(filename, ready.info.mime_type, data)
        if progress is not None:
            await progress(ready.info.size, ready.info.size)
        return content, hashlib.sha256(data).hexdigest()


@dataclass
class _Sent:
    """What one upload has done on PostQued so far: sessions opened, bytes handed to storage."""

    content_ids: list[str] = field(default_factory=list)
    bytes: int = 0
    puts: int = 0


class _Expired(Exception):
    pass


class _Retryable(Exception):
    pass


def _sha256(handle: BinaryIO) -> str:
    digest = hashlib.sha256()
    handle.seek(0)
    while chunk := handle.read(CHUNK):
        digest.update(chunk)
    return digest.hexdigest()


async def _chunks(
    handle: BinaryIO, total: int, progress: ProgressFn | None, digest: hashlib._Hash, tally: _Sent
) -> AsyncIterator[bytes]:
    handle.seek(0)
    sent = 0
    if progress is not None:
        await progress(0, total)
    while sent < total:
        chunk = handle.read(min(CHUNK, total - sent))
        if not chunk:
            raise LocalError(
                "The file shrank while it was uploaded.",
                code="FILE_CHANGED",
                next_step="Wait until the file is completely written, then call upload_media again.",
            )
        sent += len(chunk)
        tally.bytes += len(chunk)
        digest.update(chunk)
        yield chunk
        if progress is not None:
            await progress(sent, total)

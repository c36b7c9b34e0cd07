"""One ``Uploader.upload_file`` in a process of its own, so its peak RSS is the uploader's alone.

``python -m bench.upload_worker BASE_URL FILE STATE_DIR`` uploads FILE to the sandbox at BASE_URL (loopback)
and prints one JSON line: wall times (whole upload, hashing, PUT), the longest event-loop stall seen by a
5 ms ticker meanwhile, VmHWM before and after the upload, and the outcome (content id, sha256).
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from pathlib import Path
from typing import Any, BinaryIO

from pydantic import SecretStr

import postqued.uploads as uploads
from bench.common import peak_rss
from postqued.client import PostQuedClient
from postqued.journal import SqliteJournal
from postqued.sandbox import SANDBOX_API_KEY
from postqued.settings import Settings


async def main(base_url: str, path: Path, state_dir: Path) -> dict[str, Any]:
    timings: dict[str, float] = {"hash": 0.0, "put": 0.0}
    real_sha, real_put = uploads._sha256, uploads.Uploader._put

    def timed_sha(handle: BinaryIO) -> str:
        start = time.perf_counter()
        try:
            return real_sha(handle)
        finally:
            timings["hash"] += time.perf_counter() - start

    async def timed_put(self: uploads.Uploader, *args: Any, **kwargs: Any) -> str:
        start = time.perf_counter()
        try:
            return await real_put(self, *args, **kwargs)
        finally:
            timings["put"] += time.perf_counter() - start

    uploads._sha256 = timed_sha
    uploads.Uploader._put = timed_put  # type: ignore[method-assign]

    settings = Settings.build(
        api_key=SecretStr(SANDBOX_API_KEY),
        base_url=base_url,
        state_dir=state_dir,
        media_dirs=(path.parent,),
        timeout=300.0,
    )
    stall = 0.0
    running = True

    async def ticker() -> None:
        nonlocal stall
        while running:
            start = time.perf_counter()
            await asyncio.sleep(0.005)
            stall = max(stall, time.perf_counter() - start - 0.005)

    hwm_before = peak_rss()
    with SqliteJournal(state_dir / "journal.sqlite3") as journal:
        async with PostQuedClient(settings) as client:
            uploader = uploads.Uploader(client, lambda: journal, settings)
            await client.resolve_workspace(None)  # one API read, outside the timed part
            tick = asyncio.create_task(ticker())
            await asyncio.sleep(0.02)  # the ticker is waiting on its timer before the upload starts
            start = time.perf_counter()
            outcome = await uploader.upload_file(path)  # fresh journal: no upload of this size, hashed while sent
            seconds = time.perf_counter() - start
            if outcome.deduplicated:
                raise RuntimeError("the upload was de-duplicated: nothing was measured")
            running = False
            await tick
    hwm = peak_rss()
    return {
        "seconds": seconds,
        "hash_seconds": timings["hash"],
        "put_seconds": timings["put"],
        "max_stall": stall,
        "hwm_before": hwm_before,
        "hwm": hwm,
        "content_id": outcome.content.id,
        "sha256": outcome.sha256,
        "bytes": outcome.bytes_sent,
    }


if __name__ == "__main__":
    result = asyncio.run(main(sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3])))
    print(json.dumps(result))

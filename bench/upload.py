"""Upload: a big file to the sandbox storage over loopback, next to ``curl -T`` to the same storage.

The sandbox runs in this process on loopback (uvicorn in a thread, rate limits off), its storage in
memory (/dev/shm) when there is room, so that flushing gigabytes to disk slows neither uploader at random
moments (the receiver still hashes every byte, as PostQued's storage would checksum it). The file is the MP4
fixture followed by one large ``free`` box, sparse on disk, so creating it costs nothing and both
uploaders read the same bytes from the page cache. Each of our uploads runs in a fresh process
(``bench/upload_worker.py``) that reports its wall time, the time spent hashing and in the PUT, the
longest event-loop stall, and its peak RSS (VmHWM). curl gets a fresh presigned URL from the API each
run and sends with ``-T`` (``Expect:`` off, so it does not wait for a 100-continue). Stored objects are
deleted after every run; the file lives in a temporary folder removed at the end.

The end-to-end figure includes what ``upload_media`` does besides moving bytes (path and type checks,
one sha256 pass for de-duplication, the session and completion calls); the PUT-only figure is the part
comparable to curl.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from bench.common import ROOT, Config, Row, Stats, mb, ratio

MiB = 1024 * 1024
GOAL_RATIO = 0.8
GOAL_RSS = 80 * 1000 * 1000
CURL_HEADERS = ("-H", "Content-Type: video/mp4", "-H", "Expect:")  # no 100-continue round trip


def make_file(path: Path, size: int) -> Path:
    """The video fixture, then a top-level ``free`` box up to ``size`` bytes (a hole in a sparse file)."""
    import struct

    head = (ROOT / "tests" / "fixtures" / "media" / "video.mp4").read_bytes()
    pad = size - len(head)
    with open(path, "wb") as fh:
        fh.write(head)
        fh.write(struct.pack(">I4s", pad, b"free") if pad < 2**32 else struct.pack(">I4sQ", 1, b"free", pad))
        fh.truncate(size)
    return path


def _drop_objects(sb: Any) -> None:
    for obj in list(sb.storage.objects.values()):
        obj.path.unlink(missing_ok=True)
    sb.storage.objects.clear()


def ours_once(base_url: str, path: Path, state: Path, sb: Any) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, "-m", "bench.upload_worker", base_url, str(path), str(state)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=900,
    )
    if out.returncode != 0:
        raise RuntimeError(f"upload worker failed:\n{out.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    stored = sb.storage_sha256(sb.contents[result["content_id"]].key)
    if stored != result["sha256"]:
        raise RuntimeError("the stored object's sha256 differs from the source's")
    _drop_objects(sb)
    return result


def curl_once(base_url: str, path: Path, sb: Any) -> float:
    import httpx

    from postqued.sandbox import SANDBOX_API_KEY

    size = path.stat().st_size
    answer = httpx.post(
        f"{base_url}/v2/content/upload",
        json={"filename": path.name, "contentType": "video/mp4", "fileSize": size, "workspaceId": sb.workspace_id},
        headers={"Authorization": f"Bearer {SANDBOX_API_KEY}"},
        timeout=30,
    )
    answer.raise_for_status()
    url = answer.json()["upload"]["url"]
    out = subprocess.run(
        [*("curl", "-sS", "-o", os.devnull, "-w", "%{http_code} %{time_total}", "-T", str(path)), *CURL_HEADERS, url],
        capture_output=True,
        text=True,
        timeout=900,
    )
    code, seconds = out.stdout.split()
    if out.returncode != 0 or code != "200":
        raise RuntimeError(f"curl failed: {code} {out.stderr}")
    if sb.storage_size(answer.json()["upload"]["key"]) != size:
        raise RuntimeError("curl's object has the wrong size")
    _drop_objects(sb)
    return float(seconds)


@contextmanager
def _sandbox_in_memory(size: int) -> Iterator[Any]:
    """The sandbox, its storage in /dev/shm when that has room: disk writeback then slows neither uploader."""
    from postqued.sandbox import Sandbox

    shm = Path("/dev/shm")
    previous = tempfile.tempdir
    try:
        if shm.is_dir() and os.access(shm, os.W_OK) and shutil.disk_usage(shm).free > 3 * size:
            tempfile.tempdir = str(shm)
        sb = Sandbox(rate_limits=None)
    finally:
        tempfile.tempdir = previous
    with sb:
        yield sb


def run(config: Config) -> list[Row]:
    from postqued.sandbox import run_in_thread

    big = 16 * MiB if config.short else 1024 * MiB
    small = 4 * MiB if config.short else 10 * MiB
    runs = config.runs
    has_curl = shutil.which("curl") is not None  # without it the figures are printed with no baseline
    with tempfile.TemporaryDirectory(prefix="postqued-bench-") as tmp, _sandbox_in_memory(big) as sb:
        folder = Path(tmp)
        (folder / "media").mkdir()
        big_file = make_file(folder / "media" / "big.mp4", big)
        small_file = make_file(folder / "media" / "small.mp4", small)
        for warm in (big_file, small_file):  # the first read of a sparse file is slow: both read from the cache
            with open(warm, "rb") as fh:
                while fh.read(8 * MiB):
                    pass
        with run_in_thread(sb) as base_url:
            ours_once(base_url, small_file, folder / "s-warm", sb)  # warm-up: bytecode, connections
            if has_curl:
                curl_once(base_url, small_file, sb)
            mine, theirs = [], []
            for i in range(runs):
                mine.append(ours_once(base_url, big_file, folder / f"s-big-{i}", sb))
                if has_curl:
                    theirs.append(curl_once(base_url, big_file, sb))
            smalls = [ours_once(base_url, small_file, folder / f"s-small-{i}", sb) for i in range(max(3, runs // 3))]
    total = Stats.of(r["seconds"] for r in mine)
    put = Stats.of(r["put_seconds"] for r in mine)
    hashing = Stats.of(r["hash_seconds"] for r in mine)
    curl = Stats.of(theirs) if theirs else None
    rss_big = Stats.of(r["hwm"] for r in mine)
    rss_small = Stats.of(r["hwm"] for r in smalls)
    rss_idle = Stats.of(r["hwm_before"] for r in mine)
    stall = Stats.of(r["max_stall"] for r in mine)

    def speed(s: Stats) -> str:
        lo, hi = s.quartiles()
        return f"{big / s.median / 1e6:.0f} MB/s [{big / hi / 1e6:.0f}-{big / lo / 1e6:.0f}]"

    label = f"{big // MiB} MiB" if big < 1024 * MiB else f"{big // (1024 * MiB)} GiB"
    curl_text = f"curl -T: {speed(curl)}" if curl else "curl not installed: no baseline"
    growth = rss_big.median - rss_small.median

    def versus(s: Stats) -> tuple[str, bool | None]:
        if curl is None:
            return "n/a", None
        return ratio(curl.median, s.median), curl.median / s.median >= GOAL_RATIO

    (total_ratio, total_met), (put_ratio, put_met) = versus(total), versus(put)
    return [
        Row(
            figure=f"Upload {label} over loopback, end to end (checks + sha256 + session + PUT + complete)",
            value=speed(total),
            baseline=curl_text,
            ratio=total_ratio,
            goal=f">= {GOAL_RATIO}x curl",
            met=total_met,
            notes=[
                f"upload {label}: sha256 pass {hashing.show('s', 1.0, 2)} of the end-to-end {total.show('s', 1.0, 2)}",
                f"upload {label}: {runs} runs each, alternating with curl, after one warm-up each",
            ],
        ),
        Row(
            figure=f"Upload {label} over loopback, PUT only",
            value=speed(put),
            baseline=curl_text,
            ratio=put_ratio,
            goal=f">= {GOAL_RATIO}x curl",
            met=put_met,
        ),
        Row(
            figure=f"Upload peak RSS (VmHWM of the uploading process), {label} vs {small // MiB} MiB",
            value=f"{mb(rss_big.median)} ({label}), {mb(rss_small.median)} ({small // MiB} MiB)",
            baseline=f"same process before uploading: {mb(rss_idle.median)}",
            ratio=ratio(rss_big.median, rss_idle.median),
            goal="< 80 MB, flat",
            met=rss_big.median < GOAL_RSS and growth < 5 * 1000 * 1000,
            notes=[f"upload RSS growth from {small // MiB} MiB to {label}: {growth / 1e6:+.1f} MB"],
        ),
        Row(
            figure=f"Longest event-loop stall during the {label} upload (5 ms ticker)",
            value=stall.show(),
            baseline="-",
            ratio="-",
            goal="< 100 ms (ours: progress and other calls keep flowing)",
            met=stall.median < 0.1,
        ),
    ]

"""Probing a large fragmented MP4: the prober's time, reads and bytes next to a plain sequential read.

The file is written at bench time: the ftyp and moov of the real ffmpeg fixture ``fragmented.mp4``
(160x90, an empty moov, timescale 10240) followed by many moof + mdat fragments whose media data is a
hole in a sparse file, optionally with the 'mfra' index ffmpeg writes at the end. The baseline is a
sequential read of the same file in 64 KiB reads, the way the old prober pulled a 64 KiB buffer for every
box header it visited.
"""

from __future__ import annotations

import functools
import io
import struct
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.common import ROOT, Config, Row, Stats, ratio, timed

FIXTURE = ROOT / "tests" / "fixtures" / "media" / "fragmented.mp4"
TIMESCALE = 10240  # the fixture's video media timescale
SAMPLE_TICKS = 1024  # 0.1 s per sample at 10 fps


def _box(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I4s", 8 + len(payload), kind) + payload


def _full(kind: bytes, version: int, flags: int, payload: bytes) -> bytes:
    return _box(kind, struct.pack(">I", (version << 24) | flags) + payload)


def _moof(sequence: int, decode_time: int, samples: int, sample_bytes: int) -> bytes:
    tfhd = _full(b"tfhd", 0, 0x020008, struct.pack(">II", 1, SAMPLE_TICKS))  # track 1, default duration
    tfdt = _full(b"tfdt", 1, 0, struct.pack(">Q", decode_time))
    trun_size = 8 + 4 + 4 + 4 + 4 * samples
    data_offset = 8 + 16 + 8 + len(tfhd) + len(tfdt) + trun_size + 8  # moof + mfhd + traf, then mdat header
    trun = _full(
        b"trun", 0, 0x000201, struct.pack(">Ii", samples, data_offset) + struct.pack(">I", sample_bytes) * samples
    )
    traf = _box(b"traf", tfhd + tfdt + trun)
    return _box(b"moof", _full(b"mfhd", 0, 0, struct.pack(">I", sequence)) + traf)


def make_fragmented_mp4(
    path: Path, fragments: int, fragment_bytes: int, *, samples: int = 1, index: bool = False
) -> int:
    """Write the file; returns its duration in milliseconds (``fragments * samples`` samples of 0.1 s)."""
    data = FIXTURE.read_bytes()
    pos, head = 0, b""
    while pos < len(data):
        size, kind = struct.unpack_from(">I4s", data, pos)
        if kind in (b"ftyp", b"moov"):
            head += data[pos : pos + size]
        pos += size
    entries: list[tuple[int, int]] = []
    with open(path, "wb") as fh:
        fh.write(head)
        for i in range(fragments):
            entries.append((i * samples * SAMPLE_TICKS, fh.tell()))
            fh.write(_moof(i + 1, i * samples * SAMPLE_TICKS, samples, fragment_bytes // samples))
            fh.write(struct.pack(">I4s", 8 + fragment_bytes, b"mdat"))
            fh.seek(fragment_bytes, io.SEEK_CUR)  # a hole: no disk, no time
        if index:
            table = b"".join(struct.pack(">QQBBB", t, o, 1, 1, 1) for t, o in entries)
            tfra = _full(b"tfra", 1, 0, struct.pack(">III", 1, 0, len(entries)) + table)
            mfro = _full(b"mfro", 0, 0, struct.pack(">I", 8 + len(tfra) + 16))
            fh.write(_box(b"mfra", tfra + mfro))
        else:
            fh.truncate(fh.tell())
    return fragments * samples * SAMPLE_TICKS * 1000 // TIMESCALE


class CountingFile(io.FileIO):
    """A raw file that counts its reads and the bytes they returned."""

    def __init__(self, path: Path) -> None:
        super().__init__(path, "rb")
        self.reads = 0
        self.bytes = 0

    def read(self, size: int | None = -1, /) -> bytes:
        data = super().read(size)
        self.reads += 1
        self.bytes += len(data or b"")
        return data or b""


def _probe_once(path: Path) -> tuple[float, CountingFile, Any]:
    from postqued.media import check_path, probe

    local = check_path(path, [path.parent])
    with CountingFile(path) as handle:
        start = time.perf_counter()
        info = probe(local, "video/mp4", handle)
        return time.perf_counter() - start, handle, info


def _read_all(path: Path) -> None:
    with open(path, "rb", buffering=0) as fh:
        while fh.read(64 * 1024):
            pass


def run(config: Config) -> list[Row]:
    fragments = 400 if config.short else 3850
    fragment_bytes = 64 * 1024 if config.short else 256 * 1024  # full: ~1 GB, 3,850 fragments like issue 15
    rows: list[Row] = []
    with tempfile.TemporaryDirectory() as tmp:
        for index in (False, True):
            path = Path(tmp) / f"fragmented-{'index' if index else 'plain'}.mp4"
            duration = make_fragmented_mp4(path, fragments, fragment_bytes, index=index)
            size = path.stat().st_size
            samples, counts = [], None
            for _ in range(config.runs):
                seconds, handle, info = _probe_once(path)
                assert info.duration_ms == duration, (info.duration_ms, duration)
                samples.append(seconds)
                counts = (handle.reads, handle.bytes)
            base = Stats.of(timed(functools.partial(_read_all, path)) for _ in range(config.runs))
            probe_stats = Stats.of(samples)
            assert counts is not None
            rows.append(
                Row(
                    figure=f"Probe: fragmented MP4, {fragments} fragments, {'with' if index else 'no'} mfra index",
                    value=f"{probe_stats.show()}; {counts[0]} reads, {counts[1]} bytes of {size}",
                    baseline=f"sequential 64 KiB read of the file: {base.show()}",
                    ratio=ratio(probe_stats.median, base.median),
                    goal="reads headers only (< 1 MiB read)",
                    met=counts[1] < 1024 * 1024,
                )
            )
    return rows

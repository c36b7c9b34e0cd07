"""ISO BMFF (MP4, MOV): displayed size, rotation and duration from the box headers."""

from __future__ import annotations

import math
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Final, Literal, NamedTuple

from postqued.media.reader import Dims, Malformed, Reader, ticks_to_ms

# ---- ISO BMFF (MP4, MOV) -------------------------------------------------------------------------

_MAX_TOP_BOXES: Final = 1_000_000  # fragmented MP4: a moof + mdat pair per fragment
_MAX_CHILD_BOXES: Final = 10_000
_LEAF_CAP: Final = 256  # bytes of mvhd/tkhd/mdhd/hdlr/mehd/stsd we ever need


class _Box(NamedTuple):
    type: bytes
    start: int  # payload start
    end: int  # box end


def _boxes(r: Reader, start: int, end: int, *, top: bool) -> Iterator[_Box]:
    pos, count = start, 0
    while pos < end:
        count += 1
        if count > (_MAX_TOP_BOXES if top else _MAX_CHILD_BOXES):
            raise Malformed("too many boxes")
        if end - pos < 8:
            if top and r.read_at(pos, end - pos).strip(b"\x00"):
                raise Malformed("the file ends in the middle of a box header (truncated)")
            return  # a few zero bytes of padding (QuickTime writes 4-byte terminators)
        size, typ = struct.unpack(">I4s", r.read_at(pos, 8))
        header = 8
        if size == 1:
            if end - pos < 16:
                raise Malformed("the file ends in the middle of a box header (truncated)")
            size = int.from_bytes(r.read_at(pos + 8, 8), "big")
            header = 16
        elif size == 0:
            size = end - pos  # to the end of the file (or of the parent)
        if size < header:
            raise Malformed("a box has an impossible size")
        if pos + size > end:
            raise Malformed(
                "a box extends past the end of the file (truncated)" if top else "a box extends past its parent"
            )
        yield _Box(typ, pos + header, pos + size)
        pos += size


def _leaf(r: Reader, box: _Box, need: int) -> bytes:
    """The start of a box the caller matched by type (so its type is one of ours, safe to name)."""
    data = r.read_at(box.start, min(box.end - box.start, _LEAF_CAP))
    if len(data) < need:
        raise Malformed(f"the {box.type.decode('latin-1')!r} box is too short")
    return data


def _full_box_times(data: bytes, what: str) -> tuple[int, int, bool]:
    """(timescale, duration, duration_unknown) from an mvhd/mdhd payload."""
    if data[0] == 1:
        if len(data) < 32:
            raise Malformed(f"{what} is too short")
        timescale, duration = struct.unpack_from(">IQ", data, 20)
        return timescale, duration, duration == 0xFFFF_FFFF_FFFF_FFFF
    if data[0] != 0:
        raise Malformed(f"{what} has an unknown version")
    timescale, duration = struct.unpack_from(">II", data, 12)
    return timescale, duration, duration == 0xFFFF_FFFF


@dataclass
class _Track:
    track_id: int = 0
    handler: bytes = b""
    enabled: bool = True
    width: int = 0
    height: int = 0
    rotation: Literal[0, 90, 180, 270] = 0
    tkhd_duration: int = 0
    media_timescale: int = 0
    media_duration: int = 0
    coded_width: int = 0
    coded_height: int = 0


def _rotation(a: int, b: int) -> Literal[0, 90, 180, 270]:
    """Clockwise rotation of a display matrix whose first row is (a, b), snapped to a quarter turn.

    The same reading as ffmpeg's ``av_display_rotation_get`` (which reports it counter-clockwise, so
    negated); a mirrored matrix reads as the rotation of its first row, which never changes which side
    is longer.
    """
    if a == 0 and b == 0:
        return 0
    quarter = round(math.degrees(math.atan2(b, a)) / 90) % 4
    return (0, 90, 180, 270)[quarter]


def _parse_trak(r: Reader, trak: _Box) -> _Track:
    track = _Track()
    for box in _boxes(r, trak.start, trak.end, top=False):
        if box.type == b"tkhd":
            data = _leaf(r, box, 4)
            base = 52 if data[0] == 1 else 40
            if len(data) < base + 44:
                raise Malformed("tkhd is too short")
            track.enabled = bool(data[3] & 1)
            track.track_id = int.from_bytes(data[20:24] if data[0] == 1 else data[12:16], "big")
            track.tkhd_duration = (
                int.from_bytes(data[28:36], "big") if data[0] == 1 else int.from_bytes(data[20:24], "big")
            )
            a, b = struct.unpack_from(">ii", data, base)
            track.rotation = _rotation(a, b)
            w, h = struct.unpack_from(">II", data, base + 36)
            track.width, track.height = (w + 0x8000) >> 16, (h + 0x8000) >> 16
        elif box.type == b"mdia":
            for sub in _boxes(r, box.start, box.end, top=False):
                if sub.type == b"hdlr":
                    track.handler = _leaf(r, sub, 12)[8:12]
                elif sub.type == b"mdhd":
                    track.media_timescale, duration, unknown = _full_box_times(_leaf(r, sub, 20), "mdhd")
                    track.media_duration = 0 if unknown else duration
                elif sub.type == b"minf":
                    _parse_minf(r, sub, track)
    return track


def _parse_minf(r: Reader, minf: _Box, track: _Track) -> None:
    for box in _boxes(r, minf.start, minf.end, top=False):
        if box.type != b"stbl":
            continue
        for sub in _boxes(r, box.start, box.end, top=False):
            if sub.type == b"stsd":
                data = _leaf(r, sub, 8)
                if int.from_bytes(data[4:8], "big") >= 1 and len(data) >= 44:
                    track.coded_width, track.coded_height = struct.unpack_from(">HH", data, 40)


def probe_isobmff(r: Reader) -> Dims:
    moov: _Box | None = None
    has_mdat = fragmented = False
    for box in _boxes(r, 0, r.size, top=True):  # walks to the end: catches truncation; seeks over mdat
        if box.type == b"moov" and moov is None:
            moov = box
        elif box.type == b"mdat":
            has_mdat = True
        elif box.type == b"moof":
            fragmented = True
    if moov is None:
        raise Malformed("no 'moov' box (the file is incomplete or was not finalised)")
    if not has_mdat:
        raise Malformed("no 'mdat' box (the file holds no media data)")

    timescale = duration = 0
    duration_unknown = True
    fragment_duration = 0
    tracks: list[_Track] = []
    trex_durations: dict[int, int] = {}
    for box in _boxes(r, moov.start, moov.end, top=False):
        if box.type == b"mvhd":
            timescale, duration, duration_unknown = _full_box_times(_leaf(r, box, 20), "mvhd")
        elif box.type == b"trak":
            tracks.append(_parse_trak(r, box))
        elif box.type == b"mvex":
            for sub in _boxes(r, box.start, box.end, top=False):
                if sub.type == b"mehd":
                    data = _leaf(r, sub, 8)
                    fragment_duration = (
                        int.from_bytes(data[4:12], "big")
                        if data[0] == 1 and len(data) >= 12
                        else int.from_bytes(data[4:8], "big")
                    )
                elif sub.type == b"trex":
                    track_id, default_duration = struct.unpack_from(">I4xI", _leaf(r, sub, 16), 4)
                    trex_durations[track_id] = default_duration
    if timescale == 0:
        raise Malformed("no usable 'mvhd' box")
    videos = [t for t in tracks if t.handler == b"vide"]
    if not videos:
        raise Malformed("no video track")
    video = next((t for t in videos if t.enabled), videos[0])

    width, height = video.width, video.height
    if width == 0 or height == 0:
        width, height = video.coded_width, video.coded_height
    if width == 0 or height == 0:
        raise Malformed("the video track has no picture size")
    if video.rotation in (90, 270):
        width, height = height, width

    candidates: list[int] = []  # whole milliseconds; the longest wins
    if not duration_unknown and duration > 0:
        candidates.append(ticks_to_ms(duration, timescale))
    elif video.media_timescale > 0 and video.media_duration > 0:
        candidates.append(ticks_to_ms(video.media_duration, video.media_timescale))
    elif 0 < video.tkhd_duration < 0xFFFF_FFFF:
        candidates.append(ticks_to_ms(video.tkhd_duration, timescale))
    if fragment_duration > 0:
        candidates.append(ticks_to_ms(fragment_duration, timescale))
    if fragmented and video.media_timescale > 0:
        # moov describes only what precedes the first fragment; the fragments say the rest
        ticks = _fragmented_ticks(r, video, trex_durations.get(video.track_id, 0))
        if ticks > 0:
            candidates.append(ticks_to_ms(ticks, video.media_timescale))
    return Dims(width, height, max(candidates) if candidates else None, video.rotation)


_TRUN_BUDGET: Final = 64 * 1024 * 1024  # bytes of per-sample tables read across all fragments


def _trun_ticks(r: Reader, box: _Box, default_duration: int, budget: list[int]) -> int:
    head = _leaf(r, box, 8)
    flags, count = int.from_bytes(head[1:4], "big"), int.from_bytes(head[4:8], "big")
    if not flags & 0x100:  # no per-sample durations: all samples last the default
        return count * default_duration
    offset = 8 + 4 * bool(flags & 0x01) + 4 * bool(flags & 0x04)
    fields = bin(flags & 0xF00).count("1")
    size = count * 4 * fields
    if box.start + offset + size > box.end:
        raise Malformed("a 'trun' box is shorter than its sample table")
    budget[0] -= size
    if budget[0] < 0:
        raise Malformed("the fragment tables are implausibly large")
    table = r.read_at(box.start + offset, size)
    return sum(entry[0] for entry in struct.iter_unpack(">" + "I" * fields, table))


def _fragmented_ticks(r: Reader, video: _Track, trex_duration: int) -> int:
    """End time of the video track's last fragment, in its media timescale.

    With 'tfdt' (decode time of each fragment) that is the last one's start plus its samples' durations;
    without, the durations of the samples in moov and in every fragment are added up.
    """
    budget = [_TRUN_BUDGET]
    summed = video.media_duration
    end: int | None = None
    for moof in _boxes(r, 0, r.size, top=True):
        if moof.type != b"moof":
            continue
        for traf in _boxes(r, moof.start, moof.end, top=False):
            if traf.type != b"traf":
                continue
            track_id, default, base = 0, trex_duration, None
            truns: list[_Box] = []
            for box in _boxes(r, traf.start, traf.end, top=False):
                if box.type == b"tfhd":
                    data = _leaf(r, box, 8)
                    flags, track_id = int.from_bytes(data[1:4], "big"), int.from_bytes(data[4:8], "big")
                    if flags & 0x08:
                        at = 8 + 8 * bool(flags & 0x01) + 4 * bool(flags & 0x02)
                        if len(data) < at + 4:
                            raise Malformed("a 'tfhd' box is too short")
                        default = int.from_bytes(data[at : at + 4], "big")
                elif box.type == b"tfdt":
                    data = _leaf(r, box, 8)
                    base = int.from_bytes(data[4:12] if data[0] == 1 else data[4:8], "big")
                elif box.type == b"trun":
                    truns.append(box)
            if track_id != video.track_id:
                continue
            ticks = sum(_trun_ticks(r, box, default, budget) for box in truns)
            summed += ticks
            if base is not None:
                end = base + ticks
            elif end is not None:
                end += ticks
    return end if end is not None else summed

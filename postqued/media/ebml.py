"""EBML (WebM): displayed size, rotation and duration from the Segment's Info and Tracks."""

from __future__ import annotations

import math
import struct
from typing import Final, Literal, NamedTuple

from postqued.media.reader import Dims, Malformed, Reader

# ---- EBML (WebM) ---------------------------------------------------------------------------------

_EBML: Final = 0x1A45DFA3
_DOCTYPE: Final = 0x4282
_SEGMENT: Final = 0x18538067
_CLUSTER: Final = 0x1F43B675
_INFO: Final = 0x1549A966
_TRACKS: Final = 0x1654AE6B
_TRACK_ENTRY: Final = 0xAE
_TRACK_TYPE: Final = 0x83
_VIDEO: Final = 0xE0
_PIXEL_WIDTH: Final = 0xB0
_PIXEL_HEIGHT: Final = 0xBA
_DISPLAY_WIDTH: Final = 0x54B0
_DISPLAY_HEIGHT: Final = 0x54BA
_DISPLAY_UNIT: Final = 0x54B2  # 0 pixels (the default), 3 display aspect ratio
_PROJECTION: Final = 0x7670
_PROJECTION_TYPE: Final = 0x7671  # 0 rectangular (the default)
_POSE_YAW: Final = 0x7673
_POSE_PITCH: Final = 0x7674
_POSE_ROLL: Final = 0x7675
_TIMECODE_SCALE: Final = 0x2AD7B1
_DURATION: Final = 0x4489
# Children of Segment: where an unknown-size element at that level ends.
_LEVEL1: Final = frozenset(
    {0x114D9B74, _INFO, _TRACKS, _CLUSTER, 0x1C53BB6B, 0x1941A469, 0x1043A770, 0x1254C367, _SEGMENT, _EBML}
)
_MASTERS: Final = frozenset({_INFO, _TRACKS, _TRACK_ENTRY, _VIDEO})
_MAX_ELEMENTS: Final = 10_000
_INFO_CAP: Final = 64 * 1024
_TRACKS_CAP: Final = 256 * 1024
_UNKNOWN: Final = -1


def _vint(buf: bytes, pos: int, end: int, *, is_id: bool) -> tuple[int, int]:
    """(value, next position) of an EBML variable-length integer; sizes with all value bits set are _UNKNOWN."""
    if pos >= end:
        raise Malformed("an EBML element ends early")
    first = buf[pos]
    if first == 0:
        raise Malformed("invalid EBML length")
    length = 9 - first.bit_length()
    if (is_id and length > 4) or pos + length > end:
        raise Malformed("invalid or truncated EBML element")
    raw = int.from_bytes(buf[pos : pos + length], "big")
    if is_id:
        return raw, pos + length
    value = raw & ((1 << (7 * length)) - 1)
    return (_UNKNOWN if value == (1 << (7 * length)) - 1 else value), pos + length


class _El(NamedTuple):
    id: int
    start: int
    end: int


def _elements(buf: bytes, start: int, end: int, stop: frozenset[int] = frozenset()) -> tuple[list[_El], int]:
    """Child elements of buf[start:end] until a ``stop`` id; returns them and where they end.

    An unknown-size container ends where its own children stop (at an id of its level or above).
    """
    out: list[_El] = []
    pos = start
    while pos < end:
        if len(out) >= _MAX_ELEMENTS:
            raise Malformed("too many EBML elements")
        eid, p = _vint(buf, pos, end, is_id=True)
        if eid in stop:
            break
        size, p = _vint(buf, p, end, is_id=False)
        if size == _UNKNOWN:
            if eid not in _MASTERS or eid in stop:
                raise Malformed("unknown size on an element that cannot have one")
            _, child_end = _elements(buf, p, end, stop | {eid})
            out.append(_El(eid, p, child_end))
            pos = child_end
            continue
        if p + size > end:
            raise Malformed("an EBML element extends past its parent")
        out.append(_El(eid, p, p + size))
        pos = p + size
    return out, pos


def _uint(buf: bytes, el: _El) -> int:
    if el.end - el.start > 8:
        raise Malformed("an EBML integer is too long")
    return int.from_bytes(buf[el.start : el.end], "big")


def ebml_doctype(head: bytes) -> bytes | None:
    try:
        eid, p = _vint(head, 0, len(head), is_id=True)
        size, p = _vint(head, p, len(head), is_id=False)
        if eid != _EBML or size == _UNKNOWN:
            return None
        children, _ = _elements(head, p, min(len(head), p + size))
    except Malformed:
        return None
    for el in children:
        if el.id == _DOCTYPE:
            return head[el.start : el.end].rstrip(b"\x00")
    return None


def _header_at(r: Reader, pos: int, end: int) -> tuple[int, int, int]:
    """(id, size or _UNKNOWN, data start) of the element at ``pos`` in the file."""
    buf = r.read_upto(pos, min(12, end - pos))
    eid, p = _vint(buf, 0, len(buf), is_id=True)
    size, p = _vint(buf, p, len(buf), is_id=False)
    return eid, size, pos + p


def probe_webm(r: Reader) -> Dims:
    eid, size, pos = _header_at(r, 0, r.size)
    if eid != _EBML or size == _UNKNOWN:
        raise Malformed("no EBML header")
    pos += size
    for _ in range(_MAX_ELEMENTS):  # skip anything (Void) between the header and the Segment
        if pos >= r.size:
            raise Malformed("no Segment")
        eid, size, data = _header_at(r, pos, r.size)
        if eid == _SEGMENT:
            break
        if size == _UNKNOWN:
            raise Malformed("unknown-size element before the Segment")
        pos = data + size
    else:
        raise Malformed("no Segment")
    seg_end = r.size if size == _UNKNOWN else data + size
    if seg_end > r.size:
        raise Malformed("the Segment extends past the end of the file (truncated)")

    info: tuple[bytes, list[_El]] | None = None
    tracks: tuple[bytes, list[_El]] | None = None
    pos = data
    for _ in range(_MAX_ELEMENTS):
        if pos >= seg_end or (info is not None and tracks is not None):
            break
        eid, size, data = _header_at(r, pos, seg_end)
        if eid == _CLUSTER:
            break  # media data: the headers we need come before it
        cap = _INFO_CAP if eid == _INFO else _TRACKS_CAP
        parsed: tuple[bytes, list[_El]] | None = None
        if size == _UNKNOWN:  # ends where an element of its own level (or above) starts
            buf = r.read_upto(data, min(cap, seg_end - data))
            children, used = _elements(buf, 0, len(buf), _LEVEL1)
            parsed, end = (buf, children), data + used
        else:
            end = data + size
            if end > seg_end:
                raise Malformed("an element extends past the end of the Segment (truncated)")
            if eid in (_INFO, _TRACKS):
                if size > cap:
                    raise Malformed("the WebM header is implausibly large")
                buf = r.read_at(data, size)
                parsed = (buf, _elements(buf, 0, len(buf))[0])
        if eid == _INFO and info is None:
            info = parsed
        elif eid == _TRACKS and tracks is None:
            tracks = parsed
        pos = end
    else:
        raise Malformed("too many EBML elements")
    if tracks is None:
        raise Malformed("no Tracks element before the media data")

    width = height = 0
    rotation: Literal[0, 90, 180, 270] = 0
    tbuf, entries = tracks
    for entry in entries:
        if entry.id != _TRACK_ENTRY:
            continue
        kids, _ = _elements(tbuf, entry.start, entry.end, frozenset({_TRACK_ENTRY}))
        track_type = next((_uint(tbuf, k) for k in kids if k.id == _TRACK_TYPE), 0)
        video = next((k for k in kids if k.id == _VIDEO), None)
        if video is None or track_type not in (0, 1):
            continue
        vkids, _ = _elements(tbuf, video.start, video.end, frozenset({_TRACK_ENTRY}))
        width, height = _display_size(tbuf, vkids)
        rotation = _rotation(tbuf, vkids)
        break
    if width == 0 or height == 0:
        raise Malformed("no video track with a picture size")
    if rotation in (90, 270):
        width, height = height, width

    duration_ms: int | None = None
    if info is not None:
        ibuf, ikids = info
        scale = next((_uint(ibuf, k) for k in ikids if k.id == _TIMECODE_SCALE), 1_000_000)
        dur = next((k for k in ikids if k.id == _DURATION), None)
        if dur is not None:
            value = _float(ibuf, dur)
            if not math.isfinite(value) or value < 0 or scale == 0:
                raise Malformed("the Duration is not a valid number")
            ms = math.floor(value * scale / 1_000_000 + 0.5)
            duration_ms = ms if ms > 0 else None
    return Dims(width, height, duration_ms, rotation)


def _float(buf: bytes, el: _El) -> float:
    raw = buf[el.start : el.end]
    if len(raw) == 4:
        return float(struct.unpack(">f", raw)[0])
    if len(raw) == 8:
        return float(struct.unpack(">d", raw)[0])
    if not raw:
        return 0.0
    raise Malformed("an EBML float is not 4 or 8 bytes long")


def _display_size(buf: bytes, video: list[_El]) -> tuple[int, int]:
    """The size a player shows: DisplayWidth x DisplayHeight in pixels, or the stored height at the display
    aspect ratio; the stored PixelWidth x PixelHeight when neither is given (like ffmpeg)."""
    width = next((_uint(buf, k) for k in video if k.id == _PIXEL_WIDTH), 0)
    height = next((_uint(buf, k) for k in video if k.id == _PIXEL_HEIGHT), 0)
    display_w = next((_uint(buf, k) for k in video if k.id == _DISPLAY_WIDTH), 0)
    display_h = next((_uint(buf, k) for k in video if k.id == _DISPLAY_HEIGHT), 0)
    unit = next((_uint(buf, k) for k in video if k.id == _DISPLAY_UNIT), 0)
    if display_w == 0 or display_h == 0 or width == 0 or height == 0:
        return width, height
    if unit == 0:
        return display_w, display_h
    if unit == 3:
        return max(1, (height * display_w + display_h // 2) // display_h), height
    return width, height


def _rotation(buf: bytes, video: list[_El]) -> Literal[0, 90, 180, 270]:
    """Clockwise quarter turns from Projection's ProjectionPoseRoll, read as ffmpeg does (a flat picture
    only: rectangular type, no pitch, yaw 0 or a 180-degree mirror); roll is counter-clockwise."""
    projection = next((k for k in video if k.id == _PROJECTION), None)
    if projection is None:
        return 0
    kids, _ = _elements(buf, projection.start, projection.end)
    if next((_uint(buf, k) for k in kids if k.id == _PROJECTION_TYPE), 0) != 0:
        return 0
    yaw, pitch, roll = (
        next((_float(buf, k) for k in kids if k.id == i), 0.0) for i in (_POSE_YAW, _POSE_PITCH, _POSE_ROLL)
    )
    if pitch != 0.0 or yaw not in (0.0, 180.0, -180.0) or not math.isfinite(roll):
        return 0
    return (0, 90, 180, 270)[round(-roll / 90) % 4]

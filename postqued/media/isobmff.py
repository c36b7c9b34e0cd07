"""ISO BMFF (MP4, MOV): displayed size, rotation and duration from the box headers."""

from __future__ import annotations

import math
import struct
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Final, Literal, NamedTuple

from postqued.media.reader import Dims, Malformed, Reader, Unsupported, ticks_to_ms

_MAX_CHILD_BOXES: Final = 10_000  # inside one box; the top level is bounded by the reader's budgets
_LEAF_CAP: Final = 256  # bytes of mvhd/tkhd/mdhd/hdlr/mehd/stsd we ever need


class _Box(NamedTuple):
    type: bytes
    start: int  # payload start
    end: int  # box end


def _boxes(r: Reader, start: int, end: int) -> Iterator[_Box]:
    """The child boxes of a box's payload ``start..end``."""
    pos, count = start, 0
    while pos < end:
        count += 1
        if count > _MAX_CHILD_BOXES:
            raise Malformed("too many boxes")
        if end - pos < 8:
            return  # a few bytes of padding (QuickTime writes 4-byte terminators)
        size, typ = struct.unpack(">I4s", r.read_at(pos, 8))
        header = 8
        if size == 1:
            if end - pos < 16:
                raise Malformed("a box header is cut short")
            size = int.from_bytes(r.read_at(pos + 8, 8), "big")
            header = 16
        elif size == 0:
            size = end - pos  # to the end of the parent
        if size < header:
            raise Malformed("a box has an impossible size")
        if pos + size > end:
            raise Malformed("a box extends past its parent")
        yield _Box(typ, pos + header, pos + size)
        pos += size


_MEDIA_BOXES: Final = frozenset({b"moov", b"mdat", b"moof"})
_PRINTABLE: Final = bytes(range(0x20, 0x7F))


def _top_box(r: Reader, pos: int, *, after_movie: bool = False) -> _Box | None:
    """The top-level box at ``pos`` in one read of at most 16 bytes; None when no box starts there.

    Bytes that are not a box header (no printable type, an impossible size) are None, for the caller to
    judge: trailing junk after a complete movie, which players ignore, or damage. A header that runs past
    the end of the file is a truncated box, except ``after_movie`` (moov and mdat seen) for a box that
    holds no media: that too is trailing bytes players ignore (a cut 'mfra' index, or junk that happens
    to spell a type).
    """
    head = r.read_upto(pos, 16)
    if len(head) < 8:
        return None
    size, typ = struct.unpack_from(">I4s", head)
    if typ.translate(None, _PRINTABLE):
        return None  # not a box type: one of its bytes is not printable ASCII
    header = 8
    if size == 1:
        if len(head) < 16:
            raise Malformed("the file ends in the middle of a box header (truncated)")
        size, header = int.from_bytes(head[8:16], "big"), 16
    elif size == 0:
        size = r.size - pos  # to the end of the file
    if size < header:
        return None
    if pos + size > r.size:
        if after_movie and typ not in _MEDIA_BOXES:
            return None
        raise Malformed("a box extends past the end of the file (truncated)")
    return _Box(typ, pos + header, pos + size)


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
    for box in _boxes(r, trak.start, trak.end):
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
            for sub in _boxes(r, box.start, box.end):
                if sub.type == b"hdlr":
                    track.handler = _leaf(r, sub, 12)[8:12]
                elif sub.type == b"mdhd":
                    track.media_timescale, duration, unknown = _full_box_times(_leaf(r, sub, 20), "mdhd")
                    track.media_duration = 0 if unknown else duration
                elif sub.type == b"minf":
                    _parse_minf(r, sub, track)
    return track


def _parse_minf(r: Reader, minf: _Box, track: _Track) -> None:
    for box in _boxes(r, minf.start, minf.end):
        if box.type != b"stbl":
            continue
        for sub in _boxes(r, box.start, box.end):
            if sub.type == b"stsd":
                data = _leaf(r, sub, 8)
                if int.from_bytes(data[4:8], "big") >= 1 and len(data) >= 44:
                    track.coded_width, track.coded_height = struct.unpack_from(">HH", data, 40)


@dataclass
class _Movie:
    """What moov says: the movie time scale and duration, the tracks, and how the fragments are described."""

    timescale: int = 0
    duration: int = 0
    duration_unknown: bool = True
    tracks: list[_Track] = field(default_factory=list)
    fragmented: bool = False  # has mvex: the media may continue in moof boxes
    fragment_duration: int = 0  # mehd, in the movie time scale
    trex_durations: dict[int, int] = field(default_factory=dict)


def _parse_moov(r: Reader, moov: _Box) -> _Movie:
    movie = _Movie()
    for box in _boxes(r, moov.start, moov.end):
        if box.type == b"mvhd":
            movie.timescale, movie.duration, movie.duration_unknown = _full_box_times(_leaf(r, box, 20), "mvhd")
        elif box.type == b"trak":
            movie.tracks.append(_parse_trak(r, box))
        elif box.type == b"mvex":
            movie.fragmented = True
            for sub in _boxes(r, box.start, box.end):
                if sub.type == b"mehd":
                    data = _leaf(r, sub, 8)
                    movie.fragment_duration = (
                        int.from_bytes(data[4:12], "big")
                        if data[0] == 1 and len(data) >= 12
                        else int.from_bytes(data[4:8], "big")
                    )
                elif sub.type == b"trex":
                    track_id, default_duration = struct.unpack_from(">I4xI", _leaf(r, sub, 16), 4)
                    movie.trex_durations[track_id] = default_duration
    if movie.timescale == 0:
        raise Malformed("no usable 'mvhd' box")
    return movie


def _video_track(movie: _Movie) -> _Track:
    videos = [t for t in movie.tracks if t.handler == b"vide"]
    if not videos:
        if any(t.handler == b"soun" for t in movie.tracks):
            raise Unsupported("it has no video track, only audio")
        raise Malformed("no video track")
    return next((t for t in videos if t.enabled), videos[0])


@dataclass
class _Walk:
    """One pass over the top-level boxes: box headers only, media data skipped by seeking."""

    movie: _Movie | None = None
    video: _Track | None = None
    has_mdat: bool = False
    moofs: list[_Box] = field(default_factory=list)  # in file order; from the mfra jump on when one was taken
    looked_for_index: bool = False
    jumped: bool = False


def _walk(r: Reader, *, collect_all: bool = False) -> _Walk:
    """Walk the top level once and stop as soon as the size, rotation and duration are known.

    Without fragments that is once moov and an mdat header have been seen. With fragments and no mehd
    the duration is where the last fragment ends: the walk jumps to the last fragment the 'mfra' index
    names (when the file has one) and reads the box headers from there on. ``collect_all`` walks every
    fragment (for files whose fragments carry no decode times).
    """
    walk = _Walk()
    pos = 0
    while pos < r.size:
        box = _top_box(r, pos, after_movie=walk.movie is not None and walk.has_mdat)
        if box is None:
            if walk.movie is not None and walk.has_mdat:
                break  # bytes after a complete movie that are not a box: players ignore them
            if r.size - pos < 8 and not r.read_upto(pos, 8).strip(b"\x00"):
                break  # a few zero bytes of padding
            raise Malformed("bytes that are not an MP4 box where a box should start")
        if box.type == b"moov" and walk.movie is None:
            walk.movie = _parse_moov(r, box)
            walk.video = _video_track(walk.movie)
        elif box.type == b"mdat":
            walk.has_mdat = True
        elif box.type == b"moof":
            walk.moofs.append(box)
        pos = box.end
        movie = walk.movie
        if movie is None or not walk.has_mdat:
            continue
        if not movie.fragmented or (movie.fragment_duration > 0 and not collect_all):
            break
        if not walk.looked_for_index and not collect_all and walk.video is not None:
            walk.looked_for_index = True
            last = _last_indexed_fragment(r, walk.video.track_id)
            if last is not None and last > pos:
                pos, walk.jumped = last, True
                walk.moofs.clear()
    return walk


def _last_indexed_fragment(r: Reader, track_id: int) -> int | None:
    """Offset of the last moof the 'mfra' index lists for ``track_id``; None without a usable index."""
    if r.size < 16:
        return None
    tail = r.read_at(r.size - 16, 16)
    if tail[4:8] != b"mfro":
        return None
    mfra_size = int.from_bytes(tail[12:16], "big")
    start = r.size - mfra_size
    if not 16 <= mfra_size <= r.size or r.read_at(start + 4, 4) != b"mfra":
        return None
    for tfra in _boxes(r, start + 8, r.size):
        if tfra.type != b"tfra":
            continue
        head = _leaf(r, tfra, 16)
        if int.from_bytes(head[4:8], "big") != track_id:
            continue
        wide = head[0] == 1
        sizes = int.from_bytes(head[8:12], "big")
        entry = (16 if wide else 8) + ((sizes >> 4) & 3) + ((sizes >> 2) & 3) + (sizes & 3) + 3
        count = int.from_bytes(head[12:16], "big")
        at = tfra.start + 16 + (count - 1) * entry
        if count == 0 or at + entry > tfra.end:
            return None
        data = r.read_at(at, entry)
        offset = int.from_bytes(data[8:16], "big") if wide else int.from_bytes(data[4:8], "big")
        found = _top_box(r, offset) if 0 <= offset < r.size else None
        return offset if found is not None and found.type == b"moof" else None
    return None


def probe_isobmff(r: Reader) -> Dims:
    walk = _walk(r)
    movie, video = walk.movie, walk.video
    if movie is None or video is None:
        raise Malformed("no 'moov' box (the file is incomplete or was not finalised)")
    if not walk.has_mdat:
        raise Malformed("no 'mdat' box (the file holds no media data)")

    width, height = video.width, video.height
    if width == 0 or height == 0:
        width, height = video.coded_width, video.coded_height
    if width == 0 or height == 0:
        raise Malformed("the video track has no picture size")
    if video.rotation in (90, 270):
        width, height = height, width

    candidates: list[int] = []  # whole milliseconds; the longest wins
    if not movie.duration_unknown and movie.duration > 0:
        candidates.append(ticks_to_ms(movie.duration, movie.timescale))
    elif video.media_timescale > 0 and video.media_duration > 0:
        candidates.append(ticks_to_ms(video.media_duration, video.media_timescale))
    elif 0 < video.tkhd_duration < 0xFFFF_FFFF:
        candidates.append(ticks_to_ms(video.tkhd_duration, movie.timescale))
    if movie.fragment_duration > 0:
        candidates.append(ticks_to_ms(movie.fragment_duration, movie.timescale))
    elif movie.fragmented and video.media_timescale > 0:
        # moov describes only what precedes the first fragment; the fragments say the rest
        ticks = _fragments_end(r, walk, video, movie.trex_durations.get(video.track_id, 0))
        if ticks > 0:
            candidates.append(ticks_to_ms(ticks, video.media_timescale))
    return Dims(width, height, max(candidates) if candidates else None, video.rotation)


def _trun_ticks(r: Reader, box: _Box, default_duration: int) -> int:
    head = _leaf(r, box, 8)
    flags, count = int.from_bytes(head[1:4], "big"), int.from_bytes(head[4:8], "big")
    if not flags & 0x100:  # no per-sample durations: all samples last the default
        return count * default_duration
    offset = 8 + 4 * bool(flags & 0x01) + 4 * bool(flags & 0x04)
    fields = bin(flags & 0xF00).count("1")
    size = count * 4 * fields
    if box.start + offset + size > box.end:
        raise Malformed("a 'trun' box is shorter than its sample table")
    table = r.read_at(box.start + offset, size)
    return sum(entry[0] for entry in struct.iter_unpack(">" + "I" * fields, table))


def _video_traf(r: Reader, moof: _Box, video: _Track, trex_duration: int) -> tuple[int | None, int] | None:
    """(decode time from tfdt or None, ticks of its samples) of the video track's traf in ``moof``."""
    for traf in _boxes(r, moof.start, moof.end):
        if traf.type != b"traf":
            continue
        track_id, default, base = 0, trex_duration, None
        truns: list[_Box] = []
        for box in _boxes(r, traf.start, traf.end):
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
        if track_id == video.track_id:
            return base, sum(_trun_ticks(r, box, default) for box in truns)
    return None


def _fragments_end(r: Reader, walk: _Walk, video: _Track, trex_duration: int) -> int:
    """End time of the video track's last fragment, in its media timescale.

    With 'tfdt' (decode time of each fragment) that is the last one's start plus its samples'
    durations, so only the last video fragment is read; without, the durations of the samples in moov
    and in every fragment are added up (which needs every fragment: a second walk when the first one
    jumped through the index).
    """
    for moof in reversed(walk.moofs):
        found = _video_traf(r, moof, video, trex_duration)
        if found is None:
            continue
        base, ticks = found
        if base is not None:
            return base + ticks
        break
    moofs = _walk(r, collect_all=True).moofs if walk.jumped else walk.moofs
    summed = video.media_duration
    end: int | None = None
    for moof in moofs:
        found = _video_traf(r, moof, video, trex_duration)
        if found is None:
            continue
        base, ticks = found
        summed += ticks
        if base is not None:
            end = base + ticks
        elif end is not None:
            end += ticks
    return end if end is not None else summed

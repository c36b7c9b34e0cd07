"""Images: JPEG (with EXIF orientation), PNG, WebP and GIF sizes from their headers."""

from __future__ import annotations

import re
import struct
import zlib
from typing import Final, Literal

from postqued.media.kinds import READ_CHUNK
from postqued.media.reader import Dims, Malformed, Reader

# ---- JPEG ----------------------------------------------------------------------------------------

_SOF: Final = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}
_MARKER_IN_SCAN: Final = re.compile(rb"\xff[^\x00\xd0-\xd7\xff]")
_MAX_MARKERS: Final = 100_000
_EXIF_ROTATION: Final[dict[int, Literal[0, 90, 180, 270]]] = {3: 180, 5: 270, 6: 90, 7: 90, 8: 270}


def _exif_orientation(data: bytes) -> int:
    """EXIF orientation tag (1..8) from an APP1 payload; 1 when absent or unreadable."""
    if not data.startswith(b"Exif\x00\x00") or len(data) < 14:
        return 1
    tiff = data[6:]
    order = tiff[:2]
    if order == b"II":
        endian = "<"
    elif order == b"MM":
        endian = ">"
    else:
        return 1
    try:
        magic, ifd = struct.unpack_from(endian + "HI", tiff, 2)
        if magic != 42:
            return 1
        (count,) = struct.unpack_from(endian + "H", tiff, ifd)
        for i in range(min(count, 512)):
            tag, typ, _n = struct.unpack_from(endian + "HHI", tiff, ifd + 2 + 12 * i)
            if tag == 0x0112 and typ == 3:
                (value,) = struct.unpack_from(endian + "H", tiff, ifd + 2 + 12 * i + 8)
                return value if 1 <= value <= 8 else 1
    except struct.error:
        return 1
    return 1


def _skip_entropy_coded(r: Reader) -> None:
    """Move ``r.pos`` to the first marker after a scan's entropy-coded data, or to the end of the file."""
    while True:
        chunk = r.read_upto(r.pos, READ_CHUNK)
        if len(chunk) < 2:
            r.pos = r.size  # the file ends inside the scan: no end marker, which decoders accept
            return
        match = _MARKER_IN_SCAN.search(chunk)
        if match is not None:
            r.pos += match.start()
            return
        r.pos += len(chunk) - 1  # the last byte may be the 0xFF of a marker split across chunks


def probe_jpeg(r: Reader) -> Dims:
    if r.read(2) != b"\xff\xd8":
        raise Malformed("no JPEG start marker")
    dims: tuple[int, int] | None = None
    orientation: int | None = None
    scanned = False
    for _ in range(_MAX_MARKERS):
        if scanned and r.pos >= r.size:
            break  # image data, then the end of the file without an EOI marker: decoders show it
        if r.u8() != 0xFF:
            raise Malformed("expected a JPEG marker")
        marker = r.u8()
        for _fill in range(READ_CHUNK):  # fill bytes
            if marker != 0xFF:
                break
            marker = r.u8()
        else:
            raise Malformed("too many JPEG fill bytes")
        if marker == 0xD9:  # EOI
            break
        if 0xD0 <= marker <= 0xD7 or marker == 0x01:
            continue
        if marker == 0xD8:
            raise Malformed("a second JPEG start marker")
        length = r.u16be()
        if length < 2:
            raise Malformed("a JPEG segment has an impossible length")
        payload = length - 2
        if marker in _SOF:
            data = r.read(payload)
            if len(data) < 6:
                raise Malformed("the JPEG frame header is too short")
            height, width = struct.unpack_from(">HH", data, 1)
            if dims is None:
                if width == 0 or height == 0:
                    raise Malformed("the JPEG frame header has no picture size")
                dims = (width, height)
        elif marker == 0xE1 and orientation is None and payload >= 6:
            start = r.pos
            data = r.read(min(payload, READ_CHUNK))
            if data.startswith(b"Exif\x00\x00"):
                orientation = _exif_orientation(data)
            r.pos = start
            r.skip(payload)
        elif marker == 0xDA:  # start of scan: skip its header, then its entropy-coded data
            if dims is None:
                raise Malformed("image data before the JPEG frame header")
            r.skip(payload)
            _skip_entropy_coded(r)
            scanned = True
        else:
            r.skip(payload)
    else:
        raise Malformed("too many JPEG markers")
    if dims is None or not scanned:
        raise Malformed("no image data")
    rotation = _EXIF_ROTATION.get(orientation or 1, 0)
    width, height = dims
    if (orientation or 1) >= 5:
        width, height = height, width
    return Dims(width, height, None, rotation)


# ---- PNG -----------------------------------------------------------------------------------------

_MAX_CHUNKS: Final = 100_000


def probe_png(r: Reader) -> Dims:
    head = r.read_at(0, 33)
    if head[:8] != b"\x89PNG\r\n\x1a\n" or head[8:16] != b"\x00\x00\x00\x0dIHDR":
        raise Malformed("the PNG does not start with an IHDR chunk")
    if zlib.crc32(head[12:29]) != int.from_bytes(head[29:33], "big"):
        raise Malformed("the PNG header checksum is wrong")
    width, height = struct.unpack_from(">II", head, 16)
    if not (0 < width < 2**31 and 0 < height < 2**31):
        raise Malformed("the PNG has no valid picture size")
    pos, has_data = 33, False
    for _ in range(_MAX_CHUNKS):
        length, ctype = struct.unpack(">I4s", r.read_at(pos, 8))
        if length >= 2**31:
            raise Malformed("a PNG chunk has an impossible length")
        if pos + 12 + length > r.size:
            raise Malformed("the PNG ends early (truncated)")
        if ctype == b"IDAT":
            has_data = True
        elif ctype == b"IEND":
            break
        pos += 12 + length
    else:
        raise Malformed("too many PNG chunks")
    if not has_data:
        raise Malformed("the PNG has no image data")
    return Dims(width, height)


# ---- WebP ----------------------------------------------------------------------------------------


def probe_webp(r: Reader) -> Dims:
    head = r.read_at(0, 12)
    if head[:4] != b"RIFF" or head[8:12] != b"WEBP":
        raise Malformed("not a RIFF/WEBP file")
    end = 8 + int.from_bytes(head[4:8], "little")
    if end < 20:
        raise Malformed("the WebP container is too small")
    if end > r.size:
        raise Malformed("the WebP ends early (truncated)")
    dims: tuple[int, int] | None = None
    has_image = False
    pos = 12
    for index in range(_MAX_CHUNKS):
        if pos >= end:
            break
        fourcc, csize = struct.unpack("<4sI", r.read_at(pos, 8))
        data_end = pos + 8 + csize
        if data_end > end:
            raise Malformed("a WebP chunk extends past the end of the file (truncated)")
        if index == 0:
            if fourcc == b"VP8 ":
                data = r.read_at(pos + 8, min(csize, 10))
                if len(data) < 10 or data[3:6] != b"\x9d\x01\x2a" or data[0] & 1:
                    raise Malformed("the VP8 frame header is invalid")
                w, h = struct.unpack_from("<HH", data, 6)
                dims = (w & 0x3FFF, h & 0x3FFF)
            elif fourcc == b"VP8L":
                data = r.read_at(pos + 8, min(csize, 5))
                if len(data) < 5 or data[0] != 0x2F:
                    raise Malformed("the VP8L header is invalid")
                bits = int.from_bytes(data[1:5], "little")
                if bits >> 29:
                    raise Malformed("unknown VP8L version")
                dims = ((bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1)
            elif fourcc == b"VP8X":
                data = r.read_at(pos + 8, min(csize, 10))
                if len(data) < 10:
                    raise Malformed("the VP8X header is too short")
                dims = (
                    int.from_bytes(data[4:7], "little") + 1,
                    int.from_bytes(data[7:10], "little") + 1,
                )
            else:
                raise Malformed("the WebP starts with an unknown chunk")
        if fourcc in (b"VP8 ", b"VP8L", b"ANMF"):
            has_image = True
        pos = data_end + (csize & 1)
    else:
        raise Malformed("too many WebP chunks")
    if dims is None or not has_image or dims[0] == 0 or dims[1] == 0:
        raise Malformed("the WebP has no image data")
    return Dims(*dims)


# ---- GIF -----------------------------------------------------------------------------------------

_MAX_GIF_BLOCKS: Final = 2_000_000


def _skip_sub_blocks(r: Reader, budget: list[int]) -> None:
    """Move past a chain of data sub-blocks (length byte, data) ending with a zero length."""
    while True:
        chunk = r.read_upto(r.pos, READ_CHUNK)
        if not chunk:
            raise Malformed("the GIF ends early (truncated)")
        i, blocks = 0, 0
        while i < len(chunk):
            if chunk[i] == 0:
                r.pos += i + 1
                budget[0] -= blocks
                return
            i += chunk[i] + 1
            blocks += 1
        r.pos += i  # the next length byte is in a later chunk
        budget[0] -= blocks
        if budget[0] < 0:
            raise Malformed("too many GIF blocks")


def probe_gif(r: Reader) -> Dims:
    head = r.read(13)
    if head[:6] not in (b"GIF87a", b"GIF89a"):
        raise Malformed("not a GIF")
    width, height, packed = struct.unpack_from("<HHB", head, 6)
    if packed & 0x80:
        r.skip(3 << ((packed & 7) + 1))
    budget = [_MAX_GIF_BLOCKS]
    first_frame: tuple[int, int] | None = None
    while True:
        budget[0] -= 1
        if budget[0] < 0:
            raise Malformed("too many GIF blocks")
        if r.pos >= r.size and first_frame is not None:
            break  # a complete image, then the end of the file without a trailer: decoders show it
        kind = r.u8()
        if kind == 0x3B:  # trailer
            break
        if kind == 0x21:  # extension: label, then data sub-blocks
            r.skip(1)
            _skip_sub_blocks(r, budget)
        elif kind == 0x2C:  # image descriptor, optional local colour table, LZW data
            desc = r.read(9)
            fw, fh, fpacked = struct.unpack_from("<HHB", desc, 4)
            if first_frame is None:
                first_frame = (fw, fh)
            if fpacked & 0x80:
                r.skip(3 << ((fpacked & 7) + 1))
            r.skip(1)  # LZW minimum code size
            _skip_sub_blocks(r, budget)
        else:
            raise Malformed("an unknown GIF block")
    if first_frame is None:
        raise Malformed("the GIF has no image")
    if width == 0 or height == 0:
        width, height = first_frame
    if width == 0 or height == 0:
        raise Malformed("the GIF has no picture size")
    return Dims(width, height)

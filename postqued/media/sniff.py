"""What a file really is, from its first bytes, and whether its extension and size agree."""

from __future__ import annotations

from typing import BinaryIO, Final

from postqued.media.ebml import ebml_doctype
from postqued.media.kinds import (
    EXTENSIONS,
    IMAGE_TYPES,
    MAX_IMAGE_BYTES,
    MAX_VIDEO_BYTES,
    PREFERRED_EXTENSION,
    SAME_FAMILY,
    SNIFF_BYTES,
    SUPPORTED_LIST,
    SUPPORTED_TYPES,
    VIDEO_TYPES,
    MimeType,
    fail,
)
from postqued.media.policy import LocalFile

_NON_VIDEO_BRANDS: Final = frozenset(
    brand.replace(b"_", b" ")  # "_" stands for the space that pads short brands
    for brand in (
        b"heic heix hevc hevx heim heis hevm hevs mif1 msf1 avif avis avci jp2_ jpx_ jpm_ crx_ "  # images
        b"M4A_ M4B_ M4P_ F4A_ F4B_ "  # audio
        b"3gp4 3gp5 3gp6 3gp7 3gs7 3ge6 3ge7 3gg6 3g2a 3g2b 3g2c"  # 3GPP
    ).split()
)
# Box types that may start a QuickTime file written without an ftyp box.
_QT_FIRST_BOXES: Final = frozenset({b"moov", b"mdat", b"wide", b"free", b"skip", b"pnot"})


def sniff(head: bytes) -> MimeType | None:
    """The PostQued MIME type of a file from its first bytes (``SNIFF_BYTES`` suffice), or None."""
    if head.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return "image/gif"
    if len(head) >= 12 and head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    if head.startswith(b"\x1a\x45\xdf\xa3"):
        return "video/webm" if ebml_doctype(head) == b"webm" else None
    if len(head) >= 12 and head[4:8] == b"ftyp":
        major = head[16:20] if head[:4] == b"\x00\x00\x00\x01" else head[8:12]  # 64-bit box size
        if major == b"qt  ":
            return "video/quicktime"
        return None if major in _NON_VIDEO_BRANDS else "video/mp4"
    if len(head) >= 8 and head[4:8] in _QT_FIRST_BOXES:
        size = int.from_bytes(head[:4], "big")
        if size in (0, 1) or size >= 8:
            return "video/quicktime"
    return None


_HEVC_BRANDS: Final = frozenset({b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"hevm", b"hevs"})


def is_heif(head: bytes) -> bool:
    """A HEIC/HEIF still image (an iPhone photo), from its ftyp brands; AVIF, which shares mif1, is not."""
    if len(head) < 16 or head[4:8] != b"ftyp" or head[:4] == b"\x00\x00\x00\x01":
        return False
    size = min(int.from_bytes(head[:4], "big"), len(head))
    brands = {head[8:12]} | {head[i : i + 4] for i in range(16, size - 3, 4)}
    if brands & {b"avif", b"avis"}:
        return False
    return bool(brands & _HEVC_BRANDS) or head[8:12] in (b"mif1", b"msf1")


def _describe_unknown(head: bytes) -> str | None:
    """A human name for common unsupported formats, to make the refusal actionable."""
    if len(head) >= 12 and head[4:8] == b"ftyp":
        major = head[16:20] if head[:4] == b"\x00\x00\x00\x01" else head[8:12]
        if major in (b"avif", b"avis"):
            return "an AVIF image"
        if major.startswith((b"he", b"mif", b"msf")):
            return "a HEIC/HEIF image"
        if major.startswith((b"M4A", b"M4B", b"M4P", b"F4A", b"F4B")):
            return "an audio file (M4A/AAC)"
        if major.startswith(b"3g"):
            return "a 3GP video"
    if head.startswith(b"\x1a\x45\xdf\xa3"):
        return "a Matroska (MKV) file"
    if head[:4] == b"RIFF" and head[8:12] == b"AVI ":
        return "an AVI video"
    if head[:4] == b"RIFF" and head[8:12] == b"WAVE":
        return "a WAV audio file"
    if head[:2] == b"BM":
        return "a BMP image"
    if head[:4] in (b"II*\x00", b"MM\x00*"):
        return "a TIFF image"
    if head.startswith(b"%PDF"):
        return "a PDF document"
    if head.startswith(b"ID3") or head.startswith((b"fLaC", b"OggS")):
        return "an audio file"
    return None


def _read_head(local: LocalFile, handle: BinaryIO | None) -> bytes:
    if handle is not None:
        handle.seek(0)
        return handle.read(SNIFF_BYTES)
    with local.open_checked() as opened:
        return opened.read(SNIFF_BYTES)


def detect_type(local: LocalFile, handle: BinaryIO | None = None) -> MimeType:
    """Sniff the content and require the extension to agree. Codes: UNSUPPORTED_MEDIA_TYPE, EXTENSION_MISMATCH.

    Reads from ``handle`` (from ``local.open_checked()``) when given, else opens the file once.
    """
    head = _read_head(local, handle)
    mime = sniff(head)
    if mime is None:
        seems = _describe_unknown(head)
        what = f"; it looks like {seems}" if seems else ""
        fail(
            f"{local.label} is not a supported media file{what}. PostQued accepts {SUPPORTED_LIST}.",
            "UNSUPPORTED_MEDIA_TYPE",
            "Convert it to one of those formats (for example `ffmpeg -i INPUT -c:v libx264 -c:a aac "
            "OUTPUT.mp4` for video, or export the image as JPEG/PNG) and call the tool again.",
            supported=list(SUPPORTED_TYPES),
        )
    ext = local.path.suffix.lower()
    claimed = EXTENSIONS.get(ext)
    if claimed in SAME_FAMILY and mime in SAME_FAMILY:
        return claimed
    if claimed != mime:
        right = PREFERRED_EXTENSION[mime]
        named = (
            f"its extension {ext!r} says {claimed}"
            if claimed
            else (f"its extension {ext!r} is not one PostQued knows" if ext else "it has no extension")
        )
        fail(
            f"{local.label} contains {mime} but {named}.",
            "EXTENSION_MISMATCH",
            f"Rename the file so it ends in {right!r} (for example {local.path.with_suffix(right).name!r}) "
            "and call the tool again, or pass the file you meant.",
            detected=mime,
        )
    return mime


def _human(n: int) -> str:
    for unit, scale in (("GiB", 1024**3), ("MiB", 1024**2), ("KiB", 1024)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n} bytes"


def check_size(
    mime: str,
    size: int,
    max_video_bytes: int = MAX_VIDEO_BYTES,
    max_image_bytes: int = MAX_IMAGE_BYTES,
) -> None:
    """Refuse a file over its type's limit (``FILE_TOO_LARGE``), before any request is made."""
    if mime in VIDEO_TYPES:
        limit, kind = max_video_bytes, "videos"
        fix = "compress or trim it (for example `ffmpeg -i IN -crf 28 OUT.mp4`)"
    elif mime in IMAGE_TYPES:
        limit, kind = max_image_bytes, "images"
        fix = "resize or re-encode it (for example as a JPEG)"
    else:
        fail(f"{mime!r} is not a supported media type.", "UNSUPPORTED_MEDIA_TYPE")
    if size > limit:
        fail(
            f"The file is {_human(size)} ({size} bytes); the limit for {kind} is {_human(limit)} ({limit} bytes).",
            "FILE_TOO_LARGE",
            f"Make it smaller: {fix}, then call the tool again.",
            size=size,
            limit=limit,
        )

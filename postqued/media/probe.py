"""Probing dispatch, and the whole inspection in order (policy, type, size, probe) from one descriptor."""

from __future__ import annotations

import io
import os
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from typing import BinaryIO, Final, Literal

from postqued.errors import MediaError
from postqued.media import reader as budgets
from postqued.media.ebml import probe_webm
from postqued.media.heic import convert_heif
from postqued.media.images import probe_gif, probe_jpeg, probe_png, probe_webp
from postqued.media.isobmff import probe_isobmff
from postqued.media.kinds import (
    MAX_IMAGE_BYTES,
    MAX_VIDEO_BYTES,
    SNIFF_BYTES,
    SUPPORTED_TYPES,
    VIDEO_TYPES,
    MediaInfo,
    fail,
    upload_name,
)
from postqued.media.policy import LocalFile, check_path
from postqued.media.reader import LimitReached, Malformed, Reader, Unsupported
from postqued.media.sniff import check_size, detect_type, is_heif

_PROBES: Final = {
    "video/mp4": probe_isobmff,
    "video/quicktime": probe_isobmff,
    "video/webm": probe_webm,
    "image/jpeg": probe_jpeg,
    "image/png": probe_png,
    "image/webp": probe_webp,
    "image/gif": probe_gif,
}


def _reader(handle: BinaryIO, size: int) -> Reader:
    return Reader(handle, size, byte_budget=budgets.PROBE_BYTE_BUDGET, seconds=budgets.PROBE_SECONDS)


def probe(local: LocalFile, mime: str, handle: BinaryIO | None = None, size: int | None = None) -> MediaInfo:
    """Width, height, duration and rotation read from the file; ``PROBE_FAILED`` when it is malformed.

    Reads from ``handle`` (from ``local.open_checked()``, or converted bytes of ``size``) when given, else
    opens the file once.
    """
    size = local.size if size is None else size
    parser = _PROBES.get(mime)
    if parser is None:
        fail(f"{mime!r} is not a supported media type.", "UNSUPPORTED_MEDIA_TYPE", supported=list(SUPPORTED_TYPES))
    try:
        if handle is not None:
            dims = parser(_reader(handle, size))
        else:
            with local.open_checked() as opened:
                dims = parser(_reader(opened, local.size))
        kind: Literal["video", "image"] = "video" if mime in VIDEO_TYPES else "image"
        info = MediaInfo(
            mime_type=mime,  # a key of _PROBES, so one of the seven
            media_type=kind,
            size=size,
            width=dims.width,
            height=dims.height,
            duration_ms=dims.duration_ms if kind == "video" else None,
            rotation=dims.rotation,
        )
    except MediaError:
        raise
    except Unsupported as exc:
        fail(
            f"{local.label} is a valid {mime} file, but {exc}; PostQued posts videos with a picture and images.",
            "UNSUPPORTED_MEDIA_TYPE",
            "Pass a file with a video track. To post this sound, put it over a picture first, for example "
            "`ffmpeg -loop 1 -i COVER.jpg -i INPUT -c:v libx264 -tune stillimage -c:a aac -shortest OUTPUT.mp4`.",
            supported=list(SUPPORTED_TYPES),
        )
    except LimitReached as exc:
        fail(
            f"{local.label} was not fully checked: {exc}. This is a limit of this server's media check, not "
            "damage in the file.",
            "PROBE_LIMIT",
            "Rewrite the file's headers without re-encoding (for example `ffmpeg -i INPUT -c copy -movflags "
            "+faststart OUTPUT.mp4`), then upload OUTPUT.mp4.",
        )
    except (Malformed, struct.error, IndexError, ValueError, OverflowError, RecursionError, OSError) as exc:
        if isinstance(exc, Malformed):
            reason = str(exc)
        elif isinstance(exc, OSError):
            reason = "reading it failed"
        else:
            reason = "its structure is invalid"  # includes a size pydantic refuses (ValueError)
        fail(
            f"{local.label} could not be read as {mime}: {reason}.",
            "PROBE_FAILED",
            "The file looks damaged or incomplete (an interrupted download or copy, or a recording that "
            "is still being written). Check that it plays, re-export or copy it again, then call the tool "
            "again.",
        )
    return info


# --------------------------------------------------------------------------------------------------
# 4. Everything in order
# --------------------------------------------------------------------------------------------------


@dataclass
class Prepared:
    """A checked file, ready to send: the bytes, their name and what they are.

    ``handle`` is what is sent: the descriptor the checks read from, or (for a converted HEIC photo) the
    JPEG made from it, in memory. ``original`` is always that checked descriptor.
    """

    local: LocalFile
    info: MediaInfo  # of the bytes sent
    handle: BinaryIO
    original: BinaryIO
    filename: str
    converted_from: str | None = None
    original_sha256: str | None = None  # known up front for a converted file (read whole to convert it)

    def verify_unchanged(self) -> None:
        self.local.verify_unchanged(self.original)

    def close(self) -> None:
        self.handle.close()
        self.original.close()

    def __enter__(self) -> Prepared:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_media(
    path: str | os.PathLike[str],
    allowed_dirs: Sequence[str | os.PathLike[str]],
    *,
    max_video_bytes: int = MAX_VIDEO_BYTES,
    max_image_bytes: int = MAX_IMAGE_BYTES,
) -> Prepared:
    """Path policy, type, size limit and probe, in that order, all read from one checked descriptor.

    A HEIC/HEIF photo is converted to JPEG first (the limits then apply to the original and to the JPEG).
    The result holds the descriptor open: an upload hashes and sends from it, never from the path again.
    The caller closes it.
    """
    local = check_path(path, allowed_dirs)
    handle = local.open_checked()
    try:
        handle.seek(0)
        if is_heif(handle.read(SNIFF_BYTES)):
            prepared = _converted(local, handle, max_image_bytes)
        else:
            mime = detect_type(local, handle)
            check_size(mime, local.size, max_video_bytes, max_image_bytes)
            info = probe(local, mime, handle)
            prepared = Prepared(local, info, handle, handle, upload_name(local.path.name, mime))
        prepared.verify_unchanged()
    except BaseException:
        handle.close()
        raise
    return prepared


def _converted(local: LocalFile, handle: BinaryIO, max_image_bytes: int) -> Prepared:
    check_size("image/jpeg", local.size, max_image_bytes=max_image_bytes)
    converted = convert_heif(handle, local.size, local.label)
    check_size("image/jpeg", len(converted.jpeg), max_image_bytes=max_image_bytes)
    jpeg = io.BytesIO(converted.jpeg)
    info = probe(local, "image/jpeg", jpeg, len(converted.jpeg))
    name = upload_name(local.path.name, "image/jpeg")
    return Prepared(local, info, jpeg, handle, name, "image/heic", converted.source_sha256)


def inspect_file(
    path: str | os.PathLike[str],
    allowed_dirs: Sequence[str | os.PathLike[str]],
    *,
    max_video_bytes: int = MAX_VIDEO_BYTES,
    max_image_bytes: int = MAX_IMAGE_BYTES,
) -> tuple[LocalFile, MediaInfo]:
    """Path policy, type, size limit and probe, in that order; the file must not change meanwhile."""
    with open_media(path, allowed_dirs, max_video_bytes=max_video_bytes, max_image_bytes=max_image_bytes) as ready:
        return ready.local, ready.info

"""Probing dispatch, and the whole inspection in order (policy, type, size, probe) from one descriptor."""

from __future__ import annotations

import os
import struct
from collections.abc import Sequence
from typing import BinaryIO, Final, Literal

from postqued.errors import MediaError
from postqued.media.ebml import probe_webm
from postqued.media.images import probe_gif, probe_jpeg, probe_png, probe_webp
from postqued.media.isobmff import probe_isobmff
from postqued.media.kinds import MAX_IMAGE_BYTES, MAX_VIDEO_BYTES, SUPPORTED_TYPES, VIDEO_TYPES, MediaInfo, fail
from postqued.media.policy import LocalFile, check_path
from postqued.media.reader import Malformed, Reader
from postqued.media.sniff import check_size, detect_type

_PROBES: Final = {
    "video/mp4": probe_isobmff,
    "video/quicktime": probe_isobmff,
    "video/webm": probe_webm,
    "image/jpeg": probe_jpeg,
    "image/png": probe_png,
    "image/webp": probe_webp,
    "image/gif": probe_gif,
}


def probe(local: LocalFile, mime: str, handle: BinaryIO | None = None) -> MediaInfo:
    """Width, height, duration and rotation read from the file; ``PROBE_FAILED`` when it is malformed.

    Reads from ``handle`` (from ``local.open_checked()``) when given, else opens the file once.
    """
    parser = _PROBES.get(mime)
    if parser is None:
        fail(f"{mime!r} is not a supported media type.", "UNSUPPORTED_MEDIA_TYPE", supported=list(SUPPORTED_TYPES))
    try:
        if handle is not None:
            dims = parser(Reader(handle, local.size))
        else:
            with local.open_checked() as opened:
                dims = parser(Reader(opened, local.size))
        kind: Literal["video", "image"] = "video" if mime in VIDEO_TYPES else "image"
        info = MediaInfo(
            mime_type=mime,  # a key of _PROBES, so one of the seven
            media_type=kind,
            size=local.size,
            width=dims.width,
            height=dims.height,
            duration_ms=dims.duration_ms if kind == "video" else None,
            rotation=dims.rotation,
        )
    except MediaError:
        raise
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


def open_media(
    path: str | os.PathLike[str],
    allowed_dirs: Sequence[str | os.PathLike[str]],
    *,
    max_video_bytes: int = MAX_VIDEO_BYTES,
    max_image_bytes: int = MAX_IMAGE_BYTES,
) -> tuple[LocalFile, MediaInfo, BinaryIO]:
    """Path policy, type, size limit and probe, in that order, all read from one checked descriptor.

    Returns that open handle too: an upload hashes and sends from it, never from the path again. The
    caller closes it.
    """
    local = check_path(path, allowed_dirs)
    handle = local.open_checked()
    try:
        mime = detect_type(local, handle)
        check_size(mime, local.size, max_video_bytes, max_image_bytes)
        info = probe(local, mime, handle)
        local.verify_unchanged(handle)
    except BaseException:
        handle.close()
        raise
    return local, info, handle


def inspect_file(
    path: str | os.PathLike[str],
    allowed_dirs: Sequence[str | os.PathLike[str]],
    *,
    max_video_bytes: int = MAX_VIDEO_BYTES,
    max_image_bytes: int = MAX_IMAGE_BYTES,
) -> tuple[LocalFile, MediaInfo]:
    """Path policy, type, size limit and probe, in that order; the file must not change meanwhile."""
    local, info, handle = open_media(
        path, allowed_dirs, max_video_bytes=max_video_bytes, max_image_bytes=max_image_bytes
    )
    handle.close()
    return local, info

"""PostQued's seven media types, their extensions and size limits, what a probe reports, and the one refusal helper."""

from __future__ import annotations

import os
from typing import Final, Literal, NoReturn, get_args

from pydantic import BaseModel, ConfigDict, Field

from postqued.errors import MediaError

MimeType = Literal[
    "video/mp4",
    "video/quicktime",
    "video/webm",
    "image/jpeg",
    "image/png",
    "image/webp",
    "image/gif",
]
SUPPORTED_TYPES: Final[tuple[MimeType, ...]] = get_args(MimeType)
VIDEO_TYPES: Final[frozenset[str]] = frozenset({"video/mp4", "video/quicktime", "video/webm"})
IMAGE_TYPES: Final[frozenset[str]] = frozenset(SUPPORTED_TYPES) - VIDEO_TYPES

EXTENSIONS: Final[dict[str, MimeType]] = {
    ".mp4": "video/mp4",
    ".m4v": "video/mp4",
    ".mov": "video/quicktime",
    ".webm": "video/webm",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".jfif": "image/jpeg",  # what some browsers and Windows save JPEGs as; sent under a .jpg name
    ".jpe": "image/jpeg",
    ".png": "image/png",
    ".webp": "image/webp",
    ".gif": "image/gif",
}
PREFERRED_EXTENSION: Final[dict[str, str]] = {
    "video/mp4": ".mp4",
    "video/quicktime": ".mov",
    "video/webm": ".webm",
    "image/jpeg": ".jpg",
    "image/png": ".png",
    "image/webp": ".webp",
    "image/gif": ".gif",
}

# One container family with two brands: ffprobe reads both as "mov,mp4" and PostQued takes both, so a
# QuickTime-branded .mp4 or an ISO-branded .mov is accepted under the type its extension names.
SAME_FAMILY: Final[frozenset[str]] = frozenset({"video/mp4", "video/quicktime"})


_ALIASES: Final = frozenset({".jfif", ".jpe"})


def upload_name(name: str, mime: str) -> str:
    """The file name sent to PostQued: ``name``, or its stem with the type's usual extension when its own
    extension is an alias (.jfif) or belongs to the file it was converted from (.heic)."""
    stem, ext = os.path.splitext(name)
    if ext.lower() in EXTENSIONS and ext.lower() not in _ALIASES:
        return name
    return stem + PREFERRED_EXTENSION[mime]


MAX_VIDEO_BYTES: Final = 4 * 1024**3
MAX_IMAGE_BYTES: Final = 20 * 1024**2

SNIFF_BYTES: Final = 4096
READ_CHUNK: Final = 64 * 1024

SUPPORTED_LIST: Final = "MP4 (video/mp4), MOV (video/quicktime), WebM (video/webm), JPEG, PNG, WebP and GIF"


def fail(message: str, code: str, next_step: str | None = None, **details: object) -> NoReturn:
    raise MediaError(message, code=code, next_step=next_step, details=dict(details) or None)


class MediaInfo(BaseModel):
    """What the file itself says about the media (no ffmpeg involved)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    mime_type: MimeType = Field(description="Sniffed MIME type, one of PostQued's seven.")
    media_type: Literal["video", "image"]
    size: int = Field(ge=1, description="File size in bytes.")
    width: int = Field(ge=1, description="Displayed width in pixels (after rotation).")
    height: int = Field(ge=1, description="Displayed height in pixels (after rotation).")
    duration_ms: int | None = Field(
        default=None,
        ge=0,
        description="Duration in milliseconds from the container; None for images or when the file does not say.",
    )
    rotation: Literal[0, 90, 180, 270] = Field(
        default=0,
        description="Clockwise degrees a player turns the stored picture (video display matrix, JPEG EXIF).",
    )

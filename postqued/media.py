"""Local media: which files may be uploaded, what they really are, and their size, dimensions and duration.

Three steps, each refusing with a ``MediaError`` that names a stable code and a next step:

1. ``check_path``: the path must resolve (symlinks followed) to a readable, non-empty regular file inside
   one of the allowed media folders, with no hidden component (a name starting with ``.``) below that
   folder. Special files (FIFOs, sockets, devices) are refused from ``stat`` alone, never opened.
2. ``detect_type`` / ``check_size``: the first bytes must be one of PostQued's seven types and agree with
   the file name's extension; videos may be up to 4 GiB and images up to 20 MiB.
3. ``probe``: width, height, duration and rotation are read from the container itself (ISO BMFF boxes,
   EBML elements, JPEG/PNG/WebP/GIF headers). No ffmpeg, no third-party parser; every read is bounded
   (video probes seek over the media data and read only metadata, within small caps; image probes
   stream through the file, at most 20 MiB, in 64 KiB reads to find its end) and every structural
   problem, truncation included, is ``PROBE_FAILED``.

Reported values: width and height as displayed (MP4/MOV track header size, which includes the pixel
aspect ratio, swapped for a 90/270 degree display matrix; JPEG swapped for EXIF orientations 5-8);
``duration_ms`` from mvhd (or mehd, or the video track's fragments when moov is empty), from the WebM
Info Duration, or None when the file does not declare one (e.g. a browser MediaRecorder WebM).

``inspect_file`` runs all three in order. The functions are synchronous and do small, bounded reads;
async callers may run them in a worker thread.

Messages quote the caller's path with ``repr`` (it is data, never an instruction) and never include
bytes read from a file.
"""

from __future__ import annotations

import math
import os
import re
import stat
import struct
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, Final, Literal, NamedTuple, NoReturn, get_args

from pydantic import BaseModel, ConfigDict, Field

from postqued.errors import MediaError

__all__ = [
    "EXTENSIONS",
    "IMAGE_TYPES",
    "MAX_IMAGE_BYTES",
    "MAX_VIDEO_BYTES",
    "SUPPORTED_TYPES",
    "VIDEO_TYPES",
    "FileIdentity",
    "LocalFile",
    "MediaInfo",
    "MimeType",
    "check_path",
    "check_size",
    "detect_type",
    "inspect_file",
    "open_media",
    "probe",
    "sniff",
]

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
    ".png": "image/png",
    ".webp": "image/webp",
    ".gif": "image/gif",
}
_PREFERRED_EXTENSION: Final[dict[str, str]] = {
    "video/mp4": ".mp4",
    "video/quicktime": ".mov",
    "video/webm": ".webm",
    "image/jpeg": ".jpg",
    "image/png": ".png",
    "image/webp": ".webp",
    "image/gif": ".gif",
}

MAX_VIDEO_BYTES: Final = 4 * 1024**3
MAX_IMAGE_BYTES: Final = 20 * 1024**2

SNIFF_BYTES: Final = 4096
_READ_CHUNK: Final = 64 * 1024

_SUPPORTED_LIST: Final = "MP4 (video/mp4), MOV (video/quicktime), WebM (video/webm), JPEG, PNG, WebP and GIF"


def _fail(message: str, code: str, next_step: str | None = None, **details: object) -> NoReturn:
    raise MediaError(message, code=code, next_step=next_step, details=dict(details) or None)


# --------------------------------------------------------------------------------------------------
# 1. Path policy
# --------------------------------------------------------------------------------------------------


class FileIdentity(NamedTuple):
    """What must stay the same between the check, the upload and the end of the upload."""

    st_dev: int
    st_ino: int
    st_size: int
    st_mtime_ns: int

    @classmethod
    def of(cls, st: os.stat_result) -> FileIdentity:
        return cls(st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)


_OPEN_FLAGS: Final = (
    os.O_RDONLY
    | getattr(os, "O_NONBLOCK", 0)  # a FIFO swapped in after the check must not block the open
    | getattr(os, "O_NOFOLLOW", 0)  # nor a symlink swapped in for the (already resolved) final name
    | getattr(os, "O_CLOEXEC", 0)
    | getattr(os, "O_BINARY", 0)
)

# Folders between an allowed folder and the file are opened one by one, each relative to the one before and
# never through a symbolic link, so a folder swapped for a link mid-check cannot lead outside (issue 12.3).
_DIR_FLAGS: Final = (
    os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
)
_WALKS: Final = os.open in os.supports_dir_fd and hasattr(os, "O_DIRECTORY") and hasattr(os, "O_NOFOLLOW")

_CHANGED_NEXT_STEP: Final = (
    "Wait until the file is completely written and no longer being edited or replaced, then call the tool again."
)


@dataclass(frozen=True, slots=True)
class LocalFile:
    """A regular file that passed the path policy.

    ``path`` is fully resolved and lies below ``root``, the resolved allowed folder it was found in;
    ``requested`` is the path as the caller wrote it (for messages only).
    """

    path: Path
    size: int
    identity: FileIdentity
    root: Path
    requested: str = field(default="", compare=False)

    @property
    def label(self) -> str:
        """The caller's path, quoted as data."""
        return repr(self.requested or str(self.path))

    def _changed(self, what: str) -> NoReturn:
        _fail(f"{self.label} {what} after it was checked.", "FILE_CHANGED", _CHANGED_NEXT_STEP)

    def verify_unchanged(self, handle: BinaryIO | None = None) -> None:
        """Raise ``FILE_CHANGED`` unless the file is still the same inode with the same size and mtime.

        With ``handle`` (from ``open_checked``) the open descriptor is checked too: it is what is read.
        """
        try:
            st = os.lstat(self.path)
            opened = os.fstat(handle.fileno()) if handle is not None else st
        except OSError:
            self._changed("was removed, renamed or became unreadable")
        if not stat.S_ISREG(st.st_mode):
            self._changed("was replaced by something that is not a regular file")
        if FileIdentity.of(st) != self.identity or FileIdentity.of(opened) != self.identity:
            self._changed("was modified or replaced (its size, modification time or inode changed)")

    def _open_fd(self) -> int:
        if not _WALKS:  # no openat(): the final component alone is guarded, then the identity
            return os.open(self.path, _OPEN_FLAGS)
        parts = self.path.relative_to(self.root).parts
        if not parts:
            raise IsADirectoryError(self.path)
        fd = os.open(self.root, _DIR_FLAGS & ~getattr(os, "O_NOFOLLOW", 0))  # the configured folder itself
        try:
            for name in parts[:-1]:
                below = os.open(name, _DIR_FLAGS, dir_fd=fd)
                os.close(fd)
                fd = below
            return os.open(parts[-1], _OPEN_FLAGS, dir_fd=fd)
        finally:
            os.close(fd)

    def open_checked(self) -> BinaryIO:
        """Open the file for reading and prove that the opened file is the one that was checked.

        The file is reached from ``root`` one component at a time, each opened relative to the folder
        before it with ``O_NOFOLLOW`` (folders also ``O_DIRECTORY``): a folder or the file swapped for a
        symbolic link at any moment makes the open fail instead of leading outside the allowed folder.
        Opening never blocks (``O_NONBLOCK``), and the opened descriptor's ``fstat`` must match
        ``identity``. Read only from the returned handle; never open the path again.
        """
        try:
            fd = self._open_fd()
        except PermissionError:
            _fail(
                f"{self.label} cannot be opened: permission denied.",
                "PATH_NOT_READABLE",
                "Make the file readable by the user running the server (or copy it somewhere readable).",
            )
        except OSError:
            self._changed("could not be opened (it was removed, renamed or replaced)")
        try:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode):
                self._changed("was replaced by something that is not a regular file")
            if FileIdentity.of(st) != self.identity:
                self._changed("was modified or replaced (its size, modification time or inode changed)")
            return open(fd, "rb", buffering=_READ_CHUNK, closefd=True)
        except BaseException:
            os.close(fd)
            raise


@dataclass(frozen=True, slots=True)
class _Root:
    configured: Path  # absolute, normalized, as configured (not resolved)
    resolved: Path


def _roots(allowed_dirs: Sequence[str | os.PathLike[str]]) -> list[_Root]:
    roots: list[_Root] = []
    for entry in allowed_dirs:
        configured = Path(os.path.normpath(os.path.abspath(os.path.expanduser(os.fspath(entry)))))
        try:
            resolved = Path(os.path.realpath(configured))
        except (OSError, ValueError):
            continue
        roots.append(_Root(configured, resolved))
    return roots


def _folders_text(roots: Sequence[_Root]) -> str:
    if not roots:
        return "none are configured"
    return ", ".join(repr(str(r.configured)) for r in roots)


def _add_folder_hint() -> str:
    return f"add its folder to POSTQUED_MEDIA_DIRS (folders separated by {os.pathsep!r}) and restart the server"


def _cwd_text() -> str:
    try:
        return repr(os.getcwd())
    except OSError:
        return "which no longer exists"


def _is_text(name: str) -> bool:
    """False for names holding undecodable bytes (surrogate escapes) or lone surrogates."""
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _is_hidden_name(name: str) -> bool:
    return name.startswith(".") and name not in (".", "..")


def _hidden_below(parts: tuple[str, ...], root_parts: tuple[str, ...]) -> list[str] | None:
    """Hidden names in ``parts`` below ``root_parts``; None when ``parts`` is not below the root."""
    if len(parts) < len(root_parts) or parts[: len(root_parts)] != root_parts:
        return None
    return [p for p in parts[len(root_parts) :] if _is_hidden_name(p)]


def _refuse_hidden(label: str, names: Sequence[str], roots: Sequence[_Root]) -> NoReturn:
    _fail(
        f"{label} goes through a hidden file or folder ({', '.join(repr(n) for n in names)}); hidden "
        "names (starting with '.') are never uploaded.",
        "PATH_HIDDEN",
        "Copy the file to a visible folder inside an allowed media folder "
        f"({_folders_text(roots)}) and use that path; if the hidden folder itself holds your media, "
        f"{_add_folder_hint()}.",
    )


def _special_kind(mode: int) -> str:
    if stat.S_ISFIFO(mode):
        return "a named pipe (FIFO)"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISLNK(mode):
        return "a symbolic link"
    return "not a regular file"


def check_path(path: str | os.PathLike[str], allowed_dirs: Sequence[str | os.PathLike[str]]) -> LocalFile:
    """Apply the path policy and return the checked file; refusals raise ``MediaError``.

    ``~`` is expanded and a relative path is relative to the server's working directory. Codes:
    PATH_INVALID, PATH_OUTSIDE_MEDIA_DIRS, PATH_HIDDEN, PATH_NOT_FOUND, PATH_BROKEN_LINK,
    PATH_NOT_READABLE, PATH_IS_DIRECTORY, PATH_NOT_REGULAR_FILE, FILE_EMPTY, FILE_CHANGED.
    """
    raw = os.fspath(path)
    if isinstance(raw, bytes):  # tolerated at run time although the signature says str
        raw = os.fsdecode(raw)
    label = repr(raw)
    roots = _roots(allowed_dirs)
    folders = _folders_text(roots)
    if not raw.strip() or "\x00" in raw:
        _fail(
            f"{label} is not a usable file path.",
            "PATH_INVALID",
            f"Pass the absolute path of a media file inside an allowed media folder ({folders}).",
        )
    try:
        given = Path(os.path.expanduser(raw))
        if not given.is_absolute():
            given = Path.cwd() / given
        lexical = Path(os.path.abspath(given))
        loose = Path(os.path.realpath(given))  # follows existing links, tolerates missing parts
    except (OSError, ValueError):
        _fail(
            f"{label} cannot be resolved (the server's working directory may no longer exist).",
            "PATH_INVALID",
            f"Pass an absolute path inside an allowed media folder ({folders}).",
        )

    # Containment first, before anything reveals whether a path outside the folders exists.
    containing = [r for r in roots if loose.is_relative_to(r.resolved)]
    if not containing:
        _fail(
            f"{label} is outside the allowed media folders.",
            "PATH_OUTSIDE_MEDIA_DIRS",
            f"Allowed media folders: {folders}. Move or copy the file into one of them, or {_add_folder_hint()}.",
        )

    # Hidden names: below the allowed folder, in the path as given and in the resolved path.
    given_checks = [
        h
        for r in roots
        for root in (r.configured, r.resolved)
        if (h := _hidden_below(lexical.parts, root.parts)) is not None
    ]
    given_hidden = min(given_checks, key=len) if given_checks else [n for n in (lexical.name,) if _is_hidden_name(n)]
    if given_hidden:
        _refuse_hidden(label, given_hidden, roots)
    resolved_checks = [h for r in containing if (h := _hidden_below(loose.parts, r.resolved.parts)) is not None]
    resolved_hidden = min(resolved_checks, key=len) if resolved_checks else []
    if resolved_hidden:
        _refuse_hidden(label, resolved_hidden, roots)

    try:
        real = Path(os.path.realpath(given, strict=True))
    except PermissionError:
        _fail(
            f"{label} cannot be reached: permission denied on the file or one of its folders.",
            "PATH_NOT_READABLE",
            "Make the file and its folders readable by the user running the server, or copy the file "
            f"into an allowed media folder ({folders}).",
        )
    except (FileNotFoundError, NotADirectoryError):
        if os.path.islink(given):
            _fail(
                f"{label} is a symbolic link whose target does not exist.",
                "PATH_BROKEN_LINK",
                "Point the link at an existing file or pass the real file's path.",
            )
        _fail(
            f"{label} does not exist.",
            "PATH_NOT_FOUND",
            "Check the spelling and pass an absolute path; relative paths are resolved against the "
            f"server's working directory ({_cwd_text()}). Allowed media folders: {folders}.",
        )
    except (OSError, RuntimeError, ValueError):  # ELOOP (symlink loop), name too long, ...
        _fail(
            f"{label} cannot be resolved (a symbolic link loop or an over-long name).",
            "PATH_BROKEN_LINK",
            "Pass the real file's path instead of the link.",
        )
    if real != loose or not any(real.is_relative_to(r.resolved) for r in roots):
        # A link changed between the two resolutions.
        _fail(f"{label} changed while it was being checked.", "FILE_CHANGED", _CHANGED_NEXT_STEP)
    if not _is_text(real.name):
        # The name is sent to PostQued as the file name; bytes that are not UTF-8 cannot be.
        _fail(
            f"{label} has a file name that is not valid UTF-8 text.",
            "PATH_INVALID",
            "Rename the file (or copy it) to a name made of ordinary characters and pass that path.",
        )

    try:
        st = os.lstat(real)
    except OSError:
        _fail(f"{label} changed while it was being checked.", "FILE_CHANGED", _CHANGED_NEXT_STEP)
    mode = st.st_mode
    if stat.S_ISDIR(mode):
        _fail(
            f"{label} is a folder, not a file.",
            "PATH_IS_DIRECTORY",
            "Pass the path of one media file inside this folder.",
        )
    if not stat.S_ISREG(mode):
        kind = _special_kind(mode)
        _fail(
            f"{label} is {kind}; only regular files can be uploaded.",
            "PATH_NOT_REGULAR_FILE",
            "Save the media to a regular file inside an allowed media folder and pass that path.",
        )
    if st.st_size == 0:
        _fail(
            f"{label} is empty (0 bytes).",
            "FILE_EMPTY",
            "Wait until the file has been completely written (or re-export it), then call the tool again.",
        )
    root = max((r.resolved for r in roots if real.is_relative_to(r.resolved)), key=lambda p: len(p.parts))
    local = LocalFile(path=real, size=st.st_size, identity=FileIdentity.of(st), root=root, requested=raw)
    with local.open_checked():  # readable, and still the file that was checked
        pass
    return local


# --------------------------------------------------------------------------------------------------
# 2. Type sniffing and size limits
# --------------------------------------------------------------------------------------------------

# ftyp major brands that are not PostQued video (images, audio, 3GPP); anything else with an ftyp is MP4.
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
        return "video/webm" if _ebml_doctype(head) == b"webm" else None
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
        _fail(
            f"{local.label} is not a supported media file{what}. PostQued accepts {_SUPPORTED_LIST}.",
            "UNSUPPORTED_MEDIA_TYPE",
            "Convert it to one of those formats (for example `ffmpeg -i INPUT -c:v libx264 -c:a aac "
            "OUTPUT.mp4` for video, or export the image as JPEG/PNG) and call the tool again.",
            supported=list(SUPPORTED_TYPES),
        )
    ext = local.path.suffix.lower()
    claimed = EXTENSIONS.get(ext)
    if claimed != mime:
        right = _PREFERRED_EXTENSION[mime]
        named = (
            f"its extension {ext!r} says {claimed}"
            if claimed
            else (f"its extension {ext!r} is not one PostQued knows" if ext else "it has no extension")
        )
        _fail(
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
        _fail(f"{mime!r} is not a supported media type.", "UNSUPPORTED_MEDIA_TYPE")
    if size > limit:
        _fail(
            f"The file is {_human(size)} ({size} bytes); the limit for {kind} is {_human(limit)} ({limit} bytes).",
            "FILE_TOO_LARGE",
            f"Make it smaller: {fix}, then call the tool again.",
            size=size,
            limit=limit,
        )


# --------------------------------------------------------------------------------------------------
# 3. Probing
# --------------------------------------------------------------------------------------------------


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


class _Malformed(Exception):
    """Internal: the bytes do not form a valid file of the expected type."""


class _Reader:
    """Exact, bounds-checked reads from an open file of known size."""

    def __init__(self, handle: BinaryIO, size: int) -> None:
        self._f = handle
        self.size = size
        self.pos = 0

    def read_at(self, offset: int, n: int) -> bytes:
        if offset < 0 or n < 0 or offset + n > self.size:
            raise _Malformed("the file ends early (truncated)")
        self._f.seek(offset)
        data = self._f.read(n)
        if len(data) != n:
            raise _Malformed("the file ends early (truncated)")
        return data

    def read_upto(self, offset: int, n: int) -> bytes:
        n = max(0, min(n, self.size - offset))
        self._f.seek(offset)
        return self._f.read(n)

    def read(self, n: int) -> bytes:
        data = self.read_at(self.pos, n)
        self.pos += n
        return data

    def skip(self, n: int) -> None:
        if n < 0 or self.pos + n > self.size:
            raise _Malformed("the file ends early (truncated)")
        self.pos += n

    def u8(self) -> int:
        return self.read(1)[0]

    def u16be(self) -> int:
        return int.from_bytes(self.read(2), "big")


@dataclass
class _Dims:
    width: int
    height: int
    duration_ms: int | None = None
    rotation: Literal[0, 90, 180, 270] = 0


def _ms(duration: int, timescale: int) -> int:
    """Container ticks -> whole milliseconds, rounded half up."""
    return (duration * 1000 + timescale // 2) // timescale


# ---- ISO BMFF (MP4, MOV) -------------------------------------------------------------------------

_MAX_TOP_BOXES: Final = 1_000_000  # fragmented MP4: a moof + mdat pair per fragment
_MAX_CHILD_BOXES: Final = 10_000
_LEAF_CAP: Final = 256  # bytes of mvhd/tkhd/mdhd/hdlr/mehd/stsd we ever need


class _Box(NamedTuple):
    type: bytes
    start: int  # payload start
    end: int  # box end


def _boxes(r: _Reader, start: int, end: int, *, top: bool) -> Iterator[_Box]:
    pos, count = start, 0
    while pos < end:
        count += 1
        if count > (_MAX_TOP_BOXES if top else _MAX_CHILD_BOXES):
            raise _Malformed("too many boxes")
        if end - pos < 8:
            if top and r.read_at(pos, end - pos).strip(b"\x00"):
                raise _Malformed("the file ends in the middle of a box header (truncated)")
            return  # a few zero bytes of padding (QuickTime writes 4-byte terminators)
        size, typ = struct.unpack(">I4s", r.read_at(pos, 8))
        header = 8
        if size == 1:
            if end - pos < 16:
                raise _Malformed("the file ends in the middle of a box header (truncated)")
            size = int.from_bytes(r.read_at(pos + 8, 8), "big")
            header = 16
        elif size == 0:
            size = end - pos  # to the end of the file (or of the parent)
        if size < header:
            raise _Malformed("a box has an impossible size")
        if pos + size > end:
            raise _Malformed(
                "a box extends past the end of the file (truncated)" if top else "a box extends past its parent"
            )
        yield _Box(typ, pos + header, pos + size)
        pos += size


def _leaf(r: _Reader, box: _Box, need: int) -> bytes:
    """The start of a box the caller matched by type (so its type is one of ours, safe to name)."""
    data = r.read_at(box.start, min(box.end - box.start, _LEAF_CAP))
    if len(data) < need:
        raise _Malformed(f"the {box.type.decode('latin-1')!r} box is too short")
    return data


def _full_box_times(data: bytes, what: str) -> tuple[int, int, bool]:
    """(timescale, duration, duration_unknown) from an mvhd/mdhd payload."""
    if data[0] == 1:
        if len(data) < 32:
            raise _Malformed(f"{what} is too short")
        timescale, duration = struct.unpack_from(">IQ", data, 20)
        return timescale, duration, duration == 0xFFFF_FFFF_FFFF_FFFF
    if data[0] != 0:
        raise _Malformed(f"{what} has an unknown version")
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


def _parse_trak(r: _Reader, trak: _Box) -> _Track:
    track = _Track()
    for box in _boxes(r, trak.start, trak.end, top=False):
        if box.type == b"tkhd":
            data = _leaf(r, box, 4)
            base = 52 if data[0] == 1 else 40
            if len(data) < base + 44:
                raise _Malformed("tkhd is too short")
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


def _parse_minf(r: _Reader, minf: _Box, track: _Track) -> None:
    for box in _boxes(r, minf.start, minf.end, top=False):
        if box.type != b"stbl":
            continue
        for sub in _boxes(r, box.start, box.end, top=False):
            if sub.type == b"stsd":
                data = _leaf(r, sub, 8)
                if int.from_bytes(data[4:8], "big") >= 1 and len(data) >= 44:
                    track.coded_width, track.coded_height = struct.unpack_from(">HH", data, 40)


def _probe_isobmff(r: _Reader) -> _Dims:
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
        raise _Malformed("no 'moov' box (the file is incomplete or was not finalised)")
    if not has_mdat:
        raise _Malformed("no 'mdat' box (the file holds no media data)")

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
        raise _Malformed("no usable 'mvhd' box")
    videos = [t for t in tracks if t.handler == b"vide"]
    if not videos:
        raise _Malformed("no video track")
    video = next((t for t in videos if t.enabled), videos[0])

    width, height = video.width, video.height
    if width == 0 or height == 0:
        width, height = video.coded_width, video.coded_height
    if width == 0 or height == 0:
        raise _Malformed("the video track has no picture size")
    if video.rotation in (90, 270):
        width, height = height, width

    candidates: list[int] = []  # whole milliseconds; the longest wins
    if not duration_unknown and duration > 0:
        candidates.append(_ms(duration, timescale))
    elif video.media_timescale > 0 and video.media_duration > 0:
        candidates.append(_ms(video.media_duration, video.media_timescale))
    elif 0 < video.tkhd_duration < 0xFFFF_FFFF:
        candidates.append(_ms(video.tkhd_duration, timescale))
    if fragment_duration > 0:
        candidates.append(_ms(fragment_duration, timescale))
    if fragmented and video.media_timescale > 0:
        # moov describes only what precedes the first fragment; the fragments say the rest
        ticks = _fragmented_ticks(r, video, trex_durations.get(video.track_id, 0))
        if ticks > 0:
            candidates.append(_ms(ticks, video.media_timescale))
    return _Dims(width, height, max(candidates) if candidates else None, video.rotation)


_TRUN_BUDGET: Final = 64 * 1024 * 1024  # bytes of per-sample tables read across all fragments


def _trun_ticks(r: _Reader, box: _Box, default_duration: int, budget: list[int]) -> int:
    head = _leaf(r, box, 8)
    flags, count = int.from_bytes(head[1:4], "big"), int.from_bytes(head[4:8], "big")
    if not flags & 0x100:  # no per-sample durations: all samples last the default
        return count * default_duration
    offset = 8 + 4 * bool(flags & 0x01) + 4 * bool(flags & 0x04)
    fields = bin(flags & 0xF00).count("1")
    size = count * 4 * fields
    if box.start + offset + size > box.end:
        raise _Malformed("a 'trun' box is shorter than its sample table")
    budget[0] -= size
    if budget[0] < 0:
        raise _Malformed("the fragment tables are implausibly large")
    table = r.read_at(box.start + offset, size)
    return sum(entry[0] for entry in struct.iter_unpack(">" + "I" * fields, table))


def _fragmented_ticks(r: _Reader, video: _Track, trex_duration: int) -> int:
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
                            raise _Malformed("a 'tfhd' box is too short")
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
        raise _Malformed("an EBML element ends early")
    first = buf[pos]
    if first == 0:
        raise _Malformed("invalid EBML length")
    length = 9 - first.bit_length()
    if (is_id and length > 4) or pos + length > end:
        raise _Malformed("invalid or truncated EBML element")
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
            raise _Malformed("too many EBML elements")
        eid, p = _vint(buf, pos, end, is_id=True)
        if eid in stop:
            break
        size, p = _vint(buf, p, end, is_id=False)
        if size == _UNKNOWN:
            if eid not in _MASTERS or eid in stop:
                raise _Malformed("unknown size on an element that cannot have one")
            _, child_end = _elements(buf, p, end, stop | {eid})
            out.append(_El(eid, p, child_end))
            pos = child_end
            continue
        if p + size > end:
            raise _Malformed("an EBML element extends past its parent")
        out.append(_El(eid, p, p + size))
        pos = p + size
    return out, pos


def _uint(buf: bytes, el: _El) -> int:
    if el.end - el.start > 8:
        raise _Malformed("an EBML integer is too long")
    return int.from_bytes(buf[el.start : el.end], "big")


def _ebml_doctype(head: bytes) -> bytes | None:
    try:
        eid, p = _vint(head, 0, len(head), is_id=True)
        size, p = _vint(head, p, len(head), is_id=False)
        if eid != _EBML or size == _UNKNOWN:
            return None
        children, _ = _elements(head, p, min(len(head), p + size))
    except _Malformed:
        return None
    for el in children:
        if el.id == _DOCTYPE:
            return head[el.start : el.end].rstrip(b"\x00")
    return None


def _header_at(r: _Reader, pos: int, end: int) -> tuple[int, int, int]:
    """(id, size or _UNKNOWN, data start) of the element at ``pos`` in the file."""
    buf = r.read_upto(pos, min(12, end - pos))
    eid, p = _vint(buf, 0, len(buf), is_id=True)
    size, p = _vint(buf, p, len(buf), is_id=False)
    return eid, size, pos + p


def _probe_webm(r: _Reader) -> _Dims:
    eid, size, pos = _header_at(r, 0, r.size)
    if eid != _EBML or size == _UNKNOWN:
        raise _Malformed("no EBML header")
    pos += size
    for _ in range(_MAX_ELEMENTS):  # skip anything (Void) between the header and the Segment
        if pos >= r.size:
            raise _Malformed("no Segment")
        eid, size, data = _header_at(r, pos, r.size)
        if eid == _SEGMENT:
            break
        if size == _UNKNOWN:
            raise _Malformed("unknown-size element before the Segment")
        pos = data + size
    else:
        raise _Malformed("no Segment")
    seg_end = r.size if size == _UNKNOWN else data + size
    if seg_end > r.size:
        raise _Malformed("the Segment extends past the end of the file (truncated)")

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
                raise _Malformed("an element extends past the end of the Segment (truncated)")
            if eid in (_INFO, _TRACKS):
                if size > cap:
                    raise _Malformed("the WebM header is implausibly large")
                buf = r.read_at(data, size)
                parsed = (buf, _elements(buf, 0, len(buf))[0])
        if eid == _INFO and info is None:
            info = parsed
        elif eid == _TRACKS and tracks is None:
            tracks = parsed
        pos = end
    else:
        raise _Malformed("too many EBML elements")
    if tracks is None:
        raise _Malformed("no Tracks element before the media data")

    width = height = 0
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
        width = next((_uint(tbuf, k) for k in vkids if k.id == _PIXEL_WIDTH), 0)
        height = next((_uint(tbuf, k) for k in vkids if k.id == _PIXEL_HEIGHT), 0)
        break
    if width == 0 or height == 0:
        raise _Malformed("no video track with a picture size")

    duration_ms: int | None = None
    if info is not None:
        ibuf, ikids = info
        scale = next((_uint(ibuf, k) for k in ikids if k.id == _TIMECODE_SCALE), 1_000_000)
        dur = next((k for k in ikids if k.id == _DURATION), None)
        if dur is not None:
            raw = ibuf[dur.start : dur.end]
            if len(raw) == 4:
                (value,) = struct.unpack(">f", raw)
            elif len(raw) == 8:
                (value,) = struct.unpack(">d", raw)
            else:
                raise _Malformed("the Duration is not a 4- or 8-byte float")
            if not math.isfinite(value) or value < 0 or scale == 0:
                raise _Malformed("the Duration is not a valid number")
            ms = math.floor(value * scale / 1_000_000 + 0.5)
            duration_ms = ms if ms > 0 else None
    return _Dims(width, height, duration_ms)


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


def _skip_entropy_coded(r: _Reader) -> None:
    """Move ``r.pos`` to the first marker after a scan's entropy-coded data."""
    while True:
        chunk = r.read_upto(r.pos, _READ_CHUNK)
        if len(chunk) < 2:
            raise _Malformed("the image data ends early (truncated)")
        match = _MARKER_IN_SCAN.search(chunk)
        if match is not None:
            r.pos += match.start()
            return
        r.pos += len(chunk) - 1  # the last byte may be the 0xFF of a marker split across chunks


def _probe_jpeg(r: _Reader) -> _Dims:
    if r.read(2) != b"\xff\xd8":
        raise _Malformed("no JPEG start marker")
    dims: tuple[int, int] | None = None
    orientation: int | None = None
    scanned = False
    for _ in range(_MAX_MARKERS):
        if r.u8() != 0xFF:
            raise _Malformed("expected a JPEG marker")
        marker = r.u8()
        for _fill in range(_READ_CHUNK):  # fill bytes
            if marker != 0xFF:
                break
            marker = r.u8()
        else:
            raise _Malformed("too many JPEG fill bytes")
        if marker == 0xD9:  # EOI
            break
        if 0xD0 <= marker <= 0xD7 or marker == 0x01:
            continue
        if marker == 0xD8:
            raise _Malformed("a second JPEG start marker")
        length = r.u16be()
        if length < 2:
            raise _Malformed("a JPEG segment has an impossible length")
        payload = length - 2
        if marker in _SOF:
            data = r.read(payload)
            if len(data) < 6:
                raise _Malformed("the JPEG frame header is too short")
            height, width = struct.unpack_from(">HH", data, 1)
            if dims is None:
                if width == 0 or height == 0:
                    raise _Malformed("the JPEG frame header has no picture size")
                dims = (width, height)
        elif marker == 0xE1 and orientation is None and payload >= 6:
            start = r.pos
            data = r.read(min(payload, _READ_CHUNK))
            if data.startswith(b"Exif\x00\x00"):
                orientation = _exif_orientation(data)
            r.pos = start
            r.skip(payload)
        elif marker == 0xDA:  # start of scan: skip its header, then its entropy-coded data
            if dims is None:
                raise _Malformed("image data before the JPEG frame header")
            r.skip(payload)
            _skip_entropy_coded(r)
            scanned = True
        else:
            r.skip(payload)
    else:
        raise _Malformed("too many JPEG markers")
    if dims is None or not scanned:
        raise _Malformed("no image data")
    rotation = _EXIF_ROTATION.get(orientation or 1, 0)
    width, height = dims
    if (orientation or 1) >= 5:
        width, height = height, width
    return _Dims(width, height, None, rotation)


# ---- PNG -----------------------------------------------------------------------------------------

_MAX_CHUNKS: Final = 100_000


def _probe_png(r: _Reader) -> _Dims:
    head = r.read_at(0, 33)
    if head[:8] != b"\x89PNG\r\n\x1a\n" or head[8:16] != b"\x00\x00\x00\x0dIHDR":
        raise _Malformed("the PNG does not start with an IHDR chunk")
    if zlib.crc32(head[12:29]) != int.from_bytes(head[29:33], "big"):
        raise _Malformed("the PNG header checksum is wrong")
    width, height = struct.unpack_from(">II", head, 16)
    if not (0 < width < 2**31 and 0 < height < 2**31):
        raise _Malformed("the PNG has no valid picture size")
    pos, has_data = 33, False
    for _ in range(_MAX_CHUNKS):
        length, ctype = struct.unpack(">I4s", r.read_at(pos, 8))
        if length >= 2**31:
            raise _Malformed("a PNG chunk has an impossible length")
        if pos + 12 + length > r.size:
            raise _Malformed("the PNG ends early (truncated)")
        if ctype == b"IDAT":
            has_data = True
        elif ctype == b"IEND":
            break
        pos += 12 + length
    else:
        raise _Malformed("too many PNG chunks")
    if not has_data:
        raise _Malformed("the PNG has no image data")
    return _Dims(width, height)


# ---- WebP ----------------------------------------------------------------------------------------


def _probe_webp(r: _Reader) -> _Dims:
    head = r.read_at(0, 12)
    if head[:4] != b"RIFF" or head[8:12] != b"WEBP":
        raise _Malformed("not a RIFF/WEBP file")
    end = 8 + int.from_bytes(head[4:8], "little")
    if end < 20:
        raise _Malformed("the WebP container is too small")
    if end > r.size:
        raise _Malformed("the WebP ends early (truncated)")
    dims: tuple[int, int] | None = None
    has_image = False
    pos = 12
    for index in range(_MAX_CHUNKS):
        if pos >= end:
            break
        fourcc, csize = struct.unpack("<4sI", r.read_at(pos, 8))
        data_end = pos + 8 + csize
        if data_end > end:
            raise _Malformed("a WebP chunk extends past the end of the file (truncated)")
        if index == 0:
            if fourcc == b"VP8 ":
                data = r.read_at(pos + 8, min(csize, 10))
                if len(data) < 10 or data[3:6] != b"\x9d\x01\x2a" or data[0] & 1:
                    raise _Malformed("the VP8 frame header is invalid")
                w, h = struct.unpack_from("<HH", data, 6)
                dims = (w & 0x3FFF, h & 0x3FFF)
            elif fourcc == b"VP8L":
                data = r.read_at(pos + 8, min(csize, 5))
                if len(data) < 5 or data[0] != 0x2F:
                    raise _Malformed("the VP8L header is invalid")
                bits = int.from_bytes(data[1:5], "little")
                if bits >> 29:
                    raise _Malformed("unknown VP8L version")
                dims = ((bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1)
            elif fourcc == b"VP8X":
                data = r.read_at(pos + 8, min(csize, 10))
                if len(data) < 10:
                    raise _Malformed("the VP8X header is too short")
                dims = (
                    int.from_bytes(data[4:7], "little") + 1,
                    int.from_bytes(data[7:10], "little") + 1,
                )
            else:
                raise _Malformed("the WebP starts with an unknown chunk")
        if fourcc in (b"VP8 ", b"VP8L", b"ANMF"):
            has_image = True
        pos = data_end + (csize & 1)
    else:
        raise _Malformed("too many WebP chunks")
    if dims is None or not has_image or dims[0] == 0 or dims[1] == 0:
        raise _Malformed("the WebP has no image data")
    return _Dims(*dims)


# ---- GIF -----------------------------------------------------------------------------------------

_MAX_GIF_BLOCKS: Final = 2_000_000


def _skip_sub_blocks(r: _Reader, budget: list[int]) -> None:
    """Move past a chain of data sub-blocks (length byte, data) ending with a zero length."""
    while True:
        chunk = r.read_upto(r.pos, _READ_CHUNK)
        if not chunk:
            raise _Malformed("the GIF ends early (truncated)")
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
            raise _Malformed("too many GIF blocks")


def _probe_gif(r: _Reader) -> _Dims:
    head = r.read(13)
    if head[:6] not in (b"GIF87a", b"GIF89a"):
        raise _Malformed("not a GIF")
    width, height, packed = struct.unpack_from("<HHB", head, 6)
    if packed & 0x80:
        r.skip(3 << ((packed & 7) + 1))
    budget = [_MAX_GIF_BLOCKS]
    first_frame: tuple[int, int] | None = None
    while True:
        budget[0] -= 1
        if budget[0] < 0:
            raise _Malformed("too many GIF blocks")
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
            raise _Malformed("an unknown GIF block")
    if first_frame is None:
        raise _Malformed("the GIF has no image")
    if width == 0 or height == 0:
        width, height = first_frame
    if width == 0 or height == 0:
        raise _Malformed("the GIF has no picture size")
    return _Dims(width, height)


_PROBES: Final = {
    "video/mp4": _probe_isobmff,
    "video/quicktime": _probe_isobmff,
    "video/webm": _probe_webm,
    "image/jpeg": _probe_jpeg,
    "image/png": _probe_png,
    "image/webp": _probe_webp,
    "image/gif": _probe_gif,
}


def probe(local: LocalFile, mime: str, handle: BinaryIO | None = None) -> MediaInfo:
    """Width, height, duration and rotation read from the file; ``PROBE_FAILED`` when it is malformed.

    Reads from ``handle`` (from ``local.open_checked()``) when given, else opens the file once.
    """
    parser = _PROBES.get(mime)
    if parser is None:
        _fail(f"{mime!r} is not a supported media type.", "UNSUPPORTED_MEDIA_TYPE", supported=list(SUPPORTED_TYPES))
    try:
        if handle is not None:
            dims = parser(_Reader(handle, local.size))
        else:
            with local.open_checked() as opened:
                dims = parser(_Reader(opened, local.size))
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
    except (_Malformed, struct.error, IndexError, ValueError, OverflowError, RecursionError, OSError) as exc:
        if isinstance(exc, _Malformed):
            reason = str(exc)
        elif isinstance(exc, OSError):
            reason = "reading it failed"
        else:
            reason = "its structure is invalid"  # includes a size pydantic refuses (ValueError)
        _fail(
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

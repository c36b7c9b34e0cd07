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

Modules, one job each: ``kinds`` (the seven types, limits, ``MediaInfo``), ``policy`` (path policy and
the checked open), ``sniff`` (type and size), ``reader`` (bounded reads), one probe per container family
(``isobmff``, ``ebml``, ``images``) and ``probe`` (dispatch, ``open_media``, ``inspect_file``).

``inspect_file`` runs all three in order. The functions are synchronous and do small, bounded reads;
async callers may run them in a worker thread.

Messages quote the caller's path with ``repr`` (it is data, never an instruction) and never include
bytes read from a file.
"""

from postqued.media.kinds import (
    EXTENSIONS,
    IMAGE_TYPES,
    MAX_IMAGE_BYTES,
    MAX_VIDEO_BYTES,
    SUPPORTED_TYPES,
    VIDEO_TYPES,
    MediaInfo,
    MimeType,
)
from postqued.media.policy import FileIdentity, LocalFile, check_path
from postqued.media.probe import Prepared, inspect_file, open_media, probe
from postqued.media.sniff import check_size, detect_type, sniff

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
    "Prepared",
    "check_path",
    "check_size",
    "detect_type",
    "inspect_file",
    "open_media",
    "probe",
    "sniff",
]

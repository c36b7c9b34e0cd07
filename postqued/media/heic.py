"""HEIC/HEIF photos (the iPhone camera's default) become a high-quality JPEG on this machine before upload.

PostQued takes JPEG, not HEIC. The photo is decoded with ``pillow-heif`` (libheif and its codecs ship in
the wheel, a dependency of this project, imported only when a HEIC file is uploaded), turned upright
(the HEIF transform, then any EXIF orientation left), and written as a JPEG at quality 92 with the
colour profile kept and location metadata removed (the EXIF GPS block; XMP is not carried). The
original file is only read, from the checked descriptor, and never changed.
"""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass
from typing import BinaryIO, Final

from postqued.media.kinds import fail

JPEG_QUALITY: Final = 92
_GPS_IFD: Final = 0x8825
_ORIENTATION: Final = 0x0112
INSTALL: Final = "pip install 'pillow-heif>=1.0'"


@dataclass(frozen=True)
class Converted:
    jpeg: bytes
    source_sha256: str  # of the original HEIC bytes: what de-duplication is keyed on
    source_size: int


def convert_heif(handle: BinaryIO, size: int, label: str) -> Converted:
    """Decode the HEIF read from ``handle`` (``size`` bytes) and encode it as an upright JPEG."""
    try:
        import pillow_heif
        from PIL import Image, ImageOps
    except ImportError:
        fail(
            f"{label} is a HEIC/HEIF photo, and converting it needs the pillow-heif package, which is not "
            "installed here.",
            "HEIC_CONVERTER_MISSING",
            f"Install it into the server's environment (`{INSTALL}`) and restart the server, or export the "
            "photo as JPEG (on an iPhone: Settings > Camera > Formats > Most Compatible).",
        )
    handle.seek(0)
    raw = handle.read(size + 1)
    if len(raw) != size:
        fail(f"{label} changed while it was read.", "FILE_CHANGED", "Wait until the file is completely written.")
    pillow_heif.register_heif_opener()
    try:
        with Image.open(io.BytesIO(raw), formats=["HEIF"]) as opened:
            image = ImageOps.exif_transpose(opened)  # pillow-heif applies the HEIF rotation; this the EXIF one
            exif = image.getexif()
            icc = opened.info.get("icc_profile")
            rgb = image.convert("RGB")
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
        fail(
            f"{label} could not be decoded as a HEIC/HEIF photo ({type(exc).__name__}).",
            "PROBE_FAILED",
            "The photo looks damaged or uses a HEIF feature the converter lacks: export it as JPEG on the "
            "phone or computer and upload that.",
        )
    exif.pop(_GPS_IFD, None)
    exif.pop(_ORIENTATION, None)
    out = io.BytesIO()
    options: dict[str, object] = {"quality": JPEG_QUALITY, "exif": exif.tobytes()}
    if isinstance(icc, bytes):
        options["icc_profile"] = icc
    rgb.save(out, "JPEG", **options)
    return Converted(out.getvalue(), hashlib.sha256(raw).hexdigest(), size)

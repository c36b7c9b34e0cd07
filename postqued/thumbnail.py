"""Small preview thumbnails of local images, made on this machine (never a link to PostQued's storage).

``thumbnail(path, sha256, allowed_dirs, max_bytes)`` re-checks the path against the media folders (the same policy as
uploads), proves the file still holds the bytes that were uploaded (its SHA-256), and returns a PNG no larger
than ``MAX_SIDE`` pixels on its longer side, or ``None`` when any of that fails. Videos get no thumbnail (no
decoding is needed to show their metadata). Pillow decodes the image, and only when its header declares at most
``MAX_PIXELS`` pixels (a decompression bomb is refused before it is decoded).
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
from collections.abc import Sequence

from postqued.errors import PostQuedError

log = logging.getLogger("postqued.thumbnail")

MAX_SIDE = 160
MAX_PIXELS = 80_000_000  # a 20 MB image larger than this is a decompression bomb, not a photo


def thumbnail(path: str, sha256: str, allowed_dirs: Sequence[str | os.PathLike[str]], max_bytes: int) -> bytes | None:
    """A PNG thumbnail of the image at ``path`` if it is still allowed, at most ``max_bytes`` and the uploaded bytes."""
    from PIL import Image, ImageOps

    from postqued.media import check_path

    try:
        local = check_path(path, allowed_dirs)
        if local.size > max_bytes:
            return None
        with local.open_checked() as f:
            data = f.read(local.size + 1)
        if len(data) != local.size or hashlib.sha256(data).hexdigest() != sha256:
            return None  # changed since the upload: the card must not show a picture that was not sent
        with Image.open(io.BytesIO(data)) as img:
            if img.width * img.height > MAX_PIXELS:  # checked from the header, before anything is decoded
                return None
            img.draft("RGB", (MAX_SIDE * 2, MAX_SIDE * 2))  # JPEG: decode at a reduced scale
            frame = ImageOps.exif_transpose(img) or img
            frame.thumbnail((MAX_SIDE, MAX_SIDE))
            out = io.BytesIO()
            frame.convert("RGBA" if "A" in frame.getbands() else "RGB").save(out, format="PNG", optimize=True)
        return out.getvalue()
    except (PostQuedError, OSError, ValueError, Image.DecompressionBombError) as exc:
        log.info("no thumbnail: %s", type(exc).__name__)
        return None

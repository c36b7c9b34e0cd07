"""Thumbnails for the preview card: made from the local file only while it is allowed, small and unchanged."""

from __future__ import annotations

import hashlib
import io
import struct
import zlib
from pathlib import Path
from typing import Any

from PIL import Image, ImageFile

from postqued.thumbnail import MAX_SIDE, thumbnail

LIMIT = 20 * 1024 * 1024


def picture(path: Path, size: tuple[int, int], fmt: str = "PNG") -> str:
    Image.new("RGB", size, (200, 40, 40)).save(path, format=fmt)
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_a_large_image_becomes_a_small_png_with_its_proportions(tmp_path: Path) -> None:
    sha = picture(tmp_path / "wide.jpg", (1200, 600), "JPEG")
    png = thumbnail(str(tmp_path / "wide.jpg"), sha, [tmp_path], LIMIT)
    assert png is not None
    with Image.open(io.BytesIO(png)) as img:
        assert img.format == "PNG" and img.size == (MAX_SIDE, MAX_SIDE // 2)


def test_no_thumbnail_outside_the_media_folders_or_once_the_file_changed(tmp_path: Path) -> None:
    allowed, elsewhere = tmp_path / "media", tmp_path / "other"
    allowed.mkdir()
    elsewhere.mkdir()
    sha = picture(elsewhere / "a.png", (40, 40))
    assert thumbnail(str(elsewhere / "a.png"), sha, [allowed], LIMIT) is None
    sha = picture(allowed / "b.png", (40, 40))
    assert thumbnail(str(allowed / "b.png"), sha, [allowed], LIMIT) is not None
    picture(allowed / "b.png", (41, 40))  # replaced after the upload
    assert thumbnail(str(allowed / "b.png"), sha, [allowed], LIMIT) is None
    assert thumbnail(str(allowed / "missing.png"), sha, [allowed], LIMIT) is None


def test_too_large_a_file_or_a_decompression_bomb_is_never_decoded(tmp_path: Path, monkeypatch: Any) -> None:
    decoded: list[object] = []
    monkeypatch.setattr(ImageFile.ImageFile, "load", lambda self: decoded.append(self))
    sha = picture(tmp_path / "c.png", (40, 40))
    assert thumbnail(str(tmp_path / "c.png"), sha, [tmp_path], max_bytes=10) is None

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", 10_000, 8_500, 8, 2, 0, 0, 0)  # 85 M pixels: below Pillow's own guard
    bomb = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 1000))
    (tmp_path / "bomb.png").write_bytes(bomb)
    assert thumbnail(str(tmp_path / "bomb.png"), hashlib.sha256(bomb).hexdigest(), [tmp_path], LIMIT) is None
    assert decoded == []
